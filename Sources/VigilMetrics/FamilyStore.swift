import Prometheus

/// One swift-prometheus registry per metric family, each with the bytes it emitted last. A
/// scrape re-renders only the families whose values changed since the previous one and copies
/// the others, so its cost follows what changed: on an idle director that is a few counters,
/// not every real server's series. Families come out sorted by name, so scrapes diff well.
final class FamilyStore {
    final class Entry {
        let registry = PrometheusCollectorRegistry()
        var bytes: [UInt8] = []
        var dirty = true
    }

    private var entries: [String: Entry] = [:]
    private var names: [String] = []

    func entry(_ name: String) -> Entry {
        if let existing = entries[name] { return existing }
        let made = Entry()
        entries[name] = made
        names.append(name)
        names.sort()
        return made
    }

    func gauge(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)] = []) -> PublishedGauge {
        let family = entry(descriptor.name)
        family.dirty = true
        let gauge = labels.isEmpty ? family.registry.makeGauge(descriptor: descriptor)
                                   : family.registry.makeGauge(descriptor: descriptor, labels: labels)
        return PublishedGauge(gauge, family)
    }

    func counter(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)]) -> PublishedCounter {
        let family = entry(descriptor.name)
        family.dirty = true
        return PublishedCounter(family.registry.makeCounter(descriptor: descriptor, labels: labels), family)
    }

    func histogram(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)], buckets: [Double]) -> PublishedHistogram {
        let family = entry(descriptor.name)
        family.dirty = true
        return PublishedHistogram(family.registry.makeValueHistogram(descriptor: descriptor, labels: labels, buckets: buckets), family)
    }

    /// Re-renders the families that changed and returns the exposition's length. `progress`
    /// is called between families, so that the loop can send what fell due while a large
    /// first scrape renders.
    func render(progress: () -> Void) -> Int {
        var length = 0
        for name in names {
            guard let family = entries[name] else { continue }
            if family.dirty {
                family.bytes.removeAll(keepingCapacity: true)
                family.registry.emit(into: &family.bytes)
                family.dirty = false
                progress()
            }
            length += family.bytes.count
        }
        return length
    }

    /// The exposition as last rendered.
    func append(to out: inout [UInt8]) {
        for name in names { if let family = entries[name] { out.append(contentsOf: family.bytes) } }
    }

    func emit(progress: () -> Void = {}) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(render(progress: progress))
        append(to: &out)
        return out
    }
}

/// A gauge that is only touched (and its family only re-rendered) when its value changes.
final class PublishedGauge {
    let gauge: Gauge
    private unowned let family: FamilyStore.Entry
    private var value = Double.nan

    init(_ gauge: Gauge, _ family: FamilyStore.Entry) {
        self.gauge = gauge
        self.family = family
    }

    func publish(_ new: Double) {
        guard new != value else { return }
        value = new
        gauge.set(to: new)
        family.dirty = true
    }

    func unregister() {
        family.registry.unregisterGauge(gauge)
        family.dirty = true
    }
}

/// A counter that mirrors a value kept elsewhere (keepalived's stats, the kernel's IPVS
/// counters): moved up by the difference, restarted when the value went down (a stats clear),
/// as Prometheus expects of a counter that resets.
final class PublishedCounter {
    let counter: Counter
    private unowned let family: FamilyStore.Entry
    private var published: UInt64 = 0
    private var seconds = Double.nan

    init(_ counter: Counter, _ family: FamilyStore.Entry) {
        self.counter = counter
        self.family = family
    }

    func publish(_ value: UInt64) {
        guard value != published else { return }
        if value < published {
            counter.reset()
            counter.increment(by: Int64(clamping: value))
        } else {
            counter.increment(by: Int64(clamping: value - published))
        }
        published = value
        family.dirty = true
    }

    /// A value that is not a count at all (keepalived-exporter's garp delay), set as it is.
    func publish(seconds value: Double) {
        guard value != seconds else { return }
        seconds = value
        counter.reset()
        counter.increment(by: value)
        family.dirty = true
    }

    func unregister() {
        family.registry.unregisterCounter(counter)
        family.dirty = true
    }
}

final class PublishedHistogram {
    private let histogram: ValueHistogram
    private unowned let family: FamilyStore.Entry

    init(_ histogram: ValueHistogram, _ family: FamilyStore.Entry) {
        self.histogram = histogram
        self.family = family
    }

    func record(_ value: Double) {
        histogram.record(value)
        family.dirty = true
    }

    func unregister() {
        family.registry.unregisterValueHistogram(histogram)
        family.dirty = true
    }
}
