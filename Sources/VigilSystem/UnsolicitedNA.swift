@preconcurrency import Glibc
import Addressing
import CNetlink

/// The IPv6 counterpart of `GratuitousARP`: an unsolicited Neighbour Advertisement with the
/// Override flag (RFC 4861 §7.2.6), built as one Ethernet frame the way keepalived's
/// `ndisc_send_unsolicited_na_immediate` does, so the source is the VIP itself.
public final class UnsolicitedNA: Sendable {
    public let interface: String
    public let ifindex: Int32
    public let mac: [UInt8]
    private let socket: FileDescriptor

    public init(interface: String, mac: [UInt8]? = nil) throws(SystemError) {
        let info = try InterfaceInfo.lookup(interface)
        let hw = mac ?? info.mac
        guard hw.count == 6 else {
            throw SystemError(errno: EINVAL, operation: "no Ethernet address for NA", interface: interface)
        }
        let s = try Sock.open(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(UInt16(ETH_P_IPV6).bigEndian), interface)
        try Sock.dropAllInput(s, interface)
        self.interface = interface
        self.ifindex = info.index
        self.mac = hw
        self.socket = s
    }

    /// 86 bytes: Ethernet to 33:33:00:00:00:01, IPv6 VIP → ff02::1 hop limit 255, ICMPv6 NA
    /// (type 136, Override, Router if `router`), target = VIP, target link-layer option = MAC.
    public static func frame(mac: [UInt8], vip: IPv6Address, router: Bool) -> [UInt8] {
        let destination = IPv6Address.allNodes.bytes
        var icmp: [UInt8] = [136, 0, 0, 0, (router ? 0x80 : 0) | 0x20, 0, 0, 0] + vip.bytes + [2, 1] + mac
        let pseudo = vip.bytes + destination + [0, 0, 0, UInt8(icmp.count), 0, 0, 0, 58]
        let sum = InternetChecksum.of(pseudo + icmp)
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)
        let ipv6: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(icmp.count), 58, 255] + vip.bytes + destination
        return [0x33, 0x33, 0, 0, 0, 1] + mac + [0x86, 0xDD] + ipv6 + icmp
    }

    /// keepalived sets the Router flag when IPv6 forwarding is on for the interface; nil reads
    /// that sysctl at send time.
    public func send(for vip: IPv6Address, router: Bool? = nil) throws(SystemError) {
        let isRouter = router ?? UnsolicitedNA.forwarding(interface)
        let packet = UnsolicitedNA.frame(mac: mac, vip: vip, router: isRouter)
        var ll = sockaddr_ll()
        ll.sll_family = UInt16(AF_PACKET)
        ll.sll_protocol = UInt16(ETH_P_IPV6).bigEndian
        ll.sll_ifindex = ifindex
        ll.sll_halen = 6
        withUnsafeMutableBytes(of: &ll.sll_addr) { $0.copyBytes(from: [0x33, 0x33, 0, 0, 0, 1]) }
        let sent = Sock.withSockaddr(ll) { addr, len in
            packet.withUnsafeBytes { sendto(socket.raw, $0.baseAddress, $0.count, 0, addr, len) }
        }
        if sent < 0 { throw SystemError.last("sendto(NA \(vip))", interface) }
    }

    static func forwarding(_ interface: String) -> Bool {
        let fd = open("/proc/sys/net/ipv6/conf/\(interface)/forwarding", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "1")
    }
}

