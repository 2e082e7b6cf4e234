@preconcurrency import Glibc
import CNetlink

/// What one read of the monitor saw. Both are set when the socket overflowed (ENOBUFS:
/// notifications were lost, so anything may have changed).
public struct NetlinkEvents: Equatable, Sendable {
    /// An RTM_NEWADDR: ha_suspend's virtual server address may have arrived.
    public var addressAdded: Bool
    /// An RTM_DELADDR: a VIP may have been deleted by someone else.
    public var addressDeleted: Bool
    /// An RTM_NEWLINK or RTM_DELLINK: a tracked link may have gone down, up or away.
    public var linkChanged: Bool

    public init(addressAdded: Bool = false, addressDeleted: Bool = false, linkChanged: Bool = false) {
        self.addressAdded = addressAdded
        self.addressDeleted = addressDeleted
        self.linkChanged = linkChanged
    }

    public static let everything = NetlinkEvents(addressAdded: true, addressDeleted: true, linkChanged: true)

    mutating func merge(_ other: NetlinkEvents) {
        addressAdded = addressAdded || other.addressAdded
        addressDeleted = addressDeleted || other.addressDeleted
        linkChanged = linkChanged || other.linkChanged
    }
}

/// rtnetlink's address and link notifications (RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR,
/// RTMGRP_LINK) on a socket of their own, as keepalived's netlink monitor has them: a VIP
/// deleted by someone else, or a tracked link going down, is seen when it happens instead of by
/// dumping every address and asking every link's flags once a second (most of an idle master's
/// CPU and half its wake-ups). Only the message types are read: the caller then looks at its
/// VIPs or links again, which is rare and cheap enough not to parse which one it was.
public enum NetlinkMonitor {
    /// Datagrams read per call: a storm of address changes cannot hold the loop.
    static let readsPerCall = 64

    /// A non-blocking socket subscribed to both families' address groups and the link group;
    /// nil if the kernel refuses (the caller then polls).
    public static func open() -> Int32? {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { return nil }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = UInt32(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_LINK)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Drains up to `readsPerCall` datagrams and says what they held.
    public static func drain(_ fd: Int32) -> NetlinkEvents {
        var seen = NetlinkEvents()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        for _ in 0..<readsPerCall {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 {
                if errno == ENOBUFS { seen = .everything; continue }
                break
            }
            if n == 0 { break }
            seen.merge(events(in: buffer[..<n]))
        }
        return seen
    }

    /// Walks the netlink headers of one datagram; a malformed length ends the walk.
    public static func events(in bytes: ArraySlice<UInt8>) -> NetlinkEvents {
        var seen = NetlinkEvents()
        var offset = bytes.startIndex
        let header = MemoryLayout<nlmsghdr>.size
        while bytes.endIndex - offset >= header {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            let type = UInt16(bytes[offset + 4]) | UInt16(bytes[offset + 5]) << 8
            guard length >= header, length <= bytes.endIndex - offset else { break }
            switch type {
            case UInt16(RTM_NEWADDR): seen.addressAdded = true
            case UInt16(RTM_DELADDR): seen.addressDeleted = true
            case UInt16(RTM_NEWLINK), UInt16(RTM_DELLINK): seen.linkChanged = true
            default: break
            }
            offset += (length + 3) & ~3
        }
        return seen
    }
}
