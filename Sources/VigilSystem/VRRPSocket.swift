@preconcurrency import Glibc
import Addressing
import CNetlink

/// IANA protocol number of VRRP.
public let vrrpIPProtocol: Int32 = 112

/// An IPv4 VRRP packet as the raw socket hands it over: the IP header is kept because the
/// validator must see TTL (255 for multicast), TOS and the destination (multicast or unicast).
public struct VRRPPacket: Sendable, Equatable {
    /// The whole IPv4 packet, header first.
    public let bytes: [UInt8]
    public let source: IPv4Address

    public init(bytes: [UInt8], source: IPv4Address) {
        self.bytes = bytes
        self.source = source
    }

    public var headerLength: Int { bytes.isEmpty ? 0 : Int(bytes[0] & 0x0F) * 4 }
    public var tos: UInt8 { bytes.count > 1 ? bytes[1] : 0 }
    public var ttl: UInt8 { bytes.count > 8 ? bytes[8] : 0 }
    public var ipProtocol: UInt8 { bytes.count > 9 ? bytes[9] : 0 }
    /// The IP total-length field, to compare with `bytes.count` (keepalived's `ip_tot_len` check).
    public var totalLength: Int { bytes.count >= 4 ? Int(bytes[2]) << 8 | Int(bytes[3]) : 0 }
    public var destination: IPv4Address { bytes.count >= 20 ? IPv4Address(bytes: bytes[16..<20]) : .any }
    /// The VRRP part (advert and, for v2, the auth data).
    public var payload: ArraySlice<UInt8> {
        let h = headerLength
        return h >= 20 && h <= bytes.count ? bytes[h...] : []
    }
}

