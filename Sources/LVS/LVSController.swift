// The checker half of the daemon without I/O: every TCP_CHECK's machine, every real server's
// aliveness and every virtual server's quorum, driven by a clock value and probe results. It
// answers "which connects to start", "what happened" (for logs and notify scripts) and "what
// IPVS should hold now", and on reload continues from its own state under a new
// configuration. The daemon owns the sockets and the netlink calls.
import Addressing
import HealthCheck
import IPVS
import VigilConfig

/// A checker's stable identity for as long as it exists: a slot in the controller's tables.
/// A reload keeps the slot of every checker it carries over, so a connect started before the
/// reload reports to the same checker after it; a removed checker's slot is never reused, so
/// a late result for it is recognised and dropped.
public struct CheckerID: Hashable, Sendable {
    public let slot: Int
    public init(slot: Int) { self.slot = slot }
}

/// Where a checker sits in the current specs.
public struct CheckerPlace: Hashable, Sendable {
    public var virtualServer: Int
    public var realServer: Int
    public var checker: Int
}

public enum LVSEvent: Sendable {
    /// Start a non-blocking connect to `target(of:)`; report back with `probeFinished`.
    case connect(CheckerID, timeout: Int64)
    /// Fetch `spec(of:).http.urls[url]`, each phase within `timeout`; report with `probeFinished`.
    case fetch(CheckerID, url: Int, timeout: Int64)
    /// MISC_CHECK: run misc_path within `timeout`; report with `miscFinished`.
    case run(CheckerID, timeout: Int64)
    /// misc_dynamic set a real server's weight.
    case weightChanged(virtualServer: Int, realServer: Int, weight: Int)
    /// A checker's verdict changed, or was its first (keepalived logs these: "TCP connection
    /// to … success.", "TCP_CHECK on service … failed after N retries."). `wasUp` is the state
    /// it had before, nil for its first verdict (then it was up unless alpha): keepalived's
    /// mails go by it.
    case checkerVerdict(CheckerID, up: Bool, wasUp: Bool?)
    /// A real server entered or left the pool; run notify_up / notify_down.
    case realServer(virtualServer: Int, realServer: Int, RealServerHealth.Event)
    /// Quorum gained or lost; run quorum_up / quorum_down.
    case quorum(virtualServer: Int, VirtualServerHealth<IPAddress>.QuorumEvent)
}

/// What a reload carried over and what it started afresh, for the reload's log line.
public struct LVSReloadSummary: Hashable, Sendable {
    public var virtualServersKept = 0, virtualServersAdded = 0, virtualServersRemoved = 0
    public var realServersKept = 0, realServersAdded = 0, realServersRemoved = 0
    public var checkersKept = 0, checkersStarted = 0, checkersStopped = 0

    /// A first set of virtual servers, all new.
    public init(virtualServersAdded: Int = 0, realServersAdded: Int = 0) {
        self.virtualServersAdded = virtualServersAdded
        self.realServersAdded = realServersAdded
    }

    public var isEmpty: Bool {
        virtualServersAdded + virtualServersRemoved + realServersAdded + realServersRemoved + checkersStarted + checkersStopped == 0
    }
}

public struct LVSController: Sendable {
    public private(set) var specs: [VirtualServerSpec]
    public private(set) var pools: [VirtualServerHealth<IPAddress>]
    public private(set) var servers: [[RealServerHealth]]
    /// Every checker's machine and place, by slot; a slot whose checker a reload removed has
    /// no place and a stopped machine.
    public private(set) var machines: [CheckMachine] = []
    public private(set) var places: [CheckerPlace?] = []
    /// The slot of each checker, by place: `ids[v][r][c]`.
    public private(set) var ids: [[[CheckerID]]] = []
    /// What a checker adds to its real server's configured weight (keepalived's `cur_weight`):
    /// misc_dynamic's status − 2 less the configured weight, FILE_CHECK's number × weight.
    public private(set) var weightContributions: [Int: Int] = [:]
    /// The live FILE_CHECKs, kept with the places: a tracker change reads only these.
    private var fileCheckers: [CheckerID] = []
    private var timers = DeadlineHeap()
    /// Bumped whenever the desired table may have changed, so the daemon reconciles only then.
    public private(set) var generation = 0
    /// Every service key Vigil is responsible for, configured or not yet installed.
    public private(set) var ownedServices: Set<IPVSServiceKey> = []
    /// ha_suspend, by virtual server: its address is not on this director, so each of its
    /// checks is skipped when due (keepalived's `checker->enabled = false`): rescheduled a
    /// delay_loop later without a verdict, its real servers keeping the state they had.
    public private(set) var suspended: [Bool] = []
    private var started = false

