import Addressing
import Testing
import VRRP
import VigilStatus
@testable import VigilDaemon

/// The control socket on the simulated pair: what `vigil status` and `vigil reload` get, and
/// that no client, however slow or hostile, holds the loop or the adverts.
@Suite struct ControlSocketTests {
    @Test func statusTellsTheStateAndJSONUsesKeepalivedsNames() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim)
        let table = lvs01.ask("status", in: sim)
        #expect(table.hasPrefix("vigil-control 1 ok\n"))
        #expect(table.contains("VI_1") && table.contains("MASTER") && table.contains("10.0.0.100/24"))
        let json = lvs02.ask("status json", in: sim)
        #expect(json.contains("\"vigil_status_version\": 1"))
        #expect(json.contains("\"iname\": \"VI_1\"") && json.contains("\"state\": 1") && json.contains("\"state_name\": \"BACKUP\""))
        #expect(json.contains("\"effective_priority\": 95") && json.contains("\"master_address\": \"10.0.0.41\""))
        #expect(json.contains("\"auth_data\": \"********\"") && !json.contains("11111"), "the password is masked")
        #expect(json.contains("\"advert_rcvd\":") && json.contains("\"become_master\": 0"))
    }

    /// A MASTER whose add of one VIP failed says so for that VIP alone; it is installed once
    /// an add succeeds (here, the reload that re-adds it in a new form).
    @Test func aVIPWhoseAddFailedIsNotReportedInstalled() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.node.refusedAdds = [IPAddress("10.0.0.101")!]
        try lvs01.start(Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        let table = lvs01.ask("status", in: sim)
        #expect(table.contains("10.0.0.101/24 (not set)") && !table.contains("10.0.0.100/24 (not set)"), "\(table)")
        #expect(lvs01.log.contains("cannot add 10.0.0.101"))
        lvs01.node.refusedAdds = []
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/25"])
        _ = lvs01.ask("reload", in: sim)
        let after = lvs01.ask("status", in: sim)
        #expect(after.contains("10.0.0.101/25") && !after.contains("(not set)"), "\(after)")
    }

    /// success, failure and timeout are exclusive: a run killed at its timeout is a timeout.
    @Test func aTimedOutScriptRunIsCountedOnceAsATimeout() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.processes.behaviour = { command in command.hasSuffix("check.sh") ? (true, 30_000_000) : (true, 10_000) }
        try lvs01.start(Configs.pair(priority: 100, script: true))
        sim.run(8)
        let json = lvs01.ask("status json", in: sim)
        #expect(json.contains(#""successes": 0,"#) && json.contains(#""failures": 0,"#), "\(json)")
        #expect(!json.contains(#""timeouts": 0,"#), "\(json)")
        #expect(lvs01.ask("status", in: sim).contains(" 0/"))
    }

    @Test func reloadAnswersWhatChangedOrWhyNot() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"])
        let applied = lvs01.ask("reload", in: sim)
        #expect(applied.hasPrefix("vigil-control 1 ok\n") && applied.contains("VIPs +1 -0"))
        lvs01.files.files[lvs01.path] = "vrrp_instance {\n"
        let refused = lvs01.ask("reload", in: sim)
        #expect(refused.hasPrefix("vigil-control 1 refused\n") && refused.contains("keepalived.conf:1:"))
        #expect(lvs01.holds("10.0.0.101"))
        let garbage = lvs01.ask("make me a sandwich", in: sim)
        #expect(garbage.hasPrefix("vigil-control 1 error\n") && garbage.contains("unknown request"))
        let status = lvs01.ask("status json", in: sim)
        #expect(status.contains("\"applied\": 1") && status.contains("\"refused\": 1"))
    }

    /// Clients that never read, never finish their request, send megabytes or keep
    /// connecting: each is cut off by its bound, and the master's adverts keep their schedule.
    @Test func hostileClientsNeverHoldTheLoop() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        let listener = try #require(lvs01.listeners[lvs01.controlPath])
        let since = sim.now
        let silent = listener.connect()                                        // connects, sends nothing
        let deaf = listener.connect(sending: Array("status\n".utf8), readsPerTurn: 0) // never reads the answer
        let flood = listener.connect(sending: Array(repeating: 0x41, count: 10 * 1024 * 1024))
        for _ in 0..<40 { listener.connect(sending: Array("stat".utf8)) }      // never finish, too many
        sim.run(1)
        #expect(flood.closed && flood.text.contains("larger than"), "a 10 MB request is cut off at the limit")
        #expect(flood.inbound.count > 9 * 1024 * 1024, "and not read any further")
        #expect(listener.all.filter { $0.text.contains("too many clients") }.count >= 20, "at most 16 at once")
        sim.run(6)
        #expect(silent.closed && deaf.closed, "timed out")
        #expect(lvs01.daemon!.control!.clientCount == 0)
        #expect(VRRPReloadTests.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
        // And it still answers.
        #expect(lvs01.ask("status", in: sim).contains("MASTER"))
    }
}
