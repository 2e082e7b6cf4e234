import Addressing
// VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) advertisement codec, plus the IPv4/IPv6 headers
// around it. Pure: bytes in, values out; nothing here knows about sockets.

public enum VRRPVersion: UInt8, Hashable, Sendable, CaseIterable {
    case v2 = 2
    case v3 = 3
}

/// v2 authentication types. keepalived still speaks PASS and AH although RFC 3768 removed
/// them, so a keepalived-compatible decoder must accept all three.
public enum VRRPAuthType: UInt8, Hashable, Sendable, CaseIterable {
    case none = 0
    case simplePassword = 1
    case ipsecAH = 2
}

/// Why a frame could not be decoded. Each case is its own receive-error counter, so the
/// driver can count failures without inventing names; `counterName` is the stable key.
public enum VRRPDecodeError: Error, Hashable, Sendable, CaseIterable {
    /// Fewer bytes than the fixed header (IP or VRRP) needs, or the IP total length points
    /// past the end of what was received.
    case truncated
    /// The version nibble is neither 2 nor 3.
    case badVersion
    /// The type nibble is not 1 (ADVERTISEMENT).
    case badType
    /// v2 auth type outside 0...2 (keepalived: "Invalid auth type").
    case badAuthType
    /// The address count needs more bytes than the message holds.
    case addressCountMismatch
    /// The message is longer than its header and address count say.
    case lengthMismatch
    /// The one's-complement checksum does not verify.
    case badChecksum
    /// The IP header is not IPv4/IPv6 or its header length is impossible.
    case badIPHeader
    /// IPv4 `tot_len` (or IPv6 payload length) disagrees with the received length beyond
    /// Ethernet minimum-frame padding.
    case ipTotalLengthMismatch
    /// Protocol / next header is not 112 (AH-wrapped adverts are not supported).
    case notVRRPProtocol

    public var counterName: String {
        switch self {
        case .truncated: "truncated"
        case .badVersion: "bad_version"
        case .badType: "invalid_type"
        case .badAuthType: "invalid_auth_type"
        case .addressCountMismatch: "address_count_mismatch"
        case .lengthMismatch: "packet_length_mismatch"
        case .badChecksum: "checksum_error"
        case .badIPHeader: "ip_header_error"
        case .ipTotalLengthMismatch: "ip_total_length_mismatch"
        case .notVRRPProtocol: "not_vrrp_protocol"
        }
    }
}

/// The IP endpoints of an advert. The VRRP checksum may cover a pseudo-header built from
/// them, and they fix the address family, so decoding and encoding always need them; the
/// enum makes a mixed-family pair unrepresentable.
public enum VRRPEndpoints: Hashable, Sendable {
    case ipv4(source: IPv4Address, destination: IPv4Address)
    case ipv6(source: IPv6Address, destination: IPv6Address)

    public var family: AddressFamily {
        switch self {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        }
    }

    public var source: IPAddress {
        switch self {
        case .ipv4(let source, _): .v4(source)
        case .ipv6(let source, _): .v6(source)
        }
    }

    public var destination: IPAddress {
        switch self {
        case .ipv4(_, let destination): .v4(destination)
        case .ipv6(_, let destination): .v6(destination)
        }
    }

    /// Multicast endpoints from a source, to the family's VRRP group.
    public static func multicast(from source: IPAddress) -> VRRPEndpoints {
        switch source {
        case .v4(let address): .ipv4(source: address, destination: IPv4Address.vrrpMulticastGroup)
        case .v6(let address): .ipv6(source: address, destination: IPv6Address.vrrpMulticastGroup)
        }
    }

    /// Builds endpoints from two addresses, or nil if their families differ.
    public init?(source: IPAddress, destination: IPAddress) {
        switch (source, destination) {
        case (.v4(let s), .v4(let d)): self = .ipv4(source: s, destination: d)
        case (.v6(let s), .v6(let d)): self = .ipv6(source: s, destination: d)
        default: return nil
        }
    }

    fileprivate func pseudoHeader(length: Int) -> [UInt8] {
        switch self {
        case .ipv4(let source, let destination):
            // RFC 768-style: src, dst, zero, protocol, 16-bit length.
            return source.bytes + destination.bytes + [0, VRRPAdvert.ipProtocol, UInt8(length >> 8), UInt8(length & 0xFF)]
        case .ipv6(let source, let destination):
            // RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header.
            return source.bytes + destination.bytes
                + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, VRRPAdvert.ipProtocol]
        }
    }
}

