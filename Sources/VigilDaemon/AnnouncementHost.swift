import Addressing
import Logging
import LVS
import VigilSystem

/// Vigil's route health injection (`vigil_announce`, see `RouteAnnouncer`): keeps the announce
/// table equal to what quorum and VRRP state allow. Changes are picked up in the turn they
/// happen (the checker and VRRP hosts mark it, it runs after them); once a second it checks
/// that the kernel still has every route it announced and puts back what someone removed.
final class AnnouncementHost: LoopHost {
    private let routing: (any RoutingControl)?
    private let logger: Logger
    private var announcer: RouteAnnouncer
    private var announcements: [(virtualServer: Int, spec: AnnouncementSpec)] = []
    private var names: [String] = []
    private var quorumUp: (Int) -> Bool = { _ in false }
    private var isMaster: (String) -> Bool = { _ in false }
    private var dirty = false
    private var nextCheck: Int64?
    /// Prefixes whose last add failed: tried again at the next check, logged once.
    private var failing: Set<AnnouncedPrefix> = []
    static let checkInterval: Int64 = 1_000_000

    init(routing: (any RoutingControl)?, table: UInt32, protocolNumber: UInt8, logger: Logger) {
        self.routing = routing
        self.logger = logger
        announcer = RouteAnnouncer(table: table, protocolNumber: protocolNumber)
    }

    var announced: Set<AnnouncedPrefix> { announcer.announced }
    var isConfigured: Bool { !announcements.isEmpty }

    /// The virtual servers' announcements (at start and after each reload) and where their
    /// conditions are read. Indexes are the checker host's virtual server indexes.
    func configure(_ specs: [VirtualServerSpec], table: UInt32, protocolNumber: UInt8,
                   quorumUp: @escaping (Int) -> Bool, isMaster: @escaping (String) -> Bool) {
        announcements = specs.enumerated().flatMap { index, vs in vs.announcements.map { (index, $0) } }
        names = specs.map(\.name)
        self.quorumUp = quorumUp
        self.isMaster = isMaster
        if table != announcer.table || protocolNumber != announcer.protocolNumber {
            // Moving tables: what is in the old one goes, the new one is filled by the sync.
            withdrawAll(reason: "announce table changed")
            announcer = RouteAnnouncer(table: table, protocolNumber: protocolNumber)
        }
        dirty = true
    }

    /// At start: routes a previous run left (a SIGKILL) that are still wanted stay, the others go.
    func start(at now: Int64) {
        nextCheck = now + Self.checkInterval
        // Without announcements the table is left alone: it may be someone else's.
        guard let routing, isConfigured else { return }
        let leftovers: [AnnouncedPrefix]
        do { leftovers = try inKernel(routing) } catch {
            logger.error("announce: cannot list table \(announcer.table): \(error)")
            dirty = true
            return
        }
        let stale = announcer.adopt(leftovers: leftovers, desired: currentDesired())
        for prefix in stale {
            logger.notice("announce: removing \(prefix) from table \(announcer.table), left by a previous run")
            remove(prefix)
        }
        let kept = leftovers.count - stale.count
        if kept > 0 { logger.notice("announce: \(kept) routes of a previous run still wanted: kept in table \(announcer.table)") }
        dirty = true
    }

    /// Something an announcement depends on changed: re-planned at the end of this turn.
    func changed() { dirty = true }

    var nextDeadline: Int64? { dirty ? 0 : (announcer.announced.isEmpty && failing.isEmpty ? nil : nextCheck) }

    func runDueWork(at now: Int64) {
        if dirty {
            dirty = false
            apply(announcer.changes(to: currentDesired()))
        }
        if let due = nextCheck, now >= due {
            nextCheck = now + Self.checkInterval
            // As nextDeadline says: with nothing announced and nothing to retry there is
            // nothing to look at (this ran on every other host's wake).
            if !(announcer.announced.isEmpty && failing.isEmpty) { verify() }
        }
    }

