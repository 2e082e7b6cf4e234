import Addressing
import IPVS
import LVS
import Testing
import VigilConfig
@testable import VigilDaemon

/// `vigil_announce` on the fakes in virtual time: the announce table follows quorum and VRRP
/// state, is put back when someone empties it, keeps what a killed run left that is still
/// wanted, and is emptied on stop before the VRRP goodbyes.
@Suite struct AnnouncementTests {
    static func config(announce: String = "vigil_announce", instance: Bool = false, alpha: Bool = false, globals: String = "") -> String {
        var text = "global_defs {\n    router_id test\n    \(globals)\n}\n"
        if instance {
            text += """
            vrrp_instance VI_1 {
                state BACKUP
                interface eth0
                virtual_router_id 77
                priority 100
                advert_int 1
                authentication {
                    auth_type PASS
                    auth_pass 11111
                }
                virtual_ipaddress {
                    10.0.0.100/24
                }
            }

            """
        }
        text += Configs.virtualServer(algorithm: "mh", options: "\(alpha ? "alpha" : "")\n    \(announce)")
        return text
    }

    static let vip = IPAddress("10.0.0.100")!

    static func announced(_ lvs: Director) -> [String] {
        lvs.node.routes.filter { $0.table == 198 && $0.protocolNumber == 18 && $0.device == "lo" }
            .map { "\($0.destination!)/\($0.prefixLength)" }.sorted()
    }

    /// A director with a loopback, which the announced routes go through.
    static func director(_ sim: Simulation) -> Director {
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.node.addInterface("lo", segment: "loopback", ipv4: nil)
        return lvs
    }

    func director(_ sim: Simulation) -> Director { Self.director(sim) }

    @Test func theRouteFollowsQuorum() throws {
        let sim = Simulation()
        let lvs = director(sim)
        var serversUp = true
        lvs.prober.alive = { _ in serversUp }
        try lvs.start(Self.config())
        sim.run(0.1)
        // Real servers start alive (no alpha): quorum at once, and the route with it.
        #expect(Self.announced(lvs) == ["10.0.0.100/32"])
        serversUp = false
        sim.run(6)
        #expect(Self.announced(lvs).isEmpty)
        #expect(lvs.log.contains("announce: withdrawing 10.0.0.100/32 (table 198): VS [10.0.0.100]:tcp:80 has no quorum"))
        serversUp = true
        sim.run(6)
        #expect(Self.announced(lvs) == ["10.0.0.100/32"])
        lvs.stop(in: sim)
        #expect(Self.announced(lvs).isEmpty)
    }

