import Addressing
import Testing
import VRRP
import VigilConfig
import VigilSystem
@testable import VigilDaemon

/// keepalived's eVIPs: `virtual_ipaddress_excluded` and VIPs beyond an advert's capacity are
/// held by the MASTER with its VIPs, announced with them, and never listed in adverts.
@Suite struct ExcludedVIPTests {
    static let excluded = """
    virtual_ipaddress_excluded {
            10.0.0.200/24
            fd00::200/64
        }
    """

    @Test func heldAndAnnouncedWithTheVIPsNeverAdvertised() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(
            sim, lvs01: Configs.pair(priority: 100, instanceExtra: Self.excluded), lvs02: Configs.pair(priority: 95, instanceExtra: Self.excluded))
        #expect(lvs01.holds("10.0.0.100") && lvs01.holds("10.0.0.200") && lvs01.holds("fd00::200"))
        #expect(!lvs02.holds("10.0.0.200") && !lvs02.holds("fd00::200"))
        let wire = sim.wire(since: 0)
        let adverts = wire.compactMap { $0.node == "lvs01" ? $0.advert : nil }
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.addresses == [IPAddress("10.0.0.100")!] })
        let announced = Set(wire.compactMap { event -> IPAddress? in
            guard event.node == "lvs01", case .announce(let address) = event.kind else { return nil }
            return address
        })
        #expect(announced == [IPAddress("10.0.0.100")!, IPAddress("10.0.0.200")!], "GARPs for both; no ARP for an IPv6 address")
        #expect(lvs01.ask("status json", in: sim).contains(#""evips": ["#))
        let since = sim.now
        lvs01.stop(in: sim)
        sim.run(5)
        #expect(!lvs01.holds("10.0.0.200") && !lvs01.holds("fd00::200"), "released on stop")
        #expect(lvs02.state("VI_1") == .master && lvs02.holds("10.0.0.200") && lvs02.holds("fd00::200"))
        #expect(sim.wire(since: since).compactMap { $0.node == "lvs02" ? $0.advert : nil }.allSatisfy { $0.addresses.count == 1 })
    }

    @Test func aReloadAddsAndRemovesExcludedAddressesOnTheMaster() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        let since = sim.now
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, instanceExtra: Self.excluded)
        let applied = lvs01.ask("reload", in: sim)
        #expect(applied.contains("excluded VIPs +2 -0"), "\(applied)")
        #expect(lvs01.holds("10.0.0.200") && lvs01.holds("fd00::200"))
        #expect(sim.wire(since: since).allSatisfy { $0.advert == nil || $0.advert!.addresses.count == 1 })
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100)
        _ = lvs01.ask("reload", in: sim)
        #expect(!lvs01.holds("10.0.0.200") && !lvs01.holds("fd00::200") && lvs01.holds("10.0.0.100"))
    }

    /// 300 VIPs used to trap the advert encoder; keepalived advertises 255 and holds the rest.
    @Test func threeHundredVIPsAreHeldAndTheAdvertListsTwoHundredFiftyFive() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let vips = (0..<300).map { "10.1.\($0 / 250).\($0 % 250 + 1)/16" }
        try lvs01.start(Configs.pair(priority: 100, vips: vips))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        #expect(vips.allSatisfy { lvs01.holds(String($0.split(separator: "/")[0])) })
        let adverts = sim.wire(since: 0).compactMap(\.advert)
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.addresses.count == 255 })
    }
}

/// keepalived's vrrp_startup_delay: nothing starts and received adverts are dropped until it
/// ends, so a rebooted nopreempt director cannot take over before it has heard the master.
@Suite struct StartupDelayTests {
    @Test func instancesStartWhenTheDelayEndsAndAdvertsMeanwhileAreDropped() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try lvs01.start(Configs.pair(priority: 100))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        try lvs02.start(Configs.pair(priority: 150, globals: "vrrp_startup_delay 4"))
        let started = sim.now
        sim.run(3.9)
        #expect(lvs02.state("VI_1") == .initialize, "not started during the delay")
        #expect(!sim.wire(since: started).contains { $0.node == "lvs02" }, "silent during the delay")
        #expect(lvs02.log.contains("Delaying startup for 4.0 seconds"))
        #expect(lvs02.instance("VI_1")!.stats.advertsReceived == 0, "adverts received meanwhile are dropped")
        sim.run(0.2)
        #expect(lvs02.state("VI_1") == .backup)
        sim.run(10)
        // nopreempt: the higher priority stays backup once it has heard the master.
        #expect(lvs02.state("VI_1") == .backup && lvs01.state("VI_1") == .master)
    }
}

