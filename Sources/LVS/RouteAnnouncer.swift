// Route health injection for directors behind BGP ECMP (Vigil's own keywords, not
// keepalived's): each `vigil_announce` of a virtual server is a host route in a dedicated
// kernel table while the service has quorum (and its VRRP instance or sync group is MASTER,
// if one is named). FRR (`ip import-table`, `redistribute table`) or BIRD (`learn`) announce
// what is in that table, so Vigil speaks no BGP and never edits a routing daemon's config.
import Addressing

/// One announced prefix.
public struct AnnouncedPrefix: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var length: UInt8

    public init(_ address: IPAddress, length: UInt8) {
        self.address = address
        self.length = length
    }

    public var description: String { "\(address)/\(length)" }
}

/// A `vigil_announce` line, resolved: the prefix, and the VRRP instance or group that must be
/// MASTER for it (nil: quorum alone decides).
public struct AnnouncementSpec: Hashable, Sendable {
    public var prefix: AnnouncedPrefix
    public var master: String?

    public init(prefix: AnnouncedPrefix, master: String? = nil) {
        self.prefix = prefix
        self.master = master
    }
}

/// What to add and remove to go from what is announced to what should be.
public struct AnnouncementChanges: Equatable, Sendable {
    public var add: [AnnouncedPrefix] = []
    public var remove: [AnnouncedPrefix] = []
    public var isEmpty: Bool { add.isEmpty && remove.isEmpty }
}

/// The routes wanted for a state of the world, and the ones in the kernel. Pure: the daemon
/// passes quorum and VRRP state in and carries the changes out through rtnetlink.
public struct RouteAnnouncer: Sendable {
    public var table: UInt32
    public var protocolNumber: UInt8
    /// What Vigil has in the table now (added and not yet removed).
    public private(set) var announced: Set<AnnouncedPrefix> = []

    public init(table: UInt32, protocolNumber: UInt8) {
        self.table = table
        self.protocolNumber = protocolNumber
    }

    /// The kernel route for `prefix`: `PREFIX dev lo table T proto P`. A route through lo
    /// attracts nothing on the director itself (the table is looked up by nobody unless a rule
    /// says so), and a routing daemon reading the table announces it with itself as next hop.
    public func route(_ prefix: AnnouncedPrefix) -> RouteDefinition {
        var route = RouteDefinition(family: prefix.address.family, destination: prefix.address, prefixLength: prefix.length)
        route.device = "lo"
        route.table = table
        route.protocolNumber = protocolNumber
        route.tracked = false
        return route
    }

    /// The prefixes that should be announced: one that several virtual servers announce (the
    /// VIP of port 80 and of port 443) goes out only while every one of them may announce it,
    /// so a director never draws flows for a service it cannot serve.
    public static func desired(_ announcements: [(virtualServer: Int, spec: AnnouncementSpec)],
                               quorumUp: (Int) -> Bool, isMaster: (String) -> Bool) -> Set<AnnouncedPrefix> {
        var allowed: [AnnouncedPrefix: Bool] = [:]
        for (vs, spec) in announcements {
            let ok = quorumUp(vs) && (spec.master.map(isMaster) ?? true)
            allowed[spec.prefix] = (allowed[spec.prefix] ?? true) && ok
        }
        return Set(allowed.filter(\.value).keys)
    }

    /// From what is announced to `desired`, in a stable order (address text) so logs and tests
    /// read the same every run.
    public func changes(to desired: Set<AnnouncedPrefix>) -> AnnouncementChanges {
        AnnouncementChanges(add: Self.sorted(desired.subtracting(announced)), remove: Self.sorted(announced.subtracting(desired)))
    }

    /// At start: what a previous run left in the table. The ones still wanted are kept (a
    /// restart withdraws nothing that is healthy); the rest is returned for removal.
    public mutating func adopt(leftovers: [AnnouncedPrefix], desired: Set<AnnouncedPrefix>) -> [AnnouncedPrefix] {
        var stale: [AnnouncedPrefix] = []
        for prefix in leftovers {
            if desired.contains(prefix) { announced.insert(prefix) } else { stale.append(prefix) }
        }
        return Self.sorted(stale)
    }

    public mutating func didAdd(_ prefix: AnnouncedPrefix) { announced.insert(prefix) }
    public mutating func didRemove(_ prefix: AnnouncedPrefix) { announced.remove(prefix) }

    /// Announced prefixes the kernel no longer has (someone ran `ip route flush table 198`).
    public func missing(present: Set<AnnouncedPrefix>) -> [AnnouncedPrefix] {
        Self.sorted(announced.subtracting(present))
    }

    static func sorted(_ prefixes: some Sequence<AnnouncedPrefix>) -> [AnnouncedPrefix] {
        prefixes.sorted { $0.description < $1.description }
    }
}
