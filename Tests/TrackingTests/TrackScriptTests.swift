import Testing
import Addressing
import Tracking

/// Feeds results and collects what was reported, so a sequence reads like a log.
private func run(_ state: inout TrackScriptState, _ results: [Bool]) -> [TrackScriptState.Transition?] {
    results.map { state.record(success: $0) }
}

@Suite("Track script counter")
struct TrackScriptStateTests {
    @Test func riseTwoFallTwo() {
        var state = TrackScriptState(rise: 2, fall: 2)
        #expect(!state.isUp && state.awaitingFirstResult && state.result == 1)
        #expect(state.record(success: true) == .becameUp) // one success is enough at start
        #expect(state.isUp && state.result == 3 && !state.awaitingFirstResult)
        #expect(state.record(success: false) == nil)
        #expect(state.isUp && state.result == 2)
        #expect(state.record(success: false) == .becameDown)
        #expect(!state.isUp && state.result == 0)
        #expect(state.record(success: true) == nil)
        #expect(state.record(success: true) == .becameUp)
        #expect(state.result == 3)
    }

    @Test func firstFailureCountsImmediately() {
        var state = TrackScriptState(rise: 3, fall: 5)
        #expect(state.record(success: false) == .becameDown)
        #expect(state.result == 0)
        // From 0 it now takes the full `rise` successes.
        #expect(run(&state, [true, true, true]) == [nil, nil, .becameUp])
        #expect(state.result == 7)
    }

    @Test func initFailStartsDownAndStaysQuietOnFailure() {
        var state = TrackScriptState(rise: 2, fall: 1, initFail: true)
        #expect(!state.isUp && !state.awaitingFirstResult && state.result == 0)
        #expect(run(&state, [false, true, false, true, true]) == [nil, nil, nil, nil, .becameUp])
        #expect(state.isUp)
    }

    @Test func initFailWithRiseOneNeedsOneSuccess() {
        var state = TrackScriptState(rise: 1, fall: 1, initFail: true)
        #expect(state.record(success: true) == .becameUp)
    }

    @Test func riseOneFallOneReportsEveryChange() {
        var state = TrackScriptState()
        #expect(run(&state, [true, true, false, false, true, false])
            == [.becameUp, nil, .becameDown, nil, .becameUp, .becameDown])
    }

    @Test func successRefillsTheFallBudget() {
        var state = TrackScriptState(rise: 1, fall: 3)
        #expect(state.record(success: true) == .becameUp)
        #expect(run(&state, [false, false]) == [nil, nil])
        #expect(state.isUp && state.result == 1)
        #expect(state.record(success: true) == nil) // jumps back to the top
        #expect(state.result == 3)
        #expect(run(&state, [false, false, false]) == [nil, nil, .becameDown])
    }

    @Test func downSuccessesClimbOneByOne() {
        var state = TrackScriptState(rise: 3, fall: 1, initFail: true)
        #expect(state.record(success: true) == nil)
        #expect(state.result == 1)
        #expect(state.record(success: false) == nil) // a failure below rise resets
        #expect(state.result == 0)
        #expect(run(&state, [true, true, true]) == [nil, nil, .becameUp])
    }

    @Test func invariantsOverLongRandomRuns() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for rise in 1...4 {
            for fall in 1...4 {
                for initFail in [false, true] {
                    var state = TrackScriptState(rise: rise, fall: fall, initFail: initFail)
                    var wasUp: Bool? = initFail ? false : nil
                    for _ in 0..<500 {
                        seed = seed &* 6364136223846793005 &+ 1442695040888963407
                        let transition = state.record(success: seed >> 62 != 0)
                        #expect((0...(rise + fall - 1)).contains(state.result))
                        switch transition {
                        case .becameUp: #expect(wasUp != true && state.isUp); wasUp = true
                        case .becameDown: #expect(wasUp != false && !state.isUp); wasUp = false
                        case nil: #expect(wasUp == state.isUp)
                        }
                    }
                }
            }
        }
    }
}

@Suite("Track script schedule")
struct TrackScriptScheduleTests {
    let second: Int64 = 1_000_000

    @Test func firstRunIsImmediateThenEveryInterval() {
        var schedule = TrackScriptSchedule(interval: 2 * second, start: 100)
        #expect(schedule.nextRunAt == 100)
        #expect(schedule.decide(at: 99) == .wait)
        #expect(schedule.decide(at: 100) == .run)
        schedule.runStarted(at: 100)
        #expect(schedule.nextRunAt == 100 + 2 * second)
        #expect(schedule.runFinished(at: 100 + 300) == 300)
        #expect(!schedule.isRunning)
        #expect(schedule.decide(at: 100 + 2 * second - 1) == .wait)
        #expect(schedule.decide(at: 100 + 2 * second) == .run)
    }

    @Test func nextRunIsTimedFromWhenTheTickWasHandled() {
        var schedule = TrackScriptSchedule(interval: second, start: 0)
        #expect(schedule.decide(at: 0) == .run)
        #expect(schedule.decide(at: second + 250) == .run) // loop woke late
        #expect(schedule.nextRunAt == 2 * second + 250)
    }

    @Test func timeoutDefaultsToInterval() {
        #expect(TrackScriptSchedule(interval: 3 * second, start: 0).timeout == 3 * second)
        #expect(TrackScriptSchedule(interval: 3 * second, timeout: 0, start: 0).timeout == 3 * second)
        #expect(TrackScriptSchedule(interval: 3 * second, timeout: second, start: 0).timeout == second)
    }

