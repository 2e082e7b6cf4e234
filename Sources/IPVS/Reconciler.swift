// Desired-versus-actual planning for the IPVS table, pure so that every reload, health change
// and restart can be tested as "this table plus this config gives these commands".
//
// Rules from keepalived (check_daemon.c, ipwrapper.c `clear_diff_services`, `init_services`,
// `clear_services`): only services Vigil owns are touched, so foreign services (kube-proxy,
// ipvsadm, another keepalived) survive a reload; removals run before additions, as
// keepalived's reload clears the old topology before installing the new one; a service is
// created before its destinations and emptied before it is deleted.

/// A table: services with their destinations. Service keys (and destination keys within a
/// service) are expected to be unique, as config validation guarantees; with duplicates,
/// which entry wins is unspecified.
public typealias IPVSTable = [IPVSService: [IPVSDestination]]

public enum IPVSReconciler {
    /// Operations that turn `actual` into `desired` for the services in `owned` (plus every
    /// desired service, which is owned by definition). Output is sorted by key, so the same
    /// inputs always give the same list.
    ///
    /// - `desired`: what config × health says should exist. A configured service that should
    ///   currently have no real servers is present with an empty list; one that should not
    ///   exist at all is absent but still in `owned`, and is deleted.
    /// - `actual`: what a dump returned (all services, foreign ones included).
    /// - `flushFirst`: keepalived's `lvs_flush`: one FLUSH, then everything is added afresh.
    public static func plan(
        desired: IPVSTable, actual: IPVSTable, owned: Set<IPVSServiceKey> = [], flushFirst: Bool = false
    ) -> [IPVSOperation] {
        let want = index(desired)
        let have = flushFirst ? [:] : index(actual)
        let ownedKeys = owned.union(want.keys)
        var removals: [IPVSOperation] = []
        var additions: [IPVSOperation] = []

        for key in Set(have.keys).union(want.keys).sorted() where ownedKeys.contains(key) {
            switch (have[key], want[key]) {
            case (nil, nil):
                break
            case let ((_, currentDests)?, nil):
                for destKey in currentDests.keys.sorted() { removals.append(.deleteDestination(destKey, from: key)) }
                removals.append(.deleteService(key))
            case let (nil, (service, dests)?):
                additions.append(.addService(service))
                for destKey in dests.keys.sorted() { additions.append(.addDestination(dests[destKey]!, to: key)) }
            case let ((current, currentDests)?, (service, dests)?):
                for destKey in currentDests.keys.sorted() where dests[destKey] == nil {
                    removals.append(.deleteDestination(destKey, from: key))
                }
                if !service.hasSameSettings(as: current) { additions.append(.editService(service)) }
                for destKey in dests.keys.sorted() {
                    let dest = dests[destKey]!
                    if let existing = currentDests[destKey] {
                        if !existing.hasSameSettings(as: dest) { additions.append(.editDestination(dest, in: key)) }
                    } else {
                        additions.append(.addDestination(dest, to: key))
                    }
                }
            }
        }
        return (flushFirst ? [.flush] : []) + removals + additions
    }

    /// How keepalived leaves at shutdown (`lvs_flush_on_stop`).
    public enum TeardownMode: Hashable, Sendable {
        /// Default: DEL_DEST for every real server, then DEL_SERVICE, service by service,
        /// so each server's removal is visible (and notified) on its own.
        case destinationsThenServices
        /// `lvs_flush_on_stop VS`: DEL_SERVICE only; the kernel drops the servers with it.
        case servicesOnly
        /// `lvs_flush_on_stop`: a single FLUSH, foreign services included.
        case flush
    }

    /// Shutdown operations for what Vigil installed (its last applied desired table), not for
    /// a dump, so that a service someone else added meanwhile is left alone.
    public static func teardown(owned: IPVSTable, mode: TeardownMode = .destinationsThenServices) -> [IPVSOperation] {
        if mode == .flush { return [.flush] }
        let table = index(owned)
        var ops: [IPVSOperation] = []
        for key in table.keys.sorted() {
            if mode == .destinationsThenServices {
                for destKey in table[key]!.1.keys.sorted() { ops.append(.deleteDestination(destKey, from: key)) }
            }
            ops.append(.deleteService(key))
        }
        return ops
    }

    /// `table` after `operations` succeeded: how the daemon keeps its picture of the kernel
    /// current without a dump after every change.
    public static func applying(_ operations: [IPVSOperation], to table: IPVSTable) -> IPVSTable {
        // Only the services the operations name are rebuilt: the daemon applies a large plan
        // a request at a time, and rebuilding the whole table for each was quadratic.
        var touched = Set<IPVSServiceKey>()
        for op in operations {
            switch op {
            case .flush: continue
            case .addService(let s), .editService(let s): touched.insert(s.key)
            case .deleteService(let k), .addDestination(_, let k), .editDestination(_, let k), .deleteDestination(_, let k): touched.insert(k)
            }
        }
        var out = table
        var services: [IPVSServiceKey: IPVSService] = [:]
        var dests: [IPVSServiceKey: [IPVSDestinationKey: IPVSDestination]] = [:]
        for (service, list) in table where touched.contains(service.key) {
            out[service] = nil
            services[service.key] = service
            var byKey: [IPVSDestinationKey: IPVSDestination] = [:]
            for d in list { byKey[d.key] = d }
            dests[service.key] = byKey
        }
        for op in operations {
            switch op {
            case .flush:
                out = [:]
                services = [:]
                dests = [:]
            case .addService(let s), .editService(let s):
                services[s.key] = s
                if dests[s.key] == nil { dests[s.key] = [:] }
            case .deleteService(let k):
                services[k] = nil
                dests[k] = nil
            case .addDestination(let d, let k), .editDestination(let d, let k):
                if services[k] != nil { dests[k, default: [:]][d.key] = d }
            case .deleteDestination(let dk, let k):
                dests[k]?[dk] = nil
            }
        }
        for (key, service) in services {
            out[service] = dests[key].map { Array($0.values).sorted { $0.key < $1.key } } ?? []
        }
        return out
    }

    private static func index(_ table: IPVSTable) -> [IPVSServiceKey: (IPVSService, [IPVSDestinationKey: IPVSDestination])] {
        var out: [IPVSServiceKey: (IPVSService, [IPVSDestinationKey: IPVSDestination])] = [:]
        for (service, dests) in table {
            var byKey: [IPVSDestinationKey: IPVSDestination] = [:]
            for dest in dests { byKey[dest.key] = dest }
            out[service.key] = (service, byKey)
        }
        return out
    }
}
