import Testing
import VigilTestSupport
import Addressing
@testable import IPVS

/// Random model values covering every field and variant, normalised the way the codec
/// normalises (no empty PE name), so decode(encode(x)) == x must hold exactly.
struct Generator {
    var rng: SeededRandom

    mutating func int<T: FixedWidthInteger>(_ type: T.Type = T.self) -> T { T.random(in: T.min...T.max, using: &rng) }
    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &rng)] }
    mutating func bool() -> Bool { Bool.random(using: &rng) }

    mutating func address(_ family: AddressFamily) -> IPAddress {
        IPAddress(bytes: (0..<family.addressLength).map { _ in int(UInt8.self) })!
    }

    mutating func name(maxLength: Int = 15) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789_-")
        return String((0..<Int.random(in: 1...maxLength, using: &rng)).map { _ in pick(letters) })
    }

    mutating func serviceKey() -> IPVSServiceKey {
        let family = pick(AddressFamily.allCases)
        return bool()
            ? .fwmark(int(), family: family)
            : .address(pick(IPVSProtocol.allCases), address(family), port: int())
    }

    mutating func service() -> IPVSService {
        let key = serviceKey()
        return IPVSService(
            key, scheduler: name(), flags: IPVSServiceFlags(rawValue: int()), timeout: int(),
            netmask: int(), persistenceEngine: bool() ? name() : nil)
    }

    mutating func forwarding() -> IPVSForwardingMethod {
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: .masquerade
        case 1: .localNode
        case 2: .directRoute
        case 3: .bypass
        case 4: .tunnel(.ipip)
        case 5: .tunnel(.gue(port: int(), flags: int()))
        default: .tunnel(.gre(flags: int()))
        }
    }

    mutating func destination() -> IPVSDestination {
        IPVSDestination(
            IPVSDestinationKey(address(pick(AddressFamily.allCases)), port: int()),
            forwarding: forwarding(), weight: int(), upperThreshold: int(), lowerThreshold: int())
    }
}

@Suite struct RoundTripTests {
    static let services: [IPVSService] = [
        IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360),
        IPVSService(tcp80, scheduler: "sh", flags: [.shFallback, .shPort], netmask: 0xFFFF_FF00),
        IPVSService(.fwmark(1, family: .ipv4), scheduler: "wlc"),
        IPVSService(.fwmark(7, family: .ipv6), scheduler: "rr", flags: .persistent, timeout: 60, netmask: 64),
        IPVSService(.address(.udp, IPAddress("2001:db8::1")!, port: 53), scheduler: "rr"),
        IPVSService(.address(.sctp, IPAddress("10.1.2.3")!, port: 9000), scheduler: "mh",
                    flags: [.persistent, .onePacket], timeout: 300, persistenceEngine: "sip"),
    ]

    static let destinations: [IPVSDestination] = [
        IPVSDestination(rs21, forwarding: .directRoute, weight: 2),
        IPVSDestination(rs22, forwarding: .masquerade, weight: 0, upperThreshold: 100, lowerThreshold: 10),
        IPVSDestination(IPVSDestinationKey(IPAddress("fe80::1")!, port: 443), forwarding: .tunnel(.ipip)),
        IPVSDestination(rs23, forwarding: .tunnel(.gue(port: 6080, flags: 2)), weight: Int32.max),
        IPVSDestination(rs23, forwarding: .tunnel(.gre(flags: 1))),
        IPVSDestination(rs21, forwarding: .localNode),
        IPVSDestination(rs21, forwarding: .bypass),
    ]

    /// Our NEW_SERVICE request and a kernel-style dump reply both decode to the service.
    @Test(arguments: services)
    func service(_ service: IPVSService) throws {
        #expect(try decodeOne(encode(.addService(service))) == .service(service))
        #expect(try decodeOne(encode(.editService(service))) == .service(service))
        guard case .service(let dumped) = try decodeOne(KernelReply.service(service)) else {
            Issue.record("no service")
            return
        }
        #expect(dumped.hasSameSettings(as: service) && dumped.key == service.key)
    }

    @Test(arguments: destinations)
    func destination(_ dest: IPVSDestination) throws {
        #expect(try decodeOne(encode(.addDestination(dest, to: tcp80))) == .destination(dest, service: tcp80))
        #expect(try decodeOne(encode(.editDestination(dest, in: .fwmark(3, family: .ipv6))))
            == .destination(dest, service: .fwmark(3, family: .ipv6)))
        #expect(try decodeOne(KernelReply.destination(dest)) == .destination(dest, service: nil))
    }

    /// Kernels before 4.0 omit ADDR_FAMILY from dest dumps: the caller's fallback fills in.
    @Test func destinationWithoutFamily() throws {
        let dest = IPVSDestination(rs21, forwarding: .directRoute, weight: 2)
        let reply = KernelReply.destination(dest, withFamily: false)
        #expect(throws: IPVSDecodeError.missingAttribute("IPVS_DEST_ATTR_ADDR_FAMILY")) { try decodeOne(reply) }
        #expect(try decodeOne(reply, fallback: .ipv4) == .destination(dest, service: nil))
    }

    /// A whole dump in one buffer: several services, then DONE.
    @Test func multiMessageBuffer() throws {
        let buffer = Self.services.flatMap { KernelReply.service($0) } + KernelReply.done()
        let messages = try IPVSNetlink.decode(buffer, ipvsFamilyID: familyID)
        #expect(messages.count == Self.services.count + 1)
        #expect(messages.last?.payload == .done(errno: 0))
        #expect(try IPVSNetlink.decode(KernelReply.done(errno: 12), ipvsFamilyID: familyID).first?.payload == .done(errno: 12))
    }

    @Test func propertyServices() throws {
        var gen = Generator(rng: SeededRandom(seed: 0x1F5))
        for _ in 0..<2000 {
            let s = gen.service()
            #expect(try decodeOne(encode(.addService(s))) == .service(s), "seed state \(gen.rng.state)")
        }
    }

    @Test func propertyDestinations() throws {
        var gen = Generator(rng: SeededRandom(seed: 0xDE57))
        for _ in 0..<2000 {
            let d = gen.destination()
            let k = gen.serviceKey()
            #expect(try decodeOne(encode(.addDestination(d, to: k))) == .destination(d, service: k))
            #expect(try decodeOne(KernelReply.destination(d)) == .destination(d, service: nil))
        }
    }
}
