#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// An IPv4 or IPv6 address as the configuration names it. Parsing goes through `inet_pton`,
/// so Vigil accepts exactly the spellings keepalived (which also uses it) accepts.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Host byte order.
    case v4(UInt32)
    /// Network byte order, 16 bytes.
    case v6([UInt8])

    public init?(_ text: some StringProtocol) {
        // Fast path for plain dotted quads, the overwhelmingly common case in big configs.
        if let value = Self.parseDottedQuad(text.utf8) { self = .v4(value); return }
        let string = String(text)
        if string.contains(":") {
            var storage = in6_addr()
            guard inet_pton(AF_INET6, string, &storage) == 1 else { return nil }
            self = .v6(withUnsafeBytes(of: &storage) { Array($0) })
        } else {
            var storage = in_addr()
            guard inet_pton(AF_INET, string, &storage) == 1 else { return nil }
            self = .v4(UInt32(bigEndian: storage.s_addr))
        }
    }

    /// Strict a.b.c.d with decimal octets 0...255 and no leading zeros (inet_pton's rules).
    static func parseDottedQuad(_ bytes: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0, octet: UInt32 = 0, digits = 0, dots = 0
        for c in bytes {
            if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0; digits = 0; dots += 1
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                if digits > 0 && octet == 0 { return nil }
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    public var isV6: Bool { if case .v6 = self { true } else { false } }
    public var family: String { isV6 ? "IPv6" : "IPv4" }
    public var maxPrefix: Int { isV6 ? 128 : 32 }

    public var isMulticast: Bool {
        switch self {
        case .v4(let a): return a >> 28 == 0xE
        case .v6(let b): return b[0] == 0xFF
        }
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return "\(a >> 24).\((a >> 16) & 0xFF).\((a >> 8) & 0xFF).\(a & 0xFF)"
        case .v6(var bytes):
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let text = bytes.withUnsafeMutableBytes { raw in
                inet_ntop(AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count))
            }
            return text == nil ? "?" : buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }
}

/// `ADDR/LEN` with keepalived's defaults (/32 or /128 when no length is given).
public func parsePrefix(_ text: String) -> (IPAddress, Int?, lengthValid: Bool)? {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let address = IPAddress(parts[0]) else { return nil }
    guard parts.count == 2 else { return (address, nil, true) }
    guard let length = Int(parts[1]), length >= 0, length <= address.maxPrefix else {
        return (address, nil, false)
    }
    return (address, length, true)
}
