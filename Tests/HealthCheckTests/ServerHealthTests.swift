import HealthCheck
import Testing
import Addressing

typealias VS = VirtualServerHealth<String>

func ep(_ a: String, _ p: UInt16 = 80) -> VS.Endpoint { VS.Endpoint(address: a, port: p) }
func dest(_ a: String, _ w: Int, sorry: Bool = false) -> VS.Destination { VS.Destination(endpoint: ep(a), weight: w, isSorryServer: sorry) }

@Suite struct RealServerHealthTests {
    @Test func aliveOnlyWhileAllCheckersPass() {
        var rs = RealServerHealth(checkers: 2)
        #expect(rs.isAlive)
        #expect(rs.record(checker: 0, up: true) == nil)  // first verdict, no change
        #expect(rs.record(checker: 0, up: false) == .down)
        #expect(rs.record(checker: 1, up: false) == nil)
        #expect(rs.failedCheckers == 2)
        #expect(rs.record(checker: 0, up: true) == nil)  // checker 1 still failing
        #expect(!rs.isAlive)
        #expect(rs.record(checker: 1, up: true) == .up)
        #expect(rs.record(checker: 1, up: true) == nil)
    }

    @Test func alphaStartsDownUntilEveryCheckerPassed() {
        var rs = RealServerHealth(checkers: 2, alpha: true)
        #expect(!rs.isAlive && rs.failedCheckers == 2)
        #expect(rs.record(checker: 0, up: true) == nil)
        #expect(rs.record(checker: 1, up: false) == .stillDown)  // first failure is announced
        #expect(rs.record(checker: 1, up: false) == nil)         // later ones are not
        #expect(rs.record(checker: 1, up: true) == .up)
    }

    @Test func mixedAlphaFollowsThePessimisticChecker() {
        var rs = RealServerHealth(checkerAlpha: [false, true])
        #expect(!rs.isAlive && rs.failedCheckers == 1)
        #expect(rs.record(checker: 0, up: true) == nil)
        #expect(rs.record(checker: 1, up: true) == .up)
        #expect(RealServerHealth(checkers: 0).isAlive)
    }

    @Test func machinesDriveARealServerWithTwoCheckers() {
        // Port 80 keeps answering; port 443 goes away at 30 s and returns at 100 s.
        let cfg = TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 1, delayBeforeRetry: 2 * s)
        var checkers = [Driver(cfg), Driver(cfg)]
        var rs = RealServerHealth(checkers: 2)
        _ = checkers[0].machine.start(at: 0, randomWarmup: 0)
        _ = checkers[1].machine.start(at: 0, randomWarmup: 3 * s)
        let servers: [(Int64) -> Reply] = [{ _ in .accept(rtt: 0) }, { t in (30 * s..<100 * s).contains(t) ? .refuse : .accept(rtt: 0) }]
        var events: [(Int64, RealServerHealth.Event)] = []
        while true {
            guard let i = checkers.indices.min(by: { (checkers[$0].nextEvent ?? .max) < (checkers[$1].nextEvent ?? .max) }),
                  let (t, actions) = checkers[i].step(until: 120 * s, server: servers[i]) else { break }
            for e in rs.apply(actions, checker: i) { events.append((t, e)) }
        }
        // checker 1 runs at 4, 10, …, 34 (refused), retry at 36 (refused) ⇒ down; then every
        // delay_loop (42 … 96) without retries, and the first check after 100 s (102) brings it back.
        #expect(events.map(\.0) == [36 * s, 102 * s])
        #expect(events.map(\.1) == [.down, .up])
    }
}

@Suite struct VirtualServerHealthTests {
    @Test func inhibitKeepsTheDestinationAtWeightZero() {
        var vs = VS(members: [
            .init(endpoint: ep("a"), weight: 3, inhibitOnFailure: true),
            .init(endpoint: ep("b"), weight: 2),
            .init(endpoint: ep("c"), weight: 1),
        ])
        #expect(vs.destinations.isEmpty)  // nothing is programmed before start
        #expect(vs.start().map(\.isUp) == [true])
        let before = vs.destinations
        #expect(before == [dest("a", 3), dest("b", 2), dest("c", 1)])
        _ = vs.setAlive(0, false)
        _ = vs.setAlive(1, false)
        #expect(vs.destinations == [dest("a", 0), dest("c", 1)])
        #expect(VS.changes(from: before, to: vs.destinations) == [.remove(dest("b", 2)), .update(dest("a", 0))])
        let down = vs.destinations
        _ = vs.setAlive(0, true)
        _ = vs.setAlive(1, true)
        #expect(VS.changes(from: down, to: vs.destinations) == [.update(dest("a", 3)), .add(dest("b", 2))])
    }

    @Test func alphaMembersAtStartup() {
        var vs = VS(members: [
            .init(endpoint: ep("a"), inhibitOnFailure: true, isAlive: false),
            .init(endpoint: ep("b"), isAlive: false),
            .init(endpoint: ep("c")),
        ])
        _ = vs.start()
        #expect(vs.destinations == [dest("a", 0), dest("c", 1)])
    }

