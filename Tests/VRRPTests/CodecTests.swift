import Testing
import VigilTestSupport
import Addressing
@testable import VRRP

@Suite struct PcapCorpusTests {
    /// Every frame of tcpdump's vrrp.pcap decodes to exactly the independent decode in
    /// vrrp.vectors.jsonl, and re-encodes to the same VRRP bytes.
    @Test func vrrpPcapMatchesVectors() throws {
        let pcap = try Pcap.parse(try TestData.bytes("vrrp.pcap"))
        let vectors = try TestData.jsonLines("vrrp.vectors.jsonl")
        #expect(pcap.linkType == 1)
        #expect(pcap.frames.count == 165)
        #expect(vectors.count == 165)
        for (index, (frame, vector)) in zip(pcap.frames, vectors).enumerated() {
            let context = Comment(rawValue: "frame \(index + 1)")
            #expect(vector["frame"] as? Int == index + 1, context)
            let decoded = try decodeEthernetFrame(frame)
            let advert: VRRPAdvert
            let vrrpBytes: [UInt8]
            let endpoints: VRRPEndpoints
            switch decoded {
            case .ipv4(let packet, let bytes):
                #expect(vector["family"] as? Int == 4, context)
                #expect(vector["ttl_or_hlim"] as? Int == Int(packet.ttl), context)
                #expect(vector["src"] as? String == packet.source.description, context)
                #expect(vector["dst"] as? String == packet.destination.description, context)
                advert = packet.advert
                vrrpBytes = bytes
                endpoints = packet.endpoints
            case .ipv6(let packet, let bytes):
                #expect(vector["family"] as? Int == 6, context)
                #expect(vector["ttl_or_hlim"] as? Int == Int(packet.hopLimit), context)
                #expect(vector["src"] as? String == packet.source.description, context)
                #expect(vector["dst"] as? String == packet.destination.description, context)
                advert = packet.advert
                vrrpBytes = bytes
                endpoints = packet.endpoints
            }
            // A successful decode means the checksum verified.
            #expect(vector["checksum_ok"] as? Bool == true, context)
            #expect(vector["ttl_ok"] as? Bool == true, context)
            #expect(vector["version"] as? Int == Int(advert.version.rawValue), context)
            #expect(vector["type"] as? Int == Int(advert.type), context)
            #expect(vector["vrid"] as? Int == Int(advert.vrid), context)
            #expect(vector["priority"] as? Int == Int(advert.priority), context)
            #expect(vector["count"] as? Int == advert.addresses.count, context)
            #expect(vector["length"] as? Int == vrrpBytes.count, context)
            #expect(vector["length"] as? Int == advert.encodedLength(family: endpoints.family), context)
            let checksum = String(UInt16(vrrpBytes[6]) << 8 | UInt16(vrrpBytes[7]), radix: 16)
            #expect(Int(vector["checksum_field"] as? String ?? "", radix: 16) == Int(checksum, radix: 16), context)
            #expect(vector["addrs"] as? [String] == advert.addresses.map(\.description), context)
            switch advert.version {
            case .v2:
                #expect(vector["auth_type"] as? Int == Int(advert.authType.rawValue), context)
                #expect(vector["adver_int_s"] as? Int == Int(advert.advertIntervalSeconds), context)
                if let auth = vector["auth_data"] as? String {
                    #expect(advert.authData == VRRPAdvert.passwordAuthData(auth), context)
                }
            case .v3:
                #expect(vector["max_adver_int_cs"] as? Int == Int(advert.maxAdvertIntervalCentiseconds), context)
                #expect(vector["rsvd"] as? Int == Int(advert.reserved), context)
                #expect(vector["checksum_ok_without_pseudoheader"] as? Bool == false, context)
                if endpoints.family == .ipv4 {
                    #expect(throws: VRRPDecodeError.badChecksum, context) {
                        try VRRPAdvert.decode(vrrpBytes, endpoints: endpoints, v3ChecksumAsV2: true)
                    }
                }
            }
            #expect(advert.encode(endpoints: endpoints) == vrrpBytes, context)
        }
    }

    /// tcpdump's out-of-bounds-read regressions: every frame must be rejected with a typed
    /// error, and no decoder may trap on any suffix of any frame.
    @Test(arguments: ["vrrp-vrrp_print-oobr.pcap", "vrrp-vrrp_print-oobr-2.pcap"])
    func malformedCapturesAreRejected(file: String) throws {
        let pcap = try Pcap.parse(try TestData.bytes(file))
        #expect(!pcap.frames.isEmpty)
        // Ethernet puts IP at byte 14; the Frame Relay capture (link type 107) at byte 5,
        // after the 2-byte Q.922 address, control and NLPID (as tcpdump decodes it).
        let ipOffset = pcap.linkType == 1 ? 14 : 5
        for (index, frame) in pcap.frames.enumerated() {
            let ipBytes = Array(frame[min(ipOffset, frame.count)...])
            #expect(throws: VRRPDecodeError.self, "frame \(index + 1)") { try decodeIPv4Packet(ipBytes) }
            for start in 0...frame.count {
                let tail = Array(frame[start...])
                _ = try? decodeIPv4Packet(tail)
                _ = try? decodeIPv6Packet(tail)
                _ = try? VRRPAdvert.decode(tail, endpoints: .ipv4(source: v4("10.0.0.1"), destination: .vrrpMulticastGroup))
                _ = try? VRRPAdvert.decode(tail, endpoints: .ipv6(source: v6("fe80::1"), destination: .vrrpMulticastGroup))
            }
        }
    }

    @Test func oobr2VectorsAgreeThatNothingVerifies() throws {
        let vectors = try TestData.jsonLines("vrrp-vrrp_print-oobr-2.vectors.jsonl")
        let pcap = try Pcap.parse(try TestData.bytes("vrrp-vrrp_print-oobr-2.pcap"))
        #expect(vectors.count == pcap.frames.count)
        for vector in vectors {
            #expect(vector["checksum_ok"] as? Bool != true)
        }
    }
}

