// Vigil's /metrics: what a StatusSnapshot says, as Prometheus series built with swift-prometheus.
// Three families of names: mehdy/keepalived-exporter's (so its dashboards and alerts keep
// working), gen2brain/keepalived_exporter's IPVS counters, and Vigil's own `vigil_*`.
import Addressing
import IPVS
import Prometheus
import VRRP
import VigilStatus

/// Keeps its series for the life of the daemon. Each scrape publishes a snapshot into them:
/// gauges are set, counters are moved to the snapshot's value, and series of things that are
/// gone (an instance removed by a reload, a VIP, a real server) are unregistered. Histograms are
/// fed as checks and scripts finish, between scrapes. Only what changed is re-rendered
/// (FamilyStore), and handles are cached per thing (instance, real server, IPVS service), so a
/// scrape does one lookup per thing rather than one per series.
public final class VigilMetrics {
    let store = FamilyStore()
    private var generation = 0

    private let reloadSuccessful: PublishedGauge
    private let lastReloadSuccess: PublishedGauge
    private var reloadResults: [String: PublishedCounter] = [:]
    /// vigil_vrrp_unmatched_packets_total by interface, family and reason; counters only grow.
    private var unmatched: [[String]: PublishedCounter] = [:]
    private var instances: [String: InstanceSeries] = [:]
    private var scripts: [String: ScriptSeries] = [:]
    private var realServers: [RealServerKey: RealServerSeries] = [:]
    /// The real servers' series in the last snapshot's order.
    private var realServerPlaces: [[RealServerSeries]] = []
    private var virtualServers: [String: Tracked<PublishedGauge>] = [:]
    private var services: [IPVSServiceKey: TrafficSeries] = [:]
    private var destinations: [DestinationKey: TrafficSeries] = [:]
    /// Each service's destination series in the last snapshot's order.
    private var destinationPlaces: [IPVSServiceKey: [TrafficSeries]] = [:]
    private var checkDurations: [String: PublishedHistogram] = [:]

    public static let checkBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    public static let scriptBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// How many things are published between two progress calls.
    static let progressEvery = 128

    public init(version: String, startedAt: Double) {
        store.gauge(Family.up.descriptor).publish(1)
        store.gauge(Family.buildInfo.descriptor, [("version", version)]).publish(1)
        store.gauge(Family.processStart.descriptor).publish(startedAt)
        reloadSuccessful = store.gauge(Family.lastReloadSuccessful.descriptor)
        lastReloadSuccess = store.gauge(Family.lastReloadSuccess.descriptor)
        reloadSuccessful.publish(1)
        lastReloadSuccess.publish(startedAt)
    }

    /// A health check finished: `kind` is keepalived's keyword (`TCP_CHECK`, …).
    public func observeHealthCheck(kind: String, seconds: Double) {
        let histogram = checkDurations[kind] ?? {
            let made = store.histogram(Family.checkDuration.descriptor, [("kind", kind)], buckets: Self.checkBuckets)
            checkDurations[kind] = made
            return made
        }()
        histogram.record(seconds)
    }

    /// A track script finished a run.
    public func observeTrackScript(name: String, seconds: Double) {
        scriptSeries(name).duration.record(seconds)
    }

    /// The exposition of `snapshot`, in the Prometheus text format. `progress` is called every
    /// so often: the first scrape of a large configuration registers thousands of series, and
    /// the daemon sends the adverts that fall due meanwhile from it (as a reload's parser does).
    public func exposition(of snapshot: StatusSnapshot, progress: () -> Void = {}) -> [UInt8] {
        publish(snapshot, progress: progress)
        return store.emit(progress: progress)
    }

    /// The HTTP response to a scrape, built in one buffer (the exposition is copied once).
    public func response(to snapshot: StatusSnapshot, head: Bool, progress: () -> Void = {}) -> [UInt8] {
        publish(snapshot, progress: progress)
        let length = store.render(progress: progress)
        var out = MetricsHTTP.header(status: "200 OK", contentType: MetricsHTTP.contentType, length: length)
        guard !head else { return out }
        out.reserveCapacity(out.count + length)
        store.append(to: &out)
        return out
    }