/// A flood on one socket is read a bounded batch per turn, so timers and other sockets get
/// their turn, and every packet is still read and counted.
@Suite struct ReceiveBoundTests {
    @Test func aFloodIsReadInBatchesAndEveryPacketIsCounted() throws {
        let sim = Simulation()
        let (_, lvs02) = try VRRPReloadTests.settledPair(sim)
        let channel = try #require(lvs02.node.openChannels.first)
        let before = lvs02.instance("VI_1")!.stats.receiveErrors.values.reduce(0, +)
        let payload: [UInt8] = [0x21, 77, 100, 1, 1, 1, 0xde, 0xad, 10, 0, 0, 100] + Array("11111\0\0\0".utf8)
        let packet = VRRPSocket.ipv4Header(payloadLength: payload.count, source: IPv4Address(10, 0, 0, 66),
                                           destination: IPv4Address(224, 0, 0, 18), ttl: 255) + payload
        channel.queue += Array(repeating: (packet, IPAddress("10.0.0.66")!), count: 1_000)
        lvs02.daemon!.turn()
        #expect(channel.queue.count == 1_000 - VRRPHost.packetsPerWake, "one batch per turn")
        sim.run(1)
        #expect(channel.queue.isEmpty)
        #expect(lvs02.instance("VI_1")!.stats.receiveErrors.values.reduce(0, +) - before == 1_000, "every packet counted")
        #expect(lvs02.state("VI_1") == .backup)
    }
}

/// vrrp_mcast_group4: adverts go to the configured group and only directors joined to it hear
/// them.
@Suite struct MulticastGroupTests {
    @Test func advertsGoToTheConfiguredGroupAndOnlyItsMembersHearThem() throws {
        let sim = Simulation()
        let group = "vrrp_mcast_group4 224.0.0.19"
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(
            sim, lvs01: Configs.pair(priority: 100, globals: group), lvs02: Configs.pair(priority: 95, globals: group))
        let adverts = sim.wire(since: 0).filter { $0.advert != nil }
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.destination == IPAddress("224.0.0.19")! })
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
        // A third director on the standard group hears nothing and becomes master too.
        let lvs03 = Director("lvs03", simulation: sim, ipv4: "10.0.0.43")
        try lvs03.start(Configs.pair(priority: 90))
        sim.run(5)
        #expect(lvs03.state("VI_1") == .master)
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
    }
}

/// virtual_routes and virtual_rules follow MASTER; static_* are there from start to stop.
@Suite struct RoutesAndRulesTests {
    static let virtual = """
    virtual_routes {
            10.9.0.0/16 via 10.0.0.254 dev eth0 table 100
            blackhole 192.0.2.0/24
        }
        virtual_rules {
            from 10.0.0.100 table 100 priority 100
        }
    """
    static let statics = """
    static_ipaddress {
        10.0.0.77/24 dev eth0
    }
    static_routes {
        10.8.0.0/16 via 10.0.0.254 dev eth0
    }
    static_rules {
        from 10.0.0.77 table 101 priority 101
    }
    """

    static func destinations(_ director: Director) -> [String] {
        director.node.routes.map { "\($0.destination.map(String.init(describing:)) ?? "default")/\($0.prefixLength) t\($0.table)" }.sorted()
    }

