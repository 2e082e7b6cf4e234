import Addressing
// The IPVS table as values. Each object is split into the identity the kernel looks it up by
// (a key) and the settings it stores, because the reconciler must tell "missing" from
// "different" and the kernel only accepts identity attributes for lookups and deletes.

/// Transport protocol of an address-based virtual service (`IPVS_SVC_ATTR_PROTOCOL`).
public enum IPVSProtocol: UInt16, Hashable, Sendable, CaseIterable, Comparable {
    case tcp = 6
    case udp = 17
    case sctp = 132

    /// The spelling keepalived's `inet_sockaddrtotrio` uses in log lines.
    public var name: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .sctp: "sctp"
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What the kernel looks a virtual service up by: `<protocol, addr, port>` or `<af, fwmark>`.
/// Firewall-mark services carry no address, so their family has to be stated.
public enum IPVSServiceKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    case address(IPVSProtocol, IPAddress, port: UInt16)
    case fwmark(UInt32, family: AddressFamily)

    public var family: AddressFamily {
        switch self {
        case .address(_, let address, _): address.family
        case .fwmark(_, let family): family
        }
    }

    /// keepalived's `FMT_VS`: `[10.0.0.1]:tcp:80` or `FWM 1`, so Vigil's log lines read like
    /// the ones operators already grep for.
    public var description: String {
        switch self {
        case .address(let proto, let address, let port): "[\(address)]:\(proto.name):\(port)"
        case .fwmark(let mark, _): "FWM \(mark)"
        }
    }

    /// Address services first, then by address, protocol, port; fwmark services by family,
    /// mark. Only used to make operation lists deterministic.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case let (.address(p1, a1, port1), .address(p2, a2, port2)):
            if a1 != a2 { return a1 < a2 }
            if p1 != p2 { return p1 < p2 }
            return port1 < port2
        case (.address, .fwmark): return true
        case (.fwmark, .address): return false
        case let (.fwmark(m1, f1), .fwmark(m2, f2)):
            return f1 != f2 ? f1 < f2 : m1 < m2
        }
    }
}

/// `IP_VS_SVC_F_*`. The scheduler flags have several names because sh and mh reuse them.
public struct IPVSServiceFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let persistent = IPVSServiceFlags(rawValue: 0x0001)
    /// Set by the kernel on every service in its table; never configured.
    public static let hashed = IPVSServiceFlags(rawValue: 0x0002)
    public static let onePacket = IPVSServiceFlags(rawValue: 0x0004)
    public static let scheduler1 = IPVSServiceFlags(rawValue: 0x0008)
    public static let scheduler2 = IPVSServiceFlags(rawValue: 0x0010)
    public static let scheduler3 = IPVSServiceFlags(rawValue: 0x0020)
    public static let shFallback = scheduler1
    public static let shPort = scheduler2
    public static let mhFallback = scheduler1
    public static let mhPort = scheduler2
}

/// A virtual service with its settings.
public struct IPVSService: Hashable, Sendable, CustomStringConvertible {
    public var key: IPVSServiceKey
    /// e.g. "wlc"; at most 15 bytes (the kernel's 16 includes the NUL).
    public var scheduler: String
    public var flags: IPVSServiceFlags
    /// Persistence timeout in seconds; 0 when not persistent.
    public var timeout: UInt32
    /// IPv4: the persistence granularity mask as a number (0xFFFFFF00 for /24), sent in
    /// network order. IPv6: the prefix length (1...128), sent as a host-order u32. The kernel
    /// stores and returns the attribute's raw bytes, which is why the two differ.
    public var netmask: UInt32
    /// Persistence engine (e.g. "sip"); nil when none.
    public var persistenceEngine: String?

    /// Defaults are the ones keepalived sends: no flags, no timeout, full mask.
    public init(
        _ key: IPVSServiceKey, scheduler: String = "wlc", flags: IPVSServiceFlags = [],
        timeout: UInt32 = 0, netmask: UInt32? = nil, persistenceEngine: String? = nil
    ) {
        self.key = key
        self.scheduler = scheduler
        self.flags = flags
        self.timeout = timeout
        self.netmask = netmask ?? IPVSService.defaultNetmask(key.family)
        self.persistenceEngine = persistenceEngine
    }