    @Test func withAlphaNothingIsAnnouncedBeforeTheFirstChecksPass() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(Self.config(alpha: true))
        sim.run(0.1)
        #expect(Self.announced(lvs).isEmpty)
        sim.run(5)
        #expect(Self.announced(lvs) == ["10.0.0.100/32"])
    }

    @Test func aNamedInstanceMustBeMaster() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(Self.config(announce: "vigil_announce 192.0.2.0/24 master VI_1", instance: true))
        sim.run(1)
        #expect(lvs.state("VI_1") == .backup)
        #expect(Self.announced(lvs).isEmpty)
        sim.run(4)
        #expect(lvs.state("VI_1") == .master)
        #expect(Self.announced(lvs) == ["192.0.2.0/24"])
        // A better peer takes over: the route goes with the mastership.
        let peer = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try peer.start(Configs.pair(priority: 200, nopreempt: false))
        sim.run(5)
        #expect(lvs.state("VI_1") == .backup)
        #expect(Self.announced(lvs).isEmpty)
        #expect(lvs.log.contains("VI_1 is not MASTER"))
    }

    @Test func aRouteSomeoneRemovedIsPutBackWithinASecond() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(Self.config())
        sim.run(0.1)
        lvs.node.routes.removeAll { $0.table == 198 }
        sim.run(1.1)
        #expect(Self.announced(lvs) == ["10.0.0.100/32"])
        #expect(lvs.log.contains("was removed from table 198 by someone else: put back"))
    }

    @Test func whatAKilledRunLeftIsKeptIfWantedAndRemovedIfNot() throws {
        let sim = Simulation()
        let lvs = director(sim)
        let announcer = RouteAnnouncer(table: 198, protocolNumber: 18)
        lvs.node.routes.append(announcer.route(AnnouncedPrefix(Self.vip, length: 32)))
        lvs.node.routes.append(announcer.route(AnnouncedPrefix(IPAddress("10.9.9.9")!, length: 32)))
        // Another program's route in another table, and one in main, are not touched.
        var other = RouteDefinition(family: .ipv4, destination: IPAddress("10.9.9.9")!, prefixLength: 32)
        other.table = 254
        lvs.node.routes.append(other)
        try lvs.start(Self.config())
        sim.run(0.1)
        #expect(Self.announced(lvs) == ["10.0.0.100/32"])
        #expect(lvs.node.routes.contains(other))
        #expect(lvs.log.contains("removing 10.9.9.9/32 from table 198, left by a previous run"))
        #expect(!lvs.log.contains("withdrawing 10.0.0.100/32"))
    }

    @Test func aConfigurationWithoutAnnouncementsLeavesTheTableAlone() throws {
        let sim = Simulation()
        let lvs = director(sim)
        let foreign = RouteAnnouncer(table: 198, protocolNumber: 18).route(AnnouncedPrefix(IPAddress("10.9.9.9")!, length: 32))
        lvs.node.routes.append(foreign)
        try lvs.start(Self.config(announce: ""))
        sim.run(3)
        #expect(lvs.node.routes.contains(foreign))
        lvs.stop(in: sim)
        #expect(lvs.node.routes.contains(foreign))
    }

    @Test func aReloadMovesTheRoutesToTheNewTable() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(Self.config())
        sim.run(0.1)
        lvs.hangUp(with: Self.config(globals: "vigil_announce_table 77"))
        sim.run(0.1)
        #expect(Self.announced(lvs).isEmpty)
        #expect(lvs.node.routes.filter { $0.table == 77 }.map(\.destination) == [Self.vip])
        lvs.hangUp(with: Self.config(announce: ""))
        sim.run(0.1)
        #expect(lvs.node.routes.filter { $0.table == 77 }.isEmpty)
    }
}

/// `lvs_sync_daemon` through the daemon on the fake IPVS: both threads for as long as Vigil
/// runs without an instance; with one, the threads follow it as keepalived's VRRP child moves
/// them; a thread a killed run left that is as wanted is kept.
@Suite struct SyncDaemonTests {
    func director(_ sim: Simulation) -> Director { AnnouncementTests.director(sim) }

    @Test func withoutAnInstanceBothThreadsRunUntilStop() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(AnnouncementTests.config(announce: "", globals: "lvs_sync_daemon eth0 id 5"))
        sim.run(1)
        #expect(lvs.ipvs.syncThreads.map(\.state) == [.master, .backup])
        #expect(lvs.ipvs.syncThreads.allSatisfy { $0.syncID == 5 && $0.interface == "eth0" })
        lvs.stop(in: sim)
        #expect(lvs.ipvs.syncThreads.isEmpty)
    }

    @Test func withAnInstanceTheThreadsFollowItsState() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(AnnouncementTests.config(announce: "", instance: true, globals: "lvs_sync_daemon eth0 inst VI_1"))
        sim.run(1)
        #expect(lvs.ipvs.syncThreads.map(\.state) == [.backup])
        #expect(lvs.ipvs.syncThreads.first?.syncID == 77)
        sim.run(4)
        #expect(lvs.state("VI_1") == .master)
        #expect(lvs.ipvs.syncThreads.map(\.state) == [.master])
        #expect(lvs.ipvs.syncRequests.suffix(2).map { String($0.prefix(12)) } == ["stop backup", "start master"])
        let peer = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try peer.start(Configs.pair(priority: 200, nopreempt: false))
        sim.run(5)
        #expect(lvs.state("VI_1") == .backup)
        #expect(lvs.ipvs.syncThreads.map(\.state) == [.backup])
        // A reload that changes the port restarts the thread with it.
        lvs.hangUp(with: AnnouncementTests.config(announce: "", instance: true, globals: "lvs_sync_daemon eth0 inst VI_1 port 9000"))
        sim.run(0.1)
        #expect(lvs.ipvs.syncThreads.map(\.port) == [9000])
    }

    @Test func aThreadLeftAsWantedIsKept() throws {
        let sim = Simulation()
        let lvs = director(sim)
        lvs.ipvs.syncThreads = [IPVSSyncDaemon(state: .master, interface: "eth0", syncID: 0, port: 8848, ttl: 1),
                                IPVSSyncDaemon(state: .backup, interface: "eth1", syncID: 0)]
        try lvs.start(AnnouncementTests.config(announce: "", globals: "lvs_sync_daemon eth0"))
        sim.run(1)
        // The master was as wanted; the backup listened on the wrong interface.
        #expect(lvs.ipvs.syncRequests == ["stop backup", "start backup sync daemon (mcast=eth0, syncid=0)"])
    }
}