@Suite struct ExtraVectorTests {
    let holoV2 = hex("21 33 1e 01 00 01 b5 c5 0a 00 01 05 00 00 00 00 00 00 00 00")
    let holoIPHeader = hex("45 c0 00 28 00 00 00 00 ff 70 b5 e8 c0 a8 64 02 e0 00 00 12")
    let keepalived1175 = hex("""
        45 c0 00 20 00 01 00 00 ff 70 00 00 0a 01 00 03 0a 01 00 01
        31 58 c6 01 00 64 9c 19 0a c3 4c e3
        """)

    @Test func holoV2Vector() throws {
        let endpoints = VRRPEndpoints.ipv4(source: v4("192.168.100.2"), destination: .vrrpMulticastGroup)
        let advert = try VRRPAdvert.decode(holoV2, endpoints: endpoints)
        #expect(advert.version == .v2 && advert.vrid == 51 && advert.priority == 30)
        #expect(advert.addresses == [ip("10.0.1.5")])
        #expect(advert.advertIntervalSeconds == 1 && advert.authType == VRRPAuthType.none)
        #expect(advert.encode(endpoints: endpoints) == holoV2)
        // The whole packet as keepalived's vrrp_build_ip4 lays it out (TOS 0xC0, id 0, TTL 255).
        let packet = try decodeIPv4Packet(holoIPHeader + holoV2)
        #expect(packet.ttl == 255 && packet.tos == 0xC0 && packet.advert == advert)
        #expect(advert.encodeIPv4Packet(source: v4("192.168.100.2")) == holoIPHeader + holoV2)
    }

    @Test func holoV3IPv6VectorFields() {
        // The quoted checksum depends on addresses the source does not give, so compare the rest.
        let expected = hex("31 01 16 01 00 01 b5 7f 20 01 0d b8 00 00 00 00 00 00 00 00 03 70 73 34")
        let advert = VRRPAdvert(
            version: .v3, vrid: 1, priority: 22, addresses: [ip("2001:db8::370:7334")], maxAdvertIntervalCentiseconds: 1)
        let bytes = advert.encode(endpoints: .ipv6(source: v6("fe80::1"), destination: .vrrpMulticastGroup))
        #expect(Array(bytes[0..<6]) == Array(expected[0..<6]))
        #expect(Array(bytes[8...]) == Array(expected[8...]))
    }

