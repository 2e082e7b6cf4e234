import Addressing
import IPVS
import Testing
import VRRP
import VRRPSpecs
@testable import VigilDaemon

/// Reload sequences on the simulated pair (lvs01 priority 100 is master, lvs02 95 is backup,
/// both nopreempt), each asserting what must not move on the wire and on the interfaces.
@Suite struct VRRPReloadTests {
    /// The pair settled: lvs01 MASTER with the VIP, lvs02 BACKUP.
    static func settledPair(_ sim: Simulation, lvs01 config1: String = Configs.pair(priority: 100),
                            lvs02 config2: String = Configs.pair(priority: 95)) throws -> (Director, Director) {
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try lvs01.start(config1)
        sim.run(0.5)
        try lvs02.start(config2)
        // Past lvs01's second GARP burst (garp_master_delay 5 s after it became master).
        sim.run(10)
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
        return (lvs01, lvs02)
    }

    /// Master adverts at exactly one-second spacing, none from anyone else, no GARP.
    static func onlyRegularAdverts(_ events: [WireEvent], from node: String, interval: Int64 = 1_000_000) -> Bool {
        let adverts = events.filter { $0.advert != nil }
        guard adverts.allSatisfy({ $0.node == node && $0.advert!.priority != 0 }), !events.contains(where: \.isAnnouncement) else { return false }
        return zip(adverts, adverts.dropFirst()).allSatisfy { $1.time - $0.time == interval }
    }

