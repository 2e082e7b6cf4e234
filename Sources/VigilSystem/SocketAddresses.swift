@preconcurrency import Glibc
import Addressing

// The shared address values as the socket API spells them.
extension IPv4Address {
    var inAddr: in_addr { in_addr(s_addr: value.bigEndian) }
    var sockaddr: sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr = inAddr
        return sa
    }
}

extension IPv6Address {
    var in6Addr: in6_addr {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        return raw
    }

    init(_ raw: in6_addr) {
        self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })
    }
}

extension IPAddress {
    /// AF_INET or AF_INET6.
    var socketFamily: Int32 { Int32(family.linuxNumber) }
}