/// `lvs_timeouts` through the daemon on the fake IPVS: the given timeouts over the kernel's
/// others while Vigil runs, nothing sent for a reload that changes nothing, the kernel's values
/// back when a reload drops the keyword and at stop.
@Suite struct LVSTimeoutsTests {
    @Test func setWhileRunningAndPutBack() throws {
        let sim = Simulation()
        let lvs = AnnouncementTests.director(sim)
        lvs.ipvs.connectionTimeouts = IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300)
        let config = AnnouncementTests.config(announce: "", globals: "lvs_timeouts tcp 7200 udp 0")
        try lvs.start(config)
        sim.run(1)
        #expect(lvs.ipvs.connectionTimeouts == IPVSTimeouts(tcp: 7200, tcpFin: 120, udp: 300), "udp 0 keeps the kernel's")
        #expect(lvs.ipvs.timeoutRequests.count == 1)
        lvs.hangUp(with: config)
        sim.run(0.1)
        #expect(lvs.ipvs.timeoutRequests.count == 1, "the same file again: no request")
        lvs.hangUp(with: AnnouncementTests.config(announce: "", globals: "lvs_timeouts tcpfin 30"))
        sim.run(0.1)
        #expect(lvs.ipvs.connectionTimeouts == IPVSTimeouts(tcp: 900, tcpFin: 30, udp: 300), "tcp back to the kernel's first value")
        lvs.hangUp(with: AnnouncementTests.config(announce: ""))
        sim.run(0.1)
        #expect(lvs.ipvs.connectionTimeouts == IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300))
        lvs.hangUp(with: config)
        sim.run(0.1)
        lvs.stop(in: sim)
        #expect(lvs.ipvs.connectionTimeouts == IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300), "the kernel's values at stop")
        #expect(lvs.ipvs.timeoutRequests.count == 5)
    }

    @Test func keepalivedsMessages() {
        let cases: [(String, String)] = [
            ("lvs_timeouts tcp", "lvs_timeouts requires at least one option"),
            ("lvs_timeouts tcp 10 udp", "No value specified for lvs_timeout udp - ignoring"),
            ("lvs_timeouts tcp 2678401", "Invalid lvs_timeout tcp (2678401) - ignoring"),
            ("lvs_timeouts sctp 5", "Unknown option sctp specified for lvs_timeouts"),
        ]
        for (line, message) in cases {
            let (config, diagnostics) = ConfigLoader.load(text: "global_defs {\n    \(line)\n}\n")
            #expect(diagnostics.all.contains { $0.message == message && $0.klass == .general }, "\(line)")
            if line.contains("tcp 10") { #expect(config.globals.lvsTimeouts?.tcp == 10) }
        }
        let (config, diagnostics) = ConfigLoader.load(text: "global_defs {\n    lvs_timeouts tcp 2678400 tcpfin 1 udp 0\n}\n")
        #expect(!diagnostics.hasProblems)
        #expect(config.globals.lvsTimeouts.map { [$0.tcp, $0.tcpFin, $0.udp] } == [2_678_400, 1, 0])
    }
}