/// One VRRP advertisement as it appears on the wire. Version-specific fields are kept side
/// by side rather than in an enum so that a decoded frame re-encodes byte for byte
/// (including auth data a v3 peer should not send and reserved bits it should not set).
public struct VRRPAdvert: Hashable, Sendable {
    public var version: VRRPVersion
    /// Always 1 (ADVERTISEMENT) for a decoded frame; settable so tests can build bad ones.
    public var type: UInt8
    public var vrid: UInt8
    public var priority: UInt8
    /// All of the endpoints' family; the count byte is `addresses.count`.
    public var addresses: [IPAddress]
    /// v2 only.
    public var authType: VRRPAuthType
    /// v2 over IPv4 only: the 8 bytes after the addresses. keepalived's v2-over-IPv6
    /// variant has no auth trailer, and v3 has none, so this is empty there.
    public var authData: [UInt8]
    /// v2 only: whole seconds.
    public var advertIntervalSeconds: UInt8
    /// v3 only: 12-bit Max Adver Int in centiseconds.
    public var maxAdvertIntervalCentiseconds: UInt16
    /// v3 only: the 4 reserved bits. Zero on send, ignored on receive (RFC 5798 §5.2.5);
    /// kept only so that re-encoding a received frame reproduces it exactly.
    public var reserved: UInt8

    /// IP protocol number of VRRP. Namespaced because VigilSystem exports a global of the
    /// same name with another type.
    public static let ipProtocol: UInt8 = 112

    public init(
        version: VRRPVersion, type: UInt8 = 1, vrid: UInt8, priority: UInt8, addresses: [IPAddress],
        authType: VRRPAuthType = .none, authData: [UInt8] = [], advertIntervalSeconds: UInt8 = 0,
        maxAdvertIntervalCentiseconds: UInt16 = 0, reserved: UInt8 = 0
    ) {
        self.version = version
        self.type = type
        self.vrid = vrid
        self.priority = priority
        self.addresses = addresses
        self.authType = authType
        self.authData = authData
        self.advertIntervalSeconds = advertIntervalSeconds
        self.maxAdvertIntervalCentiseconds = maxAdvertIntervalCentiseconds
        self.reserved = reserved
    }

    /// keepalived's PASS rule: the password fills 8 bytes, longer ones are cut, shorter ones
    /// are zero-padded. Both ends must apply the same rule or the compare never matches.
    public static func passwordAuthData(_ password: String) -> [UInt8] {
        var bytes = Array(password.utf8.prefix(8))
        bytes += Array(repeating: 0, count: 8 - bytes.count)
        return bytes
    }

    /// The advertised interval in microseconds (v2 seconds or v3 centiseconds).
    public var advertInterval: Int64 {
        switch version {
        case .v2: Int64(advertIntervalSeconds) * 1_000_000
        case .v3: Int64(maxAdvertIntervalCentiseconds) * 10_000
        }
    }

    static func addressSize(_ family: AddressFamily) -> Int { family == .ipv4 ? 4 : 16 }

    static func hasAuthTrailer(_ version: VRRPVersion, _ family: AddressFamily) -> Bool {
        version == .v2 && family == .ipv4
    }

    /// Whether the checksum covers the pseudo-header. v2/IPv4 never does (RFC 3768). IPv6
    /// always does, because keepalived leaves it to the kernel's IPV6_CHECKSUM even for v2.
    /// v3/IPv4 does unless `v3ChecksumAsV2` (keepalived's and FRR's default is to include
    /// it; Cisco and reportedly RFC 9568 do not).
    static func usesPseudoHeader(_ version: VRRPVersion, _ family: AddressFamily, v3ChecksumAsV2: Bool) -> Bool {
        family == .ipv6 || (version == .v3 && !v3ChecksumAsV2)
    }

    /// Wire length of this advert for the given family.
    public func encodedLength(family: AddressFamily) -> Int {
        8 + addresses.count * Self.addressSize(family) + (Self.hasAuthTrailer(version, family) ? 8 : 0)
    }

