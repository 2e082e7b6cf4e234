@preconcurrency import Glibc
import Addressing
import CNetlink

/// An IPv6 VRRP packet. IPv6 raw sockets never return the IP header, so the hop limit and the
/// destination come from ancillary data instead.
public struct VRRPPacket6: Sendable, Equatable {
    /// The VRRP part only. Its checksum was already verified by the kernel (IPV6_CHECKSUM).
    public let payload: [UInt8]
    public let source: IPv6Address
    /// Nil only if the kernel did not supply IPV6_PKTINFO.
    public let destination: IPv6Address?
    /// -1 if the kernel did not supply IPV6_HOPLIMIT.
    public let hopLimit: Int32

    public init(payload: [UInt8], source: IPv6Address, destination: IPv6Address?, hopLimit: Int32) {
        self.payload = payload
        self.source = source
        self.destination = destination
        self.hopLimit = hopLimit
    }
}

/// VRRPv3 over IPv6 with keepalived's options: no header building (IPv6 has no HDRINCL), so
/// the kernel is told the checksum offset (6) and computes it with the pseudo-header, hop
/// limit 255 and traffic class 0xC0 are socket options, and the source is chosen per packet
/// with IPV6_PKTINFO.
public final class VRRPSocket6: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Joined to ff02::12 or keepalived's vrrp_mcast_group6 on the interface.
        case multicast(group: IPv6Address)
        case unicast(local: IPv6Address)
    }

    public let interface: String
    public let ifindex: Int32
    public let mode: Mode
    private let sendSocket: FileDescriptor
    private let receiveSocket: FileDescriptor

    public var fd: Int32 { receiveSocket.raw }
    public var sendFD: Int32 { sendSocket.raw }

    static let checksumOffset: Int32 = 6

    public init(interface: String, mode: Mode = .multicast(group: .vrrpMulticastGroup)) throws(SystemError) {
        let index = try Sock.ifindex(interface)
        self.interface = interface
        self.ifindex = index
        self.mode = mode
        let v6 = Int32(IPPROTO_IPV6)

        let tx = try Sock.open(AF_INET6, Int32(SOCK_RAW.rawValue), vrrpIPProtocol, interface)
        try Sock.set(tx, v6, IPV6_CHECKSUM, VRRPSocket6.checksumOffset, "IPV6_CHECKSUM", interface)
        try Sock.set(tx, SOL_SOCKET, SO_RCVBUF, Int32(0), "SO_RCVBUF", interface)
        try Sock.dropAllInput(tx, interface)
        try Sock.bindToDevice(tx, interface)
        try Sock.set(tx, v6, IPV6_TCLASS, Int32(0xC0), "IPV6_TCLASS", interface)
        try Sock.set(tx, v6, IPV6_UNICAST_HOPS, Int32(255), "IPV6_UNICAST_HOPS", interface)
        if case .multicast = mode {
            try Sock.set(tx, v6, IPV6_MULTICAST_HOPS, Int32(255), "IPV6_MULTICAST_HOPS", interface)
            try Sock.set(tx, v6, IPV6_MULTICAST_IF, index, "IPV6_MULTICAST_IF", interface)
            try Sock.set(tx, v6, IPV6_MULTICAST_LOOP, Int32(0), "IPV6_MULTICAST_LOOP", interface)
        }

        let rx = try Sock.open(AF_INET6, Int32(SOCK_RAW.rawValue), vrrpIPProtocol, interface)
        try Sock.nonBlocking(rx, interface)
        // Also makes the kernel drop adverts with a bad checksum before we see them.
        try Sock.set(rx, v6, IPV6_CHECKSUM, VRRPSocket6.checksumOffset, "IPV6_CHECKSUM", interface)
        try Sock.set(rx, v6, IPV6_RECVHOPLIMIT, Int32(1), "IPV6_RECVHOPLIMIT", interface)
        try Sock.set(rx, v6, IPV6_RECVPKTINFO, Int32(1), "IPV6_RECVPKTINFO", interface)
        var local = sockaddr_in6()
        local.sin6_family = sa_family_t(AF_INET6)
        switch mode {
        case .multicast(let group):
            let mreq = ipv6_mreq(ipv6mr_multiaddr: group.in6Addr, ipv6mr_interface: UInt32(index))
            try Sock.set(rx, v6, IPV6_JOIN_GROUP, mreq, "IPV6_JOIN_GROUP", interface)
            local.sin6_addr = group.in6Addr
            local.sin6_scope_id = UInt32(index)
        case .unicast(let address):
            try Sock.set(rx, Int32(IPPROTO_IP), IP_FREEBIND, Int32(1), "IP_FREEBIND", interface)
            local.sin6_addr = address.in6Addr
            if address.isLinkLocal { local.sin6_scope_id = UInt32(index) }
        }
        if Sock.withSockaddr(local, { bind(rx.raw, $0, $1) }) < 0 {
            throw SystemError.last("bind(\(IPv6Address(local.sin6_addr)))", interface)
        }
        try Sock.bindToDevice(rx, interface)

        sendSocket = tx
        receiveSocket = rx
    }

    /// `payload` is the encoded VRRPv3 advert; its checksum field is overwritten by the kernel.
    /// `source` is normally the interface's link-local address.
    public func send(_ payload: [UInt8], from source: IPv6Address,
                     to destination: IPv6Address = .vrrpMulticastGroup) throws(SystemError) {
        var dst = sockaddr_in6()
        dst.sin6_family = sa_family_t(AF_INET6)
        dst.sin6_addr = destination.in6Addr
        if destination.isMulticast || destination.isLinkLocal { dst.sin6_scope_id = UInt32(ifindex) }

        var info = vigil_in6_pktinfo()
        info.ipi6_addr = source.in6Addr
        info.ipi6_ifindex = UInt32(ifindex)
        var control = CMsg.build(level: Int32(IPPROTO_IPV6), type: IPV6_PKTINFO, value: info)
        var data = payload

        let sent = withUnsafeMutablePointer(to: &dst) { dstPtr in
            data.withUnsafeMutableBytes { dataBytes in
                control.withUnsafeMutableBytes { controlBytes in
                    var iov = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                    return withUnsafeMutablePointer(to: &iov) { iovPtr in
                        var msg = msghdr()
                        msg.msg_name = UnsafeMutableRawPointer(dstPtr)
                        msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
                        msg.msg_iov = iovPtr
                        msg.msg_iovlen = 1
                        msg.msg_control = controlBytes.baseAddress
                        msg.msg_controllen = controlBytes.count
                        return sendmsg(sendSocket.raw, &msg, 0)
                    }
                }
            }
        }
        if sent < 0 { throw SystemError.last("sendmsg(\(destination))", interface) }
    }

    /// Reads one queued packet; nil when nothing is queued (the socket is non-blocking).
    public func receive() throws(SystemError) -> VRRPPacket6? {
        var from = sockaddr_in6()
        var data = [UInt8](repeating: 0, count: 65_535)
        var control = [UInt8](repeating: 0, count: 256)
        var controlLength = 0
        let received = withUnsafeMutablePointer(to: &from) { fromPtr in
            data.withUnsafeMutableBytes { dataBytes in
                control.withUnsafeMutableBytes { controlBytes in
                    var iov = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                    return withUnsafeMutablePointer(to: &iov) { iovPtr in
                        var msg = msghdr()
                        msg.msg_name = UnsafeMutableRawPointer(fromPtr)
                        msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
                        msg.msg_iov = iovPtr
                        msg.msg_iovlen = 1
                        msg.msg_control = controlBytes.baseAddress
                        msg.msg_controllen = controlBytes.count
                        let n = recvmsg(receiveSocket.raw, &msg, 0)
                        controlLength = msg.msg_controllen
                        return n
                    }
                }
            }
        }
        if received < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            throw SystemError.last("recvmsg", interface)
        }
        var hopLimit: Int32 = -1
        var destination: IPv6Address?
        for (level, type, value) in CMsg.parse(control.prefix(controlLength)) where level == Int32(IPPROTO_IPV6) {
            if type == IPV6_HOPLIMIT, value.count >= 4 {
                hopLimit = value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            } else if type == IPV6_PKTINFO, value.count >= 16 {
                destination = value.count >= 16 ? IPv6Address(bytes: value.prefix(16)) : nil
            }
        }
        let source = IPv6Address(from.sin6_addr)
        return VRRPPacket6(payload: Array(data.prefix(received)), source: source,
                           destination: destination, hopLimit: hopLimit)
    }
}

