import Addressing
import Testing
import VRRP
import VigilSystem

/// keepalived 2.2.7's AH adverts, byte for byte: a frame it sent (auth_pass secret1, VRID 52,
/// priority 150, 10.9.0.1 → 224.0.0.18, sequence 1, IP id 1), captured with tcpdump -X.
@Suite struct IPsecAHTests {
    static let keepalivedFrame: [UInt8] = [
        0x45, 0xc0, 0x00, 0x40, 0x00, 0x01, 0x00, 0x00, 0xff, 0x33, 0xd0, 0xad, 0x0a, 0x09, 0x00, 0x01,
        0xe0, 0x00, 0x00, 0x12, 0x70, 0x04, 0x00, 0x00, 0x0a, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
        0xdb, 0x06, 0x3a, 0xbc, 0xa2, 0x9f, 0xcd, 0xfc, 0xaf, 0x3d, 0x29, 0x37, 0x21, 0x34, 0x96, 0x01,
        0x02, 0x01, 0x3c, 0x5b, 0x0a, 0x09, 0x00, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]
    static func mac(_ password: String) -> ([UInt8]) -> [UInt8] {
        let key = IPsecAH.key(password)
        return { Digest.hmacMD5(key: key, $0) }
    }

    @Test func keepalivedsFrameVerifies() throws {
        let packet = try IPsecAH.decodeIPv4(Self.keepalivedFrame)
        #expect(packet.spi == 0x0a09_0001 && packet.sequence == 1)
        #expect(packet.ip.advert.vrid == 52 && packet.ip.advert.priority == 150 && packet.ip.advert.authType == .ipsecAH)
        #expect(Array(Self.mac("secret1")(packet.icvInput).prefix(12)) == packet.icv, "the ICV keepalived computed")
        #expect(Array(Self.mac("secret2")(packet.icvInput).prefix(12)) != packet.icv)
    }

    @Test func weBuildKeepalivedsFrame() throws {
        let advert = try IPsecAH.decodeIPv4(Self.keepalivedFrame).ip.advert
        let payload = advert.encode(endpoints: .ipv4(source: IPv4Address(10, 9, 0, 1), destination: .vrrpMulticastGroup))
        let frame = IPsecAH.encodeIPv4(advert: payload, source: IPv4Address(10, 9, 0, 1), destination: .vrrpMulticastGroup,
                                       ttl: 255, identification: 1, sequence: 1, hmac: Self.mac("secret1"))
        // keepalived leaves the IP checksum to the kernel; everything else is equal.
        var expected = Self.keepalivedFrame
        expected[10] = 0; expected[11] = 0
        #expect(frame == expected)
    }

    @Test func anAHHeaderForAnotherProtocolIsNotAnAdvert() {
        var frame = Self.keepalivedFrame
        frame[20] = 6
        #expect(throws: VRRPDecodeError.notVRRPProtocol) { try IPsecAH.decodeIPv4(frame) }
        #expect(throws: VRRPDecodeError.truncated) { try IPsecAH.decodeIPv4(Array(frame.prefix(30))) }
    }

    @Test func theSequenceCounterAsKeepalivedKeepsIt() {
        var sequence = AHSequence()
        let first = sequence.nextToSend(), second = sequence.nextToSend()
        #expect(first == 1 && second == 2)
        let replay = sequence.accept(2, asBackup: true)
        #expect(!replay, "a number already seen is a replay")
        let fresh = sequence.accept(10, asBackup: true)
        #expect(fresh && sequence.counter == 10)
        let next = sequence.nextToSend()
        #expect(next == 11, "a new master continues above the old one")
        sequence.heardLowerPriority(40)
        let synced = sequence.nextToSend()
        #expect(synced == 42)
    }
}

/// Malformed AH frames never trap the decoder: every truncation and every single-byte change
/// of keepalived's frame, and random frames, either decode or throw.
@Suite struct IPsecAHMalformedTests {
    @Test func truncationsMutationsAndNoiseOnlyThrow() {
        let frame = IPsecAHTests.keepalivedFrame
        var decoded = 0, refused = 0
        func attempt(_ bytes: [UInt8]) {
            if (try? IPsecAH.decodeIPv4(bytes)) != nil { decoded += 1 } else { refused += 1 }
        }
        for length in 0...frame.count { attempt(Array(frame.prefix(length))) }
        for index in frame.indices {
            for value: UInt8 in [0x00, 0x01, 0x0f, 0x45, 0x4f, 0x70, 0x7f, 0x80, 0xff] {
                var mutated = frame
                mutated[index] = value
                attempt(mutated)
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...120, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count > 20 && Bool.random(using: &generator) { bytes[0] = 0x45; bytes[9] = 51 }
            attempt(bytes)
        }
        #expect(decoded + refused == frame.count + 1 + frame.count * 9 + 5_000)
        #expect(decoded > 0 && refused > 0)
    }
}
