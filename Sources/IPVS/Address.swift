// Addresses as IPVS sees them: a family plus the raw network-order bytes that go into
// `union nf_inet_addr`. Parsing and printing are written out here so the module needs neither
// Foundation nor inet_pton/inet_ntop and stays a pure, portable core.

/// Address family, with the Linux `AF_*` numbers because that is what `IPVS_SVC_ATTR_AF` and
/// `IPVS_DEST_ATTR_ADDR_FAMILY` carry.
public enum IPVSAddressFamily: UInt16, Hashable, Sendable, CaseIterable, Comparable {
    case inet = 2
    case inet6 = 10

    /// Bytes of an address of this family.
    public var addressLength: Int { self == .inet ? 4 : 16 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An IPv4 or IPv6 address. Bytes are kept in network order so that encoding is a copy and
/// byte-wise comparison gives the numeric order used to sort operations deterministically.
public struct IPVSAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let family: IPVSAddressFamily
    /// 4 bytes for `.inet`, 16 for `.inet6`; the initialisers guarantee it.
    public let bytes: [UInt8]

    /// Nil unless `bytes` has exactly 4 or 16 elements.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: family = .inet
        case 16: family = .inet6
        default: return nil
        }
        self.bytes = bytes
    }

    public static func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> IPVSAddress {
        IPVSAddress(uncheckedBytes: [a, b, c, d], family: .inet)
    }

    /// The all-zero address, used when a field has to be filled but carries no meaning.
    public static func zero(_ family: IPVSAddressFamily) -> IPVSAddress {
        IPVSAddress(uncheckedBytes: Array(repeating: 0, count: family.addressLength), family: family)
    }

    init(uncheckedBytes: [UInt8], family: IPVSAddressFamily) {
        self.bytes = uncheckedBytes
        self.family = family
    }

    /// Dotted quad or RFC 4291 text (with `::` and an optional trailing dotted quad). Leading
    /// zeros in IPv4 octets are rejected, as glibc's `inet_pton` does, so a config address and
    /// a dumped one never disagree.
    public init?(_ text: some StringProtocol) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            self.init(uncheckedBytes: v4, family: .inet)
        } else if let v6 = Self.parseIPv6(Substring(text)) {
            self.init(uncheckedBytes: v6, family: .inet6)
        } else {
            return nil
        }
    }

    /// The 16 bytes of `union nf_inet_addr`: IPv4 occupies the first four, the rest is zero.
    var nfInetAddr: [UInt8] {
        family == .inet ? bytes + Array(repeating: 0, count: 12) : bytes
    }

    public static func < (lhs: IPVSAddress, rhs: IPVSAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family < rhs.family }
        return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// The text glibc's `inet_ntop` prints, because keepalived's log lines are built from it
    /// and operators grep logs of both daemons with the same patterns.
    public var description: String {
        switch family {
        case .inet: return bytes.map { String($0) }.joined(separator: ".")
        case .inet6: return Self.formatIPv6(bytes)
        }
    }

    // MARK: - Parsing

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part.count == 1 || part.first != "0",
                  let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII }) else { return nil }
        var head = text
        var tail: Substring = ""
        var compressed = false
        if let range = text.firstRange(of: "::") {
            compressed = true
            head = text[..<range.lowerBound]
            tail = text[range.upperBound...]
            if tail.contains("::") { return nil }
        }
        func groups(_ part: Substring, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (i, field) in fields.enumerated() {
                if allowIPv4 && i == fields.count - 1 && field.contains(".") {
                    guard let v4 = parseIPv4(field) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                } else {
                    guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                    out.append(value)
                }
            }
            return out
        }
        guard let first = groups(head, allowIPv4: !compressed),
              let last = groups(tail, allowIPv4: true) else { return nil }
        var all: [UInt16]
        if compressed {
            let missing = 8 - first.count - last.count
            guard missing >= 1 else { return nil }
            all = first + Array(repeating: 0, count: missing) + last
        } else {
            all = first
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    // MARK: - Formatting

    /// glibc rules: lower-case hex, the first longest run of two or more zero groups becomes
    /// `::`, and IPv4-compatible (`::a.b.c.d`) / IPv4-mapped (`::ffff:a.b.c.d`) addresses end
    /// in a dotted quad.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let words = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && words[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var out = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLength
                continue
            }
            if i > 0 && !out.hasSuffix(":") { out += ":" }
            if i == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && words[5] == 0xFFFF)) {
                out += bytes[12...15].map { String($0) }.joined(separator: ".")
                break
            }
            out += String(words[i], radix: 16)
            i += 1
        }
        return out
    }
}
