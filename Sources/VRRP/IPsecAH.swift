import Addressing
// keepalived's `auth_type AH` (RFC 2338's IPsec Authentication Header for VRRPv2 over IPv4,
// as keepalived 2.2.7 builds it): IP protocol 51, then a 24-byte AH header (next header 112,
// payload length 4, SPI = the sender's address, a sequence number, a 96-bit ICV), then the
// advert with auth type 2 and zero auth data. The ICV is HMAC-MD5, keyed with the password's
// 8 bytes, over the IP header with TOS, fragment offset, checksum (and for unicast the TTL)
// zeroed, the AH header with a zero ICV, and the advert. The digest itself is the caller's
// (OpenSSL in the daemon), so this stays pure.

/// An AH-protected advert as received, with what the receive checks need.
public struct VRRPAHPacket: Sendable {
    public var ip: VRRPIPv4Packet
    public var spi: UInt32
    public var sequence: UInt32
    public var icv: [UInt8]
    /// The bytes the ICV is computed over, mutable fields zeroed as the sender zeroed them.
    public var icvInput: [UInt8]
}

public enum IPsecAH {
    public static let ipProtocol: UInt8 = 51
    public static let headerLength = 24
    public static let icvLength = 12

    /// The HMAC key: the password's first 8 bytes, zero-padded (keepalived's auth_data).
    public static func key(_ password: String) -> [UInt8] { VRRPAdvert.passwordAuthData(password) }

    /// A whole IPv4 packet for IP_HDRINCL. `identification` must not be 0 (the kernel would
    /// replace it, and the ICV with it); keepalived counts from 1.
    public static func encodeIPv4(
        advert payload: [UInt8], source: IPv4Address, destination: IPv4Address, ttl: UInt8, identification: UInt16,
        sequence: UInt32, hmac: ([UInt8]) -> [UInt8]
    ) -> [UInt8] {
        var packet = ipv4Header(totalLength: 20 + headerLength + payload.count, tos: 0xC0, identification: identification, ttl: ttl,
                                ipProtocol: ipProtocol, source: source, destination: destination)
        packet += [VRRPAdvert.ipProtocol, 4, 0, 0] + source.bytes + bigEndian(sequence) + [UInt8](repeating: 0, count: icvLength)
        packet += payload
        let icv = hmac(icvInput(packet, ipHeaderLength: 20, unicast: !destination.isMulticast)).prefix(icvLength)
        packet.replaceSubrange(32..<44, with: icv)
        return packet
    }

    /// Decodes an AH packet (IP header first). An AH header for another protocol is
    /// `.notVRRPProtocol`: keepalived drops those without counting them.
    public static func decodeIPv4(_ bytes: [UInt8], v3ChecksumAsV2: Bool = false) throws(VRRPDecodeError) -> VRRPAHPacket {
        guard bytes.count >= 20 else { throw .truncated }
        guard bytes[0] >> 4 == 4 else { throw .badIPHeader }
        let ipHeaderLength = Int(bytes[0] & 0x0F) * 4
        guard ipHeaderLength >= 20, bytes.count >= ipHeaderLength + headerLength else { throw .truncated }
        guard bytes[9] == ipProtocol else { throw .notVRRPProtocol }
        let totalLength = Int(bytes[2]) << 8 | Int(bytes[3])
        guard totalLength >= ipHeaderLength + headerLength, totalLength <= bytes.count else { throw .ipTotalLengthMismatch }
        let ah = ipHeaderLength
        guard bytes[ah] == VRRPAdvert.ipProtocol else { throw .notVRRPProtocol }
        let source = IPv4Address(bytes: bytes[12..<16])
        let destination = IPv4Address(bytes: bytes[16..<20])
        let advert = try VRRPAdvert.decode(bytes[(ah + headerLength)..<totalLength],
                                           endpoints: .ipv4(source: source, destination: destination), v3ChecksumAsV2: v3ChecksumAsV2)
        let ip = VRRPIPv4Packet(tos: bytes[1], totalLength: UInt16(totalLength), identification: UInt16(bytes[4]) << 8 | UInt16(bytes[5]),
                                ttl: bytes[8], source: source, destination: destination, headerLength: ipHeaderLength, advert: advert)
        let packet = Array(bytes[..<totalLength])
        return VRRPAHPacket(ip: ip, spi: word(bytes, ah + 4), sequence: word(bytes, ah + 8),
                            icv: Array(bytes[(ah + 12)..<(ah + 24)]),
                            icvInput: icvInput(packet, ipHeaderLength: ipHeaderLength, unicast: !destination.isMulticast))
    }

    /// The packet with the mutable fields and the ICV zeroed.
    static func icvInput(_ packet: [UInt8], ipHeaderLength: Int, unicast: Bool) -> [UInt8] {
        var input = packet
        input[1] = 0                    // TOS
        input[6] = 0; input[7] = 0      // flags and fragment offset
        input[10] = 0; input[11] = 0    // header checksum
        if unicast { input[8] = 0 }     // TTL: a unicast advert may cross routers
        input.replaceSubrange((ipHeaderLength + 12)..<(ipHeaderLength + 24), with: [UInt8](repeating: 0, count: icvLength))
        return input
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
}

/// keepalived's one AH sequence counter per instance: each advert sent takes the next number,
/// and an advert heard must carry a higher one than the counter (which it then becomes), so
/// a new master continues above the old one's numbers. At 0xFFFFFFFE the counter is cycled:
/// nothing more is sent until the instance becomes MASTER again, which restarts it.
public struct AHSequence: Sendable, Equatable {
    public private(set) var counter: UInt32 = 0
    public private(set) var cycled = false

    public init() {}

    /// The number for the next advert; nil once cycled.
    public mutating func nextToSend() -> UInt32? {
        if counter > 0xFFFF_FFFD { cycled = true }
        guard !cycled else { return nil }
        counter += 1
        return counter
    }

    /// Whether a heard number is new (anti-replay); a new one becomes the counter.
    public mutating func accept(_ sequence: UInt32, asBackup: Bool) -> Bool {
        guard sequence > counter else { return false }
        counter = sequence
        if asBackup { cycled = false }
        return true
    }

    /// keepalived's "Syncing seq_num": a master that hears a lower priority continues above it.
    public mutating func heardLowerPriority(_ sequence: UInt32) {
        counter = sequence &+ 1
        cycled = false
    }

    public mutating func becameMaster() {
        if cycled {
            cycled = false
            counter = 0
        }
    }
}
