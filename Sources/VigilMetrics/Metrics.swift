// Vigil's /metrics: what a StatusSnapshot says, as Prometheus series built with swift-prometheus.
// Three families of names: mehdy/keepalived-exporter's (so its dashboards and alerts keep
// working), gen2brain/keepalived_exporter's IPVS counters, and Vigil's own `vigil_*`.
import Addressing
import IPVS
import Prometheus
import VRRP
import VigilStatus

/// Keeps one registry for the life of the daemon. Each scrape publishes a snapshot into it:
/// gauges are set, counters are moved to the snapshot's value (a value that went down, after a
/// stats clear, restarts the counter as Prometheus expects), and series of things that are gone
/// (an instance removed by a reload, a VIP, a real server) are unregistered. Histograms are fed
/// as checks and scripts finish, between scrapes.
///
/// Handles are cached per thing (instance, real server, IPVS service), so a scrape does one
/// lookup per thing rather than one per series.
public final class VigilMetrics {
    let registry = PrometheusCollectorRegistry()
    private var generation = 0

    private let up: Gauge
    private let reloadSuccessful: Gauge
    private let lastReloadSuccess: Gauge
    private var reloadResults: [String: PublishedCounter] = [:]
    private var instances: [String: InstanceSeries] = [:]
    private var scripts: [String: ScriptSeries] = [:]
    private var realServers: [RealServerKey: RealServerSeries] = [:]
    private var virtualServers: [String: Tracked<Gauge>] = [:]
    private var services: [IPVSServiceKey: TrafficSeries] = [:]
    private var destinations: [DestinationKey: TrafficSeries] = [:]
    private var checkDurations: [String: ValueHistogram] = [:]

    public static let checkBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    public static let scriptBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    public init(version: String, startedAt: Double) {
        up = registry.makeGauge(descriptor: Family.up.descriptor)
        up.set(to: 1)
        registry.makeGauge(descriptor: Family.buildInfo.descriptor, labels: [("version", version)]).set(to: 1)
        registry.makeGauge(descriptor: Family.processStart.descriptor).set(to: startedAt)
        reloadSuccessful = registry.makeGauge(descriptor: Family.lastReloadSuccessful.descriptor)
        reloadSuccessful.set(to: 1)
        lastReloadSuccess = registry.makeGauge(descriptor: Family.lastReloadSuccess.descriptor)
        lastReloadSuccess.set(to: startedAt)
    }

    /// A health check finished: `kind` is keepalived's keyword (`TCP_CHECK`, …).
    public func observeHealthCheck(kind: String, seconds: Double) {
        let histogram = checkDurations[kind] ?? {
            let made = registry.makeValueHistogram(descriptor: Family.checkDuration.descriptor, labels: [("kind", kind)],
                                                   buckets: Self.checkBuckets)
            checkDurations[kind] = made
            return made
        }()
        histogram.record(seconds)
    }

    /// A track script finished a run.
    public func observeTrackScript(name: String, seconds: Double) {
        scriptSeries(name).duration.record(seconds)
    }

    /// The exposition of `snapshot`, in the Prometheus text format.
    public func exposition(of snapshot: StatusSnapshot) -> [UInt8] {
        publish(snapshot)
        return registry.emitToBuffer()
    }

    func publish(_ s: StatusSnapshot) {
        generation += 1
        publishReloads(s.reloads, startedAt: s.startedAt)
        for i in s.instances { instanceSeries(i).publish(i, generation: generation, registry: registry) }
        for t in s.trackScripts { scriptSeries(t.name).publish(t, generation: generation) }
        for v in s.virtualServers {
            let quorum = virtualServers[v.name] ?? Tracked(registry.makeGauge(descriptor: Family.quorumUp.descriptor,
                                                                              labels: [("virtual_server", v.name)]))
            quorum.value.set(to: v.quorumUp ? 1 : 0)
            quorum.seen = generation
            virtualServers[v.name] = quorum
            for r in v.realServers {
                let key = RealServerKey(virtualServer: v.name, realServer: r.name)
                let series = realServers[key] ?? RealServerSeries(registry: registry, key: key, address: Self.endpoint(r.address, r.port))
                realServers[key] = series
                series.publish(r, generation: generation)
            }
        }
        for (key, traffic) in s.ipvsTraffic {
            let (addr, proto) = Self.labels(of: key)
            let series = services[key] ?? TrafficSeries(registry: registry, prefix: "keepalived_lvs_vip_", labels: [("addr", addr), ("proto", proto)])
            services[key] = series
            series.publish(traffic.service, generation: generation)
            for (destination, counters) in traffic.destinations {
                let dkey = DestinationKey(service: key, destination: destination)
                let dseries = destinations[dkey] ?? TrafficSeries(
                    registry: registry, prefix: "keepalived_lvs_rs_",
                    labels: [("vip", addr), ("addr", Self.endpoint(destination.address, destination.port)), ("proto", proto)])
                destinations[dkey] = dseries
                dseries.publish(counters, generation: generation)
            }
        }
        sweep()
    }

