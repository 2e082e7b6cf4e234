@preconcurrency import Glibc
import CNetlink

/// rtnetlink's address notifications (RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR) on a socket of
/// their own, as keepalived's netlink monitor has them: a VIP deleted by someone else is seen
/// when it happens, instead of by dumping every address once a second (most of an idle
/// master's CPU). Only the message types are read: a deletion of any address makes the caller
/// look at its VIPs again, which is rare and cheap enough not to parse which one it was.
public enum AddressMonitor {
    /// Datagrams read per call: a storm of address changes cannot hold the loop.
    static let readsPerCall = 64

    /// A non-blocking socket subscribed to both families' address groups; nil if the kernel
    /// refuses (the caller then polls).
    public static func open() -> Int32? {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { return nil }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = UInt32(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Drains up to `readsPerCall` datagrams; true if one held an RTM_DELADDR, or if the
    /// socket overflowed (ENOBUFS: notifications were lost, so anything may have gone).
    public static func sawDeletion(_ fd: Int32) -> Bool {
        var deleted = false
        var buffer = [UInt8](repeating: 0, count: 16_384)
        for _ in 0..<readsPerCall {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 {
                if errno == ENOBUFS { deleted = true; continue }
                break
            }
            if n == 0 { break }
            deleted = deleted || containsDeletion(buffer[..<n])
        }
        return deleted
    }

    /// Walks the netlink headers of one datagram; a malformed length ends the walk.
    public static func containsDeletion(_ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        let header = MemoryLayout<nlmsghdr>.size
        while bytes.endIndex - offset >= header {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            let type = UInt16(bytes[offset + 4]) | UInt16(bytes[offset + 5]) << 8
            if type == UInt16(RTM_DELADDR) { return true }
            guard length >= header, length <= bytes.endIndex - offset else { return false }
            offset += (length + 3) & ~3
        }
        return false
    }
}
