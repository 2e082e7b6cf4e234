import Addressing
import IPVS
import LVS
import Testing
@testable import VigilDaemon

/// The checker host on the fake IPVS: which netlink operations a reload sends, and that the
/// checkers of unchanged real servers keep their state and schedule.
@Suite struct IPVSReloadTests {
    static func director(services: [(vip: String, reals: [String], weight: Int)], delayLoop: Int = 2, algo: String = "wlc",
                         extra: String = "") -> String {
        var text = globals
        for service in services {
            text += """
            virtual_server \(service.vip) 80 {
                delay_loop \(delayLoop)
                lb_algo \(algo)
                lb_kind DR
                protocol TCP
                persistence_timeout 300
            \(extra)

            """
            for real in service.reals {
                text += """
                    real_server \(real) 80 {
                        weight \(service.weight)
                        TCP_CHECK {
                            connect_timeout 2
                        }
                    }

                """
            }
            text += "}\n"
        }
        return text
    }

    static let globals = "global_defs {\n    router_id test\n}\n"

    static let base: [(vip: String, reals: [String], weight: Int)] = [
        ("10.0.0.100", ["10.0.1.1", "10.0.1.2", "10.0.1.3"], 1),
        ("10.0.0.101", ["10.0.2.1", "10.0.2.2"], 1),
    ]

    /// Every checker kept its cadence across the reloads since `since`: an answering server
    /// is checked every delay_loop plus the 1 ms its connect takes, the silent one every
    /// connect_timeout plus delay_loop; no re-warm-up, no doubled or lost check. A check may
    /// start up to the checker host's timer slack early (it shares a wake-up with one due
    /// just after it) without moving its schedule, so each gap is within the slack and the
    /// whole run is exact within it.
    static func expectCadenceKept(_ lvs: Director, since: Int64, sourceLocation: SourceLocation = #_sourceLocation) {
        let checks = Dictionary(grouping: lvs.prober.started.filter { $0.time >= since - 4_000_000 }, by: \.id)
        #expect(checks.count == 5, sourceLocation: sourceLocation)
        let slack = CheckerHost.timerSlack
        for (_, starts) in checks {
            let expected: Int64 = starts[0].target.address == IPAddress("10.0.1.3")! ? 4_000_000 : 2_001_000
            let gaps = zip(starts, starts.dropFirst()).map { $1.time - $0.time }
            #expect(gaps.allSatisfy { abs($0 - expected) <= slack }, "\(starts[0].target): \(gaps)", sourceLocation: sourceLocation)
            let span = starts.last!.time - starts.first!.time
            #expect(abs(span - Int64(gaps.count) * expected) <= slack, "\(starts[0].target): \(gaps)", sourceLocation: sourceLocation)
        }
    }

    func started(_ sim: Simulation, _ text: String) throws -> Director {
        let director = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        director.prober.alive = { $0.address != IPAddress("10.0.1.3")! }
        try director.start(text)
        sim.run(10)
        return director
    }

