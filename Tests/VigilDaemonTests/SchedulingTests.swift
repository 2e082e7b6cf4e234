import Testing
import VigilSystem
@testable import VigilDaemon

/// vrrp_* and checker_* scheduling reach the threads at start and at a reload that changes
/// them, never otherwise; what the kernel refuses is logged, and the daemon carries on.
@Suite struct SchedulingTests {
    static let settings = """
        vrrp_rt_priority 10
        checker_priority 5
        checker_cpu_affinity 1
        """

    private func started(globals: String = "", refusing: Bool = false) throws -> (Simulation, Director) {
        try Simulation.loneMaster(Configs.pair(priority: 100, globals: globals)) { $0.scheduling.refuse = refusing }
    }

    @Test func appliedAtStartAndAtAReloadThatChangesThem() throws {
        let (sim, lvs01) = try started(globals: Self.settings)
        #expect(lvs01.scheduling.applied.count == 1)
        #expect(lvs01.scheduling.applied.first?.loop == ThreadScheduling.Plan(realtimePriority: 10))
        #expect(lvs01.scheduling.applied.first?.checkers == ThreadScheduling.Plan(nice: 5, cpus: [1]))
        #expect(lvs01.scheduling.limits == [10_000], "keepalived's default with a real-time priority")
        #expect(lvs01.scheduling.locked == [false])
        #expect(lvs01.log.contains("Scheduling: loop thread (VRRP) SCHED_RR 10; checker threads nice 5, CPUs 1; SIGXCPU after 5000 µs of real-time CPU without sleeping"))

        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"], globals: Self.settings))
        sim.run(1)
        #expect(lvs01.scheduling.applied.count == 1, "unchanged settings are not applied again")

        lvs01.hangUp(with: Configs.pair(priority: 100, globals: "vrrp_no_swap\nvrrp_rlimit_rttime 40000\nvrrp_rt_priority 20"))
        sim.run(1)
        #expect(lvs01.scheduling.applied.count == 2)
        #expect(lvs01.scheduling.applied.last?.loop == ThreadScheduling.Plan(realtimePriority: 20))
        #expect(lvs01.scheduling.applied.last?.checkers == ThreadScheduling.Plan(), "checker_* removed: back to the start")
        #expect(lvs01.scheduling.locked.last == true && lvs01.scheduling.limits.last == 40_000)

        lvs01.hangUp(with: Configs.pair(priority: 100))
        sim.run(1)
        #expect(lvs01.scheduling.applied.last.map { $0.loop == ThreadScheduling.Plan() && $0.checkers == ThreadScheduling.Plan() } == true)
        #expect(lvs01.scheduling.locked.last == false && lvs01.scheduling.limits.last == .some(nil))
        #expect(lvs01.state("VI_1") == .master, "no transition for any of it")
    }

    @Test func withoutSettingsTheThreadsAreLeftAlone() throws {
        let (sim, lvs01) = try started()
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(1)
        #expect(lvs01.scheduling.applied.isEmpty && lvs01.scheduling.locked.isEmpty, "a chrt or taskset around the daemon stays")
    }

    @Test func aRefusalIsLoggedAndTheDaemonCarriesOn() throws {
        let (_, lvs01) = try started(globals: "vrrp_rt_priority 10", refusing: true)
        #expect(lvs01.log.contains("vrrp_rt_priority 10: sched_setscheduler of thread 1: Operation not permitted"))
    }
}