    @Test func virtualRoutesAndRulesFollowTheMasterAndStaticOnesStay() throws {
        let sim = Simulation()
        let config = { (priority: Int) in Configs.pair(priority: priority, extra: Self.statics, instanceExtra: Self.virtual) }
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim, lvs01: config(100), lvs02: config(95))
        #expect(Self.destinations(lvs01) == ["10.8.0.0/16 t254", "10.9.0.0/16 t100", "192.0.2.0/24 t254"])
        #expect(Self.destinations(lvs02) == ["10.8.0.0/16 t254"], "a BACKUP has the static route only")
        #expect(lvs01.node.rules.map(\.priority) == [101, 100] && lvs02.node.rules.map(\.priority) == [101])
        #expect(lvs01.holds("10.0.0.77") && lvs02.holds("10.0.0.77"), "static addresses are on both")
        let route = try #require(lvs01.node.routes.first { $0.table == 100 })
        #expect(route.gateway == IPAddress("10.0.0.254") && route.device == "eth0" && route.protocolNumber == 18)
        #expect(lvs01.node.routes.first { $0.type == 6 }?.destination == IPAddress("192.0.2.0"))
        lvs01.stop(in: sim)
        sim.run(5)
        #expect(lvs01.node.routes.isEmpty && lvs01.node.rules.isEmpty && !lvs01.holds("10.0.0.77"), "all gone at stop")
        #expect(Self.destinations(lvs02) == ["10.8.0.0/16 t254", "10.9.0.0/16 t100", "192.0.2.0/24 t254"], "the new master has them")
        #expect(lvs02.node.rules.count == 2)
    }

    /// keepalived puts back a deleted static route or rule and leaves MASTER over a deleted
    /// virtual one; Vigil puts both back within a second and stays MASTER. no_track and a
    /// route without a dev are left alone, as keepalived leaves them.
    @Test func deletedRoutesAndRulesArePutBack() throws {
        let sim = Simulation()
        let extra = Self.statics.replacingOccurrences(of: "table 101 priority 101", with: "table 101 priority 101\n    from 10.0.0.78 table 102 priority 102 no_track")
        let config = Configs.pair(priority: 100, extra: extra, instanceExtra: Self.virtual)
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim, lvs01: config)
        let before = Self.destinations(lvs01)
        let rulesBefore = lvs01.node.rules.count
        lvs01.node.routes.removeAll { $0.table == 100 || $0.destination == IPAddress("10.8.0.0") || $0.type == 6 }
        lvs01.node.rules.removeAll()
        sim.run(1.5)
        #expect(lvs01.state("VI_1") == .master)
        #expect(Self.destinations(lvs01) == before.filter { !$0.hasPrefix("192.0.2.0") }, "the blackhole has no dev: not tracked, as keepalived")
        #expect(lvs01.node.rules.compactMap(\.priority).sorted() == [100, 101] && rulesBefore == 3, "the no_track rule stays deleted")
        #expect(lvs01.log.matching("was deleted: added it back").count == 4, "\(lvs01.log.matching("added it back"))")
        sim.run(3)
        #expect(lvs01.log.matching("was deleted: added it back").count == 4, "once each")
    }

    @Test func aReloadOnTheMasterChangesOnlyTheRoutesThatChanged() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim, lvs01: Configs.pair(priority: 100, instanceExtra: Self.virtual))
        #expect(Self.destinations(lvs01) == ["10.9.0.0/16 t100", "192.0.2.0/24 t254"])
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, extra: Self.statics, instanceExtra: """
        virtual_routes {
                10.9.0.0/16 via 10.0.0.254 dev eth0 table 100
                198.51.100.0/24 via 10.0.0.254
            }
        """)
        let applied = lvs01.ask("reload", in: sim)
        #expect(applied.contains("virtual_routes") && applied.contains("virtual_rules") && applied.contains("static"), "\(applied)")
        #expect(Self.destinations(lvs01) == ["10.8.0.0/16 t254", "10.9.0.0/16 t100", "198.51.100.0/24 t254"])
        #expect(lvs01.node.rules.map(\.priority) == [101])
    }
}

/// vrrp_garp_interval: the announcements of a burst leave one interval apart on the interface.
@Suite struct AnnouncementPacingTests {
    @Test func aBurstIsSpacedByTheInterval() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"], globals: "vrrp_garp_interval 0.1"))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        let announcements = sim.wire(since: 0).filter(\.isAnnouncement)
        #expect(announcements.count == 10, "garp_master_repeat 5 for two VIPs, the second burst not yet due")
        let gaps = zip(announcements, announcements.dropFirst()).map { $1.time - $0.time }
        #expect(gaps.allSatisfy { $0 == 100_000 }, "\(gaps)")
    }

    @Test func withoutAnIntervalABurstGoesAtOnce() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(4.5)
        let times = Set(sim.wire(since: 0).filter(\.isAnnouncement).map(\.time))
        #expect(times.count == 1)
    }
}

/// track_file: the number in the file times the weight moves the priority; with weight 0 a
/// non-zero number faults the instance. init_file creates the file at start.
@Suite struct TrackFileTests {
    static let file = """
    track_file maintenance {
        file "/run/vigil/maintenance"
        weight -10
        init_file 0
    }
    """

    @Test func theNumberTimesTheWeightMovesTheVIP() throws {
        let sim = Simulation()
        let tracked = "track_file {\n        maintenance\n    }"
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(
            sim, lvs01: Configs.pair(priority: 100, extra: Self.file, instanceExtra: tracked, nopreempt: false),
            lvs02: Configs.pair(priority: 95, nopreempt: false))
        #expect(lvs01.files.files["/run/vigil/maintenance"] == "0\n", "init_file wrote the file")
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 100)
        lvs01.files.files["/run/vigil/maintenance"] = "1\n"
        sim.run(5)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 90)
        #expect(lvs02.state("VI_1") == .master && lvs01.state("VI_1") == .backup, "95 preempts 90")
        lvs01.files.files["/run/vigil/maintenance"] = "0x0"
        sim.run(5)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 100 && lvs01.state("VI_1") == .master)
        #expect(lvs01.log.contains("Track file maintenance (/run/vigil/maintenance) now reads 1, was 0"))
    }

    @Test func weightZeroFaultsOnAnyNonZeroNumberAndTheLineWeightOverrides() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.files.files["/run/vigil/maintenance"] = "7"
        try lvs01.start(Configs.pair(priority: 100, extra: Self.file, instanceExtra: "track_file {\n        maintenance weight 0\n    }"))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .fault)
        #expect(lvs01.files.files["/run/vigil/maintenance"] == "7", "init_file leaves an existing file alone")
        lvs01.files.files["/run/vigil/maintenance"] = "0"
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
    }

    /// A sync group's track_file moves every member's priority by its weight, as keepalived
    /// 2.2.7's does (100 → 150 with 5 in the file at weight 10, in a namespace).
    @Test func aSyncGroupsFileMovesEveryMember() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let group = """
        vrrp_sync_group G {
            group {
                VI_1
                VI_2
            }
            track_file {
                maintenance
            }
        }
        """
        let second = """
        vrrp_instance VI_2 {
            state BACKUP
            interface eth0
            virtual_router_id 78
            priority 100
            authentication {
                auth_type PASS
                auth_pass 11111
            }
            virtual_ipaddress {
                10.0.0.101/24
            }
        }
        """
        let text = Configs.pair(priority: 100, extra: Self.file + "\n" + group + "\n" + second)
        try lvs01.start(text)
        sim.run(4)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 100 && lvs01.instance("VI_2")!.machine.effectivePriority == 100)
        lvs01.files.files["/run/vigil/maintenance"] = "2"
        sim.run(3)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 80 && lvs01.instance("VI_2")!.machine.effectivePriority == 80)
    }
}

