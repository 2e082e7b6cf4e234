import HealthCheck
import IPVS
import LVS
import Testing
import Addressing
import VigilConfig
import BodyRegex

private let s: Int64 = 1_000_000

private func specs(_ text: String) throws -> [VirtualServerSpec] {
    let (config, diagnostics) = ConfigLoader.load(text: text)
    #expect(!diagnostics.all.contains { $0.severity == .error }, "\(diagnostics.all)")
    return LVSSpecBuilder.build(config).specs
}

private func key(_ text: String, _ port: UInt16, _ proto: IPVSProtocol = .tcp) -> IPVSServiceKey {
    .address(proto, IPAddress(text)!, port: port)
}

private func weights(_ table: IPVSTable) -> [String: Int32] {
    var out: [String: Int32] = [:]
    for (_, dests) in table { for d in dests { out["\(d.key.address)"] = d.weight } }
    return out
}

private func dest(_ text: String, _ port: UInt16) -> IPVSDestinationKey { IPVSDestinationKey(IPAddress(text)!, port: port) }

@Suite struct SpecBuilderTests {
    /// ip_family: a fwmark service that tunnels to IPv4 real servers is still IPv6 when it says
    /// so (IPVS tunnels across families); a family that contradicts the address is an error.
    @Test func ipFamilyDecidesAFwmarkService() throws {
        let list = try specs("""
        virtual_server fwmark 7 {
            ip_family inet6
            lb_algo rr
            lb_kind TUN
            real_server 192.168.0.3 80 {
            }
        }
        virtual_server fwmark 8 {
            lb_algo rr
            lb_kind DR
            real_server 192.168.0.2 80 {
            }
        }
        """)
        #expect(list[0].services[0].key == .fwmark(7, family: .ipv6))
        #expect(list[1].services[0].key == .fwmark(8, family: .ipv4))
        let (_, d) = ConfigLoader.load(text: "virtual_server 10.0.0.1 80 {\n    ip_family inet6\n}\nvirtual_server fwmark 1 {\n    ip_family ipx\n}\n")
        #expect(d.all.contains { $0.message == "Virtual server specified family inet6 conflicts with server family" })
        #expect(d.all.contains { $0.message == "unknown address family ipx" })
    }

    @Test func serviceSettingsFollowKeepalived() throws {
        let list = try specs("""
        virtual_server 10.0.0.1 80 {
            lb_algo wrr
            lb_kind DR
            protocol TCP
            persistence_granularity 255.255.255.0
            real_server 192.168.0.1 8080 {
                weight 3
            }
        }
        virtual_server fwmark 9 {
            lb_algo sh
            lb_kind NAT
            sh-port
            real_server 192.168.0.2 80 {
            }
        }
        virtual_server fd00::1 443 {
            lb_algo rr
            lb_kind NAT
            protocol UDP
            ops
            persistence_timeout 60
            persistence_granularity 64
            real_server fd00::2 8443 {
            }
        }
        """)
        #expect(list.count == 3)
        let tcp = list[0].services[0]
        #expect(tcp.key == key("10.0.0.1", 80))
        #expect(tcp.scheduler == "wrr")
        // Granularity alone turns persistence on with keepalived's 360 s.
        #expect(tcp.flags == .persistent && tcp.timeout == 360)
        #expect(tcp.netmask == 0xFFFF_FF00)
        // DR keeps the VS port whatever the real server says.
        let rs = list[0].realServers[0].destination
        #expect(rs.key == dest("192.168.0.1", 80) && rs.forwarding == .directRoute && rs.weight == 3)

        #expect(list[1].services[0].key == .fwmark(9, family: .ipv4))
        #expect(list[1].services[0].flags == .shPort)
        #expect(list[1].realServers[0].destination.key == dest("192.168.0.2", 80))

        let v6 = list[2].services[0]
        #expect(v6.key == key("fd00::1", 443, .udp))
        #expect(v6.flags == [.persistent, .onePacket] && v6.timeout == 60 && v6.netmask == 64)
    }