    /// On stop, before the VRRP goodbyes: the routes go first, so the routers move the flows
    /// away while this director still forwards them.
    func shutDown() {
        withdrawAll(reason: "stopping")
        announcements = []
        nextCheck = nil
    }

    private func currentDesired() -> Set<AnnouncedPrefix> {
        RouteAnnouncer.desired(announcements, quorumUp: quorumUp, isMaster: isMaster)
    }

    private func apply(_ changes: AnnouncementChanges) {
        for prefix in changes.remove {
            logger.notice("announce: withdrawing \(prefix) (table \(announcer.table)): \(reason(for: prefix))")
            remove(prefix)
        }
        for prefix in changes.add { add(prefix) }
    }

    private func add(_ prefix: AnnouncedPrefix) {
        guard let routing else {
            if failing.insert(prefix).inserted { logger.error("announce: cannot announce \(prefix): no routing socket") }
            return
        }
        do {
            try routing.add(announcer.route(prefix))
        } catch RouteError.exists {
            // Already there (someone else's or ours from before): it serves the same purpose.
        } catch {
            if failing.insert(prefix).inserted { logger.error("announce: cannot add \(prefix) to table \(announcer.table): \(error); retrying every second") }
            return
        }
        failing.remove(prefix)
        announcer.didAdd(prefix)
        logger.notice("announce: \(prefix) in table \(announcer.table) (\(announcers(of: prefix)))")
    }

    private func remove(_ prefix: AnnouncedPrefix) {
        failing.remove(prefix)
        do {
            try routing?.remove(announcer.route(prefix))
        } catch RouteError.notFound {
        } catch {
            logger.error("announce: cannot remove \(prefix) from table \(announcer.table): \(error)")
        }
        announcer.didRemove(prefix)
    }

    private func withdrawAll(reason: String) {
        for prefix in announcer.changes(to: []).remove {
            logger.notice("announce: withdrawing \(prefix) (table \(announcer.table)): \(reason)")
            remove(prefix)
        }
    }

    /// Puts back announced routes the kernel lost, and retries failed adds.
    private func verify() {
        let desired = currentDesired()
        for prefix in failing.intersection(desired) { add(prefix) }
        guard let routing, !announcer.announced.isEmpty else { return }
        guard let present = try? Set(inKernel(routing)) else { return }
        for prefix in announcer.missing(present: present) {
            logger.warning("announce: \(prefix) was removed from table \(announcer.table) by someone else: put back")
            announcer.didRemove(prefix)
            add(prefix)
        }
    }

    /// The prefixes of the announce table's routes of our protocol, as the kernel has them.
    private func inKernel(_ routing: any RoutingControl) throws(RouteError) -> [AnnouncedPrefix] {
        try routing.routes(table: announcer.table, protocolNumber: announcer.protocolNumber)
            .compactMap { route in route.destination.map { AnnouncedPrefix($0, length: route.prefixLength) } }
    }

    private func announcers(of prefix: AnnouncedPrefix) -> String {
        let masters = announcements.filter { $0.spec.prefix == prefix }.compactMap(\.spec.master)
        return masters.isEmpty ? "quorum up" : "quorum up, \(Set(masters).sorted().joined(separator: ", ")) MASTER"
    }

    private func reason(for prefix: AnnouncedPrefix) -> String {
        let mine = announcements.filter { $0.spec.prefix == prefix }
        if mine.isEmpty { return "no longer configured" }
        var reasons: [String] = []
        for (vs, spec) in mine {
            if !quorumUp(vs) { reasons.append("VS \(names[vs]) has no quorum") }
            if let master = spec.master, !isMaster(master) { reasons.append("\(master) is not MASTER") }
        }
        return reasons.isEmpty ? "no longer wanted" : Set(reasons).sorted().joined(separator: ", ")
    }
}
