/// What every checker kind schedules alike (keepalived's checker threads): stopped, waiting
/// for its next run, or running since a time; the first run comes after the bootstrap delay
/// plus the caller's warmup draw (clamped to 0...warmup, so runs are reproducible); a disabled
/// checker (ha_suspend) keeps its delay_loop cadence without running.
public struct CheckSchedule: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case stopped
        case waiting(until: Int64)
        case running(since: Int64)
    }

    public private(set) var state: State = .stopped
    public var isEnabled = true

    public init() {}

    /// When there is work to do; nil while stopped or while a run is outstanding (the driver
    /// times the run, so a second timer here could only race it).
    public var nextDeadline: Int64? {
        if case .waiting(let t) = state { return t }
        return nil
    }

    public var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    public mutating func start(at now: Int64, randomWarmup: Int64, _ config: TCPCheckConfig) {
        let spread = min(max(randomWarmup, 0), config.warmup)
        state = .waiting(until: now + config.bootstrapDelay + spread)
    }

    public mutating func stop() { state = .stopped }

    /// True when a run is due and starts now.
    public mutating func fire(at now: Int64, _ config: TCPCheckConfig) -> Bool {
        guard case .waiting(let due) = state, now >= due else { return false }
        guard isEnabled else {
            state = .waiting(until: now + config.delayLoop)
            return false
        }
        state = .running(since: now)
        return true
    }

    public mutating func wait(until deadline: Int64) { state = .waiting(until: deadline) }
}
