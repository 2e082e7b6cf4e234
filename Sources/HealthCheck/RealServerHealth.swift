/// A real server's aliveness from its checkers, as keepalived's `update_svr_checker_state`
/// keeps it: one failed checker is enough to take the server out, and it returns only when
/// the last failed checker recovers, so no checker can mask another.
public struct RealServerHealth: Sendable, Hashable {
    public enum Event: Sendable, Hashable {
        /// Add (or re-enable) in IPVS, run notify_up, FIFO "UP".
        case up
        /// Remove (or weight 0 with inhibit_on_failure), run notify_down, FIFO "DOWN".
        case down
        /// An alpha checker's first verdict was a failure: nothing changes in IPVS, but
        /// keepalived runs notify_down and writes the FIFO line so operators learn the server
        /// really is down rather than merely unchecked.
        case stillDown
    }

    public let checkerAlpha: [Bool]
    public private(set) var checkerUp: [Bool]
    public private(set) var checkerHasRun: [Bool]
    public private(set) var isAlive: Bool

    /// One flag per checker; alpha is per checker in keepalived (checker → RS → VS).
    public init(checkerAlpha: [Bool]) {
        self.checkerAlpha = checkerAlpha
        checkerUp = checkerAlpha.map { !$0 }
        checkerHasRun = checkerAlpha.map { _ in false }
        isAlive = !checkerAlpha.contains(true)
    }

    /// A server carried over by a reload: each checker's state comes from its migrated (or
    /// new) machine, so `isAlive` is "no checker failed" exactly as it was before.
    public init(checkerAlpha: [Bool], checkerUp: [Bool], checkerHasRun: [Bool]) {
        precondition(checkerAlpha.count == checkerUp.count && checkerUp.count == checkerHasRun.count)
        self.checkerAlpha = checkerAlpha
        self.checkerUp = checkerUp
        self.checkerHasRun = checkerHasRun
        isAlive = !checkerUp.contains(false)
    }

    public init(checkers: Int, alpha: Bool = false) {
        self.init(checkerAlpha: Array(repeating: alpha, count: checkers))
    }

    public var failedCheckers: Int { checkerUp.lazy.filter { !$0 }.count }

    /// Feeds one `.reportUp`/`.reportDown` from checker `index`.
    public mutating func record(checker index: Int, up: Bool) -> Event? {
        if checkerUp[index] == up {
            defer { checkerHasRun[index] = true }
            if !checkerHasRun[index] && (checkerAlpha[index] || !up) && !isAlive { return .stillDown }
            return nil
        }
        checkerHasRun[index] = true
        let failed = failedCheckers
        checkerUp[index] = up
        if up && failed <= 1 && !isAlive {
            isAlive = true
            return .up
        }
        if !up && failed == 0 && isAlive {
            isAlive = false
            return .down
        }
        return nil
    }

    /// Feeds a machine's actions straight through; `.connect` is the driver's business.
    public mutating func apply(_ actions: [TCPCheckMachine.Action], checker index: Int) -> [Event] {
        actions.compactMap { action in
            switch action {
            case .reportUp: return record(checker: index, up: true)
            case .reportDown: return record(checker: index, up: false)
            case .connect: return nil
            }
        }
    }
}
