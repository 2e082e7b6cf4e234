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
    public var mtu: UInt32?

    public init(family: AddressFamily, destination: IPAddress?, prefixLength: UInt8) {
        self.family = family
        self.destination = destination
        self.prefixLength = prefixLength
    }

    /// The scope the kernel is given: as configured, else global (keepalived sends
    /// RT_SCOPE_UNIVERSE; iproute2 would pick link for a route without a gateway).
    public var effectiveScope: UInt8 { scope ?? 0 }
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
    /// `FR_ACT_*`: 1 to table, 6 blackhole, 7 unreachable, 8 prohibit.
    public var action: UInt8 = 1
    /// keepalived marks its rules as it marks its routes: protocol 18.
    public var protocolNumber: UInt8 = 18

    public init(family: AddressFamily) { self.family = family }

    public static func == (a: Self, b: Self) -> Bool {
        a.family == b.family && a.from?.address == b.from?.address && a.from?.prefixLength == b.from?.prefixLength
            && a.to?.address == b.to?.address && a.to?.prefixLength == b.to?.prefixLength && a.table == b.table
            && a.priority == b.priority && a.fwmark == b.fwmark && a.fwmask == b.fwmask && a.inputInterface == b.inputInterface
            && a.outputInterface == b.outputInterface && a.action == b.action && a.protocolNumber == b.protocolNumber
    }

    public func hash(into h: inout Hasher) {
        h.combine(family); h.combine(from?.address); h.combine(from?.prefixLength); h.combine(to?.address)
        h.combine(to?.prefixLength); h.combine(table); h.combine(priority); h.combine(fwmark); h.combine(action)
    }
}