    @Test func groupRangesExpandToOneServiceEach() throws {
        let list = try specs("""
        virtual_server_group web {
            10.0.0.5-7 80
            fwmark 3
        }
        virtual_server group web {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 192.168.0.1 80 {
            }
        }
        """)
        #expect(list[0].services.map(\.key) == [key("10.0.0.5", 80), key("10.0.0.6", 80), key("10.0.0.7", 80), .fwmark(3, family: .ipv4)])
    }

    @Test func checkerParametersInheritCheckerThenRealServerThenVirtualServer() throws {
        let list = try specs("""
        virtual_server 10.0.0.1 80 {
            delay_loop 7
            lb_algo rr
            lb_kind NAT
            protocol TCP
            connect_timeout 4
            retry 5
            real_server 192.168.0.1 80 {
                delay_before_retry 2
                TCP_CHECK {
                    connect_port 8080
                    retry 2
                }
                HTTP_GET {
                    url {
                        path /
                    }
                }
            }
        }
        """)
        let checkers = list[0].realServers[0].checkers
        #expect(checkers.count == 2)
        let http = checkers[1].timing
        #expect(http.retry == 5 && http.delayBeforeRetry == 2 * s && checkers[1].http?.urls.map(\.path) == ["/"])
        let timing = checkers[0].timing
        #expect(timing.delayLoop == 7 * s && timing.connectTimeout == 4 * s && timing.retry == 2)
        #expect(timing.delayBeforeRetry == 2 * s && timing.warmup == 7 * s && !timing.alpha)
        #expect(checkers[0].target.port == 8080 && checkers[0].target.address == IPAddress("192.168.0.1")!)
        // `vigil -t` says so too, without changing keepalived's exit status.
        let (config, diagnostics) = ConfigLoader.load(text: """
        virtual_server 10.0.0.1 80 {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 192.168.0.1 80 {
                BFD_CHECK {
                    name bfd1
                }
            }
        }
        """)
        let notRun = diagnostics.all.filter { $0.message.contains("BFD_CHECK is not run by Vigil") }
        #expect(notRun.count == 1 && notRun[0].severity == .warning && notRun[0].location.line == 6)
        #expect(notRun.first?.klass == .note) // a note's class never raises the exit status
        // The daemon logs that diagnostic (it logs every warning of the file), so the specs
        // add no second line for it: the checker is just not among the real server's.
        #expect(LVSSpecBuilder.build(config).warnings.isEmpty)
        #expect(try #require(LVSSpecBuilder.build(config).specs.first).realServers[0].checkers.isEmpty)
    }

    /// keepalived's deprecated SMTP_CHECK `host` blocks: one checker per host, the first in
    /// the checker's own place unless the checker names a connection itself.
    @Test func smtpCheckHostsBecomeCheckersOfTheirOwn() throws {
        func checkers(_ body: String) throws -> (checkers: [CheckerSpec], diagnostics: DiagnosticSink) {
            let (config, diagnostics) = ConfigLoader.load(text: """
            virtual_server 10.0.0.1 25 {
                lb_algo rr
                lb_kind NAT
                protocol TCP
                real_server 192.168.0.1 25 {
                    SMTP_CHECK {
            \(body)
                    }
                }
            }
            """)
            return (try #require(LVSSpecBuilder.build(config).specs.first).realServers[0].checkers, diagnostics)
        }
        let plain = try checkers("retry 4")
        #expect(plain.checkers.count == 1 && plain.checkers[0].smtpHelo == "smtpchecker.keepalived.org")
        #expect(plain.checkers[0].target.port == 25 && plain.checkers[0].timing.retry == 4)
        #expect(!plain.diagnostics.all.contains { $0.message.contains("not run by Vigil") })
        let hosts = try checkers("""
                    helo_name lvs01.example.com
                    host {
                        connect_ip 192.168.0.10
                        connect_port 2525
                    }
                    host {
                        connect_ip 192.168.0.11
                    }
                    retry 3
            """)
        #expect(hosts.checkers.map(\.target.address) == [IPAddress("192.168.0.10")!, IPAddress("192.168.0.11")!])
        #expect(hosts.checkers.map(\.target.port) == [2525, 25])
        #expect(hosts.checkers.allSatisfy { $0.smtpHelo == "lvs01.example.com" && $0.timing.retry == 3 }, "settings after the hosts apply to them all")
        let deprecated = hosts.diagnostics.all.filter { $0.message.contains("host block is deprecated") }
        #expect(deprecated.count == 1 && deprecated[0].severity == .warning && deprecated[0].location.line == 8)
        let own = try checkers("""
                    connect_port 587
                    host {
                        connect_ip 192.168.0.10
                    }
            """)
        #expect(own.checkers.map(\.target.address) == [IPAddress("192.168.0.1")!, IPAddress("192.168.0.10")!])
        #expect(own.checkers.map(\.target.port) == [587, 25], "a host's connection starts from the real server, not the checker")
        let unknown = try checkers("""
                    host {
                        helo_name x
                    }
            """)
        #expect(unknown.diagnostics.all.contains { $0.severity == .error && $0.message.contains("helo_name") })
    }
}

/// The controller on a virtual clock, with servers that answer as scripted.
@Suite struct ControllerTests {
    static let pool = """
    virtual_server 10.0.0.1 80 {
        delay_loop 1
        lb_algo rr
        lb_kind NAT
        protocol TCP
        quorum 2
        sorry_server 10.0.0.99 80
        real_server 10.0.1.1 80 {
            TCP_CHECK {
                connect_timeout 1
            }
        }
        real_server 10.0.1.2 80 {
            inhibit_on_failure
            weight 2
            TCP_CHECK {
                connect_timeout 1
            }
        }
    }
    """