    @Test func quorumLossBringsTheSorryServer() {
        var vs = VS(members: (1...3).map { .init(endpoint: ep("rs\($0)")) }, quorum: 2, sorryServer: .init(endpoint: ep("sorry")))
        #expect(vs.start() == [.init(isUp: true, initial: true, threshold: 2, weightSum: 3)])
        #expect(vs.setAlive(0, false).isEmpty)  // 2 >= 2
        let partial = vs.destinations
        #expect(partial == [dest("rs2", 1), dest("rs3", 1)])
        #expect(vs.setAlive(1, false) == [.init(isUp: false, initial: false, threshold: 2, weightSum: 1)])
        #expect(vs.isSorryServerActive)
        // The remaining alive server leaves too: a partial pool is what quorum avoids.
        #expect(vs.destinations == [dest("sorry", 1, sorry: true)])
        #expect(VS.changes(from: partial, to: vs.destinations) == [.remove(dest("rs2", 1)), .remove(dest("rs3", 1)), .add(dest("sorry", 1, sorry: true))])
        // Transitions under the sorry server only change state.
        #expect(vs.setAlive(2, false).isEmpty)
        #expect(vs.destinations == [dest("sorry", 1, sorry: true)])
        #expect(vs.setAlive(2, true).isEmpty)
        let sorry = vs.destinations
        #expect(vs.setAlive(0, true) == [.init(isUp: true, initial: false, threshold: 2, weightSum: 2)])
        #expect(!vs.isSorryServerActive)
        #expect(VS.changes(from: sorry, to: vs.destinations) == [.remove(dest("sorry", 1, sorry: true)), .add(dest("rs1", 1)), .add(dest("rs3", 1))])
    }

    @Test func sorryServerInhibitAndInhibitedMembers() {
        var vs = VS(members: [.init(endpoint: ep("a"), weight: 2, inhibitOnFailure: true), .init(endpoint: ep("b"), weight: 2)],
                    quorum: 3, sorryServer: .init(endpoint: ep("sorry"), inhibit: true))
        _ = vs.start()
        let full = vs.destinations
        #expect(full == [dest("a", 2), dest("b", 2), dest("sorry", 0, sorry: true)])
        #expect(vs.setAlive(1, false).map(\.isUp) == [false])
        #expect(vs.destinations == [dest("a", 0), dest("sorry", 1, sorry: true)])
        #expect(VS.changes(from: full, to: vs.destinations) == [.remove(dest("b", 2)), .update(dest("a", 0)), .update(dest("sorry", 1, sorry: true))])
        let lost = vs.destinations
        #expect(vs.setAlive(1, true).map(\.isUp) == [true])
        // sorry disabled before the pool is re-enabled, as keepalived orders it
        #expect(VS.changes(from: lost, to: vs.destinations) == [.update(dest("sorry", 0, sorry: true)), .update(dest("a", 2)), .add(dest("b", 2))])
    }

    @Test func hysteresisBand() {
        // quorum 3, hysteresis 1: lost below 2, regained at 4.
        var vs = VS(members: (0..<5).map { .init(endpoint: ep("rs\($0)")) }, quorum: 3, hysteresis: 1, sorryServer: .init(endpoint: ep("sorry")))
        #expect(vs.start().map(\.isUp) == [true])
        var events: [(alive: Int, up: Bool)] = []
        func set(_ i: Int, _ alive: Bool) {
            for e in vs.setAlive(i, alive) { events.append((vs.aliveWeight, e.isUp)) }
        }
        set(0, false); set(1, false); set(2, false)  // 4, 3, 2 alive: still inside the band
        #expect(events.isEmpty && vs.isQuorumUp)
        set(3, false)                                  // 1 < 3 - 1
        #expect(events.map(\.alive) == [1] && events.map(\.up) == [false])
        set(0, true); set(1, true)                     // 2, 3 alive: not yet 3 + 1
        #expect(events.count == 1 && vs.isSorryServerActive)
        set(2, true)                                   // 4
        #expect(events.map(\.alive) == [1, 4] && events.map(\.up) == [false, true])
        #expect(!vs.isSorryServerActive)
    }

    @Test func startupQuorumEvents() {
        let alphaMembers: [VS.Member] = (0..<2).map { .init(endpoint: ep("rs\($0)"), isAlive: false) }
        var plain = VS(members: alphaMembers)
        #expect(plain.start().isEmpty)  // quorum down, no sorry server: keepalived stays quiet
        #expect(!plain.isQuorumUp)
        #expect(plain.setAlive(0, true) == [.init(isUp: true, initial: false, threshold: 1, weightSum: 1)])

        var withSorry = VS(members: alphaMembers, sorryServer: .init(endpoint: ep("sorry", 8080)))
        #expect(withSorry.start() == [.init(isUp: false, initial: true, threshold: 1, weightSum: 0)])
        #expect(withSorry.destinations == [VS.Destination(endpoint: ep("sorry", 8080), weight: 1, isSorryServer: true)])
        #expect(withSorry.setAlive(1, true).map(\.isUp) == [true])
        #expect(withSorry.destinations == [dest("rs1", 1)])
    }

    @Test func quorumCountsWeightsNotServers() {
        var vs = VS(members: [.init(endpoint: ep("big"), weight: 3), .init(endpoint: ep("s1")), .init(endpoint: ep("s2"))], quorum: 3, sorryServer: .init(endpoint: ep("sorry")))
        _ = vs.start()
        #expect(vs.aliveWeight == 5)
        #expect(vs.setAlive(0, false).map(\.isUp) == [false])  // 2 < 3
        #expect(vs.setAlive(0, true).map(\.isUp) == [true])
        #expect(vs.setWeight(0, 1).isEmpty)                    // 3 >= 3
        #expect(vs.setWeight(1, 0).map(\.isUp) == [false])     // 2
        #expect(vs.setWeight(1, 0).isEmpty)                    // unchanged weight: no re-evaluation
        #expect(vs.apply(.stillDown, to: 2).isEmpty)
        #expect(vs.apply(.up, to: 1).isEmpty)
    }
}