    /// A reload that adds 5,050 operations to a kernel that takes 0.2 ms for each (a second of
    /// netlink in all) is sent in requests of `operationsPerRequest`, a turn's budget at a time, and the
    /// master's adverts keep their schedule meanwhile instead of waiting for the whole table.
    @Test func aLargeTableGoesInBetweenTheAdverts() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(Configs.pair(priority: 150))
        sim.run(6)
        #expect(lvs.state("VI_1") == .master)
        var services: [(vip: String, reals: [String], weight: Int)] = []
        for v in 0..<50 { services.append(("10.0.9.\(v + 1)", (0..<100).map { "10.1.\(v).\($0 + 1)" }, 1)) }
        lvs.ipvs.onApply = { ops in sim.clock.current += Int64(ops.count) * 200 }
        let since = sim.now
        lvs.hangUp(with: Configs.pair(priority: 150) + String(Self.director(services: services, delayLoop: 60).dropFirst(Self.globals.count)))
        sim.run(4)
        #expect(lvs.ipvs.table.count == 50 && lvs.ipvs.table.values.allSatisfy { $0.count == 100 }, "the whole table is in")
        #expect(lvs.ipvs.requests.count >= 5_050)
        #expect(lvs.ipvs.requestSizes.allSatisfy { $0 <= CheckerHost.operationsPerRequest })
        let adverts = sim.wire(since: since).filter { $0.node == "lvs01" && $0.advert != nil }
        let gaps = zip(adverts, adverts.dropFirst()).map { $1.time - $0.time }
        #expect(adverts.count >= 3)
        // A turn sends at most one request past its budget.
        let bound = Int64(CheckerHost.operationsPerRequest) * 200 + CheckerHost.sendingBudget
        #expect(gaps.allSatisfy { abs($0 - 1_000_000) <= bound }, "advert intervals \(gaps)")
    }

    @Test func anUnchangedFileSendsNoNetlinkRequest() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        #expect(lvs.ipvs.table.count == 2)
        let requests = lvs.ipvs.requests.count
        let since = sim.now
        for _ in 0..<5 {
            lvs.hangUp()
            sim.run(1.3)
        }
        #expect(lvs.ipvs.requests.count == requests)
        #expect(lvs.daemon!.reloads.allSatisfy { $0.result == .unchanged && $0.ipvsOperations.isEmpty })
        Self.expectCadenceKept(lvs, since: since)
    }

    @Test func aWeightChangeIsOneEdit() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        let requests = lvs.ipvs.requests.count
        var changed = Self.base
        changed[1].weight = 5
        lvs.hangUp(with: Self.director(services: changed))
        sim.run(1)
        let sent = Array(lvs.ipvs.requests.dropFirst(requests))
        #expect(sent.count == 2, "\(sent)")
        #expect(sent.allSatisfy { if case .editDestination(let d, _) = $0 { d.weight == 5 } else { false } })
    }

    @Test func addingAServiceTouchesNoOtherService() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        let requests = lvs.ipvs.requests.count
        lvs.hangUp(with: Self.director(services: Self.base + [("10.0.0.102", ["10.0.3.1"], 1)]))
        sim.run(0.1)
        let sent = Array(lvs.ipvs.requests.dropFirst(requests))
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { op in
            switch op {
            case .addService(let s): s.key.description.contains("10.0.0.102")
            case .addDestination(_, let k): k.description.contains("10.0.0.102")
            default: false
            }
        })
        #expect(lvs.daemon!.reloads.last!.summary.contains("virtual servers 2 kept, 1 added, 0 removed"))
    }

    @Test func aSchedulerChangeIsOneServiceEditAndRemovalsAreDeletes() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        let requests = lvs.ipvs.requests.count
        var changed = Self.base
        changed.removeLast()
        changed[0].reals.removeLast()
        lvs.hangUp(with: Self.director(services: changed, algo: "rr"))
        sim.run(0.1)
        let sent = Array(lvs.ipvs.requests.dropFirst(requests))
        let edits = sent.filter { if case .editService(let s) = $0 { s.scheduler == "rr" } else { false } }
        let deletes = sent.filter { if case .deleteService = $0 { true } else { false } }
        #expect(edits.count == 1 && deletes.count == 1, "\(sent)")
        // 10.0.1.3 was down (not in IPVS), so removing it from the config sends nothing for it.
        #expect(sent.count == 4, "\(sent)")
    }

    /// A kept checker keeps its schedule (its next check is where it would have been), its
    /// verdict and retry count: a real server that is down stays down without a re-check
    /// burst, and one that is up is never taken out by the reload.
    @Test func checkersOfUnchangedRealServersKeepTheirState() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        let before = lvs.daemon!.checkers!
        let down = try #require(lvs.ipvs.table.first { $0.key.key.description.contains("10.0.0.100") })
        #expect(down.value.count == 2, "10.0.1.3 is down and out")
        let since = sim.now
        lvs.hangUp(with: Self.director(services: Self.base, extra: "    quorum 1"))
        sim.run(5)
        #expect(lvs.daemon!.reloads.last!.lvsSummary.checkersKept == 5)
        #expect(lvs.daemon!.reloads.last!.lvsSummary.checkersStarted == 0)
        Self.expectCadenceKept(lvs, since: since)
        #expect(lvs.daemon!.checkers === before)
        #expect(lvs.ipvs.table.first { $0.key.key.description.contains("10.0.0.100") }!.value.count == 2)
        #expect(!lvs.log.contains("Real server [10.0.1.1]:tcp:80 of VS [10.0.0.100]:tcp:80 is DOWN"))
    }

    /// A changed checker is a new checker (keepalived compares every parameter): it starts
    /// after the bootstrap delay, and its server stays in the pool meanwhile.
    @Test func aChangedCheckerStartsAfreshWithoutTakingItsServerOut() throws {
        let sim = Simulation()
        let lvs = try started(sim, Self.director(services: Self.base))
        let requests = lvs.ipvs.requests.count
        lvs.hangUp(with: Self.director(services: Self.base).replacingOccurrences(of: "connect_timeout 2", with: "connect_timeout 3"))
        sim.run(6)
        #expect(lvs.daemon!.reloads.last!.lvsSummary.checkersStarted == 5)
        #expect(lvs.ipvs.requests.count == requests, "no server left or rejoined the pool")
    }
}