    public init(specs: [VirtualServerSpec]) {
        self.specs = specs
        pools = []
        servers = []
        for vs in specs {
            let health = vs.realServers.map { RealServerHealth(checkerAlpha: $0.checkers.map(\.timing.alpha)) }
            servers.append(health)
            pools.append(Self.pool(vs, alive: health.map(\.isAlive)))
            var vsIDs: [[CheckerID]] = []
            for rs in vs.realServers {
                var rsIDs: [CheckerID] = []
                for chk in rs.checkers { rsIDs.append(allocate(Self.machine(for: chk))) }
                vsIDs.append(rsIDs)
            }
            ids.append(vsIDs)
        }
        refreshPlaces()
        ownedServices = Self.serviceKeys(specs)
        suspended = Array(repeating: false, count: specs.count)
    }

    /// ha_suspend: which virtual servers are suspended now, given the director's addresses.
    /// Returns those whose suspension changed, with the new value.
    public mutating func suspend(unlessLocal isLocal: (IPAddress) -> Bool) -> [(virtualServer: Int, suspended: Bool)] {
        var changed: [(virtualServer: Int, suspended: Bool)] = []
        for (v, vs) in specs.enumerated() where !vs.suspendUnless.isEmpty {
            let now = !vs.suspendUnless.contains(where: isLocal)
            if suspended[v] != now {
                suspended[v] = now
                changed.append((v, now))
            }
        }
        return changed
    }

    /// A checker's machine; `startsUp` for one a reload adds to a kept server.
    static func machine(for spec: CheckerSpec, startsUp: Bool? = nil) -> CheckMachine {
        if let http = spec.http {
            return .http(HTTPCheckMachine(config: spec.timing, urlCount: http.urls.count, fastRecovery: http.fastRecovery, startsUp: startsUp))
        }
        if let file = spec.file {
            return .file(FileCheckMachine(config: spec.timing, weight: file.weight, reverse: file.reverse, startsUp: startsUp))
        }
        if let misc = spec.misc {
            return .misc(MiscCheckMachine(config: spec.timing, timeout: misc.timeout, dynamic: misc.dynamic, startsUp: startsUp))
        }
        return .tcp(startsUp.map { TCPCheckMachine(config: spec.timing, startsUp: $0) } ?? TCPCheckMachine(config: spec.timing))
    }

    private mutating func allocate(_ machine: CheckMachine) -> CheckerID {
        machines.append(machine)
        places.append(nil)
        return CheckerID(slot: machines.count - 1)
    }

    private mutating func refreshPlaces() {
        for slot in places.indices { places[slot] = nil }
        for (v, rss) in ids.enumerated() {
            for (r, checkers) in rss.enumerated() {
                for (c, id) in checkers.enumerated() { places[id.slot] = CheckerPlace(virtualServer: v, realServer: r, checker: c) }
            }
        }
        fileCheckers = checkers.filter { spec(of: $0)?.file != nil }
    }

    private static func serviceKeys(_ specs: [VirtualServerSpec]) -> Set<IPVSServiceKey> {
        var owned: Set<IPVSServiceKey> = []
        for vs in specs { for service in vs.services { owned.insert(service.key) } }
        return owned
    }

    private static func pool(_ vs: VirtualServerSpec, alive: [Bool]) -> VirtualServerHealth<IPAddress> {
        let members = zip(vs.realServers, alive).map { rs, isAlive in
            VirtualServerHealth<IPAddress>.Member(
                endpoint: .init(address: rs.destination.key.address, port: rs.destination.key.port),
                weight: Int(rs.destination.weight), inhibitOnFailure: rs.inhibitOnFailure, isAlive: isAlive)
        }
        let sorry = vs.sorryServer.map {
            VirtualServerHealth<IPAddress>.SorryServer(
                endpoint: .init(address: $0.destination.key.address, port: $0.destination.key.port), inhibit: $0.inhibit)
        }
        return VirtualServerHealth(members: members, quorum: vs.quorum, hysteresis: vs.hysteresis, sorryServer: sorry)
    }

