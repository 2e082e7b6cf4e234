@preconcurrency import Glibc
import Addressing
import CNetlink

/// What the VRRP layer needs to know about a link before using it: its index for sockets and
/// netlink, its MAC for GARP/NA, whether it is up (FAULT otherwise) and NOARP (no GARP), and
/// the default advert source addresses.
public struct InterfaceInfo: Sendable, Equatable {
    public let name: String
    public let index: Int32
    /// Empty when the link has no hardware address (e.g. a tun device).
    public let mac: [UInt8]
    /// IFF_* bits.
    public let flags: UInt32
    /// First non-secondary IPv4 address: keepalived's default VRRPv2/v3 source.
    public let primaryIPv4: IPv4Address?
    /// First link-local IPv6 address: the source VRRPv3 over IPv6 must use.
    public let linkLocalIPv6: IPv6Address?

    public init(name: String, index: Int32, mac: [UInt8], flags: UInt32, primaryIPv4: IPv4Address?, linkLocalIPv6: IPv6Address?) {
        self.name = name
        self.index = index
        self.mac = mac
        self.flags = flags
        self.primaryIPv4 = primaryIPv4
        self.linkLocalIPv6 = linkLocalIPv6
    }

    /// IFF_UP | IFF_RUNNING | IFF_MULTICAST | IFF_BROADCAST: a working Ethernet link.
    public static let upAndRunningFlags = UInt32(IFF_UP | IFF_RUNNING | IFF_MULTICAST | IFF_BROADCAST)

    public var isUp: Bool { flags & UInt32(IFF_UP) != 0 }
    public var isRunning: Bool { flags & UInt32(IFF_RUNNING) != 0 }
    public var isNoARP: Bool { flags & UInt32(IFF_NOARP) != 0 }

    /// A link's IFF_UP and IFF_RUNNING through one SIOCGIFFLAGS on `socket` (any datagram
    /// socket): what the once-a-second interface tracking needs, without the link and address
    /// dumps of `lookup`. nil when there is no such link.
    public static func isUpAndRunning(_ name: String, socket: Int32) -> Bool? {
        guard !name.isEmpty, name.utf8.count < Int(IF_NAMESIZE) else { return nil }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { buffer in
            for (i, byte) in name.utf8.enumerated() { buffer[i] = byte }
        }
        guard ioctl(socket, UInt(SIOCGIFFLAGS), &request) == 0 else { return nil }
        let flags = Int32(request.ifr_ifru.ifru_flags)
        return flags & Int32(IFF_UP) != 0 && flags & Int32(IFF_RUNNING) != 0
    }

    /// For configuration checks: no error, just "is there such a link right now".
    public static func exists(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count < Int(IF_NAMESIZE) && if_nametoindex(name) != 0
    }

    public static func index(of name: String) throws(SystemError) -> Int32 {
        try Sock.ifindex(name)
    }

    public static func name(ofIndex index: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        guard if_indextoname(UInt32(index), &buffer) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `addresses` lets a caller that already holds an `AddressManager` avoid a second
    /// netlink socket; without it one is opened for this call.
    public static func lookup(_ name: String, using addresses: AddressManager? = nil) throws(SystemError) -> InterfaceInfo {
        let index = try Sock.ifindex(name)
        var mac: [UInt8] = []
        var flags: UInt32 = 0
        var found = false

        var list: UnsafeMutablePointer<ifaddrs>?
        if getifaddrs(&list) < 0 { throw SystemError.last("getifaddrs", name) }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry?.pointee {
            entry = current.ifa_next
            // AF_PACKET entries carry the real link name; AF_INET ones carry the address label.
            guard let sa = current.ifa_addr, sa.pointee.sa_family == UInt16(AF_PACKET),
                  String(cString: current.ifa_name) == name else { continue }
            found = true
            flags = current.ifa_flags
            sa.withMemoryRebound(to: sockaddr_ll.self, capacity: 1) { ll in
                let length = min(Int(ll.pointee.sll_halen), 8)
                mac = withUnsafeBytes(of: ll.pointee.sll_addr) { Array($0.prefix(length)) }
            }
        }
        if !found { throw SystemError(errno: ENODEV, operation: "getifaddrs", interface: name) }

        let addrs: [InterfaceAddress]
        do {
            addrs = try (addresses ?? AddressManager()).list(ifindex: index)
        } catch {
            throw SystemError(errno: EIO, operation: "list addresses (\(error))", interface: name)
        }
        var primary: IPv4Address?
        var linkLocal: IPv6Address?
        for a in addrs {
            switch a.address {
            case .v4(let v4) where primary == nil && !a.isSecondary: primary = v4
            case .v6(let v6) where linkLocal == nil && v6.isLinkLocal: linkLocal = v6
            default: break
            }
        }
        return InterfaceInfo(name: name, index: index, mac: mac, flags: flags,
                             primaryIPv4: primary, linkLocalIPv6: linkLocal)
    }
}
