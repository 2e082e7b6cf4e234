import Testing
import VRRP
@testable import VigilDaemon

/// What systemd hears from the simulated directors (Type=notify).
@Suite struct ServiceNotifyTests {
    @Test func readyReloadingStatusAndStopping() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim)
        let first = try #require(lvs01.systemd.messages.first)
        #expect(first.text.hasPrefix("READY=1\nMAINPID="), "READY comes first, with the main pid")
        #expect(lvs01.systemd.values("STATUS").last == "MASTER on VI_1")
        #expect(lvs02.systemd.values("STATUS").last == "BACKUP on VI_1")
        let before = lvs01.systemd.messages.count
        lvs01.hangUp(with: "vrrp_instance {\n")
        sim.run(1)
        let around = lvs01.systemd.messages.dropFirst(before).map(\.text)
        #expect(around.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true, "\(around)")
        #expect(around.dropFirst().first?.hasPrefix("READY=1\n") == true, "\(around)")
        #expect(lvs01.systemd.values("STATUS").last == "MASTER on VI_1; last reload refused (see the log or vigil reload)")
        lvs01.stop(in: sim)
        #expect(lvs01.systemd.messages.last?.text.hasPrefix("STOPPING=1") == true)
        sim.run(3)
        // lvs02 took over: its status line says so within a second.
        #expect(lvs02.systemd.values("STATUS").last == "MASTER on VI_1")
        #expect(lvs01.systemd.values("WATCHDOG").isEmpty, "no watchdog without WatchdogSec")
    }

    @Test func watchdogPingsAtHalfTheInterval() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.systemd.watchdogInterval = 4_000_000
        try lvs01.start(Configs.pair(priority: 100))
        sim.run(10.5)
        let pings = lvs01.systemd.messages.filter { $0.text == "WATCHDOG=1" }.map(\.time)
        #expect(pings.count == 6, "at 0, 2, 4, 6, 8, 10 s: \(pings)")
        #expect(zip(pings, pings.dropFirst()).allSatisfy { $1 - $0 == 2_000_000 })
    }

    @Test func statusCountsRealServers() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(IPVSReloadTests.director(services: IPVSReloadTests.base))
        sim.run(10)
        let up = lvs01.daemon!.statusSnapshot().virtualServers.flatMap(\.realServers).filter(\.alive).count
        #expect(up > 0)
        #expect(lvs01.systemd.values("STATUS").last == "2 virtual servers, \(up)/5 real servers up")
    }
}