/// vrrp_track_process: the priority follows the quorum of matching processes, after the
/// terminate and fork delays.
@Suite struct TrackProcessTests {
    static let process = """
    vrrp_track_process haproxy {
        process haproxy
        weight -20
        delay 2
    }
    """

    @Test func losingTheProcessMovesTheVIPAfterTheDelay() throws {
        let sim = Simulation()
        let tracked = "track_process {\n        haproxy\n    }"
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        lvs01.runningProcesses = [RunningProcess(comm: "haproxy"), RunningProcess(comm: "sshd")]
        try lvs01.start(Configs.pair(priority: 100, extra: Self.process, instanceExtra: tracked, nopreempt: false))
        sim.run(0.5)
        try lvs02.start(Configs.pair(priority: 95, nopreempt: false))
        sim.run(10)
        #expect(lvs01.state("VI_1") == .master && lvs01.instance("VI_1")!.machine.effectivePriority == 100)
        lvs01.runningProcesses = [RunningProcess(comm: "sshd")]
        sim.run(1.5)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 100, "terminate_delay 2 s not over yet")
        sim.run(2)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 80)
        sim.run(5)
        #expect(lvs02.state("VI_1") == .master && lvs01.state("VI_1") == .backup, "95 preempts 80")
        #expect(lvs01.log.contains("Track process haproxy is now down (0 running, quorum 1)"))
        // A fork that dies at once never counts.
        lvs01.runningProcesses = [RunningProcess(comm: "haproxy")]
        sim.run(1)
        lvs01.runningProcesses = []
        sim.run(3)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 80)
        lvs01.runningProcesses = [RunningProcess(comm: "haproxy")]
        sim.run(8)
        #expect(lvs01.instance("VI_1")!.machine.effectivePriority == 100 && lvs01.state("VI_1") == .master)
    }
}

/// keepalived's smtp_alert: a mail per state entered, keepalived's subject and body, through
/// the SMTP server named; a refusing server costs a log line and nothing else.
@Suite struct StateMailTests {
    static let globals = """
    notification_email {
            ops@example.com
            noc@example.com
        }
        notification_email_from vigil@lvs01.example.com
        smtp_server 10.0.0.25
        smtp_alert
    """

