import HealthCheck
import Testing
import Addressing

/// The whole chain (TCPCheckMachine → RealServerHealth → VirtualServerHealth) on a virtual
/// clock: a server that stops listening at `stop` leaves the pool within
/// delay_loop + connect_timeout × (retry + 1) + delay_before_retry × retry.
@Suite struct DetectionBoundTests {
    struct Outcome {
        var removedAt: Int64?
        var events: [VS.QuorumEvent] = []
    }

    /// RS "a" has one checker and stops answering at `stop`; RS "b" stays healthy (unchecked).
    static func removal(_ cfg: TCPCheckConfig, warmup: Int64, stop: Int64, reply: Reply, inhibit: Bool, until end: Int64) -> Outcome {
        var driver = Driver(cfg)
        var rs = RealServerHealth(checkers: 1, alpha: cfg.alpha)
        var vs = VS(members: [.init(endpoint: ep("a"), weight: 1, inhibitOnFailure: inhibit, isAlive: rs.isAlive),
                              .init(endpoint: ep("b"), weight: 1)])
        var out = Outcome()
        out.events += vs.start()
        _ = driver.machine.start(at: 0, randomWarmup: warmup)
        while let (t, actions) = driver.step(until: end, server: { t in t < stop ? .accept(rtt: 1 * ms) : reply }) {
            for e in rs.apply(actions, checker: 0) { out.events += vs.apply(e, to: 0) }
            let inPool = vs.destinations.contains { $0.endpoint == ep("a") && $0.weight > 0 }
            if !inPool && t >= stop && out.removedAt == nil { out.removedAt = t }
        }
        return out
    }

    @Test(arguments: [Reply.blackhole, .refuse], [false, true])
    func removedWithinTheBound(reply: Reply, inhibit: Bool) throws {
        let cfg = TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 2, delayBeforeRetry: 2 * s)
        let bound = cfg.worstCaseDetection
        #expect(bound == 19 * s)
        var worst: Int64 = 0
        // Stops spread over two check periods, in 50 ms steps, with two warmup phases.
        for warmup in [0, 2_345 * ms] {
            for k in 0..<240 {
                let stop = 20 * s + Int64(k) * 50 * ms
                let r = Self.removal(cfg, warmup: warmup, stop: stop, reply: reply, inhibit: inhibit, until: stop + 60 * s)
                let removedAt = try #require(r.removedAt)
                #expect(removedAt - stop <= bound, "stop \(stop) removed \(removedAt)")
                worst = max(worst, removedAt - stop)
            }
        }
        if reply == .blackhole {
            // Stopping just after a successful check reaches the bound (less the step and rtt).
            #expect(worst > bound - 100 * ms)
        } else {
            #expect(worst <= cfg.delayLoop + cfg.delayBeforeRetry * Int64(cfg.retry))
        }
    }

    @Test func keepalivedDefaultsBound() {
        let cfg = TCPCheckConfig()
        let r = Self.removal(cfg, warmup: 0, stop: 2 * s, reply: .blackhole, inhibit: false, until: 200 * s)
        // ok at 1.001 s; then 61.001 times out at 66.001, the retry at 67.001 at 72.001: down.
        #expect(r.removedAt == 72_001 * ms)
        #expect(r.removedAt! - 1_001 * ms == cfg.worstCaseDetection)
    }

    @Test func aliveCheckerDuringStartupFailsFast() {
        // Not alpha: in the pool from the start; the first failure removes it (no retries).
        let cfg = TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 2, delayBeforeRetry: 2 * s)
        let r = Self.removal(cfg, warmup: 0, stop: 0, reply: .refuse, inhibit: false, until: 30 * s)
        #expect(r.removedAt == 1 * s)
    }

    @Test func allServersGoneBringsTheSorryServerWithinTheBound() throws {
        let cfg = TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 2, delayBeforeRetry: 2 * s)
        var drivers = (0..<3).map { _ in Driver(cfg) }
        var rss = (0..<3).map { _ in RealServerHealth(checkers: 1) }
        var vs = VS(members: (0..<3).map { .init(endpoint: ep("rs\($0)")) }, quorum: 2, sorryServer: .init(endpoint: ep("sorry")))
        var quorum: [(Int64, Bool)] = []
        for e in vs.start() { quorum.append((0, e.isUp)) }
        for i in 0..<3 { _ = drivers[i].machine.start(at: 0, randomWarmup: Int64(i) * 1_700 * ms) }
        let stop = 40 * s
        var sorryAt: Int64?
        while true {
            guard let i = drivers.indices.min(by: { (drivers[$0].nextEvent ?? .max) < (drivers[$1].nextEvent ?? .max) }),
                  let (t, actions) = drivers[i].step(until: 120 * s, server: { t in t < stop ? .accept(rtt: 0) : .blackhole }) else { break }
            for e in rss[i].apply(actions, checker: 0) {
                for q in vs.apply(e, to: i) { quorum.append((t, q.isUp)) }
            }
            if sorryAt == nil && vs.destinations == [dest("sorry", 1, sorry: true)] { sorryAt = t }
        }
        #expect(quorum.map(\.1) == [true, false])
        let at = try #require(sorryAt)
        // The second failure (quorum 2 of 3) decides; every server is detected within the bound.
        #expect(at - stop <= cfg.worstCaseDetection)
        #expect(vs.aliveWeight == 0)
    }
}
