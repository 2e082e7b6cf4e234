/// keepalived's MISC_CHECK (check_misc.c `misc_check_child_thread`, 2.2.7) as a pure state
/// machine: the driver runs `misc_path` with `.run(timeout:)` (SIGTERM at the timeout, SIGKILL
/// after) and reports how it ended.
///
/// Exit 0 is up; with `misc_dynamic`, 2–255 is up with weight `status − 2` (a change of status
/// sets the weight); anything else, a signal or the timeout is a failure, retried `retry`
/// times `delay_before_retry` apart before the server is DOWN. The next run is a delay after
/// the last one *started*, as keepalived schedules it from `last_ran`.
public struct MiscCheckMachine: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case run(timeout: Int64)
        case reportUp
        case reportDown
        /// misc_dynamic: the real server's weight (nil: back to the configured one).
        case setWeight(Int?)
    }

    public enum Result: Sendable, Hashable {
        case exited(Int)
        case signaled(Int)
        case timedOut
    }

    public let config: TCPCheckConfig
    public let timeout: Int64
    public let dynamic: Bool
    public private(set) var schedule = CheckSchedule()
    public private(set) var isUp: Bool
    public private(set) var hasRun = false
    /// keepalived's `retry_it`: `retry` at load, so the first failure is already a verdict.
    public private(set) var retryCount: Int
    /// keepalived's `last_exit_code`.
    public private(set) var lastExitCode = 0
    public var isEnabled: Bool {
        get { schedule.isEnabled }
        set { schedule.isEnabled = newValue }
    }

    public init(config: TCPCheckConfig, timeout: Int64, dynamic: Bool, startsUp: Bool? = nil) {
        self.config = config
        self.timeout = max(1, timeout)
        self.dynamic = dynamic
        isUp = startsUp ?? !config.alpha
        retryCount = config.retry
    }

    public var nextDeadline: Int64? { schedule.nextDeadline }

    public mutating func start(at now: Int64, randomWarmup: Int64) -> [Action] {
        schedule.start(at: now, randomWarmup: randomWarmup, config)
        return timerFired(at: now)
    }

    public mutating func stop() { schedule.stop() }

    public mutating func timerFired(at now: Int64) -> [Action] {
        guard schedule.fire(at: now, config) else { return [] }
        return [.run(timeout: timeout)]
    }

    /// The script could not be started: no verdict, tried again after delay_loop.
    public mutating func runAborted(at now: Int64) -> [Action] {
        guard schedule.isRunning else { return [] }
        schedule.wait(until: now + config.delayLoop)
        return []
    }

    public mutating func runFinished(_ result: Result, at now: Int64) -> [Action] {
        guard case .running(let started) = schedule.state else { return [] }
        var actions: [Action] = []
        var success = false
        var failed = false
        if case .exited(let status) = result, status == 0 || (dynamic && (2...255).contains(status)) {
            if status != lastExitCode {
                actions.append(.setWeight(status == 0 ? nil : status - 2))
                lastExitCode = status
            }
            success = !isUp || !hasRun
            retryCount = 0
        } else if isUp || !hasRun {
            if retryCount < config.retry {
                retryCount += 1
            } else {
                retryCount = 0
                if case .exited(let status) = result { lastExitCode = status }
                failed = true
            }
        }
        if success {
            isUp = true
            hasRun = true
            actions.append(.reportUp)
        } else if failed {
            isUp = false
            hasRun = true
            actions.append(.reportDown)
            if dynamic { actions.append(.setWeight(nil)) }
        }
        let next = started + (retryCount > 0 ? config.delayBeforeRetry : config.delayLoop)
        schedule.wait(until: max(now, next))
        return actions
    }
}