    private func publishReloads(_ r: ReloadCounts, startedAt: Double) {
        for (result, count) in [("applied", r.applied), ("unchanged", r.unchanged), ("refused", r.refused)] {
            let counter = reloadResults[result] ?? PublishedCounter(registry.makeCounter(descriptor: Family.reloads.descriptor,
                                                                                         labels: [("result", result)]))
            counter.publish(UInt64(count))
            reloadResults[result] = counter
        }
        reloadSuccessful.set(to: r.last?.result == "refused" ? 0 : 1)
        lastReloadSuccess.set(to: r.lastSuccessAt ?? startedAt)
    }

    private func instanceSeries(_ i: InstanceStatus) -> InstanceSeries {
        if let existing = instances[i.name], existing.identity == InstanceSeries.identity(of: i) { return existing }
        instances[i.name]?.unregister(from: registry)
        let made = InstanceSeries(registry: registry, instance: i)
        instances[i.name] = made
        return made
    }

    private func scriptSeries(_ name: String) -> ScriptSeries {
        if let existing = scripts[name] { return existing }
        let made = ScriptSeries(registry: registry, name: name)
        scripts[name] = made
        return made
    }

    /// Unregisters whatever the last snapshot no longer had.
    private func sweep() {
        let g = generation
        for (name, series) in instances where series.seen != g {
            series.unregister(from: registry)
            instances[name] = nil
        }
        // A script's histogram may have been fed since the last scrape without a status yet;
        // only scripts that had a status once and lost it are gone.
        for (name, series) in scripts where series.seen != 0 && series.seen != g {
            series.unregister(from: registry)
            scripts[name] = nil
        }
        for (key, series) in realServers where series.seen != g {
            series.unregister(from: registry)
            realServers[key] = nil
        }
        for (key, quorum) in virtualServers where quorum.seen != g {
            registry.unregisterGauge(quorum.value)
            virtualServers[key] = nil
        }
        for (key, series) in services where series.seen != g {
            series.unregister(from: registry)
            services[key] = nil
        }
        for (key, series) in destinations where series.seen != g {
            series.unregister(from: registry)
            destinations[key] = nil
        }
    }