    func publish(_ s: StatusSnapshot, progress: () -> Void = {}) {
        generation += 1
        var published = 0
        func step() {
            published += 1
            if published % Self.progressEvery == 0 { progress() }
        }
        publishReloads(s.reloads, startedAt: s.startedAt)
        for u in s.unmatchedPackets {
            let key = [u.interface, u.family, u.reason]
            let counter = unmatched[key] ?? store.counter(Family.unmatchedPackets.descriptor, [("intf", u.interface), ("family", u.family), ("reason", u.reason)])
            counter.publish(u.count)
            unmatched[key] = counter
        }
        for i in s.instances {
            instanceSeries(i).publish(i, generation: generation, store: store)
            step()
        }
        for t in s.trackScripts { scriptSeries(t.name).publish(t, generation: generation) }
        // Between reloads the snapshot lists the same servers in the same order: the series of
        // the previous scrape at the same place is checked and reused, with no hashing.
        var placed: [[RealServerSeries]] = []
        placed.reserveCapacity(s.virtualServers.count)
        for (vi, v) in s.virtualServers.enumerated() {
            let label = Self.label(of: v)
            let quorum = virtualServers[label] ?? Tracked(store.gauge(Family.quorumUp.descriptor, [("virtual_server", label)]))
            quorum.value.publish(v.quorumUp ? 1 : 0)
            quorum.seen = generation
            virtualServers[label] = quorum
            let previous = vi < realServerPlaces.count ? realServerPlaces[vi] : []
            var row: [RealServerSeries] = []
            row.reserveCapacity(v.realServers.count)
            for (ri, r) in v.realServers.enumerated() {
                let series: RealServerSeries
                if ri < previous.count, previous[ri].key.matches(label, r.address, r.port) {
                    series = previous[ri]
                } else {
                    let key = RealServerKey(virtualServer: label, address: r.address, port: r.port)
                    series = realServers[key] ?? RealServerSeries(store: store, key: key)
                    realServers[key] = series
                }
                series.publish(r, generation: generation)
                row.append(series)
                step()
            }
            placed.append(row)
        }
        realServerPlaces = placed
        // The kernel's destinations come in the same order from one scrape to the next (the
        // same keys read into a dictionary the same way): as for real servers, the series at
        // the same place is checked and reused, and only a newcomer is hashed.
        var placedDestinations: [IPVSServiceKey: [TrafficSeries]] = [:]
        placedDestinations.reserveCapacity(s.ipvsTraffic.count)
        for (key, traffic) in s.ipvsTraffic {
            let (addr, proto) = Self.labels(of: key)
            let series = services[key] ?? TrafficSeries(store: store, prefix: "keepalived_lvs_vip_", labels: [("addr", addr), ("proto", proto)])
            services[key] = series
            series.publish(traffic.service, generation: generation)
            let previous = destinationPlaces[key] ?? []
            var row: [TrafficSeries] = []
            row.reserveCapacity(traffic.destinations.count)
            for (di, (destination, counters)) in traffic.destinations.enumerated() {
                let dseries: TrafficSeries
                if di < previous.count, previous[di].destination == destination {
                    dseries = previous[di]
                } else {
                    let dkey = DestinationKey(service: key, destination: destination)
                    dseries = destinations[dkey] ?? TrafficSeries(
                        store: store, prefix: "keepalived_lvs_rs_", destination: destination,
                        labels: [("vip", addr), ("addr", Self.endpoint(destination.address, destination.port)), ("proto", proto)])
                    destinations[dkey] = dseries
                }
                dseries.publish(counters, generation: generation)
                row.append(dseries)
                step()
            }
            placedDestinations[key] = row
        }
        destinationPlaces = placedDestinations
        sweep()
    }