    public func spec(of id: CheckerID) -> CheckerSpec? {
        guard let place = places[id.slot] else { return nil }
        return specs[place.virtualServer].realServers[place.realServer].checkers[place.checker]
    }

    /// Where a checker connects; nil for a checker a reload removed.
    public func target(of id: CheckerID) -> CheckTarget? { spec(of: id)?.target }

    /// The live checkers, in spec order.
    public var checkers: [CheckerID] { ids.flatMap { $0.flatMap { $0 } } }
    public var checkerCount: Int { ids.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }

    /// `init_services` then the checkers: the pool as configured (every non-alpha server in),
    /// quorum evaluated, and each checker's first run scheduled after the bootstrap delay plus
    /// its random warmup (`randomWarmup` returns 0...warmup; injectable for tests).
    /// FILE_CHECKs take their files' numbers (`trackFile`) first, as keepalived sets them
    /// before its services go in: a server whose file says FAULT is never installed, and the
    /// first quorum already counts the files' weights.
    public mutating func start(at now: Int64, randomWarmup: (Int64) -> Int64 = LVSController.keepalivedWarmup,
                               trackFile: (String) -> Int = { _ in 0 }) -> [LVSEvent] {
        var events = trackFilesRead(trackFile, at: now).filter {
            // Nothing was in the pool yet: no server left it and no script is due.
            if case .realServer = $0 { false } else { true }
        }
        for index in pools.indices {
            for q in pools[index].start() { events.append(.quorum(virtualServer: index, q)) }
        }
        for id in checkers { events += startChecker(id, at: now, randomWarmup: randomWarmup) }
        started = true
        generation += 1
        return events
    }

    /// keepalived's draw: uniform in 0...warmup, spreading simultaneous checks to one server.
    public static func keepalivedWarmup(_ warmup: Int64) -> Int64 { warmup > 0 ? Int64.random(in: 0...warmup) : 0 }