/// CMSG_* are macros Swift cannot import; this is their Linux layout (cmsghdr then data,
/// each aligned to size_t).
enum CMsg {
    static let align = MemoryLayout<Int>.size
    static func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
    static var headerSize: Int { aligned(MemoryLayout<cmsghdr>.size) }

    static func build<T>(level: Int32, type: Int32, value: T) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: headerSize + aligned(MemoryLayout<T>.size))
        var header = cmsghdr()
        header.cmsg_len = headerSize + MemoryLayout<T>.size
        header.cmsg_level = level
        header.cmsg_type = type
        buffer.withUnsafeMutableBytes { raw in
            withUnsafeBytes(of: header) { raw.copyMemory(from: $0) }
            withUnsafeBytes(of: value) { UnsafeMutableRawBufferPointer(rebasing: raw[headerSize...]).copyMemory(from: $0) }
        }
        return buffer
    }

    static func parse(_ control: ArraySlice<UInt8>) -> [(Int32, Int32, [UInt8])] {
        let bytes = Array(control)
        var out: [(Int32, Int32, [UInt8])] = []
        var offset = 0
        while offset + headerSize <= bytes.count {
            let header = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self) }
            let length = Int(header.cmsg_len)
            guard length >= headerSize, offset + length <= bytes.count else { break }
            out.append((header.cmsg_level, header.cmsg_type, Array(bytes[(offset + headerSize)..<(offset + length)])))
            offset += aligned(length)
        }
        return out
    }
}