    private func publishReloads(_ r: ReloadCounts, startedAt: Double) {
        for (result, count) in [("applied", r.applied), ("unchanged", r.unchanged), ("refused", r.refused)] {
            let counter = reloadResults[result] ?? store.counter(Family.reloads.descriptor, [("result", result)])
            counter.publish(UInt64(count))
            reloadResults[result] = counter
        }
        reloadSuccessful.publish(r.last?.result == "refused" ? 0 : 1)
        lastReloadSuccess.publish(r.lastSuccessAt ?? startedAt)
    }

    private func instanceSeries(_ i: InstanceStatus) -> InstanceSeries {
        if let existing = instances[i.name], existing.identity == InstanceSeries.identity(of: i) { return existing }
        instances[i.name]?.unregister()
        let made = InstanceSeries(store: store, instance: i)
        instances[i.name] = made
        return made
    }

    private func scriptSeries(_ name: String) -> ScriptSeries {
        if let existing = scripts[name] { return existing }
        let made = ScriptSeries(store: store, name: name)
        scripts[name] = made
        return made
    }

    /// Unregisters whatever the last snapshot no longer had.
    private func sweep() {
        let g = generation
        for (name, series) in instances where series.seen != g {
            series.unregister()
            instances[name] = nil
        }
        // A script's histogram may have been fed since the last scrape without a status yet;
        // only scripts that had a status once and lost it are gone.
        for (name, series) in scripts where series.seen != 0 && series.seen != g {
            series.unregister()
            scripts[name] = nil
        }
        for (key, series) in realServers where series.seen != g {
            series.unregister()
            realServers[key] = nil
        }
        for (key, quorum) in virtualServers where quorum.seen != g {
            quorum.value.unregister()
            virtualServers[key] = nil
        }
        for (key, series) in services where series.seen != g {
            series.unregister()
            services[key] = nil
        }
        for (key, series) in destinations where series.seen != g {
            series.unregister()
            destinations[key] = nil
        }
    }

    /// gen2brain's `addr` and `proto` labels: `10.0.0.1:80` and the protocol number. An IPv6
    /// address is bracketed (`[fd00::1]:80`) so the port stays readable; a firewall-mark
    /// service is `fwmark:N` with protocol 0, `fwmark6:N` for IPv6 (the kernel keeps the same
    /// mark once per family, and two services must not share a series).
    static func labels(of key: IPVSServiceKey) -> (addr: String, proto: String) {
        switch key {
        case .address(let proto, let address, let port): (endpoint(address, port), String(proto.rawValue))
        case .fwmark(let mark, .ipv4): ("fwmark:\(mark)", "0")
        case .fwmark(let mark, .ipv6): ("fwmark6:\(mark)", "0")
        }
    }

    /// The `virtual_server` label: keepalived's name of the first service, which is `FWM N` for
    /// both families of a mark, so an IPv6 one is told apart as `FWM N IPv6`.
    static func label(of v: VirtualServerStatus) -> String {
        if case .fwmark(_, .ipv6)? = v.services.first?.key { return v.name + " IPv6" }
        return v.name
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        switch address {
        case .v4: "\(address):\(port)"
        case .v6: "[\(address)]:\(port)"
        }
    }
}

/// A handle and the generation of the last snapshot that had it.
final class Tracked<Value> {
    let value: Value
    var seen = 0
    init(_ value: Value) { self.value = value }
}

struct RealServerKey: Hashable {
    var virtualServer: String
    var address: IPAddress
    var port: UInt16

    func matches(_ virtualServer: String, _ address: IPAddress, _ port: UInt16) -> Bool {
        self.port == port && self.address == address && self.virtualServer == virtualServer
    }
}

struct DestinationKey: Hashable {
    var service: IPVSServiceKey
    var destination: IPVSDestinationKey
}

/// One VRRP instance's series: mehdy's per-instance counters and per-VIP state, Vigil's own.
final class InstanceSeries {
    /// The labels mehdy's series carry; a change of interface, VRID or VIPs is a new set of series.
    struct Identity: Equatable {
        struct VIP: Equatable {
            var address: IPAddress
            var prefixLength: UInt8
            var device: String
        }
        var interface: String
        var vrid: UInt8
        var vips: [VIP]
    }