    @Test func aMailPerStateEnteredWithKeepalivedsWords() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, globals: Self.globals))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        let subjects = lvs01.smtp.messages.compactMap { $0.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") } }
        #expect(subjects == ["Subject: [test] VRRP Instance VI_1 - Entering BACKUP state", "Subject: [test] VRRP Instance VI_1 - Entering MASTER state"])
        let master = try #require(lvs01.smtp.messages.last)
        #expect(master.contains("\r\nFrom: vigil@lvs01.example.com\r\n") && master.contains("\r\nTo: ops@example.com, noc@example.com\r\n"))
        #expect(master.contains("\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\n"))
        let dialogue = String(decoding: lvs01.smtp.connections.last!.received, as: UTF8.self)
        #expect(dialogue.hasPrefix("HELO lvs01\r\nMAIL FROM:<vigil@lvs01.example.com>\r\nRCPT TO:<ops@example.com>\r\nRCPT TO:<noc@example.com>\r\nDATA\r\n"))
        #expect(dialogue.hasSuffix("QUIT\r\n") && lvs01.smtp.connections.allSatisfy(\.closed))
        #expect(lvs01.log.contains("SMTP alert successfully sent: [test] VRRP Instance VI_1 - Entering MASTER state"))
    }

    /// keepalived's default sender is the user at the host; the user's name is looked up only
    /// for such a mail, so a daemon that sends none never loads the NSS modules.
    @Test func withoutASenderTheUserAtTheHostSendsAndIsLookedUpOnlyThen() throws {
        let sim = Simulation()
        let quiet = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try quiet.start(Configs.pair(priority: 90, vrid: 78))
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, globals: Self.globals.replacingOccurrences(of: "notification_email_from vigil@lvs01.example.com", with: "")))
        sim.run(5)
        #expect(quiet.userNameLookups == 0)
        let master = try #require(lvs01.smtp.messages.last)
        #expect(master.contains("\r\nFrom: operator@lvs01\r\n"))
        #expect(lvs01.userNameLookups == lvs01.smtp.messages.count)
    }

    @Test func aServerGivenByNameIsResolvedWhenTheFileIsRead() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, globals: Self.globals.replacingOccurrences(of: "smtp_server 10.0.0.25", with: "smtp_server mail.example.com")))
        sim.run(5)
        #expect(lvs01.smtp.messages.count == 2, "both state mails reach 10.0.0.25")
    }

    @Test func withoutSmtpAlertNothingIsSentAndARefusalIsOnlyLogged() throws {
        let sim = Simulation()
        let quiet = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try quiet.start(Configs.pair(priority: 100, globals: Self.globals.replacingOccurrences(of: "smtp_alert", with: "")))
        let refused = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        refused.smtp.refuseSender = true
        try refused.start(Configs.pair(priority: 90, vrid: 78, globals: Self.globals))
        sim.run(6)
        #expect(quiet.smtp.connections.isEmpty)
        #expect(refused.state("VI_1") == .master && refused.smtp.messages.isEmpty)
        #expect(refused.log.contains("SMTP alert not sent ([test] VRRP Instance VI_1 - Entering MASTER state): MAIL FROM answered '550 no relay'"))
    }
}

/// keepalived's checker mails: a real server's when a checker's verdict changes (its default
/// is on), a virtual server's when quorum changes (only with smtp_alert), one when a reload
/// drops a live server; no_checker_emails keeps only the mails where the server itself moved.
@Suite struct CheckerMailTests {
    static func config(globals: String = "", vsExtra: String = "smtp_alert", secondServer: String = "", misc: Bool = false) -> String {
        """
        global_defs {
            router_id test
            enable_script_security
            script_user root
            \(StateMailTests.globals.replacingOccurrences(of: "smtp_alert", with: ""))
            \(globals)
        }
        virtual_server 10.0.0.100 80 {
            delay_loop 2
            lb_algo rr
            lb_kind DR
            protocol TCP
            \(vsExtra)
            real_server 10.0.1.1 80 {
                TCP_CHECK {
                    connect_timeout 1
                    retry 0
                }
                \(misc ? "MISC_CHECK {\n    misc_path /etc/keepalived/check.sh\n}" : "")
            }
            \(secondServer)
        }

        """
    }

