import Testing
import VigilTestSupport
import Addressing
@testable import VRRP

/// A pure, deterministic LAN: every advert a router sends is encoded to real IP bytes,
/// carried with a fixed latency to every other live router in the same partition (unless
/// the seeded loss model drops it), decoded, and handed to the receiver's machine. Nothing
/// sleeps; the clock jumps from one deadline or delivery to the next.
private struct SimulatedLAN {
    struct Router {
        var machine: VRRPStateMachine
        var alive = true
        var partition = 0
        var holdsVIPs = false
    }

    struct Delivery {
        var at: VRRPInstant
        var from: Int
        var to: Int
        var bytes: [UInt8]
    }

    var routers: [Router]
    var now: VRRPInstant = .zero
    var queue: [Delivery] = []
    var rng: SeededRandom
    var lossRate = 0.0
    let latency: Int64 = 200
    var transitions: [(at: VRRPInstant, router: Int, to: VRRPState)] = []
    /// When router `to` last received an advert from router `from`.
    var lastHeard: [Int: [Int: VRRPInstant]] = [:]
    var receiveErrors: [String: Int] = [:]

    init(_ configs: [VRRPInstanceConfig], seed: UInt64 = 1) {
        routers = configs.map { Router(machine: VRRPStateMachine(config: $0)) }
        rng = SeededRandom(seed: seed)
    }

    mutating func startAll() {
        for index in routers.indices { apply(.start, to: index) }
    }

    mutating func apply(_ event: VRRPEvent, to index: Int) {
        guard routers[index].alive else { return }
        for action in routers[index].machine.handle(event, at: now) {
            switch action {
            case .sendAdvert(let advert):
                let bytes = encode(advert, from: index)
                for peer in routers.indices where peer != index && routers[peer].partition == routers[index].partition {
                    if lossRate > 0 && Double.random(in: 0..<1, using: &rng) < lossRate { continue }
                    queue.append(Delivery(at: now + latency, from: index, to: peer, bytes: bytes))
                }
            case .addVIPs: routers[index].holdsVIPs = true
            case .removeVIPs: routers[index].holdsVIPs = false
            case .stateChanged(_, let to, _): transitions.append((now, index, to))
            case .countReceiveError(let error): receiveErrors[error.counterName, default: 0] += 1
            default: break
            }
        }
    }

    func encode(_ advert: VRRPAdvert, from index: Int) -> [UInt8] {
        let config = routers[index].machine.config
        switch config.sourceAddress {
        case .v4(let source): return advert.encodeIPv4Packet(source: source, v3ChecksumAsV2: config.v3ChecksumAsV2)
        case .v6(let source): return advert.encodeIPv6Packet(source: source)
        }
    }

    mutating func deliver(_ delivery: Delivery) throws {
        let received: VRRPReceivedAdvert
        if routers[delivery.to].machine.config.family == .ipv4 {
            let packet = try decodeIPv4Packet(delivery.bytes)
            received = VRRPReceivedAdvert(
                advert: packet.advert, source: .v4(packet.source), ttl: packet.ttl,
                isMulticast: packet.destination.isMulticast)
        } else {
            let packet = try decodeIPv6Packet(delivery.bytes)
            received = VRRPReceivedAdvert(
                advert: packet.advert, source: .v6(packet.source), ttl: packet.hopLimit,
                isMulticast: packet.destination.isMulticast)
        }
        if routers[delivery.to].alive { lastHeard[delivery.to, default: [:]][delivery.from] = now }
        apply(.packetReceived(received), to: delivery.to)
    }

    /// Runs to `instant`, deliveries before timers at equal times, lower router index first.
    mutating func run(until instant: VRRPInstant) throws {
        while true {
            let nextDelivery = queue.map(\.at).min()
            let nextTimer = routers.indices.filter { routers[$0].alive }.compactMap { routers[$0].machine.nextDeadline }.min()
            guard let next = [nextDelivery, nextTimer].compactMap({ $0 }).min(), next <= instant else { break }
            now = max(now, next)
            let due = queue.filter { $0.at <= now }
            queue.removeAll { $0.at <= now }
            for delivery in due { try deliver(delivery) }
            for index in routers.indices where routers[index].alive {
                if let deadline = routers[index].machine.nextDeadline, deadline <= now { apply(.timerFired, to: index) }
            }
        }
        now = instant
    }

    mutating func run(for microseconds: Int64) throws { try run(until: now + microseconds) }

    var masters: [Int] { routers.indices.filter { routers[$0].alive && routers[$0].machine.state == .master } }
    var vipHolders: [Int] { routers.indices.filter { routers[$0].alive && routers[$0].holdsVIPs } }
}

private func lanConfig(
    host: UInt8, priority: UInt8, version: VRRPVersion = .v2, interval: Int64 = 1_000_000, family: AddressFamily = .ipv4
) -> VRRPInstanceConfig {
    var config = VRRPInstanceConfig.test(host: host, priority: priority, version: version, interval: interval)
    if family == .ipv6 {
        config.sourceAddress = .v6(IPv6Address(high: 0xFE80_0000_0000_0000, low: UInt64(host)))
        config.virtualAddresses = [ip("fe80::100"), ip("2001:db8::100")]
    }
    return config
}

