@preconcurrency import Glibc
import Addressing
import CNetlink

/// Announces a VIP after takeover so switches and neighbours move it to this MAC at once.
/// Policy (repeat counts, delays, skipping IFF_NOARP links) belongs to the caller.
public final class GratuitousARP: Sendable {
    public let interface: String
    public let ifindex: Int32
    /// Source MAC of the frames: the interface's own, or a VMAC's when the caller passes one.
    public let mac: [UInt8]
    private let socket: FileDescriptor

    public var fd: Int32 { socket.raw }

    public init(interface: String, mac: [UInt8]? = nil) throws(SystemError) {
        let info = try InterfaceInfo.lookup(interface)
        let hw = mac ?? info.mac
        guard hw.count == 6 else {
            throw SystemError(errno: EINVAL, operation: "no Ethernet address for GARP", interface: interface)
        }
        let s = try Sock.open(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(UInt16(ETH_P_ARP).bigEndian), interface)
        // Send-only: an ETH_P_ARP packet socket would otherwise queue every ARP frame seen.
        try Sock.dropAllInput(s, interface)
        self.interface = interface
        self.ifindex = info.index
        self.mac = hw
        self.socket = s
    }

    /// The 42-byte frame keepalived's `send_gratuitous_arp_immediate` builds.
    public static func frame(mac: [UInt8], vip: IPv4Address) -> [UInt8] {
        let broadcast = [UInt8](repeating: 0xFF, count: 6)
        let ip = vip.bytes
        return broadcast + mac + [0x08, 0x06]          // Ethernet: dst, src, ETHERTYPE_ARP
            + [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01] // ARPHRD_ETHER, ETHERTYPE_IP, hln, pln, REQUEST
            + mac + ip + broadcast + ip                  // sha, spa = VIP, tha = broadcast, tpa = VIP
    }

    public func send(for vip: IPv4Address) throws(SystemError) {
        let packet = GratuitousARP.frame(mac: mac, vip: vip)
        var ll = sockaddr_ll()
        ll.sll_family = UInt16(AF_PACKET)
        ll.sll_protocol = UInt16(ETH_P_ARP).bigEndian
        ll.sll_ifindex = ifindex
        ll.sll_halen = 6
        withUnsafeMutableBytes(of: &ll.sll_addr) { $0.copyBytes(from: [UInt8](repeating: 0xFF, count: 6)) }
        let sent = Sock.withSockaddr(ll) { addr, len in
            packet.withUnsafeBytes { sendto(socket.raw, $0.baseAddress, $0.count, 0, addr, len) }
        }
        if sent < 0 { throw SystemError.last("sendto(GARP \(vip))", interface) }
    }
}
