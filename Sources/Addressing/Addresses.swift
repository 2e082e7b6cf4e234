// The one address model of Vigil: configuration, the VRRP codec and state machine, IPVS, the
// probes and the Linux adapters all hold these values, so an address read from keepalived.conf
// reaches a socket, a netlink attribute or an advert without a round trip through text.
//
// Pure Swift (no Glibc): parsing accepts exactly what glibc's `inet_pton` accepts, and printing
// gives what its `inet_ntop` prints, because keepalived uses both and operators compare the
// two daemons' configs and log lines as text.

/// IPv4 or IPv6. The Linux `AF_*` numbers travel with it because netlink attributes, sockets
/// and IPVS carry them.
public enum AddressFamily: Hashable, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case ipv4
    case ipv6

    /// Bytes of an address of this family.
    public var addressLength: Int { self == .ipv4 ? 4 : 16 }
    public var maxPrefixLength: Int { self == .ipv4 ? 32 : 128 }
    /// `AF_INET` (2) or `AF_INET6` (10) on Linux.
    public var linuxNumber: UInt16 { self == .ipv4 ? 2 : 10 }

    public init?(linuxNumber: UInt16) {
        switch linuxNumber {
        case 2: self = .ipv4
        case 10: self = .ipv6
        default: return nil
        }
    }

    /// "IPv4" / "IPv6", as diagnostics name them.
    public var description: String { self == .ipv4 ? "IPv4" : "IPv6" }
}

/// An IPv4 address in host byte order, so that `<` is the numeric order keepalived's
/// `inet_inaddrcmp` uses for the equal-priority tie-break.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Network-order bytes as they appear on the wire; the caller guarantees four of them.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 4, "IPv4 address needs 4 bytes")
        value = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Strict a.b.c.d with decimal octets 0...255 and no leading zeros: glibc's
    /// `inet_pton(AF_INET)` rules, checked byte by byte because big configs hold thousands.
    public init?(_ text: some StringProtocol) {
        guard let value = Self.parse(text.utf8) else { return nil }
        self.value = value
    }

    static func parse(_ bytes: some Collection<UInt8>) -> UInt32? {
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

    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    public var isMulticast: Bool { value >> 28 == 0xE }

    public var description: String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    public static let any = IPv4Address(0)
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

    /// Network-order bytes; the caller guarantees sixteen of them.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 16, "IPv6 address needs 16 bytes")
        var h: UInt64 = 0, l: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { h = h << 8 | UInt64(byte) } else { l = l << 8 | UInt64(byte) }
        }
        high = h
        low = l
    }

    /// RFC 4291 text forms (with `::` and a trailing dotted quad), as glibc's
    /// `inet_pton(AF_INET6)` accepts them; no zone index.
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
                guard let v4 = IPv4Address.parse(piece) else { return nil }
                groups += [UInt16(v4 >> 16), UInt16(truncatingIfNeeded: v4)]
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

    /// glibc's `inet_ntop`: lower-case hex, the first longest run of two or more zero groups
    /// becomes `::`, and IPv4-compatible (`::a.b.c.d`) and IPv4-mapped (`::ffff:a.b.c.d`)
    /// addresses end in a dotted quad. Otherwise this is RFC 5952's canonical form.
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
            if index == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && g[5] == 0xFFFF)) {
                text += IPv4Address(UInt32(truncatingIfNeeded: low)).description
                break
            }
            text += String(g[index], radix: 16)
            index += 1
        }
        return text
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    public static let any = IPv6Address(high: 0, low: 0)
}

/// Either family. Ordering puts IPv4 first, then numeric order within a family.
public enum IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Dotted quad or IPv6 text, by inet_pton's rules.
    public init?(_ text: some StringProtocol) {
        if let value = IPv4Address.parse(text.utf8) {
            self = .v4(IPv4Address(value))
        } else if let address = IPv6Address(text) {
            self = .v6(address)
        } else {
            return nil
        }
    }

    /// 4 or 16 network-order bytes; nil for any other count.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        switch bytes.count {
        case 4: self = .v4(IPv4Address(bytes: bytes))
        case 16: self = .v6(IPv6Address(bytes: bytes))
        default: return nil
        }
    }

    /// The all-zero address of a family, for fields that must be filled but mean nothing.
    public static func zero(_ family: AddressFamily) -> IPAddress {
        family == .ipv4 ? .v4(.any) : .v6(.any)
    }

    public var family: AddressFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    public var isV6: Bool { family == .ipv6 }
    public var maxPrefixLength: Int { family.maxPrefixLength }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let address): address.bytes
        case .v6(let address): address.bytes
        }
    }

    public var ipv4: IPv4Address? { if case .v4(let a) = self { a } else { nil } }
    public var ipv6: IPv6Address? { if case .v6(let a) = self { a } else { nil } }

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

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }
}

/// `ADDR/LEN` with keepalived's defaults (/32 or /128 when no length is given): the length is
/// nil when absent, and `lengthValid` is false when present but out of range.
public func parsePrefix(_ text: String) -> (IPAddress, Int?, lengthValid: Bool)? {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let address = IPAddress(parts[0]) else { return nil }
    guard parts.count == 2 else { return (address, nil, true) }
    guard let length = Int(parts[1]), length >= 0, length <= address.maxPrefixLength else {
        return (address, nil, false)
    }
    return (address, length, true)
}

// Well-known groups, here rather than in the VRRP module so the socket adapters need no
// protocol module to join them.
extension IPv4Address {
    /// 224.0.0.18, the VRRP group (RFC 5798 §5.1.1.2).
    public static let vrrpMulticastGroup = IPv4Address(224, 0, 0, 18)
}

extension IPv6Address {
    /// ff02::12, the VRRP group for IPv6 (RFC 5798 §5.1.2.2).
    public static let vrrpMulticastGroup = IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x12)
    /// ff02::1, where unsolicited neighbour advertisements go.
    public static let allNodes = IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x1)
}

/// A link-layer address as `ip link` prints it: `00:00:5e:00:01:4d`.
public func macAddressText(_ octets: some Collection<UInt8>) -> String {
    octets.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
}

/// RFC 1071 one's-complement arithmetic over big-endian 16-bit words: VRRP adverts, IPv4
/// headers, unsolicited NAs and ICMP echoes all sum the same way.
public enum InternetChecksum {
    /// Adds `bytes` (an odd trailing byte is padded with zero) to a running sum. Callers
    /// only ever chain even-length blocks before the last one, so word alignment holds.
    public static func add(_ bytes: [UInt8], to initial: UInt32) -> UInt32 {
        var sum = initial
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            sum = (sum & 0xFFFF) + (sum >> 16)
            index += 2
        }
        if index < bytes.count {
            sum += UInt32(bytes[index]) << 8
            sum = (sum & 0xFFFF) + (sum >> 16)
        }
        return sum
    }

    /// Folds and complements; a block that contains a correct checksum finishes to 0.
    public static func finish(_ sum: UInt32) -> UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }

    /// The checksum of one block.
    public static func of(_ bytes: [UInt8]) -> UInt16 { finish(add(bytes, to: 0)) }
}

/// Pairs of hex digits as bytes (keepalived's read_hex_str: a UDP_CHECK payload, a digest);
/// spaces between pairs are allowed; nil for anything else or nothing.
public func hexBytes(_ text: String) -> [UInt8]? {
    func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - 55
        default: nil
        }
    }
    let digits = text.utf8.filter { $0 != UInt8(ascii: " ") }
    guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    for i in stride(from: 0, to: digits.count, by: 2) {
        guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
        bytes.append(high << 4 | low)
    }
    return bytes
}