    private mutating func startChecker(_ id: CheckerID, at now: Int64, randomWarmup: (Int64) -> Int64) -> [LVSEvent] {
        let warmup = machines[id.slot].config.warmup
        let actions = machines[id.slot].start(at: now, randomWarmup: randomWarmup(warmup))
        return handle(actions, for: id, at: now)
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
    ///
    /// At most `limit` timers fire per call, earliest first; the rest stay due (`nextDeadline`
    /// is then in the past), so a host can spread a burst of checks over several loop turns.
    public mutating func timersFired(at now: Int64, slack: Int64 = 0, limit: Int = .max) -> [LVSEvent] {
        var events: [LVSEvent] = []
        let horizon = now + max(0, slack)
        var fired = 0
        while fired < limit, let top = timers.peek, top.deadline <= horizon {
            timers.pop()
            guard machines[top.index].nextDeadline == top.deadline else { continue }
            fired += 1
            let actions = machines[top.index].timerFired(at: max(now, top.deadline))
            events += handle(actions, for: CheckerID(slot: top.index), at: now)
        }
        return events
    }

    /// A connect finished: `verdict` true (connected), false (refused, timed out) or nil (the
    /// check could not run at all; keepalived reschedules without a verdict). Results for a
    /// checker that a reload removed meanwhile are dropped.
    public mutating func probeFinished(_ id: CheckerID, verdict: Bool?, at now: Int64) -> [LVSEvent] {
        guard machines.indices.contains(id.slot), places[id.slot] != nil else { return [] }
        let actions = verdict.map { machines[id.slot].finished(success: $0, at: now) } ?? machines[id.slot].aborted(at: now)
        return handle(actions, for: id, at: now)
    }

    /// FILE_CHECK: the numbers the tracked files read now (`value(name)`, 0 for a missing file).
    public mutating func trackFilesRead(_ value: (String) -> Int, at now: Int64) -> [LVSEvent] {
        var events: [LVSEvent] = []
        for id in fileCheckers {
            guard let file = spec(of: id)?.file else { continue }
            events += handle(machines[id.slot].fileRead(value(file.trackFile)), for: id, at: now)
        }
        return events
    }

    /// A MISC_CHECK run ended (results for a checker a reload removed are dropped).
    public mutating func miscFinished(_ id: CheckerID, _ result: MiscCheckMachine.Result?, at now: Int64) -> [LVSEvent] {
        guard machines.indices.contains(id.slot), places[id.slot] != nil else { return [] }
        let actions = result.map { machines[id.slot].miscFinished($0, at: now) } ?? machines[id.slot].aborted(at: now)
        return handle(actions, for: id, at: now)
    }

    private mutating func handle(_ actions: [CheckMachine.Action], for id: CheckerID, at now: Int64) -> [LVSEvent] {
        guard let place = places[id.slot] else { return [] }
        var events: [LVSEvent] = []
        for action in actions {
            if suspended[place.virtualServer] {
                switch action {
                case .connect, .fetch, .run:
                    _ = machines[id.slot].aborted(at: now)
                    continue
                default: break
                }
            }
            switch action {
            case .connect(let timeout):
                events.append(.connect(id, timeout: timeout))
            case .fetch(let url, let timeout):
                events.append(.fetch(id, url: url, timeout: timeout))
            case .run(let timeout):
                events.append(.run(id, timeout: timeout))
            case .setWeight, .addWeight:
                // keepalived's effective_weight: the configured weight plus every checker's part.
                let v = place.virtualServer, r = place.realServer
                let configured = Int(specs[v].realServers[r].destination.weight)
                let checkerSlots = ids[v][r].map(\.slot)
                func effective() -> Int {
                    let sum = checkerSlots.reduce(Int64(configured)) { $0 + Int64(weightContributions[$1] ?? 0) }
                    return Int(max(0, min(Int64(Int32.max), sum)))
                }
                let before = effective()
                switch action {
                case .setWeight(let weight): weightContributions[id.slot] = weight.map { $0 - configured } ?? 0
                case .addWeight(let added): weightContributions[id.slot] = added
                default: break
                }
                let wanted = effective()
                guard wanted != before else { continue }
                events.append(.weightChanged(virtualServer: v, realServer: r, weight: wanted))
                for q in pools[v].setWeight(r, wanted) { events.append(.quorum(virtualServer: v, q)) }
                generation += 1
            case .reportUp, .reportDown:
                let up = action == .reportUp
                let v = place.virtualServer, r = place.realServer
                let health = servers[v][r]
                events.append(.checkerVerdict(id, up: up, wasUp: health.checkerHasRun[place.checker] ? health.checkerUp[place.checker] : nil))
                guard let change = servers[v][r].record(checker: place.checker, up: up) else { continue }
                events.append(.realServer(virtualServer: v, realServer: r, change))
                for q in pools[v].apply(change, to: r) { events.append(.quorum(virtualServer: v, q)) }
                if change != .stillDown { generation += 1 }
            }
        }
        if let deadline = machines[id.slot].nextDeadline { timers.push(deadline, id.slot) }
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

    // MARK: Reload

    /// Continues under `newSpecs` from the current state, as keepalived's `clear_diff_services`
    /// and checker migration do: a virtual server with the same identity keeps its quorum
    /// state; a real server with the same address:port in it keeps its aliveness; a checker of
    /// that server with the same kind and parameters keeps its machine (verdict, retry count,
    /// schedule) and its slot, so nothing kept re-warms, re-checks or flaps. New checkers start
    /// their schedule as at start-up; a new checker on a kept server starts from that
    /// server's aliveness.
    /// The returned events are the real changes (a server out because a new alpha checker
    /// joined a failing one, quorum crossed by added or removed servers).
    public mutating func reload(to newSpecs: [VirtualServerSpec], at now: Int64,
                                randomWarmup: (Int64) -> Int64 = LVSController.keepalivedWarmup) -> (events: [LVSEvent], summary: LVSReloadSummary) {
        var summary = LVSReloadSummary()
        var oldByIdentity: [VirtualServerIdentity: Int] = [:]
        for (v, vs) in specs.enumerated() where oldByIdentity[vs.identity] == nil { oldByIdentity[vs.identity] = v }
        var newIDs: [[[CheckerID]]] = []
        var newServers: [[RealServerHealth]] = []
        var newPools: [VirtualServerHealth<IPAddress>] = []
        var resumedQuorum: [Bool?] = []
        var keptSlots = Set<Int>()
        var fresh: [CheckerID] = []
        var keptVirtualServers = Set<Int>()
        for vs in newSpecs {
            let oldV = oldByIdentity[vs.identity].flatMap { keptVirtualServers.contains($0) ? nil : $0 }
            if let oldV { keptVirtualServers.insert(oldV); summary.virtualServersKept += 1 } else { summary.virtualServersAdded += 1 }
            var oldRealServers: [IPVSDestinationKey: Int] = [:]
            if let oldV {
                for (r, rs) in specs[oldV].realServers.enumerated() where oldRealServers[rs.destination.key] == nil {
                    oldRealServers[rs.destination.key] = r
                }
            }
            var vsIDs: [[CheckerID]] = []
            var health: [RealServerHealth] = []
            var keptRealServers = 0
            for rs in vs.realServers {
                guard let oldV, let oldR = oldRealServers.removeValue(forKey: rs.destination.key) else {
                    summary.realServersAdded += 1
                    var rsIDs: [CheckerID] = []
                    for chk in rs.checkers {
                        let id = allocate(Self.machine(for: chk))
                        rsIDs.append(id)
                        fresh.append(id)
                    }
                    vsIDs.append(rsIDs)
                    health.append(RealServerHealth(checkerAlpha: rs.checkers.map(\.timing.alpha)))
                    continue
                }
                keptRealServers += 1
                let oldRS = specs[oldV].realServers[oldR]
                let oldHealth = servers[oldV][oldR]
                var available = Array(ids[oldV][oldR].enumerated())
                var rsIDs: [CheckerID] = [], up: [Bool] = [], hasRun: [Bool] = []
                for chk in rs.checkers {
                    if let match = available.firstIndex(where: { oldRS.checkers[$0.offset].isSameChecker(as: chk) }) {
                        let (oldC, id) = available.remove(at: match)
                        keptSlots.insert(id.slot)
                        rsIDs.append(id)
                        up.append(oldHealth.checkerUp[oldC])
                        hasRun.append(oldHealth.checkerHasRun[oldC])
                        summary.checkersKept += 1
                    } else {
                        // A new checker of a kept server starts from the server's state, so the
                        // reload itself moves nothing: an alive server stays in until the new
                        // checker fails, a failed one stays out until it succeeds. (keepalived
                        // starts a non-alpha checker up even on a failed server, which puts a
                        // dead server back in the pool until the new checker has failed.)
                        let startsUp = oldHealth.isAlive
                        let id = allocate(Self.machine(for: chk, startsUp: startsUp))
                        rsIDs.append(id)
                        fresh.append(id)
                        up.append(startsUp)
                        hasRun.append(true)
                    }
                }
                vsIDs.append(rsIDs)
                health.append(RealServerHealth(checkerAlpha: rs.checkers.map(\.timing.alpha), checkerUp: up, checkerHasRun: hasRun))
            }
            summary.realServersKept += keptRealServers
            summary.realServersRemoved += oldRealServers.count
            newIDs.append(vsIDs)
            newServers.append(health)
            newPools.append(Self.pool(vs, alive: health.map(\.isAlive)))
            resumedQuorum.append(oldV.map { pools[$0].isQuorumUp })
        }
        for (v, vs) in specs.enumerated() where !keptVirtualServers.contains(v) {
            summary.virtualServersRemoved += 1
            summary.realServersRemoved += vs.realServers.count
        }
        // Checkers that did not carry over: stopped, their slots retired.
        for slot in machines.indices where places[slot] != nil && !keptSlots.contains(slot) {
            machines[slot].stop()
            summary.checkersStopped += 1
        }
        summary.checkersStarted = fresh.count

        suspended = newSpecs.map { vs in oldByIdentity[vs.identity].map { suspended[$0] } ?? false }
        specs = newSpecs
        servers = newServers
        pools = newPools
        ids = newIDs
        refreshPlaces()
        ownedServices = Self.serviceKeys(newSpecs)

        var events: [LVSEvent] = []
        if started {
            for v in pools.indices {
                let quorum = resumedQuorum[v].map { pools[v].resume(quorumUp: $0) } ?? pools[v].start()
                for q in quorum { events.append(.quorum(virtualServer: v, q)) }
            }
            // Kept checkers keep their deadlines; the heap is rebuilt so retired slots leave it.
            timers = DeadlineHeap()
            for slot in keptSlots { if let d = machines[slot].nextDeadline { timers.push(d, slot) } }
            for id in fresh { events += startChecker(id, at: now, randomWarmup: randomWarmup) }
        }
        generation += 1
        return (events, summary)
    }
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
