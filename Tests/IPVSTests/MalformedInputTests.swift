import Foundation
import Testing
import VigilTestSupport
import Addressing
@testable import IPVS

/// A NEW_SERVICE message for `tcp80` whose SERVICE nest is built from `inner` by hand.
private func serviceMessage(_ inner: [UInt8]) -> [UInt8] {
    var w = AttributeWriter()
    w.put(IPVSAttr.cmdService, inner)
    return genericMessage(type: familyID, flags: 0, seq: 1, pid: 0, command: 1, version: 1, attributes: w.bytes)
}

/// The valid SERVICE fields with one attribute replaced (or dropped when `payload` is nil).
private func serviceFields(replacing type: UInt16, with payload: [UInt8]?) -> [UInt8] {
    var fields: [(UInt16, [UInt8])] = [
        (IPVSAttr.svcAF, host16(2)), (IPVSAttr.svcProtocol, host16(6)),
        (IPVSAttr.svcAddr, vip.nfInetAddr), (IPVSAttr.svcPort, [0, 80]),
        (IPVSAttr.svcSchedName, Array("wlc\0".utf8)), (IPVSAttr.svcFlags, host32(0) + host32(~0)),
        (IPVSAttr.svcTimeout, host32(0)), (IPVSAttr.svcNetmask, host32(~0)),
    ]
    if let i = fields.firstIndex(where: { $0.0 == type }) {
        if let payload { fields[i].1 = payload } else { fields.remove(at: i) }
    }
    var w = AttributeWriter()
    for (t, p) in fields { w.put(t, p) }
    return w.bytes
}