    @Test func twentyReloadsOfTheSameFileChangeNothing() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try Self.settledPair(sim)
        let since = sim.now
        let addressesBefore = lvs01.node.addressLog.count
        let notifiesBefore = lvs01.processes.notifications.count + lvs02.processes.notifications.count
        for _ in 0..<20 {
            lvs01.hangUp()
            lvs02.hangUp()
            sim.run(0.7)
        }
        for director in [lvs01, lvs02] {
            #expect(director.daemon!.reloads.count == 20)
            #expect(director.daemon!.reloads.allSatisfy { $0.result == .unchanged && $0.vrrpPlan.isEmpty && $0.ipvsOperations.isEmpty })
        }
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"), "\(sim.wire(since: since))")
        #expect(lvs01.node.addressLog.count == addressesBefore)
        #expect(lvs01.processes.notifications.count + lvs02.processes.notifications.count == notifiesBefore)
        #expect(lvs01.log.matching("Entering").count == 2 && lvs02.log.matching("Entering").count == 1, "BACKUP then MASTER; BACKUP")
        #expect(lvs01.log.contains("nothing changed"))
    }

    @Test func aVIPAddedOnTheMasterIsAddedWithoutATransition() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try Self.settledPair(sim)
        let since = sim.now
        let log = lvs01.node.addressLog.count
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(5)
        let reload = try #require(lvs01.daemon!.reloads.last)
        #expect(reload.result == .applied)
        #expect(reload.summary.contains("VIPs +1 -0"))
        #expect(lvs01.holds("10.0.0.100") && lvs01.holds("10.0.0.101"))
        // Exactly one address change: the new VIP, added; the old one untouched.
        let changes = lvs01.node.addressLog.dropFirst(log)
        #expect(changes.count == 1 && changes.first!.add && changes.first!.address == IPAddress("10.0.0.101")!)
        let wire = sim.wire(since: since)
        #expect(!wire.contains { $0.advert?.priority == 0 }, "no priority-0 advert")
        #expect(!wire.contains { $0.node == "lvs02" && $0.advert != nil }, "no advert from the backup")
        #expect(wire.filter(\.isAnnouncement).allSatisfy { $0.source == IPAddress("10.0.0.101")! })
        #expect(wire.contains { $0.isAnnouncement }, "the new VIP is announced")
        // The first advert after the reload already lists both VIPs.
        let first = try #require(wire.first { $0.advert != nil }?.advert)
        #expect(first.addresses.count == 2)
        #expect(lvs01.log.matching("Entering").count == 2, "BACKUP then MASTER at start, nothing since")
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
    }

    @Test func removingAVIPReleasesOnlyIt() throws {
        let sim = Simulation()
        let two = Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"])
        let (lvs01, _) = try Self.settledPair(sim, lvs01: two, lvs02: Configs.pair(priority: 95, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        #expect(lvs01.holds("10.0.0.101"))
        let log = lvs01.node.addressLog.count
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24"]))
        sim.run(3)
        let changes = lvs01.node.addressLog.dropFirst(log)
        #expect(changes.count == 1 && !changes.first!.add && changes.first!.address == IPAddress("10.0.0.101")!)
        #expect(lvs01.holds("10.0.0.100") && !lvs01.holds("10.0.0.101"))
        #expect(lvs01.state("VI_1") == .master)
    }

    @Test func aPriorityChangeOnTheBackupMovesNothing() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try Self.settledPair(sim)
        let since = sim.now
        lvs02.hangUp(with: Configs.pair(priority: 90))
        sim.run(2)
        lvs02.hangUp(with: Configs.pair(priority: 99))
        sim.run(6)
        #expect(lvs02.daemon!.reloads.map(\.result) == [.applied, .applied])
        #expect(lvs02.daemon!.reloads[0].summary.contains("priority 95→90"))
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
        #expect(lvs02.instance("VI_1")!.machine.effectivePriority == 99)
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
    }

    /// keepalived #208: two SIGHUPs in quick succession must not move the master. Here they
    /// even arrive in one drain, and count as one reload.
    @Test func twoHangUpsTogetherAreOneReload() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        let since = sim.now
        lvs01.hangUp()
        lvs01.hangUp()
        sim.run(2)
        #expect(lvs01.daemon!.reloads.count == 1)
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
    }

    /// A SIGHUP that arrives while a reload reads the file is not lost: it is the next reload.
    @Test func aHangUpDuringAReloadIsTheNextReload() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        var injected = false
        lvs01.files.onRead = {
            guard !injected else { return }
            injected = true
            lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.102/24"])
            lvs01.signals.pending.append(SIGHUP_)
        }
        lvs01.hangUp()
        sim.run(2)
        #expect(lvs01.daemon!.reloads.map(\.result) == [.unchanged, .applied])
        #expect(lvs01.holds("10.0.0.102"))
    }

    @Test func aBrokenFileIsRefusedAndNothingChanges() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        let since = sim.now
        let log = lvs01.node.addressLog.count
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.300/24"]) + "\nvrrp_instance {\n")
        sim.run(3)
        let reload = try #require(lvs01.daemon!.reloads.last)
        #expect(reload.result == .refused)
        #expect(reload.errors.contains { $0.contains("keepalived.conf:") }, "errors name file:line:column: \(reload.errors)")
        #expect(lvs01.log.contains("refused"))
        #expect(lvs01.node.addressLog.count == log)
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
        #expect(lvs01.daemon!.configuration.instances.first!.virtualAddresses.count == 1)
        // A file that names a link this host does not have, and a file that is gone: refused too.
        lvs01.hangUp(with: Configs.pair(priority: 100).replacingOccurrences(of: "interface eth0", with: "interface eth9"))
        sim.run(1)
        #expect(lvs01.daemon!.reloads.last!.result == .refused)
        #expect(lvs01.daemon!.reloads.last!.errors.contains { $0.contains("eth9") && $0.contains("keepalived.conf:") })
        lvs01.files.files[lvs01.path] = nil
        lvs01.hangUp()
        sim.run(1)
        #expect(lvs01.daemon!.reloads.last!.result == .refused)
        #expect(lvs01.node.addressLog.count == log && lvs01.state("VI_1") == .master)
        // And a good file afterwards applies.
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.103/24"]))
        sim.run(1)
        #expect(lvs01.daemon!.reloads.last!.result == .applied && lvs01.holds("10.0.0.103"))
    }

    /// A large file takes time to read, and the loop does not turn meanwhile: the master's
    /// adverts still leave on time, from the parser's progress calls.
    @Test func aLongReloadDoesNotDelayTheAdverts() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        let padding = String(repeating: "! a comment line of a long file\n", count: 100_000)
        let since = sim.now
        // Each clock reading during the parse takes 3 ms: 390 readings, about 1.2 s of parse.
        lvs01.files.onRead = { sim.clock.advancePerReading = 3_000 }
        lvs01.hangUp(with: padding + Configs.pair(priority: 100))
        lvs01.daemon!.turn(maxWait: 0)
        sim.clock.advancePerReading = 0
        #expect(sim.now - since > 1_000_000, "the parse took over a second of virtual time")
        sim.run(2)
        #expect(lvs01.daemon!.reloads.last!.result == .unchanged)
        let adverts = sim.wire(since: since).filter { $0.advert != nil }
        let gaps = zip(adverts, adverts.dropFirst()).map { $1.time - $0.time }
        #expect(gaps.allSatisfy { abs($0 - 1_000_000) <= 3_000 }, "advert gaps \(gaps)")
        #expect(lvs01.state("VI_1") == .master)
    }

    /// The same on the backup, for longer than its master-down interval: the master's adverts
    /// wait unread in the socket meanwhile, so the backup must not let its down timer expire
    /// from the parser's calls; the next turn reads them and it stays BACKUP.
    @Test func aLongReloadOnTheBackupDoesNotTakeOver() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try Self.settledPair(sim)
        let padding = String(repeating: "! a comment line of a long file\n", count: 300_000)
        let since = sim.now
        // lvs01 goes on advertising while lvs02 is busy: its adverts queue in lvs02's socket.
        sim.clock.whileBusy = { if let wake = lvs01.nextWake, wake <= sim.now { lvs01.daemon!.turn(maxWait: 0) } }
        lvs02.files.onRead = { sim.clock.advancePerReading = 4_000 }
        lvs02.hangUp(with: padding + Configs.pair(priority: 95))
        lvs02.daemon!.turn(maxWait: 0)
        sim.clock.advancePerReading = 0
        #expect(lvs02.node.openChannels[0].queue.count >= 4, "the master's adverts waited in the backup's socket")
        #expect(sim.now - since > 4_000_000, "the parse took longer than the 3.6 s master-down interval")
        sim.run(3)
        #expect(lvs02.state("VI_1") == .backup && lvs01.state("VI_1") == .master)
        #expect(!sim.wire(since: since).contains { $0.node == "lvs02" }, "\(sim.wire(since: since).filter { $0.node == "lvs02" })")
        #expect(lvs01.log.matching("Entering").count == 2 && lvs02.log.matching("Entering").count == 1)
    }

    /// A reload that removes the only instance on a link closes its socket and withdraws it
    /// from the loop.
    @Test func aSocketNoInstanceUsesIsClosed() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41", extraInterfaces: ["eth1"])
        let second = SyncGroupReloadTests.group.components(separatedBy: "vrrp_sync_group")[0]
        try lvs01.start(Configs.pair(priority: 100, extra: second))
        sim.run(5)
        #expect(lvs01.node.openChannels.count == 2)
        let watched = lvs01.daemon!.loop.watchedDescriptors
        lvs01.hangUp(with: Configs.pair(priority: 100))
        sim.run(1)
        #expect(lvs01.node.openChannels.count == 1 && lvs01.node.openChannels[0].segment == "lan")
        #expect(lvs01.daemon!.loop.watchedDescriptors == watched - 1)
        #expect(!lvs01.node.addresses(on: "eth1").contains(IPAddress("10.1.0.100")!))
    }

    /// keepalived's reload_file exists while a reload runs; reload_check_config LOG gets the
    /// new file's diagnostics, here those of a refused file.
    @Test func reloadFileAndReloadCheckLog() throws {
        let sim = Simulation()
        let globals = "reload_file /run/test.reload\n    reload_check_config /tmp/reload-check.log"
        let (lvs01, _) = try Self.settledPair(sim, lvs01: Configs.pair(priority: 100, globals: globals))
        lvs01.files.onRead = { #expect(lvs01.files.files["/run/test.reload"] == "", "the reload file exists while the file is read") }
        lvs01.hangUp(with: Configs.pair(priority: 100, globals: globals) + "\nvrrp_instance {\n")
        sim.run(1)
        #expect(lvs01.daemon!.reloads.last!.result == .refused)
        #expect(lvs01.files.files["/run/test.reload"] == nil, "removed when the reload is done")
        let check = try #require(lvs01.files.files["/tmp/reload-check.log"])
        #expect(check.contains("keepalived.conf:") && check.contains("error:"), "\(check)")
        lvs01.files.onRead = {}
        lvs01.hangUp(with: Configs.pair(priority: 100, globals: globals))
        sim.run(1)
        #expect(lvs01.daemon!.reloads.last!.result == .unchanged && lvs01.files.files["/tmp/reload-check.log"] == "")
    }

    /// keepalived matches instances by VRID, family, interface and transport: a renamed
    /// instance is the same router and keeps its state.
    @Test func aRenamedInstanceKeepsItsState() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        let since = sim.now
        lvs01.hangUp(with: Configs.pair(priority: 100, name: "VI_web"))
        sim.run(3)
        #expect(lvs01.state("VI_web") == .master)
        #expect(lvs01.daemon!.reloads.last!.summary.contains("renamed from VI_1"))
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
    }

    /// A new VRID is a new router: the old one leaves as on stop (priority 0, VIP released,
    /// FAULT notified since notify_deleted is not set) and the new one starts as at start-up.
    @Test func aChangedIdentityStopsTheOldRouterAndStartsTheNew() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try Self.settledPair(sim)
        let since = sim.now
        lvs01.hangUp(with: Configs.pair(priority: 100, vrid: 78))
        sim.run(0.1)
        let wire = sim.wire(since: since)
        #expect(wire.contains { $0.node == "lvs01" && $0.advert?.vrid == 77 && $0.advert?.priority == 0 })
        let notes = lvs01.processes.notifications.suffix(2)
        #expect(Array(notes) == ["/etc/keepalived/notify.sh INSTANCE VI_1 FAULT 100", "/etc/keepalived/notify.sh INSTANCE VI_1 BACKUP 100"],
                "the old router is notified as FAULT (no notify_deleted), the new one starts in BACKUP")
        let reload = lvs01.daemon!.reloads.last!
        #expect(reload.vrrpPlan.added.count == 1 && reload.vrrpPlan.removed.count == 1)
        sim.run(6)
        // lvs02 took VRID 77 over; lvs01 runs VRID 78 alone and is its master.
        #expect(lvs02.state("VI_1") == .master && lvs01.state("VI_1") == .master)
        #expect(lvs01.instance("VI_1")!.vrid == 78)
    }

    @Test func aRemovedInstanceLeavesAndAnAddedOneStarts() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let second = """
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            priority 150
            advert_int 1
            virtual_ipaddress {
                10.0.0.200/24
            }
            notify_deleted "/etc/keepalived/notify.sh deleted"
        }
        """
        try lvs01.start(Configs.pair(priority: 100, extra: second))
        sim.run(6)
        #expect(lvs01.state("VI_1") == .master && lvs01.state("VI_2") == .master && lvs01.holds("10.0.0.200"))
        let since = sim.now
        lvs01.hangUp(with: Configs.pair(priority: 100))
        sim.run(0.1)
        #expect(!lvs01.holds("10.0.0.200") && lvs01.holds("10.0.0.100"))
        #expect(sim.wire(since: since).contains { $0.advert?.vrid == 52 && $0.advert?.priority == 0 })
        #expect(lvs01.processes.notifications.contains("/etc/keepalived/notify.sh deleted"))
        lvs01.hangUp(with: Configs.pair(priority: 100, extra: second))
        sim.run(6)
        #expect(lvs01.state("VI_2") == .master && lvs01.holds("10.0.0.200"))
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs01.log.matching("(VI_1) Entering").count == 2, "VI_1: BACKUP then MASTER once, never again")
    }

    /// The master's adverts keep their schedule through any number of reloads: no timer is
    /// lost (a gap) or doubled (an extra advert).
    @Test func reloadsNeitherLoseNorDoubleTheAdvertTimer() throws {
        let sim = Simulation()
        let (lvs01, _) = try Self.settledPair(sim)
        let since = sim.now
        for step in 0..<30 {
            sim.run(0.37)
            lvs01.hangUp(with: Configs.pair(priority: 100, instanceExtra: step % 2 == 0 ? "garp_master_repeat 3" : ""))
        }
        sim.run(1)
        let adverts = sim.wire(since: since).filter { $0.advert != nil }
        #expect(adverts.count >= 11)
        #expect(Self.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
        #expect(lvs01.daemon!.reloads.filter { $0.result == .applied }.count == 30)
    }

    /// Track scripts: an unchanged script keeps its verdict and schedule; a new one starts as
    /// at start-up; a script whose rise/fall changed keeps its verdict.
    @Test func trackScriptsKeepTheirVerdictAcrossAReload() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.processes.behaviour = { command in (!command.contains("check.sh"), 10_000) }
        try lvs01.start(Configs.pair(priority: 100, script: true))
        sim.run(6)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 90)
        let runs = lvs01.processes.started.filter { $0.command.contains("check.sh") }.count
        lvs01.hangUp(with: Configs.pair(priority: 100, script: true).replacingOccurrences(of: "rise 2", with: "rise 3"))
        sim.run(0.2)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 90, "the failed verdict survives the reload")
        #expect(lvs01.log.contains("VRRP_Script(chk) considered unsuccessful on reload"))
        sim.run(3)
        let after = lvs01.processes.started.filter { $0.command.contains("check.sh") }
        #expect(after.count - runs == 3 || after.count - runs == 4, "one run a second, no extra run for the reload")
        lvs01.hangUp(with: Configs.pair(priority: 100, script: true).replacingOccurrences(of: "rise 2", with: "rise 3"))
        sim.run(0.2)
        #expect(lvs01.daemon!.reloads.last!.result == .unchanged)
    }
}