    static func subjects(_ lvs: Director) -> [String] {
        lvs.smtp.messages.compactMap { $0.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) } }
    }

    static func bodies(_ lvs: Director) -> [String] {
        lvs.smtp.messages.compactMap { m in m.components(separatedBy: "\r\n\r\n").dropFirst().first }
    }

    @Test func aFailedCheckAndItsRecoveryAreMailedWithKeepalivedsWords() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var up = true
        lvs.prober.alive = { _ in up }
        try lvs.start(Self.config())
        sim.run(3)
        #expect(Self.subjects(lvs) == ["[test] Virtualserver [10.0.0.100]:tcp:80 - UP"])
        #expect(Self.bodies(lvs) == ["=> Starting with quorum up 1+0=1 <= 1 <="])
        up = false
        sim.run(4)
        #expect(Array(Self.subjects(lvs).dropFirst()) == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN",
                                                           "[test] Virtualserver [10.0.0.100]:tcp:80 - DOWN"])
        #expect(Array(Self.bodies(lvs).dropFirst()) == ["=> TCP CHECK failed on service <=", "=> Lost quorum 1+0=1 <= 0 <="])
        up = true
        sim.run(4)
        #expect(Array(Self.subjects(lvs).dropFirst(3)) == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - UP",
                                                           "[test] Virtualserver [10.0.0.100]:tcp:80 - UP"])
        #expect(Self.bodies(lvs)[3] == "=> TCP CHECK succeed on service <=")
        #expect(lvs.log.contains("SMTP alert successfully sent: [test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - UP"))
        lvs.stop(in: sim)
    }

    @Test func realServersAreMailedByDefaultAndVirtualServersOnlyWhenAsked() throws {
        // Two real servers, so the first one's failure keeps quorum; no smtp_alert anywhere.
        let second = "real_server 10.0.1.2 80 {\n    TCP_CHECK {\n        connect_timeout 1\n        retry 0\n    }\n}"
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var up = true
        lvs.prober.alive = { target in up || target.description.hasPrefix("10.0.1.2") }
        try lvs.start(Self.config(vsExtra: "", secondServer: second))
        sim.run(3)
        #expect(lvs.smtp.messages.isEmpty)
        up = false
        sim.run(4)
        #expect(Self.subjects(lvs) == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"])

        // smtp_alert_checker off in global_defs silences the real servers; a real server's own
        // smtp_alert on wins over it.
        let quiet = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        quiet.prober.alive = { _ in false }
        try quiet.start(Self.config(globals: "smtp_alert_checker off", vsExtra: "", secondServer: second.replacingOccurrences(of: "80 {\n", with: "80 {\n    smtp_alert on\n")))
        sim.run(7)
        #expect(Self.subjects(quiet) == ["[test] Realserver [10.0.1.2]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"])
        lvs.stop(in: sim)
        quiet.stop(in: sim)
    }

    @Test func withNoCheckerEmailsOnlyTheServersOwnChangesAreMailed() throws {
        // Two checkers on one server: the first failure takes it out (mailed), the second
        // checker's failure changes nothing about the server (not mailed with no_checker_emails).
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var up = true
        lvs.prober.alive = { _ in up }
        lvs.processes.behaviour = { _ in (up, 10_000) }
        try lvs.start(Self.config(globals: "no_checker_emails", vsExtra: "", misc: true))
        sim.run(3)
        // keepalived's MISC_CHECK mails its first verdict even when nothing changed; with
        // no_checker_emails that is not sent either.
        #expect(lvs.smtp.messages.isEmpty)
        up = false
        sim.run(6)
        #expect(Self.subjects(lvs) == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"])
        up = true
        sim.run(6)
        // Back up only when both checkers pass again: one mail for the server coming back.
        #expect(Self.subjects(lvs).count == 2 && Self.subjects(lvs)[1].hasSuffix(" - UP"), "\(Self.subjects(lvs))")
        #expect(Self.bodies(lvs).contains { $0.hasPrefix("=> MISC CHECK") || $0.hasPrefix("=> TCP CHECK") })
    }

    @Test func aMiscCheckMailsItsFirstVerdictAsKeepalivedDoes() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(Self.config(vsExtra: "", misc: true))
        sim.run(3)
        #expect(Self.subjects(lvs) == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - UP"])
        #expect(Self.bodies(lvs) == ["=> MISC CHECK succeeded on service <="])
        lvs.processes.behaviour = { _ in (true, 5_000_000) }
        sim.run(6)
        #expect(Self.bodies(lvs).last == "=> MISC CHECK timed out on service <=", "\(Self.bodies(lvs))")
        lvs.stop(in: sim)
        lvs.stop(in: sim)
    }

    /// With omega, keepalived's stop mails every live real server and every virtual server that
    /// asks for mail ("=> Shutting down <="); the stop waits for those deliveries.
    @Test func omegaMailsTheShutdownAsKeepalivedDoes() throws {
        let (subjects, bodies) = try Self.mailsOfTheStop(vsExtra: "smtp_alert\n    omega")
        // Two connections at once: either may finish first.
        #expect(subjects.sorted() == ["[test] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN",
                                      "[test] Virtualserver [10.0.0.100]:tcp:80 - DOWN"], "\(subjects)")
        #expect(bodies == ["=> Shutting down <=", "=> Shutting down <="])
    }

    /// Without omega the stop sends no checker mail, as keepalived's.
    @Test func withoutOmegaTheStopSendsNoCheckerMail() throws {
        #expect(try Self.mailsOfTheStop(vsExtra: "smtp_alert").subjects.isEmpty)
    }

    /// The subjects and bodies of the mails sent by the stop of a director started 3 s before.
    static func mailsOfTheStop(vsExtra: String) throws -> (subjects: [String], bodies: [String]) {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(config(vsExtra: vsExtra))
        sim.run(3)
        let before = lvs.smtp.messages.count
        lvs.stop(in: sim)
        return (Array(subjects(lvs).dropFirst(before)), Array(bodies(lvs).dropFirst(before)))
    }

    @Test func aReloadThatDropsALiveServerMailsIt() throws {
        let second = "real_server 10.0.1.2 80 {\n    TCP_CHECK {\n        connect_timeout 1\n        retry 0\n    }\n}"
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(Self.config(vsExtra: "", secondServer: second))
        sim.run(3)
        #expect(lvs.smtp.messages.isEmpty)
        lvs.hangUp(with: Self.config(vsExtra: ""))
        sim.run(1)
        #expect(Self.subjects(lvs) == ["[test] Realserver [10.0.1.2]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN"])
        #expect(Self.bodies(lvs) == ["=> Removing <="])
        lvs.stop(in: sim)
    }
}

/// keepalived's default script user: keepalived_script where it exists, else root. The user is
/// looked up at the first script the daemon runs, never at start, so a daemon without scripts
/// keeps the NSS modules out of its memory.
@Suite struct DefaultScriptUserTests {
    static func withoutScriptUser(_ config: String) -> String { config.replacingOccurrences(of: "script_user nobody", with: "") }

