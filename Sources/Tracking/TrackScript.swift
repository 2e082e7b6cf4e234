/// keepalived's vrrp_script verdict (vrrp_scheduler.c `vrrp_script_child_thread`), kept as the
/// same saturating counter so rise/fall hysteresis and the start-up shortcut match exactly.
///
/// `result` lives in 0...rise+fall-1 and the script is up when `result >= rise`. Starting at
/// rise-1 means one success is enough at start-up; a success from rise-1 or above jumps to the
/// top, so it then takes `fall` failures to go down, and a failure at or below `rise` drops to
/// 0, so it then takes `rise` successes to come back.
public struct TrackScriptState: Sendable, Equatable {
    public enum Transition: Sendable, Equatable { case becameUp, becameDown }

    public let rise: Int
    public let fall: Int
    public private(set) var result: Int
    /// No run has finished yet (keepalived's SCRIPT_INIT_STATE_INIT). Weight-0 scripts in this
    /// state hold their instance back and weighted ones contribute nothing, so callers need it;
    /// it is also why the first failure is reported although `isUp` was already false.
    public private(set) var awaitingFirstResult: Bool

    /// `init_fail` starts at 0 (known bad, `rise` successes to come up) and, being a verdict
    /// already, does not report its first failure.
    public init(rise: Int = 1, fall: Int = 1, initFail: Bool = false) {
        precondition(rise >= 1 && fall >= 1, "rise and fall are at least 1")
        self.rise = rise
        self.fall = fall
        result = initFail ? 0 : rise - 1
        awaitingFirstResult = !initFail
    }

    public var isUp: Bool { result >= rise }

    /// A reload that changed rise, fall or init_fail of a script running the same command:
    /// keepalived maps the old verdict onto the new counts ("considered successful on
    /// reload"), so an up script stays up until `fall` failures and a down one stays down
    /// until `rise` successes; a script still waiting for its first result keeps waiting.
    public init(carryingOver old: TrackScriptState, rise: Int, fall: Int, initFail: Bool) {
        self.init(rise: rise, fall: fall, initFail: initFail)
        guard !old.awaitingFirstResult else { return }
        result = old.isUp ? rise + fall - 1 : 0
        awaitingFirstResult = false
    }

    /// Feeds one finished run (exit 0 is success; any other exit, a signal or a timeout is a
    /// failure) and returns the crossing to report, if any.
    public mutating func record(success: Bool) -> Transition? {
        let top = rise + fall - 1
        var transition: Transition?
        if success {
            if result < rise - 1 {
                result += 1
            } else if result != top {
                if result < rise { transition = .becameUp }
                result = top
            }
        } else if result > rise {
            result -= 1
        } else {
            if result == rise || awaitingFirstResult { transition = .becameDown }
            result = 0
        }
        awaitingFirstResult = false
        return transition
    }
}

/// When a track script is due, on a caller-supplied monotonic clock (µs) so the daemon and
/// tests drive it the same way. As in keepalived the next run is timed from the moment the
/// previous one was due, not from when it finished, and a run that is still going when the
/// next one is due makes that one skip ("already running … skipping run") rather than pile up.
public struct TrackScriptSchedule: Sendable, Equatable {
    public enum Decision: Sendable, Equatable { case wait, run, skipStillRunning }

    public let interval: Int64
    public let timeout: Int64
    public private(set) var nextRunAt: Int64
    public private(set) var runStartedAt: Int64?

    /// A nil or non-positive timeout means "the interval" (keepalived's `VRRP_SCRIPT_DT 0`).
    /// The first run is due at once, as keepalived queues it as an event, not a timer.
    public init(interval: Int64, timeout: Int64? = nil, start: Int64) {
        precondition(interval > 0, "interval must be positive")
        self.interval = interval
        self.timeout = timeout.flatMap { $0 > 0 ? $0 : nil } ?? interval
        nextRunAt = start
    }

    /// A reload that changed the interval or timeout: a run in flight is still awaited, and
    /// the next run comes no later than one new interval from now, so neither a longer nor a
    /// shorter interval skips or doubles a run.
    public init(continuing old: TrackScriptSchedule, interval: Int64, timeout: Int64?, now: Int64) {
        self.init(interval: interval, timeout: timeout, start: min(old.nextRunAt, now + interval))
        runStartedAt = old.runStartedAt
    }

    public var isRunning: Bool { runStartedAt != nil }
    /// When the current run counts as timed out (a failure); the runner enforces it.
    public var runDeadline: Int64? { runStartedAt.map { $0 + timeout } }
    /// The earliest instant this script needs attention, for the event loop's poll timeout.
    public var nextEvent: Int64 { min(nextRunAt, runDeadline ?? .max) }

    /// Consumes a due tick: the caller should start the script on `.run` and then call
    /// `runStarted(at:)`; `.skipStillRunning` is only worth a log line.
    public mutating func decide(at now: Int64) -> Decision {
        guard now >= nextRunAt else { return .wait }
        nextRunAt = now + interval
        return isRunning ? .skipStillRunning : .run
    }

    public mutating func runStarted(at now: Int64) { runStartedAt = now }

    /// Returns how long the run took, for logging slow scripts.
    @discardableResult
    public mutating func runFinished(at now: Int64) -> Int64 {
        defer { runStartedAt = nil }
        return runStartedAt.map { now - $0 } ?? 0
    }
}