    /// gen2brain's `addr` and `proto` labels: `10.0.0.1:80` and the protocol number. An IPv6
    /// address is bracketed (`[fd00::1]:80`) so the port stays readable; a firewall-mark
    /// service is `fwmark:N` with protocol 0.
    static func labels(of key: IPVSServiceKey) -> (addr: String, proto: String) {
        switch key {
        case .address(let proto, let address, let port): (endpoint(address, port), String(proto.rawValue))
        case .fwmark(let mark, _): ("fwmark:\(mark)", "0")
        }
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

/// A counter that mirrors a value kept elsewhere (keepalived's stats, the kernel's IPVS
/// counters): moved up by the difference, restarted when the value went down.
final class PublishedCounter {
    let counter: Counter
    private var published: UInt64 = 0
    init(_ counter: Counter) { self.counter = counter }

    func publish(_ value: UInt64) {
        if value < published {
            counter.reset()
            counter.increment(by: Int64(clamping: value))
        } else if value > published {
            counter.increment(by: Int64(clamping: value - published))
        }
        published = value
    }
}

struct RealServerKey: Hashable {
    var virtualServer: String
    var realServer: String
}

struct DestinationKey: Hashable {
    var service: IPVSServiceKey
    var destination: IPVSDestinationKey
}

/// One VRRP instance's series: mehdy's per-instance counters and per-VIP state, Vigil's own.
final class InstanceSeries {
    /// The labels mehdy's series carry; a change of interface or VRID is a new set of series.
    struct Identity: Equatable {
        var interface: String
        var vrid: UInt8
        var vips: [String]
    }

    let identity: Identity
    var seen = 0
    private var gauges: [Gauge] = []
    private var counters: [Counter] = []
    private let states: [Gauge]
    private let keepalivedCounters: [PublishedCounter]
    private let garpDelay: Counter
    private let state: Gauge
    private let priority: Gauge
    private let effectivePriority: Gauge
    private let vipsInstalled: Gauge
    private let advertsSent: PublishedCounter
    private let advertsReceived: PublishedCounter
    private let announcements: PublishedCounter
    private let sendErrors: PublishedCounter
    private var transitions: [VRRPStatistics.Transition: PublishedCounter] = [:]
    private var receiveErrors: [String: PublishedCounter] = [:]
    private let name: String

    static func identity(of i: InstanceStatus) -> Identity {
        Identity(interface: i.interface, vrid: i.vrid, vips: i.vips.map { "\($0.addressText) \($0.device)" })
    }

    init(registry: PrometheusCollectorRegistry, instance i: InstanceStatus) {
        name = i.name
        identity = Self.identity(of: i)
        let vrid = String(i.vrid)
        let instanceLabels = [("iname", i.name), ("intf", i.interface), ("vrid", vrid)]
        var made: [Gauge] = []
        var madeCounters: [Counter] = []
        func gauge(_ f: Family, _ labels: [(String, String)]) -> Gauge {
            let g = registry.makeGauge(descriptor: f.descriptor, labels: labels)
            made.append(g)
            return g
        }
        func counter(_ f: Family, _ labels: [(String, String)]) -> Counter {
            let c = registry.makeCounter(descriptor: f.descriptor, labels: labels)
            madeCounters.append(c)
            return c
        }
        // mehdy: one state series per VIP, labelled with the VIP's own device; an instance
        // without VIPs has one with an empty ip_address on the instance's interface.
        let vipLabels = i.vips.isEmpty ? [(i.interface, "")] : i.vips.map { ($0.device, $0.addressText) }
        states = vipLabels.map { gauge(.vrrpState, [("iname", i.name), ("intf", $0.0), ("vrid", vrid), ("ip_address", $0.1)]) }
        keepalivedCounters = Family.keepalivedCounters.map { PublishedCounter(counter($0, instanceLabels)) }
        garpDelay = counter(.garpDelay, instanceLabels)
        let own = [("iname", i.name)]
        state = gauge(.instanceState, own)
        priority = gauge(.priority, own)
        effectivePriority = gauge(.effectivePriority, own)
        vipsInstalled = gauge(.vipsInstalled, own)
        advertsSent = PublishedCounter(counter(.advertsSent, own))
        advertsReceived = PublishedCounter(counter(.advertsReceived, own))
        announcements = PublishedCounter(counter(.announcements, own))
        sendErrors = PublishedCounter(counter(.sendErrors, own))
        gauges = made
        counters = madeCounters
    }

    func publish(_ i: InstanceStatus, generation: Int, registry: PrometheusCollectorRegistry) {
        seen = generation
        let number = Double(keepalivedStateNumber(i.state))
        for g in states { g.set(to: number) }
        for (counter, (_, value)) in zip(keepalivedCounters, i.stats.keepalivedFields) { counter.publish(value) }
        // mehdy's "counter" holds the configured delay in seconds; kept as it is for its dashboards.
        garpDelay.reset()
        garpDelay.increment(by: i.garpDelay)
        state.set(to: number)
        priority.set(to: Double(i.basePriority))
        effectivePriority.set(to: Double(i.effectivePriority))
        vipsInstalled.set(to: Double(i.vips.filter(\.installed).count))
        advertsSent.publish(i.stats.advertsSent)
        advertsReceived.publish(i.stats.advertsReceived)
        announcements.publish(i.stats.announcementsSent)
        sendErrors.publish(i.stats.sendErrors)
        for (transition, count) in i.stats.transitions {
            let counter = transitions[transition] ?? {
                let c = registry.makeCounter(descriptor: Family.transitions.descriptor,
                                             labels: [("iname", name), ("from", stateName(transition.from)), ("to", stateName(transition.to))])
                counters.append(c)
                return PublishedCounter(c)
            }()
            transitions[transition] = counter
            counter.publish(count)
        }
        for (reason, count) in i.stats.receiveErrors {
            let counter = receiveErrors[reason] ?? {
                let c = registry.makeCounter(descriptor: Family.receiveErrors.descriptor, labels: [("iname", name), ("reason", reason)])
                counters.append(c)
                return PublishedCounter(c)
            }()
            receiveErrors[reason] = counter
            counter.publish(count)
        }
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        for g in gauges { registry.unregisterGauge(g) }
        for c in counters { registry.unregisterCounter(c) }
    }
}

/// A vrrp_script: mehdy's status and state gauges, Vigil's verdict, run counts and durations.
final class ScriptSeries {
    var seen = 0
    let duration: ValueHistogram
    private let status: Gauge
    private let state: Gauge
    private let scriptUp: Gauge
    private let runs: [PublishedCounter]

    init(registry: PrometheusCollectorRegistry, name: String) {
        status = registry.makeGauge(descriptor: Family.scriptStatus.descriptor, labels: [("name", name)])
        state = registry.makeGauge(descriptor: Family.scriptState.descriptor, labels: [("name", name)])
        scriptUp = registry.makeGauge(descriptor: Family.trackScriptUp.descriptor, labels: [("script", name)])
        runs = ["success", "failure", "timeout"].map {
            PublishedCounter(registry.makeCounter(descriptor: Family.trackScriptRuns.descriptor, labels: [("script", name), ("result", $0)]))
        }
        duration = registry.makeValueHistogram(descriptor: Family.trackScriptDuration.descriptor, labels: [("script", name)],
                                               buckets: VigilMetrics.scriptBuckets)
    }

    func publish(_ t: TrackScriptStatus, generation: Int) {
        seen = generation
        status.set(to: t.verdict == .up ? 1 : 0)
        state.set(to: t.running ? 1 : 0)
        scriptUp.set(to: t.verdict == .up ? 1 : 0)
        for (counter, value) in zip(runs, [t.successes, t.failures, t.timeouts]) { counter.publish(value) }
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        for g in [status, state, scriptUp] { registry.unregisterGauge(g) }
        for c in runs { registry.unregisterCounter(c.counter) }
        registry.unregisterValueHistogram(duration)
    }
}

final class RealServerSeries {
    var seen = 0
    private let up: Gauge
    private let weight: Gauge

    init(registry: PrometheusCollectorRegistry, key: RealServerKey, address: String) {
        let labels = [("virtual_server", key.virtualServer), ("real_server", address)]
        up = registry.makeGauge(descriptor: Family.realServerUp.descriptor, labels: labels)
        weight = registry.makeGauge(descriptor: Family.realServerWeight.descriptor, labels: labels)
    }

    func publish(_ r: RealServerStatus, generation: Int) {
        seen = generation
        up.set(to: r.alive ? 1 : 0)
        weight.set(to: Double(r.currentWeight ?? 0))
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        registry.unregisterGauge(up)
        registry.unregisterGauge(weight)
    }
}

/// gen2brain's five IPVS counters of a service or a destination. They are exposed with
/// gen2brain's names, which lack `_total`; promtool rejects a counter named so, and PromQL's
/// rate() does not look at the type, so they are typed gauge (see the README).
final class TrafficSeries {
    var seen = 0
    private let gauges: [Gauge]

    init(registry: PrometheusCollectorRegistry, prefix: String, labels: [(String, String)]) {
        gauges = Family.trafficSuffixes.map { suffix, help in
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: prefix + suffix, unitName: "",
                                                                helpText: help + (prefix.contains("_rs_") ? " of the real server" : " of the virtual service")),
                               labels: labels)
        }
    }

    func publish(_ s: IPVSStatistics, generation: Int) {
        seen = generation
        for (gauge, value) in zip(gauges, [s.inPackets, s.outPackets, s.inBytes, s.outBytes, s.connections]) { gauge.set(to: Double(value)) }
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        for g in gauges { registry.unregisterGauge(g) }
    }
}
