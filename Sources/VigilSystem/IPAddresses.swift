@preconcurrency import Glibc

/// Kept separate from the codec's address types so this module has no dependency on them;
/// convert through `octets`.
public struct IPv4Addr: Hashable, Sendable, CustomStringConvertible {
    /// Host byte order: 10.0.0.1 is 0x0A000001.
    public let value: UInt32

    public init(value: UInt32) { self.value = value }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }
    public init?(octets: some Collection<UInt8>) {
        guard octets.count == 4 else { return nil }
        value = octets.reduce(0) { $0 << 8 | UInt32($1) }
    }
    public init?(_ text: String) {
        var raw = in_addr()
        guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
        value = UInt32(bigEndian: raw.s_addr)
    }

    public static let vrrpMulticast = IPv4Addr(224, 0, 0, 18)
    public static let any = IPv4Addr(value: 0)

    public var octets: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
    public var isMulticast: Bool { value >> 28 == 0xE }
    public var description: String { octets.map(String.init).joined(separator: ".") }

    var inAddr: in_addr { in_addr(s_addr: value.bigEndian) }
    var sockaddr: sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr = inAddr
        return sa
    }
}

public struct IPv6Addr: Hashable, Sendable, CustomStringConvertible {
    public let octets: [UInt8]

    public init?(octets: some Collection<UInt8>) {
        guard octets.count == 16 else { return nil }
        self.octets = Array(octets)
    }
    public init?(_ text: String) {
        var raw = in6_addr()
        guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
        octets = withUnsafeBytes(of: raw) { Array($0) }
    }

    public static let vrrpMulticast = IPv6Addr("ff02::12")!
    public static let allNodes = IPv6Addr("ff02::1")!

    public var isLinkLocal: Bool { octets[0] == 0xFE && octets[1] & 0xC0 == 0x80 }
    public var isMulticast: Bool { octets[0] == 0xFF }

    public var description: String {
        var raw = in6Addr
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var in6Addr: in6_addr {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: octets) }
        return raw
    }
}

public enum IPAddr: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Addr)
    case v6(IPv6Addr)

    public init?(_ text: String) {
        if let a = IPv4Addr(text) { self = .v4(a) } else if let a = IPv6Addr(text) { self = .v6(a) } else { return nil }
    }
    public var octets: [UInt8] {
        switch self { case .v4(let a): a.octets; case .v6(let a): a.octets }
    }
    public var family: Int32 {
        switch self { case .v4: AF_INET; case .v6: AF_INET6 }
    }
    public var maxPrefixLength: UInt8 {
        switch self { case .v4: 32; case .v6: 128 }
    }
    public var description: String {
        switch self { case .v4(let a): a.description; case .v6(let a): a.description }
    }
}
