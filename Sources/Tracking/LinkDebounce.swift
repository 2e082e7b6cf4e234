/// keepalived's interface_up_down_delays for the links the instances track: a link that goes
/// down (up) is shown so only once it has stayed so for the link's delay, and a flap back
/// within it is no transition at all ("Delay timer for eth0 cancelled"). As keepalived, the
/// delay applies only to a link seen up before: the first up of a link that started down is
/// at once.
public struct LinkDebounce: Sendable {
    public struct Delays: Hashable, Sendable {
        public var down: Int64
        public var up: Int64
        public init(down: Int64, up: Int64) {
            self.down = down
            self.up = up
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// Show the new state now.
        case now
        /// Shown at that time unless it flips back first.
        case delayed(until: Int64)
        /// It flipped back before its delay ended: nothing to show.
        case cancelled
        /// As shown, or as already pending.
        case unchanged
    }

    /// By link name (a VMAC has its parent's).
    public var delays: [String: Delays]
    private var seenUp: Set<String> = []
    private var pending: [String: (up: Bool, at: Int64)] = [:]

    public init(delays: [String: Delays] = [:]) { self.delays = delays }

    /// The link is `up` now, and the instances are shown `shown`.
    public mutating func observe(_ name: String, up: Bool, shown: Bool, at now: Int64) -> Outcome {
        if shown { seenUp.insert(name) }
        if let waiting = pending[name] {
            if waiting.up == up { return .unchanged }
            pending[name] = nil
            return .cancelled
        }
        guard up != shown else { return .unchanged }
        let delay = delays[name].map { up ? $0.up : $0.down } ?? 0
        if delay > 0 && seenUp.contains(name) {
            pending[name] = (up, now + delay)
            return .delayed(until: now + delay)
        }
        if up { seenUp.insert(name) }
        return .now
    }

    public var nextDeadline: Int64? { pending.values.map(\.at).min() }

    /// The changes whose delay has ended, by name: show them now.
    public mutating func due(at now: Int64) -> [(name: String, up: Bool)] {
        // Asked on every wake of the loop; nearly always nothing is pending.
        guard !pending.isEmpty else { return [] }
        let ended = pending.filter { $0.value.at <= now }.map { (name: $0.key, up: $0.value.up) }.sorted { $0.name < $1.name }
        for change in ended {
            pending[change.name] = nil
            if change.up { seenUp.insert(change.name) }
        }
        return ended
    }

    /// A reload: links no longer tracked are forgotten, with their pending changes.
    public mutating func keep(only names: Set<String>, delays: [String: Delays]) {
        self.delays = delays
        pending = pending.filter { names.contains($0.key) }
        seenUp = seenUp.intersection(names)
    }
}