    @Test func aDaemonWithoutScriptsLooksUpNoUser() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let config = Self.withoutScriptUser(Configs.pair(priority: 100)).replacingOccurrences(of: "notify \"/etc/keepalived/notify.sh\"", with: "")
        try lvs01.start(config.replacingOccurrences(of: "enable_script_security", with: ""))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs01.users.lookups == 0)
    }

    @Test func scriptsRunAsKeepalivedScriptLookedUpOnce() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.users.names.insert("keepalived_script")
        try lvs01.start(Self.withoutScriptUser(Configs.pair(priority: 100)))
        // The configuration test's look-up and the first notify's (BACKUP, at start).
        #expect(lvs01.users.lookups == 2)
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        let notifies = lvs01.processes.started.filter { $0.command == "/etc/keepalived/notify.sh" }
        #expect(notifies.count == 2 && notifies.allSatisfy { $0.user == "keepalived_script" })
        #expect(lvs01.users.lookups == 2, "the MASTER notify reuses the first look-up")
    }
}

/// ha_suspend: a virtual server's checks run only while its address is on this director (the
/// VIP: while MASTER), with keepalived's lines; its real servers keep their state meanwhile.
/// With the netlink monitor and without it (the daemon then looks once a second).
@Suite struct HASuspendTests {
    static let config = Configs.pair(priority: 100, extra: Configs.virtualServer(realServers: [2], options: "ha_suspend"))

    @Test(arguments: [true, false])
    func checksRunOnlyWhileTheVIPIsHere(monitor: Bool) throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.node.offersNetlinkMonitor = monitor
        lvs.ipvs.available = true
        try lvs.start(Self.config)
        sim.run(2.5)
        #expect(lvs.state("VI_1") == .backup)
        #expect(lvs.prober.started.isEmpty, "no check while the VIP is elsewhere")
        #expect(lvs.log.contains("Deactivating healthchecker for service [10.0.1.2]:tcp:80 for VS [10.0.0.100]:tcp:80"))
        sim.run(8)
        #expect(lvs.state("VI_1") == .master && lvs.holds("10.0.0.100"))
        #expect(lvs.log.contains("Activating healthchecker for service [10.0.1.2]:tcp:80 for VS [10.0.0.100]:tcp:80"))
        let checks = lvs.prober.started.count
        #expect(checks >= 2, "delay_loop 2: checks while MASTER (\(checks))")

        let peer = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try peer.start(Configs.pair(priority: 200, nopreempt: false))
        sim.run(5)
        #expect(lvs.state("VI_1") == .backup && !lvs.holds("10.0.0.100"))
        #expect(lvs.log.contains("Suspending healthchecker for service [10.0.1.2]:tcp:80 for VS [10.0.0.100]:tcp:80"))
        let suspendedAt = lvs.prober.started.count
        sim.run(10)
        #expect(lvs.prober.started.count == suspendedAt, "suspended again once the VIP left")
        #expect(lvs.ipvs.table.values.first?.count == 1, "the real server stays in the table")
    }

    @Test func aFirewallMarkCannotUseIt() {
        let text = "virtual_server fwmark 7 {\n    ha_suspend\n    real_server 10.0.1.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n"
        let (config, diagnostics) = ConfigLoader.load(text: text)
        #expect(diagnostics.all.contains { $0.message == "Virtual server FWM 7: cannot use ha_suspend with fwmarks - clearing ha_suspend" })
        #expect(config.virtualServers.first?.haSuspend == false)
    }
}

/// track_src_ip: an instance whose configured source leaves its interface goes to FAULT, and
/// comes back when the address does (keepalived's netlink handler); without it, or without a
/// configured source, nothing happens.
@Suite struct TrackSourceIPTests {
    static func config(track: Bool) -> String {
        Configs.pair(priority: 100, instanceExtra: "mcast_src_ip 10.0.0.41\n    \(track ? "track_src_ip" : "")")
    }

    static func setSource(_ director: Director, present: Bool) {
        let source = IPAddress("10.0.0.41")!
        if present {
            director.node.interfaces["eth0"]!.addresses.append(InterfaceAddress(ifindex: director.node.interfaces["eth0"]!.index, address: source, prefixLength: 24))
        } else {
            director.node.interfaces["eth0"]!.addresses.removeAll { $0.address == source }
        }
        if present { director.node.pendingNetlinkEvents.addressAdded = true } else { director.node.pendingNetlinkEvents.addressDeleted = true }
    }

