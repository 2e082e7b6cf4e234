import Addressing

/// How a reply datagram reads to the check that sent the request.
public enum DatagramVerdict: Sendable, Hashable {
    case pass
    case fail(String)
    /// Not an answer to this request (another id, a query echoed back): keep waiting.
    case notOurs
}

/// keepalived's UDP_CHECK (check_udp.c): send `payload`; without `require_reply` no ICMP
/// error within connect_timeout is a pass; with it a reply must come, its length within
/// min...max_reply_length and its first bytes equal to the reply data where the mask is 0.
public struct UDPCheckSpec: Sendable, Hashable {
    public var payload: [UInt8]
    public var requireReply: Bool
    public var replyData: [UInt8]
    public var replyMask: [UInt8]
    public var minReplyLength: Int
    public var maxReplyLength: Int

    public init(payload: [UInt8] = [], requireReply: Bool = false, replyData: [UInt8] = [], replyMask: [UInt8] = [],
                minReplyLength: Int = 0, maxReplyLength: Int = 255) {
        self.payload = payload
        self.requireReply = requireReply
        self.replyData = replyData
        self.replyMask = replyMask
        self.minReplyLength = minReplyLength
        self.maxReplyLength = maxReplyLength
    }

    public var timeoutPasses: Bool { !requireReply }

    public func judge(_ reply: ArraySlice<UInt8>) -> DatagramVerdict {
        guard requireReply else { return .pass }
        guard reply.count >= minReplyLength, reply.count <= maxReplyLength else {
            return .fail("reply of \(reply.count) bytes outside \(minReplyLength)...\(maxReplyLength)")
        }
        for i in 0..<min(reply.count, replyData.count) {
            let mask = i < replyMask.count ? ~replyMask[i] : 0xFF
            if (reply[reply.startIndex + i] ^ replyData[i]) & mask != 0 { return .fail("reply data mismatch") }
        }
        return .pass
    }
}

/// keepalived's DNS_CHECK (check_dns.c): a recursive query for `name` of `type` over UDP;
/// an answer with this id and the QR bit is a pass when its rcode is NOERROR.
public struct DNSQuery: Sendable, Hashable {
    public static let types: [String: UInt16] = ["A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "RRSIG": 46, "DNSKEY": 48]
    public var name: String
    public var type: UInt16

    public init(name: String = ".", type: UInt16 = 1) {
        self.name = name
        self.type = type
    }

    public func message(id: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") where !label.isEmpty {
            let utf8 = Array(label.utf8.prefix(63))
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return bytes
    }

    public static func judge(_ reply: ArraySlice<UInt8>, id: UInt16) -> DatagramVerdict {
        let r = Array(reply)
        guard r.count >= 12 else { return .notOurs }
        guard UInt16(r[0]) << 8 | UInt16(r[1]) == id, r[2] & 0x80 != 0 else { return .notOurs }
        let rcode = r[3] & 0x0F
        return rcode == 0 ? .pass : .fail("read error occurred. (rcode = \(rcode))")
    }
}

/// PING_CHECK's ICMP / ICMPv6 echo (check_ping.c): an echo request with the checker's id and
/// sequence; the matching echo reply is a pass.
public enum ICMPEcho {
    public static func request(ipv6: Bool, id: UInt16, sequence: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [ipv6 ? 128 : 8, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
        bytes += Array("vigil PING_CHECK".utf8)
        if !ipv6 {
            // ICMPv6's checksum is the kernel's on a raw socket; ICMP's is ours.
            let sum = InternetChecksum.of(bytes)
            bytes[2] = UInt8(sum >> 8)
            bytes[3] = UInt8(sum & 0xFF)
        }
        return bytes
    }

    /// `packet` as a raw socket gives it: with the IPv4 header for ICMP, without for ICMPv6.
    public static func judge(_ packet: ArraySlice<UInt8>, ipv6: Bool, id: UInt16, sequence: UInt16) -> DatagramVerdict {
        var icmp = packet
        if !ipv6 {
            guard let first = icmp.first, first >> 4 == 4 else { return .notOurs }
            let headerLength = Int(first & 0x0F) * 4
            guard icmp.count >= headerLength + 8 else { return .notOurs }
            icmp = icmp.dropFirst(headerLength)
        }
        let b = Array(icmp)
        guard b.count >= 8, b[0] == (ipv6 ? 129 : 0),
              UInt16(b[4]) << 8 | UInt16(b[5]) == id, UInt16(b[6]) << 8 | UInt16(b[7]) == sequence else { return .notOurs }
        return .pass
    }
}
