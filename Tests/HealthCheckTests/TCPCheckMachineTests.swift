import HealthCheck
import Testing
import Addressing

@Suite struct TCPCheckMachineTests {
    @Test func keepalivedDefaults() {
        let c = TCPCheckConfig()
        #expect(c.delayLoop == 60 * s)
        #expect(c.connectTimeout == 5 * s)
        #expect(c.retry == 1)
        #expect(c.delayBeforeRetry == 1 * s)
        #expect(c.warmup == 60 * s)
        #expect(c.alpha == false)
        #expect(c.bootstrapDelay == 1 * s)
        #expect(TCPCheckConfig(delayLoop: 10 * s).warmup == 10 * s)
        #expect(TCPCheckConfig(delayLoop: 10 * s, warmup: 0).warmup == 0)
        #expect(c.worstCaseDetection == 71 * s)
        let m = TCPCheckMachine(config: c)
        #expect(m.isUp && !m.hasRun && m.retryCount == 1 && m.phase == .stopped && m.nextDeadline == nil)
    }

    @Test func firstCheckAfterBootstrapPlusRandomWarmup() {
        var m = TCPCheckMachine(config: TCPCheckConfig(delayLoop: 6 * s, warmup: 4 * s))
        #expect(m.start(at: 100 * s, randomWarmup: 2_500 * ms).isEmpty)
        #expect(m.nextDeadline == 103_500 * ms)
        #expect(m.timerFired(at: 103_499 * ms).isEmpty)
        #expect(m.timerFired(at: 103_500 * ms) == [.connect(timeout: 5 * s)])
        #expect(m.phase == .connecting(since: 103_500 * ms))
        #expect(m.nextDeadline == nil)

        var clamped = TCPCheckMachine(config: TCPCheckConfig(delayLoop: 6 * s, warmup: 4 * s))
        _ = clamped.start(at: 0, randomWarmup: 99 * s)
        #expect(clamped.nextDeadline == 5 * s)
        _ = clamped.start(at: 0, randomWarmup: -3)
        #expect(clamped.nextDeadline == 1 * s)

        var immediate = TCPCheckMachine(config: TCPCheckConfig(warmup: 0, bootstrapDelay: 0))
        #expect(immediate.start(at: 7, randomWarmup: 0) == [.connect(timeout: 5 * s)])

        for _ in 0..<100 {
            var r = TCPCheckMachine(config: TCPCheckConfig(delayLoop: 6 * s, warmup: 4 * s))
            _ = r.start(at: 0)
            #expect((1 * s...5 * s).contains(r.nextDeadline!))
        }
    }

