import Addressing
import Testing
import VRRP
@testable import VigilDaemon

/// keepalived's notify FIFOs, driven through the whole daemon on virtual time.
@Suite struct NotifyFIFOTests {
    static let all = "/run/keepalived/notify.fifo"
    static let vrrp = "/run/keepalived/vrrp.fifo"
    static let lvs = "/run/keepalived/lvs.fifo"
    static let reader = "/etc/keepalived/fifo.sh"

    static func config(globals: String = "", lvsPath: String = lvs) -> String {
        Configs.pair(priority: 100, extra: virtualServer, script: true, globals: """
            notify_fifo \(all)
            notify_fifo_script \(reader)
            vrrp_notify_fifo \(vrrp)
            lvs_notify_fifo \(lvsPath) nobody
            vrrp_notify_priority_changes
            \(globals)
            """)
    }

    static let virtualServer = Configs.virtualServer()

    func director(_ sim: Simulation) -> Director {
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.scripts.insert(Self.reader)
        lvs.ipvs.available = true
        // The reader runs for as long as its FIFO is open.
        lvs.processes.behaviour = { command in command.hasPrefix(Self.reader) ? (true, 1_000_000_000_000) : (true, 10_000) }
        return lvs
    }

    var fifoScriptRuns: (Director) -> [FakeProcesses.Started] = { lvs in
        lvs.processes.started.filter { if case .fifoScript = $0.id { true } else { false } }
    }

    @Test func linesGoWhereKeepalivedWritesThem() throws {
        let sim = Simulation()
        let lvs = director(sim)
        var secondServerUp = true
        lvs.prober.alive = { target in secondServerUp || !target.description.contains("10.0.1.2") }
        try lvs.start(Self.config())
        sim.run(5)
        #expect(lvs.state("VI_1") == .master)
        // Every FIFO made (none was there), the lvs one for its user; the reader started once,
        // with the FIFO's path last.
        #expect(lvs.fifos.opened.map(\.path).sorted() == [Self.lvs, Self.all, Self.vrrp].sorted())
        #expect(lvs.fifos.opened.allSatisfy { $0.created })
        #expect(lvs.fifos.opened.first { $0.path == Self.lvs }?.owner == "nobody")
        #expect(fifoScriptRuns(lvs).map { [$0.command] + $0.arguments } == [[Self.reader, Self.all]])
        // The instance's lines are the generic notify script's, in keepalived's words.
        let notified = lvs.processes.notifications.compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard words.count == 5, words[1] == "INSTANCE" else { return nil }
            return "INSTANCE \"\(words[2])\" \(words[3]) \(words[4])\n"
        }
        #expect(notified.contains("INSTANCE \"VI_1\" MASTER 100\n"))
        #expect(lvs.fifos.lines(of: Self.vrrp) == notified)
        // Quorum at start is a line too, as in keepalived (do_vs_notifies with init).
        #expect(lvs.fifos.lines(of: Self.lvs) == ["VS [10.0.0.100]:tcp:80 UP\n"])

        secondServerUp = false
        sim.run(6)
        let down = "RS [10.0.1.2]:tcp:80 [10.0.0.100]:tcp:80 DOWN\n"
        #expect(lvs.fifos.lines(of: Self.lvs) == ["VS [10.0.0.100]:tcp:80 UP\n", down])
        #expect(lvs.fifos.lines(of: Self.all).last == down)
        #expect(!lvs.fifos.lines(of: Self.vrrp).contains(down))

        // vrrp_notify_priority_changes: the track script fails, the priority drops by 10.
        lvs.processes.behaviour = { command in
            command.hasPrefix(Self.reader) ? (true, 1_000_000_000_000) : (!command.hasSuffix("check.sh"), 10_000)
        }
        sim.run(4)
        #expect(lvs.fifos.lines(of: Self.vrrp).last == "INSTANCE \"VI_1\" MASTER_PRIORITY 90\n")
        #expect(lvs.fifos.lines(of: Self.all).last == "INSTANCE \"VI_1\" MASTER_PRIORITY 90\n")
        // notify_fifo has every line, in the order they happened.
        let everything = lvs.fifos.lines(of: Self.all)
        #expect(everything.filter { $0.hasPrefix("INSTANCE") || $0.hasPrefix("GROUP") } == lvs.fifos.lines(of: Self.vrrp))
        #expect(everything.filter { $0.hasPrefix("VS") || $0.hasPrefix("RS") } == lvs.fifos.lines(of: Self.lvs))

