@preconcurrency import Glibc
import Addressing

/// An endpoint as the prober hands it to the kernel: an address of the shared model, a port,
/// and for IPv6 link-local targets the interface index (keepalived's bind_if).
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    /// Interface index for IPv6 link-local targets; 0 otherwise.
    public var scopeID: UInt32

    public init(_ address: IPAddress, port: UInt16 = 0, scopeID: UInt32 = 0) {
        self.address = address
        self.port = port
        self.scopeID = scopeID
    }

    /// 4 or 16 network-order bytes (nil otherwise).
    public init?(bytes: [UInt8], port: UInt16 = 0, scopeID: UInt32 = 0) {
        guard let address = IPAddress(bytes: bytes) else { return nil }
        self.init(address, port: port, scopeID: scopeID)
    }

    /// Dotted quad or IPv6 text; "fe80::1%eth0" sets the scope from the interface name.
    public init?(_ text: String, port: UInt16 = 0) {
        var host = Substring(text)
        var scope: UInt32 = 0
        if let pct = text.firstIndex(of: "%") {
            host = text[..<pct]
            let name = String(text[text.index(after: pct)...])
            scope = if_nametoindex(name)
            if scope == 0, let n = UInt32(name) { scope = n }
            if scope == 0 { return nil }
        }
        guard let address = IPAddress(host), scope == 0 || address.isV6 else { return nil }
        self.init(address, port: port, scopeID: scope)
    }

    /// The wildcard of a family, for binding only a source port (bind_port without bindto).
    public static func any(_ family: AddressFamily, port: UInt16) -> SocketAddress {
        SocketAddress(.zero(family), port: port)
    }

    public var family: AddressFamily { address.family }
    public var bytes: [UInt8] { address.bytes }

    public var description: String {
        address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    var addressFamily: Int32 { address.isV6 ? AF_INET6 : AF_INET }

    /// Calls `body` with a sockaddr of the right length, as connect/bind want it.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch address {
        case .v4(let v4):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = v4.value.bigEndian
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let v6):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: v6.bytes) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
