import Testing
@testable import VRRP

@Suite struct AddressTests {
    @Test func ipv4ParsesAndPrints() {
        #expect(v4("10.0.0.91").value == 0x0A00_005B)
        #expect(v4("224.0.0.18") == IPv4Address.vrrpMulticastGroup)
        #expect(v4("255.255.255.255").description == "255.255.255.255")
        #expect(IPv4Address(10, 1, 2, 3).bytes == [10, 1, 2, 3])
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", " 1.2.3.4", "1.2.3.-4"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        #expect(v4("10.0.0.1") < v4("10.0.0.2"))
        #expect(v4("9.255.255.255") < v4("10.0.0.0"))
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("fe80::200:5eff:fe00:22d", "fe80::200:5eff:fe00:22d"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("2001:db8::0:1", "2001:db8::1"),
        ("ff02::12", "ff02::12"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("::ffff:10.1.2.3", "::ffff:a01:203"), ("2001::abcd:a", "2001::abcd:a"), ("1::", "1::"),
    ])
    func ipv6ParsesAndPrintsCanonically(input: String, canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(address.description) == address)
        #expect(IPv6Address(bytes: address.bytes) == address)
    }

    @Test func ipv6RejectsMalformedText() {
        for bad in ["", ":", ":::", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1",
                    "::1.2.3", "fe80::1%eth0", "1:2:3:4:5:6:7::8:9"] {
            #expect(IPv6Address(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv6OrderIsNumeric() {
        #expect(v6("fe80::1") < v6("fe80::2"))
        #expect(v6("fe80::ffff") < v6("fe80::1:0"))
        #expect(v6("::ffff") < v6("1::"))
        #expect(v6("fe80::1").isLinkLocal && !v6("2001::1").isLinkLocal && v6("ff02::12").isMulticast)
    }

    @Test func inetAddressDispatchesOnFamily() {
        #expect(ip("10.0.0.1").family == .ipv4)
        #expect(ip("fe80::1").family == .ipv6)
        #expect(InetAddress("10.0.0") == nil)
        #expect(ip("224.0.0.18").isMulticast)
    }
}
