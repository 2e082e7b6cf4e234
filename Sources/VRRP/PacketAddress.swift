// Address value types for the VRRP core.
//
// The core must not depend on Foundation or on inet_pton, so that it stays pure and portable,
// which is why parsing and printing are written out here. The names avoid `IPAddress`, which
// VigilConfig already exports; a file importing both modules then needs no qualification.

/// Which IP family an instance, an advert or an address belongs to.
public enum AddressFamily: String, Hashable, Sendable {
    case ipv4
    case ipv6
}

/// An IPv4 address held in host byte order, so that `<` is the numeric order keepalived's
/// `inet_inaddrcmp` uses for the equal-priority tie-break.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Network-order bytes as they appear on the wire.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 4, "IPv4 address needs 4 bytes")
        value = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Dotted quad only, leading zeros rejected: the spellings glibc's `inet_pton(AF_INET)`
    /// accepts, so a config address and a parsed one never disagree.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: UInt32 = 0
        for part in parts {
            guard let octet = Self.parseOctet(part) else { return nil }
            result = result << 8 | UInt32(octet)
        }
        value = result
    }

    static func parseOctet(_ part: some StringProtocol) -> UInt8? {
        guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if part.utf8.count > 1 && part.utf8.first == 48 { return nil }
        guard let number = Int(part), number <= 255 else { return nil }
        return UInt8(number)
    }

    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    public var isMulticast: Bool { value >> 28 == 0xE }

    public var description: String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    /// 224.0.0.18, the VRRP group (RFC 5798 §5.1.1.2).
    public static let vrrpMulticastGroup = IPv4Address(224, 0, 0, 18)
}

/// An IPv6 address as two big-endian halves, so that comparison is the word-by-word numeric
/// order keepalived uses and the value stays a cheap fixed-size struct.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 16, "IPv6 address needs 16 bytes")
        var h: UInt64 = 0, l: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { h = h << 8 | UInt64(byte) } else { l = l << 8 | UInt64(byte) }
        }
        high = h
        low = l
    }

    /// RFC 4291 text forms (with `::` and a trailing dotted quad); no zone index, since an
    /// advert never carries one.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count <= 45 else { return nil }
        // At most one "::" (":::" overlaps itself and counts twice, so it is rejected too).
        let doubleColons = utf8.indices.dropLast().filter { utf8[$0] == 58 && utf8[$0 + 1] == 58 }
        guard doubleColons.count <= 1 else { return nil }
        let head: [UInt16], tail: [UInt16]
        if let split = doubleColons.first {
            guard let h = Self.parseGroups(utf8[..<split], allowIPv4Tail: false),
                  let t = Self.parseGroups(utf8[(split + 2)...], allowIPv4Tail: true),
                  h.count + t.count <= 7
            else { return nil }
            head = h
            tail = t
        } else {
            guard let h = Self.parseGroups(utf8[...], allowIPv4Tail: true), h.count == 8 else { return nil }
            head = h
            tail = []
        }
        let groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        high = groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    /// Colon-separated hex groups of 1–4 digits, optionally ending in a dotted quad.
    private static func parseGroups(_ part: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
        if part.isEmpty { return [] }
        let pieces = part.split(separator: 58, omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if index == pieces.count - 1 && allowIPv4Tail && piece.contains(46) {
                guard let v4 = IPv4Address(String(decoding: piece, as: UTF8.self)) else { return nil }
                groups += [UInt16(v4.value >> 16), UInt16(truncatingIfNeeded: v4.value)]
                continue
            }
            guard (1...4).contains(piece.count) else { return nil }
            var group: UInt16 = 0
            for byte in piece {
                let digit: UInt8
                switch byte {
                case 48...57: digit = byte - 48
                case 65...70: digit = byte - 55
                case 97...102: digit = byte - 87
                default: return nil
                }
                group = group << 4 | UInt16(digit)
            }
            groups.append(group)
        }
        return groups
    }

    public var bytes: [UInt8] {
        (0..<16).map { index in
            let word = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64(index % 8)))
        }
    }

    var groups: [UInt16] {
        (0..<8).map { index in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(index % 4)))
        }
    }

    public var isMulticast: Bool { high >> 56 == 0xFF }
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }  // fe80::/10

    /// RFC 5952 canonical text (lower case, longest run of two or more zero groups
    /// compressed, first run on a tie), which is also what glibc's inet_ntop prints for
    /// non-mapped addresses, so log lines and test vectors compare as strings.
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            if g[index] == 0 {
                var end = index
                while end < 8 && g[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(g[index], radix: 16)
            index += 1
        }
        return text
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// ff02::12, the VRRP group for IPv6 (RFC 5798 §5.1.2.2).
    public static let vrrpMulticastGroup = IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x12)
}

/// Either family. Ordering across families is arbitrary (IPv4 first); the tie-break only
/// ever compares addresses of one family.
public enum InetAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let address = IPv6Address(text) else { return nil }
            self = .v6(address)
        } else {
            guard let address = IPv4Address(text) else { return nil }
            self = .v4(address)
        }
    }

    public var family: AddressFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let address): address.bytes
        case .v6(let address): address.bytes
        }
    }

    public var isMulticast: Bool {
        switch self {
        case .v4(let address): address.isMulticast
        case .v6(let address): address.isMulticast
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }

    public static func < (lhs: InetAddress, rhs: InetAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }
}
