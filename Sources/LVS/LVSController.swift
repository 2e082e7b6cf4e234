// The checker half of the daemon without I/O: every TCP_CHECK's machine, every real server's
// aliveness and every virtual server's quorum, driven by a clock value and probe results. It
// answers "which connects to start", "what happened" (for logs and notify scripts) and "what
// IPVS should hold now". The daemon owns the sockets and the netlink calls.
import Addressing
import HealthCheck
import IPVS
import VigilConfig

/// Identifies one checker: virtual server, real server, checker, as indices into the specs,
/// plus its position in the controller's flat checker list (`index`), which is what the hot
/// path uses: an array subscript instead of hashing three integers per check.
public struct CheckerID: Hashable, Sendable {
    public var virtualServer: Int
    public var realServer: Int
    public var checker: Int
    public var index: Int
}

public enum LVSEvent: Sendable {
    /// Start a non-blocking connect to `target(of:)`; report back with `probeFinished`.
    case connect(CheckerID, timeout: Int64)
    /// A checker's verdict changed (keepalived logs these: "TCP connection to … success.",
    /// "TCP_CHECK on service … failed after N retries.").
    case checkerVerdict(CheckerID, up: Bool)
    /// A real server entered or left the pool; run notify_up / notify_down.
    case realServer(virtualServer: Int, realServer: Int, RealServerHealth.Event)
    /// Quorum gained or lost; run quorum_up / quorum_down.
    case quorum(virtualServer: Int, VirtualServerHealth<IPAddress>.QuorumEvent)
}

public struct LVSController: Sendable {
    public let specs: [VirtualServerSpec]
    public private(set) var pools: [VirtualServerHealth<IPAddress>]
    public private(set) var servers: [[RealServerHealth]]
    /// Every checker, in spec order; `machines[id.index]` is its state machine.
    public let checkers: [CheckerID]
    public private(set) var machines: [TCPCheckMachine]
    private var timers = DeadlineHeap()
    /// Bumped whenever the desired table may have changed, so the daemon reconciles only then.
    public private(set) var generation = 0

    public init(specs: [VirtualServerSpec]) {
        self.specs = specs
        var pools: [VirtualServerHealth<IPAddress>] = []
        var servers: [[RealServerHealth]] = []
        for vs in specs {
            let health = vs.realServers.map { RealServerHealth(checkerAlpha: $0.checkers.map(\.timing.alpha)) }
            servers.append(health)
            let members = zip(vs.realServers, health).map { rs, h in
                VirtualServerHealth<IPAddress>.Member(
                    endpoint: .init(address: rs.destination.key.address, port: rs.destination.key.port),
                    weight: Int(rs.destination.weight), inhibitOnFailure: rs.inhibitOnFailure, isAlive: h.isAlive)
            }
            let sorry = vs.sorryServer.map {
                VirtualServerHealth<IPAddress>.SorryServer(
                    endpoint: .init(address: $0.destination.key.address, port: $0.destination.key.port), inhibit: $0.inhibit)
            }
            pools.append(VirtualServerHealth(members: members, quorum: vs.quorum, hysteresis: vs.hysteresis, sorryServer: sorry))
        }
        self.pools = pools
        self.servers = servers
        var owned: Set<IPVSServiceKey> = []
        for vs in specs { for service in vs.services { owned.insert(service.key) } }
        ownedServices = owned
        var checkers: [CheckerID] = []
        var machines: [TCPCheckMachine] = []
        for (v, vs) in specs.enumerated() {
            for (r, rs) in vs.realServers.enumerated() {
                for (c, chk) in rs.checkers.enumerated() {
                    checkers.append(CheckerID(virtualServer: v, realServer: r, checker: c, index: checkers.count))
                    machines.append(TCPCheckMachine(config: chk.timing))
                }
            }
        }
        self.checkers = checkers
        self.machines = machines
    }

    /// Where a checker connects.
    public func target(of id: CheckerID) -> CheckTarget {
        specs[id.virtualServer].realServers[id.realServer].checkers[id.checker].target
    }

    public var checkerCount: Int { checkers.count }

    /// `init_services` then the checkers: the pool as configured (every non-alpha server in),
    /// quorum evaluated, and each checker's first run scheduled after the bootstrap delay plus
    /// its random warmup (`randomWarmup` returns 0...warmup; injectable for tests).
    public mutating func start(at now: Int64, randomWarmup: (Int64) -> Int64 = { $0 > 0 ? Int64.random(in: 0...$0) : 0 }) -> [LVSEvent] {
        var events: [LVSEvent] = []
        for index in pools.indices {
            for q in pools[index].start() { events.append(.quorum(virtualServer: index, q)) }
        }
        for id in checkers {
            let warmup = machines[id.index].config.warmup
            let actions = machines[id.index].start(at: now, randomWarmup: randomWarmup(warmup))
            events += handle(actions, for: id, at: now)
        }
        generation += 1
        return events
    }