    /// Encodes the VRRP message (no IP header) with a fresh checksum.
    public func encode(endpoints: VRRPEndpoints, v3ChecksumAsV2: Bool = false) -> [UInt8] {
        let family = endpoints.family
        precondition(addresses.allSatisfy { $0.family == family }, "advert addresses must match the endpoints' family")
        precondition(addresses.count <= 255, "at most 255 addresses fit the count byte")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encodedLength(family: family))
        bytes.append(version.rawValue << 4 | (type & 0x0F))
        bytes.append(vrid)
        bytes.append(priority)
        bytes.append(UInt8(addresses.count))
        switch version {
        case .v2:
            bytes.append(authType.rawValue)
            bytes.append(advertIntervalSeconds)
        case .v3:
            bytes.append((reserved & 0x0F) << 4 | UInt8((maxAdvertIntervalCentiseconds >> 8) & 0x0F))
            bytes.append(UInt8(maxAdvertIntervalCentiseconds & 0xFF))
        }
        bytes += [0, 0]
        for address in addresses { bytes += address.bytes }
        if Self.hasAuthTrailer(version, family) {
            let trailer = Array(authData.prefix(8))
            bytes += trailer + Array(repeating: 0, count: 8 - trailer.count)
        }
        var sum: UInt32 = 0
        if Self.usesPseudoHeader(version, family, v3ChecksumAsV2: v3ChecksumAsV2) {
            sum = InternetChecksum.add(endpoints.pseudoHeader(length: bytes.count), to: sum)
        }
        let checksum = InternetChecksum.finish(InternetChecksum.add(bytes, to: sum))
        bytes[6] = UInt8(checksum >> 8)
        bytes[7] = UInt8(checksum & 0xFF)
        return bytes
    }

    /// Decodes a VRRP message (no IP header). The length must be exact: link-layer padding
    /// is the IP layer's business (see `decodeIPv4Packet`), as in keepalived's
    /// "Received packet length mismatch against expected".
    public static func decode(
        _ bytes: some Collection<UInt8>, endpoints: VRRPEndpoints, v3ChecksumAsV2: Bool = false
    ) throws(VRRPDecodeError) -> VRRPAdvert {
        let bytes = Array(bytes)
        guard bytes.count >= 8 else { throw .truncated }
        guard let version = VRRPVersion(rawValue: bytes[0] >> 4) else { throw .badVersion }
        guard bytes[0] & 0x0F == 1 else { throw .badType }
        let family = endpoints.family
        var authType = VRRPAuthType.none
        var seconds: UInt8 = 0
        var centiseconds: UInt16 = 0
        var reserved: UInt8 = 0
        switch version {
        case .v2:
            guard let type = VRRPAuthType(rawValue: bytes[4]) else { throw .badAuthType }
            authType = type
            seconds = bytes[5]
        case .v3:
            reserved = bytes[4] >> 4
            centiseconds = UInt16(bytes[4] & 0x0F) << 8 | UInt16(bytes[5])
        }
        let count = Int(bytes[3])
        let size = addressSize(family)
        let trailer = hasAuthTrailer(version, family) ? 8 : 0
        let expected = 8 + count * size + trailer
        guard bytes.count >= expected else { throw .addressCountMismatch }
        guard bytes.count == expected else { throw .lengthMismatch }
        var sum: UInt32 = 0
        if usesPseudoHeader(version, family, v3ChecksumAsV2: v3ChecksumAsV2) {
            sum = InternetChecksum.add(endpoints.pseudoHeader(length: bytes.count), to: sum)
        }
        guard InternetChecksum.finish(InternetChecksum.add(bytes, to: sum)) == 0 else { throw .badChecksum }
        var addresses: [IPAddress] = []
        addresses.reserveCapacity(count)
        for index in 0..<count {
            let start = 8 + index * size
            let slice = bytes[start..<(start + size)]
            addresses.append(family == .ipv4 ? .v4(IPv4Address(bytes: slice)) : .v6(IPv6Address(bytes: slice)))
        }
        let authData = trailer > 0 ? Array(bytes[(expected - 8)..<expected]) : []
        return VRRPAdvert(
            version: version, vrid: bytes[1], priority: bytes[2], addresses: addresses, authType: authType,
            authData: authData, advertIntervalSeconds: seconds, maxAdvertIntervalCentiseconds: centiseconds,
            reserved: reserved)
    }
}

