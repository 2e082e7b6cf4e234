/// A virtual server's pool: which destinations IPVS should hold, given the real servers'
/// aliveness, inhibit_on_failure, quorum/hysteresis and the sorry server (ipwrapper.c
/// `perform_svr_state`, `update_quorum_state`, `perform_quorum_state`, `init_service_rs`).
///
/// keepalived issues commands one transition at a time; here the result is a desired set the
/// driver diffs against what it programmed (`changes(from:to:)`), which gives the same table
/// and lets a reload or a failed netlink call converge instead of drifting. Generic over the
/// address type so the daemon can use its own.
public struct VirtualServerHealth<Address: Hashable & Sendable>: Sendable {
    public struct Endpoint: Hashable, Sendable {
        public var address: Address
        public var port: UInt16
        public init(address: Address, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    public struct Member: Hashable, Sendable {
        public var endpoint: Endpoint
        public var weight: Int
        public var inhibitOnFailure: Bool
        public var isAlive: Bool
        /// `isAlive` is the start-up state, i.e. `RealServerHealth.isAlive` before any check
        /// (true unless alpha), because keepalived programs the pool before checking.
        public init(endpoint: Endpoint, weight: Int = 1, inhibitOnFailure: Bool = false, isAlive: Bool = true) {
            self.endpoint = endpoint
            self.weight = weight
            self.inhibitOnFailure = inhibitOnFailure
            self.isAlive = isAlive
        }
    }

    public struct SorryServer: Hashable, Sendable {
        public var endpoint: Endpoint
        /// sorry_server_inhibit: kept at weight 0 while unused, so its connections drain
        /// instead of being cut when quorum returns.
        public var inhibit: Bool
        /// keepalived gives the sorry server weight 1 and has no keyword to change it.
        public var weight: Int
        public init(endpoint: Endpoint, inhibit: Bool = false, weight: Int = 1) {
            self.endpoint = endpoint
            self.inhibit = inhibit
            self.weight = weight
        }
    }

    public struct Destination: Hashable, Sendable {
        public var endpoint: Endpoint
        public var weight: Int
        public var isSorryServer: Bool
        public init(endpoint: Endpoint, weight: Int, isSorryServer: Bool = false) {
            self.endpoint = endpoint
            self.weight = weight
            self.isSorryServer = isSorryServer
        }
    }

    /// For quorum_up / quorum_down and the FIFO "VS … UP|DOWN" line. `initial` is keepalived's
    /// "Starting with quorum up/down" case: the scripts run at start-up too.
    public struct QuorumEvent: Hashable, Sendable {
        public var isUp: Bool
        public var initial: Bool
        public var threshold: Int
        public var weightSum: Int
        public init(isUp: Bool, initial: Bool, threshold: Int, weightSum: Int) {
            self.isUp = isUp
            self.initial = initial
            self.threshold = threshold
            self.weightSum = weightSum
        }
    }

    public enum Change: Hashable, Sendable {
        case add(Destination)     // IPVS_CMD_NEW_DEST
        case update(Destination)  // IPVS_CMD_SET_DEST (weight)
        case remove(Destination)  // IPVS_CMD_DEL_DEST
    }

    public private(set) var members: [Member]
    public let quorum: Int
    public let hysteresis: Int
    public let sorryServer: SorryServer?
    /// keepalived evaluates quorum at load before any server is alive, so a VS starts with
    /// quorum down and `start()` reports the first real state.
    public private(set) var isQuorumUp = false
    public private(set) var isSorryServerActive = false
    public private(set) var isStarted = false

    public init(members: [Member], quorum: Int = 1, hysteresis: Int = 0, sorryServer: SorryServer? = nil) {
        self.members = members
        self.quorum = quorum
        self.hysteresis = hysteresis
        self.sorryServer = sorryServer
    }

    /// Σ weight of alive members (keepalived's `weigh_live_realservers`).
    public var aliveWeight: Int {
        members.reduce(0) { $0 + ($1.isAlive ? Self.ipvsWeight($1.weight) : 0) }
    }

    /// `init_services`: the pool is programmed, then quorum is evaluated with `init` set.
    public mutating func start() -> [QuorumEvent] {
        isStarted = true
        return updateQuorum(initial: true)
    }

    /// A reload: the same virtual server under a new configuration continues from the old
    /// quorum state (keepalived copies it), so only a real change of quorum is reported and
    /// the quorum scripts do not run again for a state that did not change.
    public mutating func resume(quorumUp: Bool) -> [QuorumEvent] {
        isStarted = true
        isQuorumUp = quorumUp
        isSorryServerActive = !quorumUp && sorryServer != nil
        return updateQuorum(initial: false)
    }

    public mutating func setAlive(_ index: Int, _ alive: Bool) -> [QuorumEvent] {
        guard members[index].isAlive != alive else { return [] }
        members[index].isAlive = alive
        return isStarted ? updateQuorum(initial: false) : []
    }

    /// MISC_CHECK misc_dynamic / FILE_CHECK weight changes (`update_svr_wgt`).
    public mutating func setWeight(_ index: Int, _ weight: Int) -> [QuorumEvent] {
        let changed = Self.ipvsWeight(members[index].weight) != Self.ipvsWeight(weight)
        members[index].weight = weight
        return changed && isStarted ? updateQuorum(initial: false) : []
    }

    public mutating func apply(_ event: RealServerHealth.Event, to index: Int) -> [QuorumEvent] {
        switch event {
        case .up: return setAlive(index, true)
        case .down: return setAlive(index, false)
        case .stillDown: return []
        }
    }

    /// What IPVS holds after keepalived has processed the same history. While the sorry server
    /// serves, alive members are out too: keepalived only tracks their state then, and a
    /// partial pool is exactly what quorum exists to avoid. Inhibited members stay at weight 0
    /// throughout so their established connections keep flowing.
    public var destinations: [Destination] {
        guard isStarted else { return [] }
        var out: [Destination] = []
        for m in members {
            if !isSorryServerActive && m.isAlive {
                out.append(Destination(endpoint: m.endpoint, weight: Self.ipvsWeight(m.weight)))
            } else if m.inhibitOnFailure {
                out.append(Destination(endpoint: m.endpoint, weight: 0))
            }
        }
        if let s = sorryServer, isSorryServerActive || s.inhibit {
            out.append(Destination(endpoint: s.endpoint, weight: isSorryServerActive ? Self.ipvsWeight(s.weight) : 0, isSorryServer: true))
        }
        return out
    }

    /// Commands to go from `current` to `desired`, matched by endpoint. The pool shrinks
    /// before it grows (removals, weight cuts, weight raises, additions), which is keepalived's
    /// order on both quorum loss (RSs out, sorry in) and gain (sorry out, RSs in).
    public static func changes(from current: [Destination], to desired: [Destination]) -> [Change] {
        var now: [Endpoint: Destination] = [:]
        for d in current { now[d.endpoint] = d }
        var wanted: Set<Endpoint> = []
        for d in desired { wanted.insert(d.endpoint) }
        var removes: [Change] = [], cuts: [Change] = [], raises: [Change] = [], adds: [Change] = []
        for d in current where !wanted.contains(d.endpoint) { removes.append(.remove(d)) }
        for d in desired {
            guard let old = now[d.endpoint] else { adds.append(.add(d)); continue }
            if old.weight > d.weight { cuts.append(.update(d)) } else if old.weight < d.weight { raises.append(.update(d)) }
        }
        return removes + cuts + raises + adds
    }

    /// `update_quorum_state`: hysteresis widens the band in whichever direction would flip the
    /// state, so a pool hovering around `quorum` does not flap the sorry server and scripts.
    private mutating func updateQuorum(initial: Bool) -> [QuorumEvent] {
        let sum = aliveWeight
        let threshold = quorum + (isQuorumUp ? -hysteresis : hysteresis)
        if !isQuorumUp && sum >= threshold {
            isQuorumUp = true
            isSorryServerActive = false
            return [QuorumEvent(isUp: true, initial: initial, threshold: threshold, weightSum: sum)]
        }
        if (isQuorumUp && (sum == 0 || sum < threshold))
            || (initial && !isQuorumUp && sorryServer != nil && !isSorryServerActive) {
            isQuorumUp = false
            if sorryServer != nil { isSorryServerActive = true }
            return [QuorumEvent(isUp: false, initial: initial, threshold: threshold, weightSum: sum)]
        }
        return []
    }

    /// keepalived's `real_weight`: IPVS weights are 0...INT32_MAX.
    static func ipvsWeight(_ w: Int) -> Int { min(max(w, 0), Int(Int32.max)) }
}
