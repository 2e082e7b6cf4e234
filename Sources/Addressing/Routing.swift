// Routes and policy rules as values: what configuration builds (keepalived's static_routes,
// virtual_routes, static_rules, virtual_rules) and the rtnetlink adapter installs, as with
// addresses, nothing goes through text between them.

/// A `static_routes` / `virtual_routes` line as the kernel will get it. keepalived's own
/// defaults: table main, scope global, protocol 18 (`RTPROT_KEEPALIVED`, so its routes are
/// told from everyone else's).
public struct RouteDefinition: Sendable, Hashable {
    public var family: AddressFamily
    /// nil: `default`.
    public var destination: IPAddress?
    public var prefixLength: UInt8
    /// `RTN_*`: 1 unicast, 6 blackhole, 7 unreachable, 8 prohibit, 9 throw, 2 local, ...
    public var type: UInt8 = 1
    public var gateway: IPAddress?
    public var source: IPAddress?
    public var device: String?
    public var table: UInt32 = 254
    public var scope: UInt8?
    public var metric: UInt32?
    public var protocolNumber: UInt8 = 18
    public var onlink = false
    /// `RTAX_*` number to value (mtu, advmss, rtt in 1/8 ms, rttvar in 1/4 ms, window, cwnd,
    /// ssthresh, reordering, hoplimit, initcwnd, initrwnd, rto_min in ms, features, quickack,
    /// fastopen_no_cookie), as keepalived sends them; `RTAX_LOCK` (1) carries the `lock` bits.
    public var metrics: [UInt32: UInt32] = [:]
    /// `tos`/`dsfield`.
    public var tos: UInt8?
    /// `realms FROM/TO`: FROM << 16 | TO (IPv4 only).
    public var realms: UInt32?
    /// `from PREFIX`: the source prefix of an IPv6 route (RTA_SRC).
    public var sourcePrefix: IPAddress?
    public var sourcePrefixLength: UInt8 = 0
    public var ttlPropagate: Bool?
    /// `vrf NAME`: the route goes in that VRF's table, looked up when it is added.
    public var vrf: String?
    /// `nexthop ...` (and the deprecated `or`): a multipath route; gateway and device above are
    /// then unused.
    public var nexthops: [Nexthop] = []
    /// keepalived watches the route (its `dev` is given and `no_track` is not): one someone
    /// deletes is put back.
    public var tracked = true

    public static let metricLock: UInt32 = 1, metricMTU: UInt32 = 2

    public var mtu: UInt32? {
        get { metrics[Self.metricMTU] }
        set { metrics[Self.metricMTU] = newValue }
    }

    public init(family: AddressFamily, destination: IPAddress?, prefixLength: UInt8) {
        self.family = family
        self.destination = destination
        self.prefixLength = prefixLength
    }

    /// The scope the kernel is given: as configured, else global (keepalived sends
    /// RT_SCOPE_UNIVERSE; iproute2 would pick link for a route without a gateway).
    public var effectiveScope: UInt8 { scope ?? 0 }
}

/// One hop of a multipath route: `nexthop via ADDR dev IF weight W onlink realms R`.
public struct Nexthop: Sendable, Hashable {
    public var gateway: IPAddress?
    public var device: String?
    /// As configured, 1...256 (the kernel is sent weight − 1); nil: the kernel's 1.
    public var weight: UInt16?
    public var onlink = false
    public var realms: UInt32?

    public init(gateway: IPAddress? = nil, device: String? = nil) {
        self.gateway = gateway
        self.device = device
    }
}

/// A `static_rules` / `virtual_rules` line. Action "to table" unless a type is given.
public struct RuleDefinition: Sendable, Hashable {
    public var family: AddressFamily
    public var from: (address: IPAddress, prefixLength: UInt8)?
    public var to: (address: IPAddress, prefixLength: UInt8)?
    public var table: UInt32?
    public var priority: UInt32?
    public var fwmark: UInt32?
    public var fwmask: UInt32?
    public var inputInterface: String?
    public var outputInterface: String?
    /// `FR_ACT_*`: 1 to table, 2 goto, 3 nop, 6 blackhole, 7 unreachable, 8 prohibit.
    public var action: UInt8 = 1
    /// The rule `goto` jumps to (action 2).
    public var gotoTarget: UInt32?
    public var tos: UInt8?
    public var realms: UInt32?
    /// `l3mdev`: look the table up from the packet's VRF device.
    public var l3mdev = false
    public var ipProtocol: UInt8?
    public var sourcePorts: ClosedRange<UInt16>?
    public var destinationPorts: ClosedRange<UInt16>?
    /// keepalived marks its rules as it marks its routes: protocol 18.
    public var protocolNumber: UInt8 = 18
    /// Not `no_track`: one someone deletes is put back.
    public var tracked = true

    public init(family: AddressFamily) { self.family = family }

    public static func == (a: Self, b: Self) -> Bool {
        a.family == b.family && a.from?.address == b.from?.address && a.from?.prefixLength == b.from?.prefixLength
            && a.to?.address == b.to?.address && a.to?.prefixLength == b.to?.prefixLength && a.table == b.table
            && a.priority == b.priority && a.fwmark == b.fwmark && a.fwmask == b.fwmask && a.inputInterface == b.inputInterface
            && a.outputInterface == b.outputInterface && a.action == b.action && a.protocolNumber == b.protocolNumber
            && a.gotoTarget == b.gotoTarget && a.tos == b.tos && a.realms == b.realms && a.l3mdev == b.l3mdev
            && a.ipProtocol == b.ipProtocol && a.sourcePorts == b.sourcePorts && a.destinationPorts == b.destinationPorts
            && a.tracked == b.tracked
    }

    public func hash(into h: inout Hasher) {
        h.combine(family); h.combine(from?.address); h.combine(from?.prefixLength); h.combine(to?.address)
        h.combine(to?.prefixLength); h.combine(table); h.combine(priority); h.combine(fwmark); h.combine(action)
    }
}