    public static func defaultNetmask(_ family: AddressFamily) -> UInt32 {
        family == .ipv4 ? 0xFFFF_FFFF : 128
    }

    /// Whether an installed service needs SET_SERVICE to match this one. HASHED is ignored
    /// because the kernel reports it on every service and nobody configures it.
    public func hasSameSettings(as other: IPVSService) -> Bool {
        scheduler == other.scheduler
            && flags.subtracting(.hashed) == other.flags.subtracting(.hashed)
            && timeout == other.timeout
            && netmask == other.netmask
            && (persistenceEngine ?? "") == (other.persistenceEngine ?? "")
    }

    public var description: String { key.description }
}

/// Tunnel encapsulation of a TUN destination. An enum so that a port or checksum setting can
/// only exist where the kernel honours it: otherwise keepalived's encoding would drop it, the
/// dump would not return it, and the reconciler would try to "fix" it forever.
public enum IPVSTunnel: Hashable, Sendable {
    case ipip
    /// `flags` are `IP_VS_TUNNEL_ENCAP_FLAG_*`: 0 none, 1 checksum, 2 remote checksum offload.
    case gue(port: UInt16, flags: UInt16)
    case gre(flags: UInt16)

    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    public var typeCode: UInt8 {
        switch self {
        case .ipip: 0
        case .gue: 1
        case .gre: 2
        }
    }
}

/// `IP_VS_CONN_F_FWD_MASK` values.
public enum IPVSForwardingMethod: Hashable, Sendable {
    case masquerade
    case localNode
    case tunnel(IPVSTunnel)
    case directRoute
    case bypass

    public var code: UInt32 {
        switch self {
        case .masquerade: 0
        case .localNode: 1
        case .tunnel: 2
        case .directRoute: 3
        case .bypass: 4
        }
    }
}

/// What the kernel looks a real server up by inside its service: `<af, addr, port>`.
public struct IPVSDestinationKey: Hashable, Sendable, Comparable {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var family: AddressFamily { address.family }

    /// keepalived's `FMT_RS`: the real server with its virtual server's protocol, e.g.
    /// `[192.168.0.21]:tcp:80`; "none" for fwmark services, which have no protocol.
    public func formatted(in service: IPVSServiceKey) -> String {
        let proto: String
        if case .address(let p, _, _) = service { proto = p.name } else { proto = "none" }
        return "[\(address)]:\(proto):\(port)"
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.address != rhs.address ? lhs.address < rhs.address : lhs.port < rhs.port
    }
}

/// A real server with its settings.
public struct IPVSDestination: Hashable, Sendable {
    public var key: IPVSDestinationKey
    public var forwarding: IPVSForwardingMethod
    /// The kernel takes an `int` and rejects negatives with ERANGE; keepalived's range is
    /// 0...INT32_MAX, and 0 is how inhibit_on_failure "removes" a server.
    public var weight: Int32
    /// Connection thresholds; 0 means none.
    public var upperThreshold: UInt32
    public var lowerThreshold: UInt32

    public init(
        _ key: IPVSDestinationKey, forwarding: IPVSForwardingMethod = .masquerade, weight: Int32 = 1,
        upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0
    ) {
        self.key = key
        self.forwarding = forwarding
        self.weight = weight
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
    }

    public var family: AddressFamily { key.family }

    /// Whether an installed destination needs SET_DEST to match this one. The kernel turns
    /// any destination whose address is local into LOCALNODE whatever method it was given,
    /// so a dumped LOCALNODE matches every configured method: otherwise the reconciler
    /// would "fix" it on every pass and never converge.
    public func hasSameSettings(as other: IPVSDestination) -> Bool {
        let methodsMatch = forwarding == other.forwarding || forwarding == .localNode || other.forwarding == .localNode
        return methodsMatch && weight == other.weight && upperThreshold == other.upperThreshold
            && lowerThreshold == other.lowerThreshold
    }
}

/// A service's counters and those of each of its destinations.
public struct IPVSServiceStatistics: Hashable, Sendable {
    public var service: IPVSStatistics
    public var destinations: [IPVSDestinationKey: IPVSStatistics]
    public init(service: IPVSStatistics, destinations: [IPVSDestinationKey: IPVSStatistics] = [:]) {
        self.service = service
        self.destinations = destinations
    }
}