    let identity: Identity
    var seen = 0
    private var gauges: [PublishedGauge] = []
    private var counters: [PublishedCounter] = []
    private let states: [PublishedGauge]
    private let keepalivedCounters: [PublishedCounter]
    private let garpDelay: PublishedCounter
    private let state: PublishedGauge
    private let priority: PublishedGauge
    private let effectivePriority: PublishedGauge
    private let vipsInstalled: PublishedGauge
    private let advertsSent: PublishedCounter
    private let advertsReceived: PublishedCounter
    private let announcements: PublishedCounter
    private let sendErrors: PublishedCounter
    private var transitions: [VRRPStatistics.Transition: PublishedCounter] = [:]
    private var receiveErrors: [String: PublishedCounter] = [:]
    private let name: String

    static func identity(of i: InstanceStatus) -> Identity {
        Identity(interface: i.interface, vrid: i.vrid, vips: i.vips.map { .init(address: $0.address, prefixLength: $0.prefixLength, device: $0.device) })
    }

    init(store: FamilyStore, instance i: InstanceStatus) {
        name = i.name
        identity = Self.identity(of: i)
        let vrid = String(i.vrid)
        let instanceLabels = [("iname", i.name), ("intf", i.interface), ("vrid", vrid)]
        var madeGauges: [PublishedGauge] = []
        var madeCounters: [PublishedCounter] = []
        func gauge(_ f: Family, _ labels: [(String, String)]) -> PublishedGauge {
            let g = store.gauge(f.descriptor, labels)
            madeGauges.append(g)
            return g
        }
        func counter(_ f: Family, _ labels: [(String, String)]) -> PublishedCounter {
            let c = store.counter(f.descriptor, labels)
            madeCounters.append(c)
            return c
        }
        // mehdy: one state series per VIP, labelled with the VIP's own device; an instance
        // without VIPs has one with an empty ip_address on the instance's interface.
        let vipLabels = i.vips.isEmpty ? [(i.interface, "")] : i.vips.map { ($0.device, $0.addressText) }
        states = vipLabels.map { gauge(.vrrpState, [("iname", i.name), ("intf", $0.0), ("vrid", vrid), ("ip_address", $0.1)]) }
        keepalivedCounters = Family.keepalivedCounters.map { counter($0, instanceLabels) }
        garpDelay = counter(.garpDelay, instanceLabels)
        let own = [("iname", i.name)]
        state = gauge(.instanceState, own)
        priority = gauge(.priority, own)
        effectivePriority = gauge(.effectivePriority, own)
        vipsInstalled = gauge(.vipsInstalled, own)
        advertsSent = counter(.advertsSent, own)
        advertsReceived = counter(.advertsReceived, own)
        announcements = counter(.announcements, own)
        sendErrors = counter(.sendErrors, own)
        gauges = madeGauges
        counters = madeCounters
    }

    func publish(_ i: InstanceStatus, generation: Int, store: FamilyStore) {
        seen = generation
        let number = Double(keepalivedStateNumber(i.state))
        for g in states { g.publish(number) }
        for (counter, (_, value)) in zip(keepalivedCounters, i.stats.keepalivedFields) { counter.publish(value) }
        // mehdy's "counter" holds the configured delay in seconds; kept as it is for its dashboards.
        garpDelay.publish(seconds: i.garpDelay)
        state.publish(number)
        priority.publish(Double(i.basePriority))
        effectivePriority.publish(Double(i.effectivePriority))
        vipsInstalled.publish(Double(i.vips.filter(\.installed).count))
        advertsSent.publish(i.stats.advertsSent)
        advertsReceived.publish(i.stats.advertsReceived)
        announcements.publish(i.stats.announcementsSent)
        sendErrors.publish(i.stats.sendErrors)
        for (transition, count) in i.stats.transitions {
            let counter = transitions[transition] ?? {
                let c = store.counter(Family.transitions.descriptor,
                                      [("iname", name), ("from", stateName(transition.from)), ("to", stateName(transition.to))])
                counters.append(c)
                return c
            }()
            transitions[transition] = counter
            counter.publish(count)
        }
        // After a clear, a transition or reason not seen since is zero again.
        for (transition, counter) in transitions where i.stats.transitions[transition] == nil { counter.publish(0) }
        for (reason, count) in i.stats.receiveErrors {
            let counter = receiveErrors[reason] ?? {
                let c = store.counter(Family.receiveErrors.descriptor, [("iname", name), ("reason", reason)])
                counters.append(c)
                return c
            }()
            receiveErrors[reason] = counter
            counter.publish(count)
        }
        for (reason, counter) in receiveErrors where i.stats.receiveErrors[reason] == nil { counter.publish(0) }
    }