    /// The earliest time `timersFired` has work.
    public var nextDeadline: Int64? {
        mutating get {
            while let top = timers.peek {
                if machines[top.index].nextDeadline == top.deadline { return top.deadline }
                timers.pop() // stale: the machine was rescheduled since
            }
            return nil
        }
    }

    /// Runs every checker due by `now + slack`. A checker due within the slack runs that much
    /// early (its own clock reads its deadline, so its schedule does not drift): with thousands
    /// of checks a second this turns one loop wake-up per check into one per slack window,
    /// and each wake-up (ppoll, a context switch, the loop's bookkeeping) cost more than the
    /// check's own user-space work.
    public mutating func timersFired(at now: Int64, slack: Int64 = 0) -> [LVSEvent] {
        var events: [LVSEvent] = []
        let horizon = now + max(0, slack)
        while let top = timers.peek, top.deadline <= horizon {
            timers.pop()
            guard machines[top.index].nextDeadline == top.deadline else { continue }
            let actions = machines[top.index].timerFired(at: max(now, top.deadline))
            events += handle(actions, for: checkers[top.index], at: now)
        }
        return events
    }

    /// A connect finished: `verdict` true (connected), false (refused, timed out) or nil (the
    /// check could not run at all; keepalived reschedules without a verdict).
    public mutating func probeFinished(_ id: CheckerID, verdict: Bool?, at now: Int64) -> [LVSEvent] {
        guard machines.indices.contains(id.index) else { return [] }
        let actions = verdict.map { machines[id.index].connectFinished(success: $0, at: now) } ?? machines[id.index].connectAborted(at: now)
        return handle(actions, for: id, at: now)
    }

    private mutating func handle(_ actions: [TCPCheckMachine.Action], for id: CheckerID, at now: Int64) -> [LVSEvent] {
        var events: [LVSEvent] = []
        for action in actions {
            switch action {
            case .connect(let timeout):
                events.append(.connect(id, timeout: timeout))
            case .reportUp, .reportDown:
                let up = action == .reportUp
                events.append(.checkerVerdict(id, up: up))
                guard let change = servers[id.virtualServer][id.realServer].record(checker: id.checker, up: up) else { continue }
                events.append(.realServer(virtualServer: id.virtualServer, realServer: id.realServer, change))
                for q in pools[id.virtualServer].apply(change, to: id.realServer) {
                    events.append(.quorum(virtualServer: id.virtualServer, q))
                }
                if change != .stillDown { generation += 1 }
            }
        }
        if let deadline = machines[id.index].nextDeadline { timers.push(deadline, id.index) }
        return events
    }

    /// What IPVS should hold: every service of every virtual server, with the destinations
    /// health and quorum allow.
    public var desiredTable: IPVSTable {
        var table: IPVSTable = [:]
        for (v, vs) in specs.enumerated() {
            var methods: [IPVSDestinationKey: IPVSDestination] = [:]
            for rs in vs.realServers { methods[rs.destination.key] = rs.destination }
            let dests = pools[v].destinations.map { d -> IPVSDestination in
                let key = IPVSDestinationKey(d.endpoint.address, port: d.endpoint.port)
                var dest = (d.isSorryServer ? vs.sorryServer?.destination : methods[key]) ?? IPVSDestination(key)
                dest.weight = Int32(clamping: d.weight)
                return dest
            }
            for service in vs.services { table[service] = dests }
        }
        return table
    }

    /// Every service key Vigil is responsible for, configured or not yet installed.
    public let ownedServices: Set<IPVSServiceKey>
}

/// A binary min-heap of checker deadlines. Entries are never updated in place: a rescheduled
/// checker pushes a new one and the old one is skipped when it surfaces (lazy deletion), which
/// keeps each operation O(log n) for thousands of checkers.
struct DeadlineHeap: Sendable {
    private var items: [(deadline: Int64, index: Int)] = []

    var peek: (deadline: Int64, index: Int)? { items.first }
    var count: Int { items.count }

    mutating func push(_ deadline: Int64, _ index: Int) {
        items.append((deadline, index))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> (deadline: Int64, index: Int)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count && items[right].deadline < items[smallest].deadline { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