/// VRRP over IPv4 on one interface, with keepalived's socket layout: a send socket that builds
/// the IP header itself (IP_HDRINCL, so TOS/TTL/id/DF are exactly as keepalived puts them
/// whatever the route says) and a separate receive socket joined to the group on this
/// interface only.
public final class VRRPSocket: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Joined to the group (224.0.0.18, or keepalived's vrrp_mcast_group4) on the
        /// interface, bound to it so unicast VRRP is not seen.
        case multicast(group: IPv4Address)
        /// Bound to the local unicast_src_ip; IP_FREEBIND so it works before the address exists.
        case unicast(local: IPv4Address)
    }

    public let interface: String
    public let ifindex: Int32
    public let mode: Mode
    /// 112, or 51 for keepalived's IPsec AH adverts.
    public let ipProtocol: Int32
    private let sendSocket: FileDescriptor
    private let receiveSocket: FileDescriptor

    /// Non-blocking receive descriptor, to hand to `Poller.wait`.
    public var fd: Int32 { receiveSocket.raw }
    public var sendFD: Int32 { sendSocket.raw }

    public init(interface: String, mode: Mode = .multicast(group: .vrrpMulticastGroup), ipProtocol: Int32 = vrrpIPProtocol) throws(SystemError) {
        let index = try Sock.ifindex(interface)
        self.interface = interface
        self.ifindex = index
        self.mode = mode
        self.ipProtocol = ipProtocol

        let tx = try Sock.open(AF_INET, Int32(SOCK_RAW.rawValue), ipProtocol, interface)
        try Sock.set(tx, Int32(IPPROTO_IP), IP_HDRINCL, Int32(1), "IP_HDRINCL", interface)
        try Sock.set(tx, SOL_SOCKET, SO_RCVBUF, Int32(0), "SO_RCVBUF", interface)
        try Sock.set(tx, Int32(IPPROTO_IP), IP_MULTICAST_ALL, Int32(0), "IP_MULTICAST_ALL", interface)
        try Sock.dropAllInput(tx, interface)
        try Sock.bindToDevice(tx, interface)
        if case .multicast = mode {
            var mreq = ip_mreqn()
            mreq.imr_ifindex = index
            try Sock.set(tx, Int32(IPPROTO_IP), IP_MULTICAST_IF, mreq, "IP_MULTICAST_IF", interface)
            try Sock.set(tx, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, UInt8(0), "IP_MULTICAST_LOOP", interface)
        }
        try Sock.set(tx, Int32(IPPROTO_IP), IP_TOS, Int32(0xC0), "IP_TOS", interface)

        let rx = try Sock.open(AF_INET, Int32(SOCK_RAW.rawValue), ipProtocol, interface)
        try Sock.nonBlocking(rx, interface)
        try Sock.set(rx, Int32(IPPROTO_IP), IP_MULTICAST_ALL, Int32(0), "IP_MULTICAST_ALL", interface)
        let local: IPv4Address
        switch mode {
        case .multicast(let group):
            var mreq = ip_mreqn()
            mreq.imr_multiaddr = group.inAddr
            mreq.imr_ifindex = index
            try Sock.set(rx, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, mreq, "IP_ADD_MEMBERSHIP", interface)
            local = group
        case .unicast(let address):
            try Sock.set(rx, Int32(IPPROTO_IP), IP_FREEBIND, Int32(1), "IP_FREEBIND", interface)
            local = address
        }
        if Sock.withSockaddr(local.sockaddr, { bind(rx.raw, $0, $1) }) < 0 {
            throw SystemError.last("bind(\(local))", interface)
        }
        try Sock.bindToDevice(rx, interface)

        sendSocket = tx
        receiveSocket = rx
    }

    /// The header keepalived's `vrrp_build_ip4` writes. The checksum stays 0 and a zero id is
    /// replaced by the kernel; both are documented raw(7) behaviour with IP_HDRINCL.
    public static func ipv4Header(payloadLength: Int, source: IPv4Address, destination: IPv4Address,
                                  ttl: UInt8 = 255) -> [UInt8] {
        ipv4Packet(payload: [], payloadLength: payloadLength, source: source, destination: destination, ttl: ttl)
    }

    /// The header and `payload` written into one array of the right size at once: an advert
    /// leaves every second, and joining a header and its addresses as arrays cost it more
    /// user time than the rest of its sending.
    static func ipv4Packet(payload: [UInt8], payloadLength: Int? = nil, source: IPv4Address, destination: IPv4Address,
                           ttl: UInt8) -> [UInt8] {
        let total = 20 + (payloadLength ?? payload.count)
        return [UInt8](unsafeUninitializedCapacity: 20 + payload.count) { b, count in
            b[0] = 0x45; b[1] = 0xC0
            b[2] = UInt8(truncatingIfNeeded: total >> 8); b[3] = UInt8(truncatingIfNeeded: total)
            b[4] = 0; b[5] = 0; b[6] = 0; b[7] = 0
            b[8] = ttl; b[9] = UInt8(vrrpIPProtocol); b[10] = 0; b[11] = 0
            func put(_ value: UInt32, at offset: Int) {
                b[offset] = UInt8(truncatingIfNeeded: value >> 24); b[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
                b[offset + 2] = UInt8(truncatingIfNeeded: value >> 8); b[offset + 3] = UInt8(truncatingIfNeeded: value)
            }
            put(source.value, at: 12)
            put(destination.value, at: 16)
            for i in payload.indices { b[20 + i] = payload[i] }
            count = 20 + payload.count
        }
    }

    /// Sends one advert. `payload` is the encoded VRRP part; the destination is the group or,
    /// for unicast, one peer per call as keepalived sends one copy per peer.
    public func send(_ payload: [UInt8], from source: IPv4Address, to destination: IPv4Address = .vrrpMulticastGroup,
                     ttl: UInt8 = 255) throws(SystemError) {
        try sendPacket(VRRPSocket.ipv4Packet(payload: payload, source: source, destination: destination, ttl: ttl), to: destination)
    }

    /// Sends a whole IPv4 packet, header included.
    public func sendPacket(_ packet: [UInt8], to destination: IPv4Address) throws(SystemError) {
        // MSG_DONTROUTE for multicast as keepalived: the group is link-scoped, never routed.
        let flags = destination.isMulticast ? Int32(MSG_DONTROUTE) : 0
        let sent = Sock.withSockaddr(destination.sockaddr) { addr, len in
            packet.withUnsafeBytes { sendto(sendSocket.raw, $0.baseAddress, $0.count, flags, addr, len) }
        }
        if sent < 0 { throw SystemError.last("sendto(\(destination))", interface) }
        if sent != packet.count {
            throw SystemError(errno: EMSGSIZE, operation: "sendto(\(destination)) short write", interface: interface)
        }
    }

    /// Reads one queued packet; nil when nothing is queued (the socket is non-blocking).
    public func receive() throws(SystemError) -> VRRPPacket? {
        var from = sockaddr_in()
        var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        var received = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: 65_535) { buffer, count in
            received = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(receiveSocket.raw, buffer.baseAddress, buffer.count, 0, $0, &fromLength)
                }
            }
            count = max(received, 0)
        }
        if received < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            throw SystemError.last("recvfrom", interface)
        }
        return VRRPPacket(bytes: bytes, source: IPv4Address(UInt32(bigEndian: from.sin_addr.s_addr)))
    }
}