    /// Runs the controller until `end`, answering each connect at once with `alive(target)`.
    static func run(_ c: inout LVSController, from start: Int64, to end: Int64, alive: (CheckTarget, Int64) -> Bool,
                    events: inout [LVSEvent]) {
        var t = start
        while let next = c.nextDeadline, next <= end {
            t = max(t, next)
            var pending = c.timersFired(at: t)
            while !pending.isEmpty {
                let event = pending.removeFirst()
                events.append(event)
                if case .connect(let id, _) = event {
                    pending += c.probeFinished(id, verdict: alive(c.target(of: id)!, t), at: t)
                }
            }
        }
    }


    @Test func startsWithEveryNonAlphaServerAndChecksAfterBootstrap() throws {
        var c = LVSController(specs: try specs(Self.pool))
        let events = c.start(at: 0, randomWarmup: { _ in 0 })
        #expect(weights(c.desiredTable) == ["10.0.1.1": 1, "10.0.1.2": 2])
        #expect(events.contains { if case .quorum(_, let q) = $0 { q.isUp && q.initial } else { false } })
        #expect(c.nextDeadline == 1 * s) // keepalived's BOOTSTRAP_DELAY
    }

    @Test func failureInhibitsOrRemovesAndQuorumLossBringsTheSorryServer() throws {
        var c = LVSController(specs: try specs(Self.pool))
        _ = c.start(at: 0, randomWarmup: { _ in 0 })
        var events: [LVSEvent] = []
        // 10.0.1.2 dies at 3 s: at startup a single failure is a verdict, later it takes 1 + retry.
        Self.run(&c, from: 0, to: 10 * s, alive: { t, now in t.address != IPAddress("10.0.1.2")! || now < 3 * s }, events: &events)
        // Weight 1 alive < quorum 2: the sorry server serves alone; the inhibited server stays at 0.
        #expect(weights(c.desiredTable) == ["10.0.1.2": 0, "10.0.0.99": 1])
        #expect(events.contains { if case .quorum(_, let q) = $0 { !q.isUp && !q.initial } else { false } })
        #expect(events.contains { if case .realServer(_, 1, .down) = $0 { true } else { false } })
        // It comes back: one success is enough, quorum returns, the sorry server goes.
        Self.run(&c, from: 10 * s, to: 13 * s, alive: { _, _ in true }, events: &events)
        #expect(weights(c.desiredTable) == ["10.0.1.1": 1, "10.0.1.2": 2])
    }

