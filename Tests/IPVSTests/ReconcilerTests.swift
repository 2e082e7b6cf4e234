import Testing
import VigilTestSupport
import Addressing
@testable import IPVS

private let web = IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360)
private let foreignKey = IPVSServiceKey.address(.tcp, IPAddress("10.9.9.9")!, port: 443)
private let foreign = IPVSService(foreignKey, scheduler: "rr")
private let fwm = IPVSService(.fwmark(1, family: .ipv4))
private func dr(_ key: IPVSDestinationKey, _ weight: Int32 = 1) -> IPVSDestination {
    IPVSDestination(key, forwarding: .directRoute, weight: weight)
}

/// A minimal in-memory IPVS table with the kernel's semantics (ESRCH for a missing service,
/// EEXIST/ENOENT for destinations, DEL_SERVICE drops its destinations), to check that a
/// plan actually converges.
struct FakeKernel {
    var services: [IPVSServiceKey: IPVSService] = [:]
    var dests: [IPVSServiceKey: [IPVSDestinationKey: IPVSDestination]] = [:]

    init(_ table: IPVSTable) {
        for (s, ds) in table {
            services[s.key] = s
            dests[s.key] = Dictionary(ds.map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        }
    }

    var table: IPVSTable {
        Dictionary(uniqueKeysWithValues: services.values.map { s in
            (s, dests[s.key, default: [:]].values.sorted { $0.key < $1.key })
        })
    }

    mutating func apply(_ op: IPVSOperation) -> Int32 {
        switch op {
        case .flush:
            services = [:]; dests = [:]
        case .addService(let s):
            if services[s.key] != nil { return LinuxErrno.EEXIST }
            services[s.key] = s
        case .editService(let s):
            if services[s.key] == nil { return LinuxErrno.ESRCH }
            services[s.key] = s
        case .deleteService(let k):
            if services.removeValue(forKey: k) == nil { return LinuxErrno.ESRCH }
            dests[k] = nil
        case .addDestination(let d, let k):
            if services[k] == nil { return LinuxErrno.ESRCH }
            if dests[k]?[d.key] != nil { return LinuxErrno.EEXIST }
            dests[k, default: [:]][d.key] = d
        case .editDestination(let d, let k):
            if services[k] == nil { return LinuxErrno.ESRCH }
            if dests[k]?[d.key] == nil { return LinuxErrno.ENOENT }
            dests[k]![d.key] = d
        case .deleteDestination(let dk, let k):
            if services[k] == nil { return LinuxErrno.ESRCH }
            if dests[k]?.removeValue(forKey: dk) == nil { return LinuxErrno.ENOENT }
        }
        return 0
    }
}

@Suite struct ReconcilerTests {
    @Test func freshStartAddsServiceBeforeItsDestinations() {
        let ops = IPVSReconciler.plan(desired: [web: [dr(rs22), dr(rs21, 2)]], actual: [:])
        #expect(ops == [
            .addService(web),
            .addDestination(dr(rs21, 2), to: tcp80),
            .addDestination(dr(rs22), to: tcp80),
        ])
    }

    @Test func convergedTableNeedsNothing() {
        let table: IPVSTable = [web: [dr(rs21), dr(rs22)], fwm: []]
        #expect(IPVSReconciler.plan(desired: table, actual: table).isEmpty)
    }

    @Test func kernelHashedFlagIsNotADifference() {
        var dumped = web
        dumped.flags.insert(.hashed)
        #expect(IPVSReconciler.plan(desired: [web: []], actual: [dumped: []]).isEmpty)
    }

    @Test func weightChangeAndInhibitAreEdits() {
        let ops = IPVSReconciler.plan(desired: [web: [dr(rs21, 5), dr(rs22, 0)]], actual: [web: [dr(rs21), dr(rs22)]])
        #expect(ops == [.editDestination(dr(rs21, 5), in: tcp80), .editDestination(dr(rs22, 0), in: tcp80)])
    }

    @Test func methodAndThresholdChangesAreEdits() {
        let nat = IPVSDestination(rs21, forwarding: .masquerade)
        let thresholds = IPVSDestination(rs22, forwarding: .directRoute, upperThreshold: 10)
        let ops = IPVSReconciler.plan(desired: [web: [nat, thresholds]], actual: [web: [dr(rs21), dr(rs22)]])
        #expect(ops == [.editDestination(nat, in: tcp80), .editDestination(thresholds, in: tcp80)])
    }

    @Test(arguments: [
        IPVSService(tcp80, scheduler: "rr", flags: .persistent, timeout: 360),
        IPVSService(tcp80, scheduler: "wlc", flags: [], timeout: 360),
        IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 60),
        IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360, netmask: 0xFFFF_FF00),
        IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360, persistenceEngine: "sip"),
    ])
    func serviceSettingChangeIsAnEdit(_ changed: IPVSService) {
        #expect(IPVSReconciler.plan(desired: [changed: [dr(rs21)]], actual: [web: [dr(rs21)]]) == [.editService(changed)])
    }

    @Test func removalsComeFirstAndServicesEmptyBeforeDeletion() {
        let gone = IPVSService(.address(.udp, vip, port: 53), scheduler: "rr")
        let ops = IPVSReconciler.plan(
            desired: [web: [dr(rs21), dr(rs23)]],
            actual: [web: [dr(rs21), dr(rs22)], gone: [dr(rs21), dr(rs22)]],
            owned: [tcp80, gone.key])
        #expect(ops == [
            // TCP 10.0.0.1:80 sorts before UDP 10.0.0.1:53 (same address, protocol 6 < 17).
            .deleteDestination(rs22, from: tcp80),
            .deleteDestination(rs21, from: gone.key),
            .deleteDestination(rs22, from: gone.key),
            .deleteService(gone.key),
            .addDestination(dr(rs23), to: tcp80),
        ])
    }

    /// Foreign services are never touched: not deleted, not emptied, not "fixed".
    @Test func foreignServicesAreLeftAlone() {
        let ops = IPVSReconciler.plan(
            desired: [web: [dr(rs21)]],
            actual: [web: [dr(rs21)], foreign: [dr(rs22)]],
            owned: [tcp80, fwm.key])
        #expect(ops.isEmpty)
        // Even a foreign service with the scheduler Vigil would not choose.
        #expect(IPVSReconciler.plan(desired: [:], actual: [foreign: [dr(rs22, 0)]], owned: [tcp80]).isEmpty)
    }

    /// Inside an owned service, destinations someone else added are removed.
    @Test func strayDestinationInOwnedServiceIsRemoved() {
        let ops = IPVSReconciler.plan(desired: [web: [dr(rs21)]], actual: [web: [dr(rs21), dr(rs23)]])
        #expect(ops == [.deleteDestination(rs23, from: tcp80)])
    }

    /// An owned service that should not exist now (e.g. removed from config) is emptied and
    /// deleted; an owned service that should exist without servers keeps its entry.
    @Test func ownedButUndesiredServiceIsDeleted() {
        #expect(IPVSReconciler.plan(desired: [:], actual: [fwm: [dr(rs21)]], owned: [fwm.key]) == [
            .deleteDestination(rs21, from: fwm.key), .deleteService(fwm.key),
        ])
        #expect(IPVSReconciler.plan(desired: [fwm: []], actual: [fwm: [dr(rs21)]]) == [
            .deleteDestination(rs21, from: fwm.key),
        ])
    }

    @Test func flushOnlyWhenAsked() {
        let actual: IPVSTable = [web: [dr(rs21)], foreign: [dr(rs22)]]
        #expect(!IPVSReconciler.plan(desired: [web: [dr(rs21, 3)]], actual: actual).contains(.flush))
        #expect(IPVSReconciler.plan(desired: [web: [dr(rs21, 3)]], actual: actual, flushFirst: true) == [
            .flush, .addService(web), .addDestination(dr(rs21, 3), to: tcp80),
        ])
    }

    @Test func teardownModes() {
        let owned: IPVSTable = [fwm: [dr(rs22)], web: [dr(rs22), dr(rs21)]]
        #expect(IPVSReconciler.teardown(owned: owned) == [
            .deleteDestination(rs21, from: tcp80), .deleteDestination(rs22, from: tcp80), .deleteService(tcp80),
            .deleteDestination(rs22, from: fwm.key), .deleteService(fwm.key),
        ])
        #expect(IPVSReconciler.teardown(owned: owned, mode: .servicesOnly) == [.deleteService(tcp80), .deleteService(fwm.key)])
        #expect(IPVSReconciler.teardown(owned: owned, mode: .flush) == [.flush])
    }

    /// Property: applying the plan to a kernel model yields the desired state for owned
    /// services, leaves foreign ones as they were, never errors, and a second plan is empty.
    @Test func planConvergesOnRandomTables() {
        var gen = Generator(rng: SeededRandom(seed: 0xC0DE))
        let keys = (0..<6).map { _ in gen.serviceKey() }
        let destKeys = (0..<6).map { _ in IPVSDestinationKey(gen.address(.ipv4), port: gen.int()) }
        func randomTable(_ gen: inout Generator) -> IPVSTable {
            var table: IPVSTable = [:]
            for key in keys where gen.bool() {
                var s = gen.service()
                s.key = key
                table[s] = destKeys.filter { _ in gen.bool() }.map { k in
                    var d = gen.destination()
                    d.key = k
                    return d
                }
            }
            return table
        }
        // The kernel's HASHED flag may differ; everything else must match.
        func same(_ a: IPVSService?, _ b: IPVSService?) -> Bool {
            switch (a, b) {
            case (nil, nil): true
            case let (a?, b?): a.key == b.key && a.hasSameSettings(as: b)
            default: false
            }
        }
        for round in 0..<300 {
            let desired = randomTable(&gen)
            let actual = randomTable(&gen)
            let owned = Set(keys.filter { _ in gen.bool() })
            let ownedAll = owned.union(desired.keys.map(\.key))
            var kernel = FakeKernel(actual)
            for op in IPVSReconciler.plan(desired: desired, actual: actual, owned: owned) {
                let errno = kernel.apply(op)
                #expect(errno == 0, "round \(round): \(op) -> errno \(errno)")
            }
            let result = FakeKernel(kernel.table)
            let want = FakeKernel(desired)
            let before = FakeKernel(actual)
            for key in keys {
                if ownedAll.contains(key) {
                    #expect(same(result.services[key], want.services[key]), "round \(round) \(key)")
                    #expect(result.dests[key] == want.dests[key], "round \(round) \(key)")
                } else {
                    #expect(result.services[key] == before.services[key], "round \(round) foreign \(key)")
                    #expect(result.dests[key] == before.dests[key], "round \(round) foreign \(key)")
                }
            }
            #expect(IPVSReconciler.plan(desired: desired, actual: kernel.table, owned: owned).isEmpty)
            // What Vigil records is what the kernel holds, whether the plan is applied at once
            // or a few operations at a time (as the daemon sends a large one), a flush among them.
            let plan = IPVSReconciler.plan(desired: desired, actual: actual, owned: owned, flushFirst: round % 7 == 0)
            var stepwise = actual
            var rest = plan[...]
            while !rest.isEmpty {
                let step = abs(gen.int() % 4) + 1
                stepwise = IPVSReconciler.applying(Array(rest.prefix(step)), to: stepwise)
                rest = rest.dropFirst(step)
            }
            #expect(stepwise == IPVSReconciler.applying(plan, to: actual), "round \(round)")
            if round % 7 != 0 { #expect(FakeKernel(stepwise).dests == FakeKernel(kernel.table).dests, "round \(round)") }
            // Teardown of what was installed removes exactly the owned services.
            for op in IPVSReconciler.teardown(owned: desired) { #expect(kernel.apply(op) == 0) }
            #expect(Set(kernel.services.keys).isDisjoint(with: desired.keys.map(\.key)))
        }
    }
}