    @Test func keepalivedUnicastV3VectorNeedsPseudoHeader() throws {
        let packet = try decodeIPv4Packet(keepalived1175)
        #expect(packet.source == v4("10.1.0.3") && packet.destination == v4("10.1.0.1"))
        #expect(packet.advert.vrid == 88 && packet.advert.priority == 198)
        #expect(packet.advert.maxAdvertIntervalCentiseconds == 100)
        #expect(packet.advert.addresses == [ip("10.195.76.227")])
        #expect(throws: VRRPDecodeError.badChecksum) { try decodeIPv4Packet(keepalived1175, v3ChecksumAsV2: true) }
        let withPseudo = packet.advert.encode(endpoints: packet.endpoints)
        let withoutPseudo = packet.advert.encode(endpoints: packet.endpoints, v3ChecksumAsV2: true)
        #expect(Array(withPseudo[6...7]) == [0x9C, 0x19])
        #expect(Array(withoutPseudo[6...7]) == [0xB0, 0x9B])
        #expect(try VRRPAdvert.decode(withoutPseudo, endpoints: packet.endpoints, v3ChecksumAsV2: true) == packet.advert)
    }
}

@Suite struct CodecTests {
    let endpoints4 = VRRPEndpoints.ipv4(source: v4("10.0.0.1"), destination: .vrrpMulticastGroup)

    @Test func passwordIsTruncatedOrPaddedToEightBytes() {
        #expect(VRRPAdvert.passwordAuthData("secret") == Array("secret".utf8) + [0, 0])
        #expect(VRRPAdvert.passwordAuthData("averylongpassword") == Array("averylon".utf8))
        #expect(VRRPAdvert.passwordAuthData("") == Array(repeating: 0, count: 8))
        let advert = VRRPAdvert(
            version: .v2, vrid: 1, priority: 100, addresses: [ip("10.0.0.100")], authType: .simplePassword,
            authData: VRRPAdvert.passwordAuthData("averylongpassword"), advertIntervalSeconds: 1)
        let bytes = advert.encode(endpoints: endpoints4)
        #expect(bytes.count == 8 + 4 + 8)
        #expect(Array(bytes.suffix(8)) == Array("averylon".utf8))
    }

    /// Each decode error is reachable from a concrete input, and its counter name is unique.
    @Test func everyDecodeErrorHasAnInputAndAUniqueCounter() throws {
        let valid = VRRPAdvert(
            version: .v2, vrid: 7, priority: 100, addresses: [ip("10.0.0.100")], authData: [], advertIntervalSeconds: 1
        ).encode(endpoints: endpoints4)
        func mutated(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
            var copy = valid
            change(&copy)
            return copy
        }
        func vrrpError(_ bytes: [UInt8]) -> VRRPDecodeError? {
            do { _ = try VRRPAdvert.decode(bytes, endpoints: endpoints4); return nil } catch { return error }
        }
        let packet = VRRPAdvert(
            version: .v2, vrid: 7, priority: 100, addresses: [ip("10.0.0.100")], advertIntervalSeconds: 1
        ).encodeIPv4Packet(source: v4("10.0.0.1"))
        func ipError(_ bytes: [UInt8]) -> VRRPDecodeError? {
            do { _ = try decodeIPv4Packet(bytes); return nil } catch { return error }
        }
        var seen: [VRRPDecodeError: Bool] = [:]
        let cases: [(VRRPDecodeError, VRRPDecodeError?)] = [
            (.truncated, vrrpError(Array(valid.prefix(5)))),
            (.badVersion, vrrpError(mutated { $0[0] = 0x41 })),
            (.badType, vrrpError(mutated { $0[0] = 0x22 })),
            (.badAuthType, vrrpError(mutated { $0[4] = 3 })),
            (.addressCountMismatch, vrrpError(mutated { $0[3] = 2 })),
            (.lengthMismatch, vrrpError(valid + [0])),
            (.badChecksum, vrrpError(mutated { $0[9] ^= 0x01 })),
            (.badIPHeader, ipError(Array(packet.prefix(0)) + [0x65] + Array(packet.dropFirst()))),
            (.ipTotalLengthMismatch, ipError(packet + Array(repeating: 0, count: 30))),
            (.notVRRPProtocol, ipError(Array(packet.prefix(9)) + [17] + Array(packet.dropFirst(10)))),
        ]
        for (expected, actual) in cases {
            #expect(actual == expected)
            seen[expected] = true
        }
        #expect(seen.count == VRRPDecodeError.allCases.count)
        #expect(Set(VRRPDecodeError.allCases.map(\.counterName)).count == VRRPDecodeError.allCases.count)
        // Short Ethernet frames are padded to 46 bytes of payload; that padding is tolerated.
        #expect(try decodeIPv4Packet(packet + Array(repeating: 0, count: 46 - packet.count)).advert.vrid == 7)
        #expect(ipError(Array(packet.dropLast())) == .truncated)
    }

