import Testing
import Addressing

private func v4(_ text: String) -> IPv4Address { IPv4Address(text)! }
private func v6(_ text: String) -> IPv6Address { IPv6Address(text)! }
private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

@Suite struct AddressTests {
    @Test func ipv4ParsesAndPrints() {
        #expect(v4("10.0.0.91").value == 0x0A00_005B)
        #expect(v4("255.255.255.255").description == "255.255.255.255")
        #expect(IPv4Address(10, 1, 2, 3).bytes == [10, 1, 2, 3])
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", " 1.2.3.4", "1.2.3.-4", "1.2.3.4."] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        #expect(v4("10.0.0.1") < v4("10.0.0.2"))
        #expect(v4("9.255.255.255") < v4("10.0.0.0"))
        #expect(v4("224.0.0.18").isMulticast && !v4("10.0.0.1").isMulticast)
    }

    /// What glibc's inet_ntop prints, which is RFC 5952's form except for IPv4-mapped and
    /// IPv4-compatible addresses (dotted tail).
    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("fe80::", "fe80::"), ("fe80::200:5eff:fe00:22d", "fe80::200:5eff:fe00:22d"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("2001:db8::0:1", "2001:db8::1"),
        ("ff02::12", "ff02::12"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("2001:db8:0:1:0:0:1:1", "2001:db8:0:1::1:1"),   // a single zero group is not compressed
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),          // the longest run wins
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),              // the first of equal runs wins
        ("::ffff:10.1.2.3", "::ffff:10.1.2.3"),           // IPv4-mapped
        ("::192.0.2.1", "::192.0.2.1"),                   // IPv4-compatible
        ("2001::abcd:a", "2001::abcd:a"), ("1::", "1::"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func ipv6ParsesAndPrintsAsGlibc(input: String, canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(address.description) == address)
        #expect(IPv6Address(bytes: address.bytes) == address)
    }

    @Test func ipv6RejectsMalformedText() {
        for bad in ["", ":", ":::", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1",
                    "::1.2.3", "fe80::1%eth0", "1:2:3:4:5:6:7::8:9", "1:2:3:4:5:6:7::8", " ::1", ":1::", "1::2:"] {
            #expect(IPv6Address(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv6OrderIsNumeric() {
        #expect(v6("fe80::1") < v6("fe80::2"))
        #expect(v6("fe80::ffff") < v6("fe80::1:0"))
        #expect(v6("::ffff") < v6("1::"))
        #expect(v6("fe80::1").isLinkLocal && !v6("2001::1").isLinkLocal && v6("ff02::12").isMulticast)
    }

    @Test func eitherFamilyDispatchesAndOrdersIPv4First() {
        #expect(ip("10.0.0.1").family == .ipv4)
        #expect(ip("fe80::1").family == .ipv6)
        #expect(IPAddress("10.0.0") == nil)
        #expect(ip("224.0.0.18").isMulticast)
        #expect(ip("255.255.255.255") < ip("::"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [10, 0, 0, 1]) == .v4(IPv4Address(10, 0, 0, 1)))
        #expect(IPAddress.zero(.ipv6).bytes == Array(repeating: 0, count: 16))
        #expect(AddressFamily(linuxNumber: 10) == .ipv6 && AddressFamily.ipv4.linuxNumber == 2)
    }

    /// The text a parsed address prints is parsed back to the same address, for every byte
    /// pattern class (random bytes, zero runs of each length at each position).
    @Test func everyPrintedAddressParsesBack() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let start = Int.random(in: 0..<8, using: &generator), length = Int.random(in: 0...(8 - start), using: &generator)
            for group in start..<(start + length) { bytes[2 * group] = 0; bytes[2 * group + 1] = 0 }
            let address = IPv6Address(bytes: bytes)
            #expect(IPv6Address(address.description) == address, "\(address)")
            let four = IPv4Address(bytes: bytes.prefix(4))
            #expect(IPv4Address(four.description) == four)
        }
    }

    @Test func prefixesTakeKeepalivedsDefaults() {
        #expect(parsePrefix("10.0.0.1")! == (ip("10.0.0.1"), nil, true))
        #expect(parsePrefix("10.0.0.1/24")! == (ip("10.0.0.1"), 24, true))
        #expect(parsePrefix("10.0.0.1/33")!.lengthValid == false)
        #expect(parsePrefix("2001:db8::1/128")!.1 == 128)
        #expect(parsePrefix("nonsense/8") == nil)
    }
}