    func unregister() {
        for g in gauges { g.unregister() }
        for c in counters { c.unregister() }
    }
}

/// A vrrp_script: mehdy's status and state gauges, Vigil's verdict, run counts and durations.
final class ScriptSeries {
    var seen = 0
    let duration: PublishedHistogram
    private let status: PublishedGauge
    private let state: PublishedGauge
    private let scriptUp: PublishedGauge
    private let runs: [PublishedCounter]

    init(store: FamilyStore, name: String) {
        status = store.gauge(Family.scriptStatus.descriptor, [("name", name)])
        state = store.gauge(Family.scriptState.descriptor, [("name", name)])
        scriptUp = store.gauge(Family.trackScriptUp.descriptor, [("script", name)])
        runs = ["success", "failure", "timeout"].map { store.counter(Family.trackScriptRuns.descriptor, [("script", name), ("result", $0)]) }
        duration = store.histogram(Family.trackScriptDuration.descriptor, [("script", name)], buckets: VigilMetrics.scriptBuckets)
    }

    func publish(_ t: TrackScriptStatus, generation: Int) {
        seen = generation
        status.publish(t.verdict == .up ? 1 : 0)
        state.publish(t.running ? 1 : 0)
        scriptUp.publish(t.verdict == .up ? 1 : 0)
        for (counter, value) in zip(runs, [t.successes, t.failures, t.timeouts]) { counter.publish(value) }
    }

    func unregister() {
        for g in [status, state, scriptUp] { g.unregister() }
        for c in runs { c.unregister() }
        duration.unregister()
    }
}

final class RealServerSeries {
    var seen = 0
    let key: RealServerKey
    private let up: PublishedGauge
    private let weight: PublishedGauge

    init(store: FamilyStore, key: RealServerKey) {
        self.key = key
        let labels = [("virtual_server", key.virtualServer), ("real_server", VigilMetrics.endpoint(key.address, key.port))]
        up = store.gauge(Family.realServerUp.descriptor, labels)
        weight = store.gauge(Family.realServerWeight.descriptor, labels)
    }

    func publish(_ r: RealServerStatus, generation: Int) {
        seen = generation
        up.publish(r.alive ? 1 : 0)
        weight.publish(Double(r.currentWeight ?? 0))
    }

    func unregister() {
        up.unregister()
        weight.unregister()
    }
}

/// gen2brain's five IPVS counters of a service or a destination. They are exposed with
/// gen2brain's names, which lack `_total`; promtool rejects a counter named so, and PromQL's
/// rate() does not look at the type, so they are typed gauge (see the README).
final class TrafficSeries {
    var seen = 0
    /// The destination a real server's series are of (nil for a service's).
    let destination: IPVSDestinationKey?
    private let gauges: [PublishedGauge]

    init(store: FamilyStore, prefix: String, destination: IPVSDestinationKey? = nil, labels: [(String, String)]) {
        self.destination = destination
        let of = prefix.contains("_rs_") ? " of the real server" : " of the virtual service"
        gauges = Family.trafficSuffixes.map { suffix, help in
            store.gauge(MetricNameDescriptor(metricName: prefix + suffix, unitName: "", helpText: help + of), labels)
        }
    }

    func publish(_ s: IPVSStatistics, generation: Int) {
        seen = generation
        for (gauge, value) in zip(gauges, [s.inPackets, s.outPackets, s.inBytes, s.outBytes, s.connections]) { gauge.publish(Double(value)) }
    }

    func unregister() {
        for g in gauges { g.unregister() }
    }
}