    @Test func removalHappensWithinTheDetectionBound() throws {
        var c = LVSController(specs: try specs(Self.pool))
        _ = c.start(at: 0, randomWarmup: { _ in 0 })
        var events: [LVSEvent] = []
        let death: Int64 = 5 * s + 300_000
        Self.run(&c, from: 0, to: death, alive: { _, _ in true }, events: &events)
        let before = c.generation
        var removedAt: Int64?
        var t = death
        while removedAt == nil && t < death + 10 * s {
            t += 100_000
            Self.run(&c, from: t - 100_000, to: t, alive: { target, _ in target.address != IPAddress("10.0.1.1")! }, events: &events)
            if c.generation != before && weights(c.desiredTable)["10.0.1.1"] == nil { removedAt = t }
        }
        let bound = TCPCheckConfig(delayLoop: 1 * s, connectTimeout: 1 * s).worstCaseDetection
        #expect(removedAt != nil)
        #expect(removedAt! - death <= bound)
    }

    @Test func alphaServersStartOutOfThePool() throws {
        var c = LVSController(specs: try specs("""
        virtual_server 10.0.0.1 80 {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            alpha
            real_server 10.0.1.1 80 {
                TCP_CHECK {
                }
            }
        }
        """))
        _ = c.start(at: 0, randomWarmup: { _ in 0 })
        #expect(weights(c.desiredTable).isEmpty)
        var events: [LVSEvent] = []
        Self.run(&c, from: 0, to: 2 * s, alive: { _, _ in true }, events: &events)
        #expect(weights(c.desiredTable) == ["10.0.1.1": 1])
    }

    @Test func slackLetsCheckersDueTogetherShareAWakeUpWithoutDrifting() throws {
        var c = LVSController(specs: try specs("""
        virtual_server 10.0.0.1 80 {
            delay_loop 1
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 10.0.1.1 80 {
                TCP_CHECK {
                }
            }
            real_server 10.0.1.2 80 {
                TCP_CHECK {
                }
            }
        }
        """))
        var draws: [Int64] = [0, 3_000]
        _ = c.start(at: 0, randomWarmup: { _ in draws.removeFirst() })
        #expect(c.nextDeadline == 1 * s)
        // The second checker is due 3 ms later: within a 5 ms slack both run now...
        let first = c.timersFired(at: 1 * s, slack: 5_000)
        #expect(first.filter { if case .connect = $0 { true } else { false } }.count == 2)
        // ...and without slack only the first would have.
        var strict = LVSController(specs: c.specs)
        draws = [0, 3_000]
        _ = strict.start(at: 0, randomWarmup: { _ in draws.removeFirst() })
        #expect(strict.timersFired(at: 1 * s).count == 1)
        // Both finish now; their next runs are a delay_loop after that, not pulled earlier.
        for id in c.checkers { _ = c.probeFinished(id, verdict: true, at: 1 * s + 1_000) }
        #expect(c.nextDeadline == 2 * s + 1_000)
        #expect(c.timersFired(at: 2 * s, slack: 0).isEmpty)
    }

    /// A host that starts at most `limit` checks a turn gets every due checker, earliest first,
    /// over several calls, with the deadline left in the past until the last has run.
    @Test func aLimitSpreadsABurstOfDueCheckersOverCalls() throws {
        var text = "virtual_server 10.0.0.1 80 {\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
        for r in 0..<40 { text += " real_server 10.1.0.\(r + 1) 80 {\n  TCP_CHECK {\n  }\n }\n" }
        text += "}\n"
        var c = LVSController(specs: try specs(text))
        var draw: Int64 = 0
        _ = c.start(at: 0, randomWarmup: { _ in draw += 10; return draw })
        func connects(_ events: [LVSEvent]) -> [CheckerID] { events.compactMap { if case .connect(let id, _) = $0 { id } else { nil } } }
        let now = 2 * s
        var started: [CheckerID] = []
        var calls = 0
        while let due = c.nextDeadline, due <= now {
            let batch = connects(c.timersFired(at: now, limit: 16))
            #expect(batch.count <= 16)
            started += batch
            calls += 1
        }
        #expect(calls == 3, "16 + 16 + 8")
        #expect(Set(started).count == 40 && started.count == 40, "each checker once")
        #expect(started.map(\.slot) == started.map(\.slot).sorted(), "earliest first")
    }

