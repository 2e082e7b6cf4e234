import Testing
@testable import VigilConfig

/// keepalived's vrrp_* and checker_* process settings: read with its ranges and messages, and
/// acted on (no "not acted on" note), while the bfd_* ones are still noted.
@Suite struct SchedulingConfigTests {
    func globals(_ lines: String, host: (any HostProbe)? = nil) -> (GlobalDefs, [Diagnostic]) {
        let (config, d) = load("global_defs {\n\(lines)\n}\n", host: host)
        return (config.globals, d)
    }

    @Test func everySettingIsRead() {
        let (g, d) = globals("""
            vrrp_priority -5
            vrrp_rt_priority 20
            vrrp_rlimit_rttime 50000
            vrrp_cpu_affinity 0 1 1
            vrrp_no_swap
            checker_priority 10
            checker_cpu_affinity 1
            """)
        #expect(problems(d).isEmpty, "\(d)")
        #expect(!d.contains { $0.message.contains("not acted on") }, "\(d)")
        #expect(g.vrrpScheduling.nice == -5 && g.vrrpScheduling.realtimePriority == 20 && g.vrrpScheduling.realtimeLimit == 50_000)
        #expect(g.vrrpScheduling.cpus == [0, 1] && g.vrrpScheduling.noSwap)
        #expect(g.checkerScheduling.nice == 10 && g.checkerScheduling.cpus == [1] && g.checkerScheduling.realtimePriority == nil)
        #expect(!g.checkerScheduling.noSwap)
        #expect(g.vrrpScheduling.locations["rt_priority"]?.line == 3)
    }

    @Test func keepalivedsMessagesAndLeniency() {
        let (g, d) = globals("""
            vrrp_priority 20
            checker_priority
            vrrp_rt_priority 0
            checker_rt_priority 150
            vrrp_rlimit_rttime 0
            checker_rlimit_rtime 1
            vrrp_cpu_affinity 0 x
            checker_cpu_affinity
            """)
        let messages = d.map(\.message)
        #expect(messages.contains("Invalid vrrp process priority specified"))
        #expect(messages.contains("No checker process priority specified"))
        #expect(messages.contains("vrrp process real-time priority 0 less than minimum 1 - setting to minimum"))
        #expect(messages.contains("checker process real-time priority 150 greater than maximum 99 - setting to maximum"))
        #expect(messages.contains("Invalid vrrp real-time limit - 0"))
        #expect(messages.contains("Keyword 'checker_rlimit_rtime' is deprecated - please use 'checker_rlimit_rttime'"))
        #expect(messages.contains("Invalid cpu_id:x specified for vrrp process"))
        #expect(messages.contains("No checker cpu_id set specified"))
        #expect(g.vrrpScheduling.nice == nil && g.vrrpScheduling.realtimePriority == 1 && g.vrrpScheduling.realtimeLimit == nil)
        #expect(g.checkerScheduling.realtimePriority == 99 && g.checkerScheduling.realtimeLimit == 2, "1 is raised to 2: keepalived halves it")
        #expect(g.vrrpScheduling.cpus.isEmpty, "an invalid CPU drops the set")
        var sink = DiagnosticSink()
        sink.append(contentsOf: d)
        #expect(sink.exitStatus == 5, "CONFIG_GENERAL_ERROR, as keepalived -t")
    }

    @Test func aCPUTheHostDoesNotHaveDropsTheSet() {
        var host = FakeHost()
        host.cpus = 2
        let (g, d) = globals("vrrp_cpu_affinity 0 1\nchecker_cpu_affinity 1 2", host: host)
        #expect(d.contains { $0.message == "Invalid cpu_id:2 specified for checker process" && $0.location.line == 3 }, "\(d)")
        #expect(g.vrrpScheduling.cpus == [0, 1] && g.checkerScheduling.cpus.isEmpty)
    }

    @Test func bfdSettingsAreStillNoted() {
        let (_, d) = globals("bfd_rt_priority 10")
        #expect(d.contains { $0.message == "'bfd_rt_priority' is not acted on by Vigil yet: there is no BFD process to schedule" && $0.klass == .note })
    }
}