    /// delay_loop 6, connect_timeout 3, retry 2, delay_before_retry 2: the server stops
    /// answering at 20 s and is back at 50 s.
    @Test func retrySequenceWithTimeouts() {
        var d = Driver(TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 2, delayBeforeRetry: 2 * s))
        _ = d.machine.start(at: 0, randomWarmup: 0)
        d.run(until: 60 * s) { t in (20 * s..<50 * s).contains(t) ? .blackhole : .accept(rtt: 0) }
        #expect(d.steps == [
            .connect(1 * s), .up(1 * s),   // first verdict is reported even though already up
            .connect(7 * s), .connect(13 * s), .connect(19 * s),
            .connect(25 * s),              // times out at 28
            .connect(30 * s),              // 28 + delay_before_retry; times out at 33
            .connect(35 * s),              // times out at 38: third failure = retry + 1
            .down(38 * s),
            .connect(44 * s),              // down: plain delay_loop, no retries; times out at 47
            .connect(53 * s), .up(53 * s), // one success is enough to come back
            .connect(59 * s),
        ])
    }

    @Test func retrySequenceWithRefusals() {
        var d = Driver(TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 2, delayBeforeRetry: 2 * s))
        _ = d.machine.start(at: 0, randomWarmup: 0)
        d.run(until: 36 * s) { t in t >= 20 * s ? .refuse : .accept(rtt: 10 * ms) }
        #expect(d.steps == [
            .connect(1 * s), .up(1_010 * ms),
            .connect(7_010 * ms), .connect(13_020 * ms), .connect(19_030 * ms),
            .connect(25_040 * ms), .connect(27_040 * ms), .connect(29_040 * ms), .down(29_040 * ms),
            .connect(35_040 * ms),
        ])
        #expect(d.machine.retryCount == 0)
    }

    @Test func firstFailureAtStartupNeedsNoRetries() {
        var d = Driver(TCPCheckConfig(delayLoop: 6 * s, connectTimeout: 3 * s, retry: 3, delayBeforeRetry: 2 * s))
        _ = d.machine.start(at: 0, randomWarmup: 500 * ms)
        d.run(until: 20 * s) { _ in .refuse }
        #expect(d.steps == [.connect(1_500 * ms), .down(1_500 * ms), .connect(7_500 * ms), .connect(13_500 * ms), .connect(19_500 * ms)])
    }

    @Test func aSuccessResetsTheRetryCount() {
        // retry 2: two failures, a success, two failures, a success: never three in a row.
        let failing: Set<Int64> = [3 * s, 4 * s, 7 * s, 8 * s]
        var d = Driver(TCPCheckConfig(delayLoop: 2 * s, connectTimeout: 1 * s, retry: 2, delayBeforeRetry: 1 * s))
        _ = d.machine.start(at: 0, randomWarmup: 0)
        d.run(until: 11 * s) { t in failing.contains(t) ? .refuse : .accept(rtt: 0) }
        #expect(d.steps == [.connect(1 * s), .up(1 * s)] + [3, 4, 5, 7, 8, 9, 11].map { .connect($0 * s) })
        #expect(d.machine.isUp)
    }

    @Test func alphaStartsDownAndReportsItsFirstFailure() {
        var m = TCPCheckMachine(config: TCPCheckConfig(retry: 3, alpha: true))
        #expect(!m.isUp)
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(m.timerFired(at: 1 * s) == [.connect(timeout: 5 * s)])
        #expect(m.connectFinished(success: false, at: 1 * s) == [.reportDown])
        #expect(m.nextDeadline == 61 * s)
        #expect(m.timerFired(at: 61 * s).count == 1)
        #expect(m.connectFinished(success: false, at: 62 * s).isEmpty)
        #expect(m.nextDeadline == 122 * s)
        _ = m.timerFired(at: 122 * s)
        #expect(m.connectFinished(success: true, at: 122 * s) == [.reportUp])
        #expect(m.isUp && m.retryCount == 0)

        var ok = TCPCheckMachine(config: TCPCheckConfig(alpha: true))
        _ = ok.start(at: 0, randomWarmup: 0)
        _ = ok.timerFired(at: 1 * s)
        #expect(ok.connectFinished(success: true, at: 1 * s) == [.reportUp])
    }

    @Test func abortedCheckReschedulesWithoutAVerdict() {
        var m = TCPCheckMachine(config: TCPCheckConfig(delayLoop: 6 * s, retry: 2))
        _ = m.start(at: 0, randomWarmup: 0)
        _ = m.timerFired(at: 1 * s)
        #expect(m.connectAborted(at: 1 * s).isEmpty)
        #expect(m.nextDeadline == 7 * s && m.isUp && !m.hasRun && m.retryCount == 2)
        #expect(m.connectAborted(at: 2 * s).isEmpty)  // not connecting: ignored
        #expect(m.nextDeadline == 7 * s)
    }

    @Test func disabledCheckerKeepsItsCadenceWithoutConnecting() {
        var m = TCPCheckMachine(config: TCPCheckConfig(delayLoop: 6 * s))
        m.isEnabled = false
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(m.timerFired(at: 1 * s).isEmpty)
        #expect(m.nextDeadline == 7 * s)
        m.isEnabled = true
        #expect(m.timerFired(at: 7 * s) == [.connect(timeout: 5 * s)])
    }

    @Test func strayInputsAreIgnored() {
        var m = TCPCheckMachine(config: TCPCheckConfig())
        #expect(m.timerFired(at: 100 * s).isEmpty)                 // not started
        #expect(m.connectFinished(success: false, at: 0).isEmpty)  // nothing outstanding
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(m.connectFinished(success: false, at: 0).isEmpty)
        _ = m.timerFired(at: 1 * s)
        #expect(m.timerFired(at: 2 * s).isEmpty)                   // connect still outstanding
        m.stop()
        #expect(m.nextDeadline == nil)
        #expect(m.connectFinished(success: true, at: 3 * s).isEmpty)
    }
}