/// Sync groups: members move together, and a reload rebuilds the group around members that
/// keep their state, so no group notify runs for a state it was already in.
@Suite struct SyncGroupReloadTests {
    static let group = """
    vrrp_instance VI_2 {
        state BACKUP
        interface eth1
        virtual_router_id 78
        priority 100
        advert_int 1
        virtual_ipaddress {
            10.1.0.100/24
        }
    }
    vrrp_sync_group G {
        group {
            VI_1
            VI_2
        }
        notify "/etc/keepalived/notify.sh"
    }
    """

    @Test func aGroupMovesTogetherAndAReloadDoesNotNotifyAgain() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41", extraInterfaces: ["eth1"])
        try lvs01.start(Configs.pair(priority: 100, extra: Self.group))
        sim.run(6)
        #expect(lvs01.state("VI_1") == .master && lvs01.state("VI_2") == .master)
        let notes = lvs01.processes.notifications
        #expect(notes.contains("/etc/keepalived/notify.sh GROUP G MASTER 0"))
        // Per instance: BACKUP before MASTER; the group's MASTER after its members'.
        let i1 = notes.firstIndex(of: "/etc/keepalived/notify.sh INSTANCE VI_1 BACKUP 100")!
        let m1 = notes.firstIndex(of: "/etc/keepalived/notify.sh INSTANCE VI_1 MASTER 100")!
        #expect(i1 < m1)
        let count = notes.count
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"], extra: Self.group))
        sim.run(3)
        #expect(lvs01.daemon!.reloads.last!.result == .applied)
        #expect(lvs01.processes.notifications.count == count, "\(lvs01.processes.notifications.dropFirst(count))")
        #expect(lvs01.vrrp.groups.count == 1 && lvs01.vrrp.groups[0].core.state == .master)
        // The group still works after the reload: VI_2's link fails, both members go to FAULT.
        lvs01.node.interfaces["eth1"]!.isUp = false
        sim.run(3)
        #expect(lvs01.state("VI_1") == .fault && lvs01.state("VI_2") == .fault)
        #expect(!lvs01.holds("10.0.0.100"))
    }
}
