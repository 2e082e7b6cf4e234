@preconcurrency import Glibc

/// An IPv4/IPv6 address and port as the prober hands it to the kernel. Kept as raw bytes so
/// callers holding parsed config addresses do not round-trip through text.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case inet, inet6 }

    public let family: Family
    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]
    public var port: UInt16
    /// Interface index for IPv6 link-local targets (keepalived's bind_if); 0 otherwise.
    public var scopeID: UInt32

    public init?(bytes: [UInt8], port: UInt16 = 0, scopeID: UInt32 = 0) {
        switch bytes.count {
        case 4: family = .inet
        case 16: family = .inet6
        default: return nil
        }
        self.bytes = bytes
        self.port = port
        self.scopeID = scopeID
    }

    /// Dotted quad or IPv6 text; "fe80::1%eth0" sets the scope from the interface name.
    public init?(_ text: String, port: UInt16 = 0) {
        var host = text
        var scope: UInt32 = 0
        if let pct = text.firstIndex(of: "%") {
            host = String(text[..<pct])
            let name = String(text[text.index(after: pct)...])
            scope = if_nametoindex(name)
            if scope == 0, let n = UInt32(name) { scope = n }
            if scope == 0 { return nil }
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            guard scope == 0 else { return nil }
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) }, port: port)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) }, port: port, scopeID: scope)
            return
        }
        return nil
    }

    /// The wildcard of a family, for binding only a source port (bind_port without bindto).
    public static func any(_ family: Family, port: UInt16) -> SocketAddress {
        SocketAddress(bytes: Array(repeating: 0, count: family == .inet ? 4 : 16), port: port)!
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let af = family == .inet ? AF_INET : AF_INET6
        let text = bytes.withUnsafeBytes { raw -> String in
            guard inet_ntop(af, raw.baseAddress, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return family == .inet ? "\(text):\(port)" : "[\(text)]:\(port)"
    }

    var addressFamily: Int32 { family == .inet ? AF_INET : AF_INET6 }

    /// Calls `body` with a sockaddr of the right length, as connect/bind want it.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch family {
        case .inet:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .inet6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