    @Test func v2OverIPv6HasNoAuthTrailerAndAPseudoHeaderChecksum() throws {
        let endpoints = VRRPEndpoints.ipv6(source: v6("fe80::1"), destination: .vrrpMulticastGroup)
        let advert = VRRPAdvert(version: .v2, vrid: 9, priority: 50, addresses: [ip("fe80::9")], advertIntervalSeconds: 2)
        let bytes = advert.encode(endpoints: endpoints)
        #expect(bytes.count == 8 + 16)
        #expect(try VRRPAdvert.decode(bytes, endpoints: endpoints) == advert)
        let other = VRRPEndpoints.ipv6(source: v6("fe80::2"), destination: .vrrpMulticastGroup)
        #expect(throws: VRRPDecodeError.badChecksum) { try VRRPAdvert.decode(bytes, endpoints: other) }
    }

    /// encode∘decode and decode∘encode are identities over randomly generated adverts in
    /// every version/family/checksum combination; every single-bit flip is detected; and no
    /// input of random bytes makes a decoder trap.
    @Test func randomizedRoundTripProperty() throws {
        var rng = SeededRandom(seed: 0x5652_5250)
        for _ in 0..<2_000 {
            let family: AddressFamily = Bool.random(using: &rng) ? .ipv4 : .ipv6
            let version: VRRPVersion = family == .ipv4 && Bool.random(using: &rng) ? .v2 : (Bool.random(using: &rng) ? .v3 : .v2)
            let count = Int.random(in: 0...(family == .ipv4 ? 20 : 8), using: &rng)
            let addresses: [IPAddress] = (0..<count).map { _ in
                family == .ipv4
                    ? .v4(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)))
                    : .v6(IPv6Address(high: rng.next(), low: rng.next()))
            }
            let endpoints: VRRPEndpoints = family == .ipv4
                ? .ipv4(source: IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)), destination: .vrrpMulticastGroup)
                : .ipv6(source: IPv6Address(high: rng.next(), low: rng.next()), destination: .vrrpMulticastGroup)
            let asV2 = Bool.random(using: &rng)
            var advert = VRRPAdvert(
                version: version, vrid: UInt8.random(in: 0...255, using: &rng),
                priority: UInt8.random(in: 0...255, using: &rng), addresses: addresses)
            if version == .v2 {
                advert.authType = VRRPAuthType.allCases.randomElement(using: &rng)!
                advert.advertIntervalSeconds = UInt8.random(in: 0...255, using: &rng)
                if family == .ipv4 { advert.authData = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            } else {
                advert.maxAdvertIntervalCentiseconds = UInt16.random(in: 0...4095, using: &rng)
                advert.reserved = UInt8.random(in: 0...15, using: &rng)
            }
            let bytes = advert.encode(endpoints: endpoints, v3ChecksumAsV2: asV2)
            let decoded = try VRRPAdvert.decode(bytes, endpoints: endpoints, v3ChecksumAsV2: asV2)
            #expect(decoded == advert)
            #expect(decoded.encode(endpoints: endpoints, v3ChecksumAsV2: asV2) == bytes)
            if case .ipv4(let source, let destination) = endpoints {
                let packet = advert.encodeIPv4Packet(source: source, destination: destination, v3ChecksumAsV2: asV2)
                #expect(try decodeIPv4Packet(packet, v3ChecksumAsV2: asV2).advert == advert)
            } else if case .ipv6(let source, let destination) = endpoints {
                #expect(try decodeIPv6Packet(advert.encodeIPv6Packet(source: source, destination: destination)).advert == advert)
            }
            let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(throws: VRRPDecodeError.self) { try VRRPAdvert.decode(flipped, endpoints: endpoints, v3ChecksumAsV2: asV2) }
        }
        for _ in 0..<20_000 {
            let junk = (0..<Int.random(in: 0...96, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? decodeIPv4Packet(junk)
            _ = try? decodeIPv6Packet(junk)
            _ = try? VRRPAdvert.decode(junk, endpoints: endpoints4)
        }
    }

    @Test func everyPrefixOfAValidPacketIsRejected() {
        let packet = VRRPAdvert(
            version: .v3, vrid: 1, priority: 100, addresses: [ip("10.0.0.1"), ip("10.0.0.2")],
            maxAdvertIntervalCentiseconds: 100
        ).encodeIPv4Packet(source: v4("10.0.0.9"))
        for length in 0..<packet.count where length != 46 {
            #expect(throws: VRRPDecodeError.self) { try decodeIPv4Packet(Array(packet.prefix(length))) }
        }
    }
}
