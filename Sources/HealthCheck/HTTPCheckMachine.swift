/// keepalived's HTTP_GET / SSL_GET schedule (check_http.c `epilog` and `timeout_epilog`, 2.2.7)
/// as a pure state machine; the driver fetches one URL per `.fetch` and reports exactly one
/// of `fetchFinished` or `fetchAborted`.
///
/// keepalived's rules, kept because users' timings depend on them: one URL is fetched per run,
/// so a check of N URLs takes N delay_loops; a URL that fails is retried `retry` times,
/// `delay_before_retry` apart, then the server is DOWN and only that URL is tried, every
/// max(delay_loop, delay_before_retry); once it answers, every URL is checked again from the
/// first and the server is UP after the last. `fast_recovery` runs those at once.
public struct HTTPCheckMachine: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Fetch `urls[url]`: connect, (TLS), request and response, each phase within `timeout`.
        case fetch(url: Int, timeout: Int64)
        case reportUp
        case reportDown
    }

    public let config: TCPCheckConfig
    public let urlCount: Int
    public let fastRecovery: Bool
    public private(set) var schedule = CheckSchedule()
    public private(set) var isUp: Bool
    public private(set) var hasRun = false
    /// keepalived's `retry_it`: `retry` at load, so the first failure is already a verdict.
    public private(set) var retryCount: Int
    /// keepalived's `url_it`.
    public private(set) var urlIndex = 0
    /// keepalived's `failed_url`: the URL that took the server down.
    public private(set) var failedURL: Int?
    public var isEnabled: Bool {
        get { schedule.isEnabled }
        set { schedule.isEnabled = newValue }
    }

    public init(config: TCPCheckConfig, urlCount: Int, fastRecovery: Bool = false, startsUp: Bool? = nil) {
        precondition(urlCount >= 1, "an HTTP check has at least one url")
        self.config = config
        self.urlCount = urlCount
        self.fastRecovery = fastRecovery
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
        return [.fetch(url: urlIndex, timeout: config.connectTimeout)]
    }

    private enum Method { case new, retry, failed }

    /// The URL answered as its `url` block wants (success) or not: connect, TLS, write or
    /// read failed or timed out, no data, a status code, digest or regex mismatch.
    public mutating func fetchFinished(success: Bool, at now: Int64) -> [Action] {
        guard schedule.isRunning else { return [] }
        if success { return epilog(.new, at: now) }
        if isUp || !hasRun {
            hasRun = true
            return epilog(.retry, at: now)
        }
        return epilog(.failed, at: now)
    }

    /// The check could not be attempted (socket, bind): keepalived reschedules after
    /// delay_loop without a verdict.
    public mutating func fetchAborted(at now: Int64) -> [Action] {
        guard schedule.isRunning else { return [] }
        schedule.wait(until: now + config.delayLoop)
        return []
    }

    private mutating func epilog(_ method: Method, at now: Int64) -> [Action] {
        var actions: [Action] = []
        var next: Int? = urlIndex
        if method == .new {
            next = urlIndex + 1 < urlCount ? urlIndex + 1 : nil
            retryCount = 0
        } else if method == .retry {
            retryCount += 1
        }
        if method == .new && next == nil && failedURL == nil {
            if !isUp || !hasRun {
                // Also on the first run of a server already up: its first verdict.
                actions.append(.reportUp)
                isUp = true
                hasRun = true
            }
            next = 0
            retryCount = 0
        } else if method == .retry && retryCount > config.retry {
            // keepalived asks `is_up || !has_run` after setting has_run: an alpha checker's
            // first failure reports nothing (the server is out already).
            if isUp {
                isUp = false
                actions.append(.reportDown)
            }
            failedURL = urlIndex
        } else if method == .new && failedURL != nil {
            failedURL = nil
            next = 0
            retryCount = 0
        }
        urlIndex = next ?? 0
        let delay: Int64
        if method == .new {
            delay = config.delayLoop
            if !hasRun { retryCount = config.retry }
        } else if failedURL != nil {
            delay = max(config.delayBeforeRetry, config.delayLoop)
        } else {
            delay = config.delayBeforeRetry
        }
        let immediately = fastRecovery && (!hasRun || (!isUp && failedURL == nil))
        schedule.wait(until: immediately ? now : now + delay)
        return actions
    }
}
