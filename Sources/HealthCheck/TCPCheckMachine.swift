/// One TCP_CHECK's parameters, already resolved through keepalived's checker → real_server →
/// virtual_server → default chain (reference §5.1). All times are µs on the caller's
/// monotonic clock, like the VRRP core, so tests can drive it with a virtual clock.
public struct TCPCheckConfig: Sendable, Hashable {
    /// keepalived's `BOOTSTRAP_DELAY`: checkers never start in the same second the IPVS
    /// table is programmed, so the first verdict cannot race the initial `NEW_DEST`s.
    public static let keepalivedBootstrapDelay: Int64 = 1_000_000

    public var delayLoop: Int64
    public var connectTimeout: Int64
    public var retry: Int
    public var delayBeforeRetry: Int64
    public var warmup: Int64
    public var alpha: Bool
    public var bootstrapDelay: Int64

    /// Defaults are keepalived's for TCP_CHECK; `warmup` nil means "= delay_loop", as keepalived
    /// resolves it, so changing `delayLoop` alone keeps the start-up spread proportional.
    public init(
        delayLoop: Int64 = 60_000_000,
        connectTimeout: Int64 = 5_000_000,
        retry: Int = 1,
        delayBeforeRetry: Int64 = 1_000_000,
        warmup: Int64? = nil,
        alpha: Bool = false,
        bootstrapDelay: Int64 = TCPCheckConfig.keepalivedBootstrapDelay
    ) {
        precondition(delayLoop >= 1 && connectTimeout >= 1, "keepalived timers are at least 1 µs")
        precondition(retry >= 0 && delayBeforeRetry >= 0 && bootstrapDelay >= 0)
        self.delayLoop = delayLoop
        self.connectTimeout = connectTimeout
        self.retry = retry
        self.delayBeforeRetry = delayBeforeRetry
        self.warmup = max(0, warmup ?? delayLoop)
        self.alpha = alpha
        self.bootstrapDelay = bootstrapDelay
    }

    /// Longest time from the last successful check of an UP checker until it reports down,
    /// when every later attempt hangs for the full connect timeout: the reschedule, then
    /// `retry + 1` timed-out attempts separated by `retry` back-offs.
    public var worstCaseDetection: Int64 {
        delayLoop + connectTimeout * Int64(retry + 1) + delayBeforeRetry * Int64(retry)
    }
}

/// keepalived's TCP_CHECK (`tcp_connect_thread` → `tcp_check_thread` → `tcp_epilog`, the 2.2
/// form) as a pure state machine. The driver owns the socket and the connect timeout: it
/// carries out `.connect(timeout:)` and reports back exactly one of `connectFinished` or
/// `connectAborted`; the machine only decides verdicts and when to run next.
public struct TCPCheckMachine: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Open a non-blocking connect, give up after `timeout` µs, close at once either way.
        case connect(timeout: Int64)
        /// keepalived's `update_svr_checker_state(UP/DOWN)`. Also sent for the first verdict
        /// when it matches the initial state, because keepalived notifies on that first run
        /// under alpha; `RealServerHealth` turns these into real-server events.
        case reportUp
        case reportDown
    }

    public enum Phase: Sendable, Hashable {
        case stopped
        case waiting(until: Int64)
        case connecting(since: Int64)
    }

    public let config: TCPCheckConfig
    public private(set) var schedule = CheckSchedule()
    public var phase: Phase {
        switch schedule.state {
        case .stopped: .stopped
        case .waiting(let until): .waiting(until: until)
        case .running(let since): .connecting(since: since)
        }
    }
    /// keepalived's `is_up`: alpha checkers start failed, others start passing, so without
    /// alpha a real server is in the pool before it was ever checked.
    public private(set) var isUp: Bool
    public private(set) var hasRun = false
    /// keepalived's `retry_it`. It starts at `retry` (as on a fresh load, not a reload) so the
    /// very first failure is a verdict: there is nothing known-good to protect with retries yet.
    public private(set) var retryCount: Int
    /// keepalived's `enabled` (ha_suspend): a disabled checker keeps its schedule but does not
    /// connect, so it resumes on its own cadence once the VIP is back.
    public var isEnabled: Bool {
        get { schedule.isEnabled }
        set { schedule.isEnabled = newValue }
    }

    public init(config: TCPCheckConfig) {
        self.init(config: config, startsUp: !config.alpha)
    }

    /// A checker added to a real server by a reload starts from the server's state rather
    /// than its own default, as keepalived's `migrate_checkers` does: an alpha checker of a
    /// healthy server starts up, so adding it does not take the server out before it ran.
    public init(config: TCPCheckConfig, startsUp: Bool) {
        self.config = config
        isUp = startsUp
        retryCount = config.retry
    }

    /// When `timerFired` has work to do; nil while stopped or while a connect is outstanding
    /// (the driver times the connect, so a second timer here could only race it).
    public var nextDeadline: Int64? { schedule.nextDeadline }

    /// Schedules the first check after the bootstrap delay plus `randomWarmup`, clamped to
    /// 0...warmup. The random draw is the caller's so runs are reproducible.
    public mutating func start(at now: Int64, randomWarmup: Int64) -> [Action] {
        schedule.start(at: now, randomWarmup: randomWarmup, config)
        return timerFired(at: now)
    }

    /// keepalived's own draw: uniform in 0...warmup, spreading simultaneous checks to one RS.
    public mutating func start(at now: Int64) -> [Action] {
        start(at: now, randomWarmup: config.warmup > 0 ? Int64.random(in: 0...config.warmup) : 0)
    }

    public mutating func stop() { schedule.stop() }

    public mutating func timerFired(at now: Int64) -> [Action] {
        guard schedule.fire(at: now, config) else { return [] }
        return [.connect(timeout: config.connectTimeout)]
    }

    /// `tcp_epilog`. A failure of an UP checker with retries left backs off by
    /// delay_before_retry; a DOWN checker is not retried (it gets one try per delay_loop) and a
    /// single success brings it back, which is keepalived's asymmetry.
    public mutating func connectFinished(success: Bool, at now: Int64) -> [Action] {
        guard schedule.isRunning else { return [] }
        var delay = config.delayLoop
        var actions: [Action] = []
        if success || ((isUp || !hasRun) && retryCount >= config.retry) {
            retryCount = 0
            if success && (!isUp || !hasRun) {
                isUp = true
                actions.append(.reportUp)
            } else if !success && (isUp || !hasRun) {
                isUp = false
                actions.append(.reportDown)
            }
        } else if isUp {
            delay = config.delayBeforeRetry
            retryCount += 1
        }
        hasRun = true
        schedule.wait(until: now + delay)
        return actions
    }

    /// The check could not be run at all (socket(), bind, SO_MARK, an unexpected connect errno):
    /// keepalived logs "Rescheduling" and tries again after delay_loop without a verdict, so a
    /// local problem never takes real servers out of the pool.
    public mutating func connectAborted(at now: Int64) -> [Action] {
        guard schedule.isRunning else { return [] }
        schedule.wait(until: now + config.delayLoop)
        return []
    }
}