    @Test func thousandsOfCheckersShareOneHeapWithoutLosingAny() throws {
        var text = ""
        for v in 0..<20 {
            text += "virtual_server 10.0.\(v).1 80 {\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
            for r in 0..<100 { text += " real_server 10.1.\(v).\(r + 1) 80 {\n  TCP_CHECK {\n  }\n }\n" }
            text += "}\n"
        }
        var c = LVSController(specs: try specs(text))
        #expect(c.checkerCount == 2000)
        _ = c.start(at: 0, randomWarmup: { $0 / 2 })
        var events: [LVSEvent] = []
        Self.run(&c, from: 0, to: 11 * s, alive: { _, _ in true }, events: &events)
        var connects = 0
        for e in events { if case .connect = e { connects += 1 } }
        // First run at 1.5 s, then once a second: runs at 1.5, 2.5, ..., 10.5 = 10 per checker.
        #expect(connects == 20_000)
    }
}

@Suite struct ReconcilerApplyingTests {
    @Test func applyingOperationsGivesThePlannedTable() {
        let svc = IPVSService(key("10.0.0.1", 80), scheduler: "rr")
        let a = IPVSDestination(dest("10.0.1.1", 80), weight: 1)
        let b = IPVSDestination(dest("10.0.1.2", 80), weight: 2)
        let desired: IPVSTable = [svc: [a, b]]
        let foreign = IPVSService(key("10.9.9.9", 443), scheduler: "wrr")
        let actual: IPVSTable = [foreign: [IPVSDestination(dest("10.8.0.1", 443))]]
        let ops = IPVSReconciler.plan(desired: desired, actual: actual, owned: [svc.key])
        let after = IPVSReconciler.applying(ops, to: actual)
        #expect(after[svc] == [a, b])
        #expect(after[foreign] != nil)
        #expect(IPVSReconciler.plan(desired: desired, actual: after, owned: [svc.key]).isEmpty)
    }

    @Test func aLocalNodeDestinationMatchesAnyConfiguredMethod() {
        let svc = IPVSService(key("10.0.0.1", 80), scheduler: "rr")
        let wanted = IPVSDestination(dest("127.0.0.1", 80), forwarding: .masquerade, weight: 1)
        var dumped = wanted
        dumped.forwarding = .localNode
        #expect(IPVSReconciler.plan(desired: [svc: [wanted]], actual: [svc: [dumped]]).isEmpty)
        dumped.weight = 0
        #expect(IPVSReconciler.plan(desired: [svc: [wanted]], actual: [svc: [dumped]]) == [.editDestination(wanted, in: svc.key)])
    }
}

/// `LVSController.reload`: old state × new specs, checked as values.
@Suite struct ControllerReloadTests {
    static func config(weight: Int = 1, timeout: Int = 1, servers: [String] = ["10.0.1.1", "10.0.1.2"], alpha: Bool = false,
                       extra: String = "") -> String {
        var text = "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    delay_loop 2\n\(extra)\n"
        for server in servers {
            text += "    real_server \(server) 80 {\n        weight \(weight)\n        \(alpha ? "alpha" : "")\n        TCP_CHECK {\n            connect_timeout \(timeout)\n        }\n    }\n"
        }
        return text + "}\n"
    }

    /// A controller that ran 10 s with 10.0.1.2 failing.
    static func running(_ text: String = config()) throws -> LVSController {
        var c = LVSController(specs: try specs(text))
        _ = c.start(at: 0, randomWarmup: { _ in 0 })
        var events: [LVSEvent] = []
        ControllerTests.run(&c, from: 0, to: 10 * s, alive: { t, _ in t.address != IPAddress("10.0.1.2")! }, events: &events)
        return c
    }