    @Test func deadlineAndNextEvent() {
        var schedule = TrackScriptSchedule(interval: 5 * second, timeout: 2 * second, start: 0)
        #expect(schedule.runDeadline == nil && schedule.nextEvent == 0)
        #expect(schedule.decide(at: 0) == .run)
        schedule.runStarted(at: 10)
        #expect(schedule.runDeadline == 10 + 2 * second)
        #expect(schedule.nextEvent == 10 + 2 * second)
        schedule.runFinished(at: 20)
        #expect(schedule.runDeadline == nil && schedule.nextEvent == 5 * second)
    }

    @Test func stillRunningSkipsButKeepsTheRhythm() {
        var schedule = TrackScriptSchedule(interval: second, timeout: 5 * second, start: 0)
        #expect(schedule.decide(at: 0) == .run)
        schedule.runStarted(at: 0)
        #expect(schedule.decide(at: second) == .skipStillRunning)
        #expect(schedule.nextRunAt == 2 * second)
        schedule.runFinished(at: second + second / 2)
        #expect(schedule.decide(at: 2 * second) == .run)
    }

    /// The daemon's loop in miniature, on a virtual clock: the script hangs once, the runner
    /// kills it at the deadline, and the timed-out run counts as a failure.
    @Test func hungRunTimesOutAsFailure() {
        var schedule = TrackScriptSchedule(interval: second, start: 0) // timeout = interval
        var state = TrackScriptState(rise: 1, fall: 1)
        var now: Int64 = 0
        var log: [String] = []
        let hangsOnRun = 2
        var runs = 0
        while now <= 6 * second {
            if let deadline = schedule.runDeadline, now >= deadline {
                schedule.runFinished(at: now)
                if let change = state.record(success: false) { log.append("\(now / second) \(change)") }
            }
            switch schedule.decide(at: now) {
            case .run:
                runs += 1
                schedule.runStarted(at: now)
                if runs != hangsOnRun { // a healthy run finishes within a tick
                    schedule.runFinished(at: now + 1000)
                    if let change = state.record(success: true) { log.append("\(now / second) \(change)") }
                }
            case .skipStillRunning: log.append("\(now / second) skip")
            case .wait: break
            }
            now = schedule.nextEvent
        }
        // Run 2 starts at 1 s and its deadline (1 s later) coincides with the next tick, which
        // sees the run already finished: no skip, the failure is reported, then a fresh run.
        #expect(log == ["0 becameUp", "2 becameDown", "2 becameUp"])
        #expect(runs == 7)
    }
}

@Suite struct TrackProcessTests {
    @Test func namesMatchOnTheFifteenBytesOfComm() {
        let p = ProcessPattern(process: "haproxy")
        #expect(p.matches(comm: "haproxy", commandLine: nil) && !p.matches(comm: "haproxy2", commandLine: nil))
        #expect(!ProcessPattern(process: "ssh").matches(comm: "sshd", commandLine: nil), "exact, unlike pgrep")
        #expect(ProcessPattern(process: "a-very-long-process-name").matches(comm: "a-very-long-pro", commandLine: nil))
    }

    @Test func commandLinesMatchAsParamMatchSays() {
        let line = ["/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg", "-Ws"]
        func pattern(_ parameters: [String], _ match: ProcessPattern.ParameterMatch) -> ProcessPattern {
            ProcessPattern(process: "/usr/sbin/haproxy", parameters: parameters, parameterMatch: match, fullCommand: true)
        }
        #expect(pattern([], .none).matches(comm: "haproxy", commandLine: line), "full_command: argv[0], any arguments")
        #expect(!pattern([], .exact).matches(comm: "haproxy", commandLine: line), "param_match without parameters: none allowed")
        #expect(pattern(["-f", "/etc/haproxy/haproxy.cfg", "-Ws"], .exact).matches(comm: "haproxy", commandLine: line))
        #expect(!pattern(["-f", "/etc/haproxy/haproxy.cfg"], .exact).matches(comm: "haproxy", commandLine: line))
        #expect(pattern(["-f", "/etc/haproxy/haproxy.cfg"], .partial).matches(comm: "haproxy", commandLine: line))
        #expect(pattern(["-f", "/etc/haproxy/"], .initial).matches(comm: "haproxy", commandLine: line))
        #expect(!pattern(["-f", "/etc/haproxy/"], .partial).matches(comm: "haproxy", commandLine: line))
        #expect(!pattern([], .none).matches(comm: "haproxy", commandLine: nil))
    }

    @Test func quorumWithDelays() {
        var state = ProcessQuorumState(quorum: 2, quorumMax: 3, forkDelay: 1_000_000, terminateDelay: 500_000)
        var changed = state.record(count: 1, at: 0, first: true)
        #expect(!changed && !state.isUp)
        changed = state.record(count: 2, at: 100_000)
        #expect(!changed && state.pendingUntil == 1_100_000)
        changed = state.record(count: 2, at: 1_100_000)
        #expect(changed && state.isUp)
        changed = state.record(count: 4, at: 1_200_000)
        #expect(!changed, "above quorum_max is down, after terminate_delay")
        changed = state.record(count: 4, at: 1_700_000)
        #expect(changed && !state.isUp)
    }
}