        // Stop: the instance's last line, then every FIFO closed and removed, the reader stopped.
        lvs.stop(in: sim)
        #expect(lvs.fifos.lines(of: Self.vrrp).last?.hasPrefix("INSTANCE \"VI_1\" STOP") == true
                || lvs.fifos.lines(of: Self.vrrp).last?.hasPrefix("INSTANCE \"VI_1\" FAULT") == true)
        #expect(lvs.fifos.opened.allSatisfy { $0.closed && $0.removed })
        #expect(lvs.processes.runningCount == 0)
    }

    @Test func aReloadKeepsWhatItDoesNotChange() throws {
        let sim = Simulation()
        let lvs = director(sim)
        try lvs.start(Self.config())
        sim.run(5)
        #expect(lvs.state("VI_1") == .master)
        let linesBefore = lvs.fifos.lines(of: Self.vrrp)

        // fifo_write_vrrp_states_on_reload: the same FIFOs, the same reader; the state again.
        lvs.hangUp(with: Self.config(globals: "fifo_write_vrrp_states_on_reload"))
        sim.run(1)
        #expect(lvs.fifos.opened.count == 3 && lvs.fifos.opened.allSatisfy { !$0.closed })
        #expect(fifoScriptRuns(lvs).count == 1)
        #expect(lvs.fifos.lines(of: Self.vrrp) == linesBefore + ["INSTANCE \"VI_1\" MASTER 100\n"])

        // Without it a reload writes nothing; a FIFO that moves is closed, removed and made anew.
        lvs.hangUp(with: Self.config(lvsPath: "/run/keepalived/lvs2.fifo"))
        sim.run(1)
        #expect(lvs.fifos.lines(of: Self.vrrp) == linesBefore + ["INSTANCE \"VI_1\" MASTER 100\n"])
        let old = lvs.fifos.opened.first { $0.path == Self.lvs }
        #expect(old?.closed == true && old?.removed == true)
        #expect(lvs.fifos.opened.contains { $0.path == "/run/keepalived/lvs2.fifo" && !$0.closed })
        #expect(fifoScriptRuns(lvs).count == 1)
        #expect(lvs.state("VI_1") == .master)
    }

    /// rs_init_notifies: real servers alive from the start get their UP line (and notify_up);
    /// without it only changes do, as in keepalived.
    @Test func realServersAliveFromTheStartWithRSInitNotifies() throws {
        for asked in [true, false] {
            let sim = Simulation()
            let lvs = director(sim)
            try lvs.start(Self.config(globals: asked ? "rs_init_notifies" : ""))
            sim.run(3)
            let up = ["RS [10.0.1.1]:tcp:80 [10.0.0.100]:tcp:80 UP\n", "RS [10.0.1.2]:tcp:80 [10.0.0.100]:tcp:80 UP\n"]
            #expect(lvs.fifos.lines(of: Self.lvs).filter { $0.hasPrefix("RS ") } == (asked ? up : []))
            // A reload that adds a server: its line only.
            lvs.hangUp(with: Self.config(globals: asked ? "rs_init_notifies" : "").replacingOccurrences(of: """
                    real_server 10.0.1.2 80 {
                """, with: """
                    real_server 10.0.1.3 80 {
                        TCP_CHECK {
                            connect_timeout 1
                        }
                    }
                    real_server 10.0.1.2 80 {
                """))
            sim.run(1)
            #expect(lvs.fifos.lines(of: Self.lvs).filter { $0.hasPrefix("RS ") }
                    == (asked ? up + ["RS [10.0.1.3]:tcp:80 [10.0.0.100]:tcp:80 UP\n"] : []))
        }
    }

    @Test func aFIFOThatCannotBeOpenedOrReadIsSaid() throws {
        let sim = Simulation()
        let lvs = director(sim)
        lvs.fifos.refused = [Self.vrrp]
        lvs.fifos.existing = [Self.all]
        try lvs.start(Self.config())
        sim.run(5)
        #expect(lvs.log.contains("Unable to open vrrp_notify fifo \(Self.vrrp)"))
        #expect(lvs.state("VI_1") == .master)
        // An existing FIFO is used, and left in place at the end.
        #expect(lvs.fifos.opened.first { $0.path == Self.all }?.created == false)
        lvs.fifos.full = true
        lvs.processes.behaviour = { command in
            command.hasPrefix(Self.reader) ? (true, 1_000_000_000_000) : (!command.hasSuffix("check.sh"), 10_000)
        }
        sim.run(4)
        #expect(lvs.log.contains("notify_fifo \(Self.all): the reader is not keeping up; 1 line(s) left out so far"))
        lvs.stop(in: sim)
        #expect(lvs.fifos.opened.first { $0.path == Self.all }?.removed == false)
    }
}

/// keepalived's child_wait_time (how long its parent waits for its children at stop): how long
/// Vigil's stop waits for the scripts still running (here the FIFO reader, which never ends)
/// before it kills them; a second without it.
@Suite struct ChildWaitTimeTests {
    @Test(arguments: [nil, 3] as [Int?])
    func theStopWaitsThatLong(seconds: Int?) throws {
        let sim = Simulation()
        let lvs = NotifyFIFOTests().director(sim)
        try lvs.start(NotifyFIFOTests.config(globals: "") + (seconds.map { "child_wait_time \($0)\n" } ?? ""))
        sim.run(5)
        let before = sim.clock.current
        lvs.stop(in: sim)
        let waited = Double(sim.clock.current - before) / 1e6
        let expected = Double(seconds ?? 1)
        #expect(waited >= expected && waited < expected + 0.2, "waited \(waited) s")
    }
}