    @Test func theSameSpecsKeepEveryMachineAndSlot() throws {
        var c = try Self.running()
        let machines = c.machines, ids = c.ids, table = c.desiredTable
        let deadline = c.nextDeadline
        let (events, summary) = c.reload(to: try specs(Self.config()), at: 10 * s)
        #expect(events.isEmpty)
        #expect(summary.isEmpty && summary.checkersKept == 2 && summary.realServersKept == 2 && summary.virtualServersKept == 1)
        #expect(c.machines == machines && c.ids == ids)
        #expect(c.desiredTable == table)
        #expect(c.nextDeadline == deadline, "no timer lost or added")
    }

    @Test func aWeightChangeKeepsTheCheckersAndChangesOnlyTheWeight() throws {
        var c = try Self.running()
        let machines = c.machines
        let (_, summary) = c.reload(to: try specs(Self.config(weight: 4)), at: 10 * s)
        #expect(summary.checkersKept == 2 && summary.checkersStarted == 0)
        #expect(c.machines == machines)
        #expect(weights(c.desiredTable) == ["10.0.1.1": 4])
    }

    @Test func aChangedCheckerIsNewButItsServerKeepsItsState() throws {
        var c = try Self.running()
        let (events, summary) = c.reload(to: try specs(Self.config(timeout: 3)), at: 10 * s, randomWarmup: { _ in 0 })
        #expect(summary.checkersStarted == 2 && summary.checkersStopped == 2 && summary.checkersKept == 0)
        #expect(!events.contains { if case .realServer = $0 { true } else { false } }, "nobody joins or leaves because of the reload")
        #expect(weights(c.desiredTable) == ["10.0.1.1": 1], "the failed server stays out until its new checker succeeds")
        #expect(c.nextDeadline == 11 * s, "a new checker starts after the bootstrap delay")
        // A result for a retired checker's connect is dropped.
        #expect(c.probeFinished(CheckerID(slot: 0), verdict: false, at: 10 * s).isEmpty)
    }

    @Test func addedAndRemovedServers() throws {
        var c = try Self.running()
        let (events, summary) = c.reload(to: try specs(Self.config(servers: ["10.0.1.1", "10.0.1.3"])), at: 10 * s, randomWarmup: { _ in 0 })
        #expect(summary.realServersKept == 1 && summary.realServersAdded == 1 && summary.realServersRemoved == 1)
        #expect(weights(c.desiredTable) == ["10.0.1.1": 1, "10.0.1.3": 1], "a new non-alpha server starts in the pool, as at start-up")
        #expect(events.contains { if case .connect = $0 { false } else { true } } == false)
        let plan = IPVSReconciler.plan(desired: c.desiredTable, actual: try Self.running().desiredTable, owned: c.ownedServices)
        #expect(plan == [.addDestination(IPVSDestination(dest("10.0.1.3", 80), weight: 1), to: key("10.0.0.1", 80))])
    }

    @Test func quorumStateCarriesOverAndOnlyARealChangeIsReported() throws {
        var c = try Self.running(Self.config(extra: "    quorum 1"))
        #expect(c.pools[0].isQuorumUp)
        var (events, _) = c.reload(to: try specs(Self.config(extra: "    quorum 1\n    hysteresis 0")), at: 10 * s)
        #expect(!events.contains { if case .quorum = $0 { true } else { false } })
        (events, _) = c.reload(to: try specs(Self.config(extra: "    quorum 5")), at: 10 * s)
        #expect(events.contains { if case .quorum(_, let q) = $0 { !q.isUp && !q.initial } else { false } })
    }

    @Test func aRemovedVirtualServerLeavesTheOwnedSet() throws {
        var c = try Self.running()
        let (_, summary) = c.reload(to: [], at: 10 * s)
        #expect(summary.virtualServersRemoved == 1 && summary.realServersRemoved == 2 && summary.checkersStopped == 2)
        #expect(c.ownedServices.isEmpty && c.desiredTable.isEmpty && c.nextDeadline == nil)
    }