@Suite struct SimulatedLANTests {
    static let scenarios: [(VRRPVersion, Int64, AddressFamily)] = [
        (.v2, 1_000_000, .ipv4), (.v3, 1_000_000, .ipv4), (.v3, 100_000, .ipv4), (.v3, 1_000_000, .ipv6),
    ]

    /// Three routers converge on the highest priority; when it dies silently the next one
    /// takes over exactly Master_Down_Interval after the last advert it heard, and the
    /// lowest stays BACKUP throughout.
    @Test(arguments: scenarios)
    func convergesAndFailsOverWithinMasterDown(version: VRRPVersion, interval: Int64, family: AddressFamily) throws {
        var lan = SimulatedLAN([
            lanConfig(host: 1, priority: 100, version: version, interval: interval, family: family),
            lanConfig(host: 2, priority: 150, version: version, interval: interval, family: family),
            lanConfig(host: 3, priority: 200, version: version, interval: interval, family: family),
        ])
        lan.startAll()
        try lan.run(until: VRRPInstant.zero + 10 * interval)
        #expect(lan.masters == [2])
        #expect(lan.vipHolders == [2])
        #expect(lan.transitions.filter { $0.to == .master }.map(\.router) == [2])
        #expect(lan.receiveErrors.isEmpty)
        for _ in 0..<20 {
            try lan.run(for: interval / 2)
            #expect(lan.masters == [2])
        }
        let killedAt = lan.now + interval / 3
        try lan.run(until: killedAt)
        lan.routers[2].alive = false
        try lan.run(for: 10 * interval)
        #expect(lan.masters == [1])
        #expect(lan.vipHolders == [1])
        let lastHeard = try #require(lan.lastHeard[1]?[2])
        let takeover = try #require(lan.transitions.last { $0.router == 1 && $0.to == .master }?.at)
        let masterDown = VRRPTimers.masterDown(priority: 150, version: version, masterAdvertInterval: interval)
        #expect(takeover == lastHeard + masterDown)
        #expect(takeover - killedAt <= masterDown)
        #expect(!lan.transitions.contains { $0.router == 0 && $0.to == .master })
    }

    /// Equal priorities: everyone times out together, and the address tie-break on the
    /// master side leaves exactly the highest address in charge.
    @Test func equalPrioritiesResolveByHighestAddress() throws {
        var lan = SimulatedLAN((1...4).map { lanConfig(host: $0, priority: 100) })
        lan.startAll()
        try lan.run(until: VRRPInstant.zero + seconds(4))
        try lan.run(for: seconds(10))
        #expect(lan.masters == [3])
        #expect(lan.vipHolders == [3])
    }

    /// A partition gives each side a master; healing it leaves only the higher priority,
    /// within one advert interval, thanks to the lower-priority answer.
    @Test func partitionAndHeal() throws {
        var lan = SimulatedLAN([lanConfig(host: 1, priority: 100), lanConfig(host: 2, priority: 200)])
        lan.startAll()
        try lan.run(for: seconds(10))
        #expect(lan.masters == [1])
        lan.routers[0].partition = 1
        try lan.run(for: seconds(10))
        #expect(lan.masters == [0, 1])
        lan.routers[0].partition = 0
        let healed = lan.now
        try lan.run(for: seconds(1.1))
        #expect(lan.masters == [1])
        #expect(lan.vipHolders == [1])
        let yielded = try #require(lan.transitions.last { $0.router == 0 && $0.to == .backup }?.at)
        #expect(yielded - healed <= 1_000_000 + 200)
    }

    /// Heavy seeded loss may cause spurious takeovers, but every one heals, and once the
    /// loss stops a single master (the highest priority) remains.
    @Test(arguments: [UInt64(7), 42, 1234])
    func lossyLinkStillConverges(seed: UInt64) throws {
        var lan = SimulatedLAN(
            [lanConfig(host: 1, priority: 100), lanConfig(host: 2, priority: 120), lanConfig(host: 3, priority: 140)],
            seed: seed)
        lan.lossRate = 0.3
        lan.startAll()
        try lan.run(for: seconds(120))
        // The loss really bit: someone other than the top router took over at least once.
        #expect(lan.transitions.contains { $0.router != 2 && $0.to == .master })
        lan.lossRate = 0
        try lan.run(for: seconds(5))
        #expect(lan.masters == [2])
        #expect(lan.vipHolders == [2])
    }

    /// A master shutting down cleanly (priority 0) hands over after the skew only.
    @Test func gracefulShutdownHandsOverAfterSkew() throws {
        var lan = SimulatedLAN([lanConfig(host: 1, priority: 100), lanConfig(host: 2, priority: 200)])
        lan.startAll()
        try lan.run(for: seconds(10.5))
        let stoppedAt = lan.now
        lan.apply(.shutdown, to: 1)
        lan.routers[1].alive = false
        try lan.run(for: seconds(2))
        let takeover = try #require(lan.transitions.last { $0.router == 0 && $0.to == .master }?.at)
        #expect(takeover == stoppedAt + 200 + VRRPTimers.skew(priority: 100, version: .v2, masterAdvertInterval: 1_000_000))
    }
}