    @Test(arguments: [true, false])
    func theSourceLeavingFaultsTheInstance(monitor: Bool) throws {
        let (sim, lvs) = try Simulation.loneMaster(Self.config(track: true)) { $0.node.offersNetlinkMonitor = monitor }
        Self.setSource(lvs, present: false)
        sim.run(1.5)
        #expect(lvs.state("VI_1") == .fault)
        #expect(lvs.log.contains("(VI_1) track_src_ip: source address 10.0.0.41 is not on eth0 - going to fault state"))
        Self.setSource(lvs, present: true)
        sim.run(5)
        #expect(lvs.state("VI_1") == .master)
        #expect(lvs.log.contains("(VI_1) track_src_ip: source address 10.0.0.41 is back on eth0"))
    }

    @Test func withoutItTheInstanceStays() throws {
        let (sim, lvs) = try Simulation.loneMaster(Self.config(track: false))
        Self.setSource(lvs, present: false)
        sim.run(3)
        #expect(lvs.state("VI_1") == .master)
        let (_, diagnostics) = ConfigLoader.load(text: Configs.pair(priority: 100, instanceExtra: "track_src_ip"))
        #expect(diagnostics.all.contains { $0.message == "(VI_1) track_src_ip has no effect without unicast_src_ip or mcast_src_ip: ignored" && $0.klass == .note })
    }
}

/// A MASTER on eth0 with a VIP on eth0 and one written `dev eth1`; `line` goes in the instance.
private func twoLinkMaster(_ line: String = "") -> String {
    """
    vrrp_instance VI_1 {
        state MASTER
        interface eth0
        virtual_router_id 51
        priority 150
        advert_int 1
        \(line)
        virtual_ipaddress {
            10.0.0.100/24
            10.1.0.100/24 dev eth1
        }
    }

    """
}

/// A VIP written with another device (`dev eth1`) is announced on that device, as keepalived's
/// send_gratuitous_arp does (the VIP's own interface): its neighbours are there. Vigil sent
/// every GARP on the instance's interface, so eth1's hosts kept the old master's MAC.
@Suite struct AnnouncementDeviceTests {
    @Test func eachVIPIsAnnouncedOnItsOwnLink() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41", extraInterfaces: ["eth1"])
        try lvs01.start(twoLinkMaster())
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        let sent = lvs01.node.announcements
        let eth1MAC = lvs01.node.interfaces["eth1"]!.mac
        #expect(sent.contains { $0.interface == "eth0" && $0.address == IPAddress("10.0.0.100")! })
        #expect(sent.contains { $0.interface == "eth1" && $0.mac == eth1MAC && $0.address == IPAddress("10.1.0.100")! })
        #expect(!sent.contains { $0.interface == "eth0" && $0.address == IPAddress("10.1.0.100")! }, "not on the instance's link")
    }
}

/// keepalived's garp_extra_if: while MASTER, a gratuitous ARP every SECS on each other link of
/// its VIPs (`all`; without it only the daemon's VMACs), counted from becoming MASTER; none
/// on the instance's own link, and none without such a link.
@Suite struct ExtraInterfaceAnnouncementTests {
    private func config(_ line: String) -> String { twoLinkMaster(line) }

    private func run(_ line: String, global: String = "") throws -> (eth0: Int, eth1: Int) {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41", extraInterfaces: ["eth1"])
        try lvs01.start((global.isEmpty ? "" : "global_defs {\n    \(global)\n}\n") + config(line))
        sim.run(10)   // MASTER at about 3.6 s, and past the second burst 5 s later
        #expect(lvs01.state("VI_1") == .master)
        let before = lvs01.node.announcements
        sim.run(34)
        let later = lvs01.node.announcements.dropFirst(before.count)
        return (later.filter { $0.interface == "eth0" }.count, later.filter { $0.interface == "eth1" && $0.address == IPAddress("10.1.0.100")! }.count)
    }

    @Test func allSendsOnTheOtherLinkEveryInterval() throws {
        let sent = try run("garp_extra_if all 10")
        #expect(sent.eth1 == 3, "one every 10 s: \(sent)")
        #expect(sent.eth0 == 0)
    }

    @Test func withoutAllOrWithoutTheKeywordThereIsNone() throws {
        #expect(try run("garp_extra_if 10").eth1 == 0, "eth1 is no VMAC of ours")
        #expect(try run("").eth1 == 0)
        #expect(try run("", global: "vrrp_garp_extra_if all 10").eth1 == 3, "the global's, for an instance without its own")
    }

    @Test func keepalivedsErrors() {
        for (line, message) in [("garp_extra_if all", "(VI_1): garp_extra_if specified without time - ignoring"),
                                ("garp_extra_if x", "(VI_1): garp_extra_if 'x' invalid - ignoring"),
                                ("vmac_garp_intvl 10", "Keyword \"vmac_garp_intvl\" is deprecated - please use \"garp_extra_if\"")] {
            let (_, diagnostics) = ConfigLoader.load(text: config(line))
            #expect(diagnostics.all.contains { $0.severity == .error && $0.message == message }, "\(line)")
        }
    }
}