    /// FILE_CHECK follows a top-level track_file defined before it (keepalived looks the name up
    /// as it parses), with the track_file's weight unless it names its own.
    @Test func fileCheckFollowsATrackFileDefinedBeforeIt() throws {
        func load(_ files: String, _ check: String) -> (checkers: [CheckerSpec], errors: [String]) {
            let (config, diagnostics) = ConfigLoader.load(text: """
            \(files)
            virtual_server 10.0.0.1 80 {
                lb_algo rr
                lb_kind NAT
                protocol TCP
                alpha
                real_server 192.168.0.1 80 {
                    FILE_CHECK {
            \(check)
                    }
                }
            }
            """)
            let specs = LVSSpecBuilder.build(config).specs
            return (specs.first?.realServers[0].checkers ?? [], diagnostics.all.filter { $0.severity == .error }.map(\.message))
        }
        let file = "track_file maint {\n    file /run/maint\n    weight -5 reverse\n}"
        let inherited = load(file, "track_file maint")
        #expect(inherited.errors.isEmpty)
        #expect(inherited.checkers.first?.file == FileCheckSpec(trackFile: "maint", path: "/run/maint", initValue: nil, initOverwrite: false, weight: -5, reverse: true))
        #expect(inherited.checkers.first?.timing.alpha == false, "alpha does not apply: the file's state is known at once")
        let own = load(file, "track_file maint\nweight 20")
        #expect(own.checkers.first?.file?.weight == 20 && own.checkers.first?.file?.reverse == false)
        #expect(load(file, "track_file other").errors.contains("track_file other not found"))
        #expect(load("", "weight 1").errors.contains("FILE_CHECK has no track_file specified - ignoring"))
        #expect(load(file, "track_file maint\nweight 2 sideways").errors.contains("unknown track file weight option sideways - ignoring"))
        let afterwards = ConfigLoader.load(text: """
            virtual_server 10.0.0.1 80 {
                protocol TCP
                real_server 192.168.0.1 80 {
                    FILE_CHECK {
                        track_file maint
                    }
                }
            }
            \(file)
            """).1
        #expect(afterwards.all.contains { $0.message == "track_file maint not found" }, "defined after: not found, as in keepalived")
    }

    /// url `regex` with keepalived's options; an invalid pattern is an error of the file
    /// (keepalived logs it and then checks the url without it).
    @Test func urlRegexAndItsOptions() throws {
        func load(_ url: String) -> (rule: HTTPRegexRule?, diagnostics: [Diagnostic]) {
            let (config, diagnostics) = ConfigLoader.load(text: """
            virtual_server 10.0.0.1 80 {
                lb_algo rr
                lb_kind NAT
                protocol TCP
                real_server 192.168.0.1 80 {
                    HTTP_GET {
                        url {
                            path /health
            \(url)
                        }
                    }
                }
            }
            """)
            let spec = LVSSpecBuilder.build(config).specs.first?.realServers[0].checkers.first
            return (spec?.http?.urls.first?.expectation.regex, diagnostics.all)
        }
        let full = load("regex \"status: (ok|degraded)\"\nregex_no_match\nregex_options caseless multiline\nregex_min_offset 10\nregex_max_offset 200")
        #expect(full.rule == HTTPRegexRule(pattern: "status: (ok|degraded)", options: RegexOptions.bits["caseless"]! | RegexOptions.bits["multiline"]!,
                                           noMatch: true, minimumOffset: 10, maximumOffset: 200))
        #expect(!full.diagnostics.contains { $0.severity != .note || $0.message.contains("not acted on") }, "\(full.diagnostics)")
        let invalid = load("regex \"ok(\"")
        let error = try #require(invalid.diagnostics.first { $0.severity == .error })
        #expect(error.message.hasPrefix("Invalid regex: 'ok(' at offset 3:") && error.location.line == 9, "\(error)")
        let odd = load("regex ok\nregex_options caseles\nregex_stack 32 512")
        #expect(odd.diagnostics.contains { $0.severity == .warning && $0.message.contains("unknown regex option 'caseles'") && $0.suggestion == "caseless" })
        #expect(odd.diagnostics.contains { $0.severity == .warning && $0.message.hasPrefix("regex_stack is not acted on") })
        #expect(odd.diagnostics.allSatisfy { $0.klass == .note || $0.severity == .note }, "keepalived's exit status stays")
        #expect(load("regex_no_match").diagnostics.contains { $0.message.contains("regex options but no 'regex'") })
    }
}
