import Addressing
// The IP layer around an advert. An IPv4 raw socket hands keepalived the whole IP header,
// and the receive checks need its TTL and lengths, so the decoder returns those facts with
// the advert instead of throwing them away.

/// Ethernet's minimum payload. Frames shorter than this are padded by the sender, so a
/// captured buffer may be longer than the IP total length says (keepalived tolerates it).
let ethernetMinimumPayload = 46

/// An IPv4 packet carrying an advert, with the header facts the receive path checks.
public struct VRRPIPv4Packet: Hashable, Sendable {
    public var tos: UInt8
    public var totalLength: UInt16
    public var identification: UInt16
    public var ttl: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Header length in bytes (20 unless options are present).
    public var headerLength: Int
    public var advert: VRRPAdvert

    public var endpoints: VRRPEndpoints { .ipv4(source: source, destination: destination) }
}

/// An IPv6 packet carrying an advert (no extension headers).
public struct VRRPIPv6Packet: Hashable, Sendable {
    public var trafficClass: UInt8
    public var payloadLength: UInt16
    public var hopLimit: UInt8
    public var source: IPv6Address
    public var destination: IPv6Address
    public var advert: VRRPAdvert

    public var endpoints: VRRPEndpoints { .ipv6(source: source, destination: destination) }
}

/// Decodes an IPv4 packet (starting at the IP header) holding a VRRP advert. The IP header
/// checksum is not verified: the kernel has already dropped bad ones before a raw socket
/// sees them.
/// `checksumDestination`: the address the VRRPv3 pseudo-header carries instead of the packet's
/// own destination (keepalived's old unicast checksum, which used the multicast group).
public func decodeIPv4Packet(_ bytes: some Collection<UInt8>, v3ChecksumAsV2: Bool = false,
                             checksumDestination: IPv4Address? = nil) throws(VRRPDecodeError) -> VRRPIPv4Packet {
    let bytes = Array(bytes)
    guard bytes.count >= 20 else { throw .truncated }
    guard bytes[0] >> 4 == 4 else { throw .badIPHeader }
    let headerLength = Int(bytes[0] & 0x0F) * 4
    guard headerLength >= 20 else { throw .badIPHeader }
    guard bytes.count >= headerLength else { throw .truncated }
    let totalLength = Int(bytes[2]) << 8 | Int(bytes[3])
    guard totalLength >= headerLength else { throw .ipTotalLengthMismatch }
    guard totalLength <= bytes.count else { throw .truncated }
    guard totalLength == bytes.count || bytes.count <= ethernetMinimumPayload else { throw .ipTotalLengthMismatch }
    guard bytes[9] == VRRPAdvert.ipProtocol else { throw .notVRRPProtocol }
    let source = IPv4Address(bytes: bytes[12..<16])
    let destination = IPv4Address(bytes: bytes[16..<20])
    let advert = try VRRPAdvert.decode(
        bytes[headerLength..<totalLength], endpoints: .ipv4(source: source, destination: checksumDestination ?? destination),
        v3ChecksumAsV2: v3ChecksumAsV2)
    return VRRPIPv4Packet(
        tos: bytes[1], totalLength: UInt16(totalLength), identification: UInt16(bytes[4]) << 8 | UInt16(bytes[5]),
        ttl: bytes[8], source: source, destination: destination, headerLength: headerLength, advert: advert)
}

/// Decodes an IPv6 packet (starting at the IPv6 header) holding a VRRP advert directly
/// after the fixed header. Raw IPv6 sockets do not deliver the header, so this is for
/// captures and tests; a socket driver decodes the payload with `VRRPAdvert.decode` and
/// takes the hop limit from IPV6_HOPLIMIT.
public func decodeIPv6Packet(_ bytes: some Collection<UInt8>) throws(VRRPDecodeError) -> VRRPIPv6Packet {
    let bytes = Array(bytes)
    guard bytes.count >= 40 else { throw .truncated }
    guard bytes[0] >> 4 == 6 else { throw .badIPHeader }
    let payloadLength = Int(bytes[4]) << 8 | Int(bytes[5])
    guard 40 + payloadLength <= bytes.count else { throw .truncated }
    guard 40 + payloadLength == bytes.count else { throw .ipTotalLengthMismatch }
    guard bytes[6] == VRRPAdvert.ipProtocol else { throw .notVRRPProtocol }
    let source = IPv6Address(bytes: bytes[8..<24])
    let destination = IPv6Address(bytes: bytes[24..<40])
    let advert = try VRRPAdvert.decode(bytes[40...], endpoints: .ipv6(source: source, destination: destination))
    return VRRPIPv6Packet(
        trafficClass: (bytes[0] & 0x0F) << 4 | bytes[1] >> 4, payloadLength: UInt16(payloadLength),
        hopLimit: bytes[7], source: source, destination: destination, advert: advert)
}

/// A 20-byte IPv4 header without options, DF clear, checksum 0 (the kernel fills it in for
/// IP_HDRINCL; the callers that want it compute it).
func ipv4Header(totalLength: Int, tos: UInt8, identification: UInt16, ttl: UInt8, ipProtocol: UInt8,
                source: IPv4Address, destination: IPv4Address) -> [UInt8] {
    [0x45, tos, UInt8(totalLength >> 8), UInt8(totalLength & 0xFF),
     UInt8(identification >> 8), UInt8(identification & 0xFF), 0, 0,
     ttl, ipProtocol, 0, 0] + source.bytes + destination.bytes
}

extension VRRPAdvert {
    /// A full IPv4 packet as keepalived builds it for IP_HDRINCL (`vrrp_build_ip4`):
    /// TOS 0xC0 (internetwork control), TTL 255, no DF. Unlike keepalived the header checksum
    /// is filled in, which the kernel would overwrite anyway, so captures of it verify.
    public func encodeIPv4Packet(
        source: IPv4Address, destination: IPv4Address = IPv4Address.vrrpMulticastGroup, ttl: UInt8 = 255,
        tos: UInt8 = 0xC0, identification: UInt16 = 0, v3ChecksumAsV2: Bool = false
    ) -> [UInt8] {
        let payload = encode(endpoints: .ipv4(source: source, destination: destination), v3ChecksumAsV2: v3ChecksumAsV2)
        var header = ipv4Header(totalLength: 20 + payload.count, tos: tos, identification: identification, ttl: ttl,
                                ipProtocol: VRRPAdvert.ipProtocol, source: source, destination: destination)
        let checksum = InternetChecksum.finish(InternetChecksum.add(header, to: 0))
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xFF)
        return header + payload
    }

    /// A full IPv6 packet: traffic class 0xC0, hop limit 255, to ff02::12 by default.
    public func encodeIPv6Packet(
        source: IPv6Address, destination: IPv6Address = IPv6Address.vrrpMulticastGroup, hopLimit: UInt8 = 255,
        trafficClass: UInt8 = 0xC0
    ) -> [UInt8] {
        let payload = encode(endpoints: .ipv6(source: source, destination: destination))
        var header: [UInt8] = [
            0x60 | trafficClass >> 4, (trafficClass & 0x0F) << 4, 0, 0,
            UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), VRRPAdvert.ipProtocol, hopLimit,
        ]
        header += source.bytes + destination.bytes
        return header + payload
    }
}