@Suite struct MalformedInputTests {
    @Test func framing() throws {
        let valid = try encode(.flush)
        #expect(throws: IPVSDecodeError.truncatedMessageHeader(offset: 0)) {
            try IPVSNetlink.decode(Array(valid.prefix(10)), ipvsFamilyID: familyID)
        }
        var short = valid
        short[0] = 8  // nlmsg_len below the header size
        #expect(throws: IPVSDecodeError.badMessageLength(offset: 0, length: 8)) {
            try IPVSNetlink.decode(short, ipvsFamilyID: familyID)
        }
        var long = valid
        long[0] = 200  // nlmsg_len past the end of the buffer
        #expect(throws: IPVSDecodeError.badMessageLength(offset: 0, length: 200)) {
            try IPVSNetlink.decode(long, ipvsFamilyID: familyID)
        }
        // A second message cut inside its header.
        #expect(throws: IPVSDecodeError.truncatedMessageHeader(offset: 20)) {
            try IPVSNetlink.decode(valid + [1, 2, 3], ipvsFamilyID: familyID)
        }
        // Huge nlmsg_len must not overflow the bounds check.
        var huge = valid
        huge[0...3] = [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: IPVSDecodeError.badMessageLength(offset: 0, length: 0xFFFF_FFFF)) {
            try IPVSNetlink.decode(huge, ipvsFamilyID: familyID)
        }
    }

    @Test func truncatedPayloads() throws {
        // A genl message without its 4-byte genlmsghdr.
        let noGenl = host32(18) + host16(familyID) + host16(0) + host32(1) + host32(0) + [1, 1]
        #expect(throws: IPVSDecodeError.truncatedPayload(offset: 16, needed: 4, available: 2)) {
            try IPVSNetlink.decode(noGenl + [0, 0], ipvsFamilyID: familyID)
        }
        // NLMSG_ERROR without its error code.
        let error = host32(18) + host16(NetlinkConstants.typeError) + host16(0) + host32(1) + host32(0) + [0xEF, 0xFF]
        #expect(throws: IPVSDecodeError.truncatedPayload(offset: 16, needed: 4, available: 2)) {
            try IPVSNetlink.decode(error + [0, 0], ipvsFamilyID: familyID)
        }
    }

    @Test func attributeBounds() throws {
        var message = serviceMessage(serviceFields(replacing: 0, with: nil))
        // Outer SERVICE nest claims 8 bytes more than the message holds.
        let outer = 20
        message[outer] &+= 8
        #expect(throws: IPVSDecodeError.badAttributeLength(offset: 20, length: UInt16(message[outer]))) {
            try decodeOne(message)
        }
        // nla_len 2: below the attribute header.
        var tiny = serviceMessage(serviceFields(replacing: 0, with: nil))
        tiny[24] = 2
        tiny[25] = 0
        #expect(throws: IPVSDecodeError.badAttributeLength(offset: 24, length: 2)) { try decodeOne(tiny) }
        // Bad nesting: the first inner attribute runs past its nest, though not past the message.
        let inner = serviceFields(replacing: 0, with: nil)
        var nestedOverflow = serviceMessage(inner) + hex(["08 00 05 00 01 00 00 00"])
        nestedOverflow[0] &+= 8  // the message grows, the nest does not
        nestedOverflow[24] = UInt8(inner.count + 4)
        #expect(throws: IPVSDecodeError.badAttributeLength(offset: 24, length: UInt16(inner.count + 4))) {
            try decodeOne(nestedOverflow)
        }
        // 2 stray bytes after the last attribute of a nest.
        #expect(throws: IPVSDecodeError.truncatedAttribute(offset: 24 + inner.count)) {
            try decodeOne(serviceMessage(inner + [0, 0]))
        }
    }

    @Test func wrongSizes() throws {
        #expect(throws: IPVSDecodeError.attributeSize(attribute: "IPVS_SVC_ATTR_AF", expected: 2, actual: 4)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcAF, with: host32(2))))
        }
        #expect(throws: IPVSDecodeError.attributeSize(attribute: "IPVS_SVC_ATTR_PORT", expected: 2, actual: 1)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcPort, with: [80])))
        }
        #expect(throws: IPVSDecodeError.attributeSize(attribute: "IPVS_SVC_ATTR_TIMEOUT", expected: 4, actual: 2)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcTimeout, with: host16(1))))
        }
        #expect(throws: IPVSDecodeError.attributeSize(attribute: "IPVS_SVC_ATTR_FLAGS", expected: 8, actual: 4)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcFlags, with: host32(1))))
        }
        #expect(throws: IPVSDecodeError.attributeSize(attribute: "IPVS_SVC_ATTR_ADDR", expected: 4, actual: 8)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcAddr, with: [10, 0, 0, 1, 0, 0, 0, 0])))
        }
        // IPv4 address as 4 bytes is accepted (some clients send it that way).
        #expect(try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcAddr, with: [10, 0, 0, 1])))
            == .service(IPVSService(tcp80)))
    }

    @Test func missingAndInvalidValues() throws {
        #expect(throws: IPVSDecodeError.missingAttribute("IPVS_SVC_ATTR_SCHED_NAME")) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcSchedName, with: nil)))
        }
        #expect(throws: IPVSDecodeError.missingAttribute("IPVS_SVC_ATTR_PORT")) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcPort, with: nil)))
        }
        #expect(throws: IPVSDecodeError.invalidValue(attribute: "IPVS_SVC_ATTR_PROTOCOL", value: 99)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcProtocol, with: host16(99))))
        }
        #expect(throws: IPVSDecodeError.invalidValue(attribute: "IPVS_SVC_ATTR_AF", value: 7)) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcAF, with: host16(7))))
        }
        #expect(throws: IPVSDecodeError.invalidString(attribute: "IPVS_SVC_ATTR_SCHED_NAME")) {
            try decodeOne(serviceMessage(serviceFields(replacing: IPVSAttr.svcSchedName, with: [0xFF, 0xFE, 0])))
        }
        let noService = genericMessage(type: familyID, flags: 0, seq: 1, pid: 0, command: 1, version: 1, attributes: [])
        #expect(throws: IPVSDecodeError.missingAttribute("IPVS_CMD_ATTR_SERVICE")) { try decodeOne(noService) }

        var badMethod = KernelReply.destination(IPVSDestination(rs21))
        let fwd = try #require(badMethod.indices.first { i in
            i + 8 <= badMethod.count && badMethod[i..<i + 4] == [8, 0, 3, 0][...]
        })
        badMethod[fwd + 4] = 7
        #expect(throws: IPVSDecodeError.invalidValue(attribute: "IPVS_DEST_ATTR_FWD_METHOD", value: 7)) {
            try decodeOne(badMethod)
        }
        var badTunnel = KernelReply.destination(IPVSDestination(rs21, forwarding: .tunnel(.ipip)))
        let tun = try #require(badTunnel.indices.first { i in
            i + 8 <= badTunnel.count && badTunnel[i..<i + 4] == [5, 0, 13, 0][...]
        })
        badTunnel[tun + 4] = 9
        #expect(throws: IPVSDecodeError.invalidValue(attribute: "IPVS_DEST_ATTR_TUN_TYPE", value: 9)) {
            try decodeOne(badTunnel)
        }
    }

    /// Seeded mutation fuzzing: every mutant of every valid message either decodes or throws
    /// IPVSDecodeError. A trap would kill the test process, so finishing is the assertion.
    @Test func fuzzMutations() throws {
        let corpus: [[UInt8]] = try RoundTripTests.services.flatMap { s in
            [try encode(.addService(s)), KernelReply.service(s), try encode(.deleteService(s.key))]
        } + RoundTripTests.destinations.flatMap { d in
            [try encode(.addDestination(d, to: tcp80)), KernelReply.destination(d),
             try encode(.deleteDestination(d.key, from: .fwmark(2, family: .ipv6)))]
        } + [
            KernelReply.done(), KernelReply.ack(), KernelReply.ack(errno: 2),
            try IPVSNetlink.encodeGetFamily(seq: 1),
            try IPVSNetlink.encode(.dumpDestinations(tcp80), familyID: familyID, seq: 1),
            hex(["2c 00 00 00 02 00 00 03 07 00 00 00 00 00 00 00 ea ff ff ff",
                 "68 00 00 00 23 00 05 00 07 00 00 00 00 00 00 00 08 00 01 00 62 61 64 00"]),
            hex(["24 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00 01 02 00 00",
                 "09 00 02 00 49 50 56 53 00 00 00 00 06 00 01 00 23 00 00 00"]),
        ]
        var rng = SeededRandom(seed: 0xF022)
        var decoded = 0, rejected = 0
        // IPVS_FUZZ_ITERATIONS raises the count for a long run (e.g. `swift test -c release`).
        let iterations = ProcessInfo.processInfo.environment["IPVS_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 100_000
        for _ in 0..<iterations {
            var bytes = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
            if Bool.random(using: &rng) { bytes += corpus[Int.random(in: 0..<corpus.count, using: &rng)] }
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutate(&bytes, &rng)
            }
            do {
                _ = try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID, destinationFamilyFallback: .ipv4)
                decoded += 1
            } catch {
                rejected += 1
            }
        }
        // Both outcomes must actually occur, or the mutations are too weak or too strong.
        #expect(decoded > 1000 && rejected > 1000, "decoded \(decoded), rejected \(rejected)")
    }

    private func mutate(_ bytes: inout [UInt8], _ rng: inout SeededRandom) {
        guard !bytes.isEmpty else { bytes = [UInt8.random(in: 0...255, using: &rng)]; return }
        let i = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)              // random byte
        case 1: bytes[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)          // bit flip
        case 2: bytes.removeLast(Int.random(in: 1...min(8, bytes.count), using: &rng)) // truncate
        case 3: bytes.insert(contentsOf: (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                    UInt8.random(in: 0...255, using: &rng) }, at: i)            // insert junk
        case 4:                                                                 // lie in a length field
            let aligned = i & ~3
            if aligned + 1 < bytes.count {
                let value = UInt16.random(in: 0...UInt16.max, using: &rng)
                bytes[aligned] = UInt8(value & 0xFF)
                bytes[aligned + 1] = UInt8(value >> 8)
            }
        case 5: bytes[i] = [0, 1, 3, 4, 5, 0xFF].randomElement(using: &rng)!   // small/edge values
        default: bytes.remove(at: i)                                            // delete a byte
        }
    }
}
