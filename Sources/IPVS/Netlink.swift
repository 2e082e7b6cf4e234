// Netlink framing: numbers from linux/netlink.h, genetlink.h and ip_vs.h, an attribute writer
// and a bounds-checked reader. Everything is plain byte arrays so the codec can be tested
// against golden bytes and fuzzed without a socket.
//
// Netlink integers are in host byte order (only ports, and the IPv4 netmask, are network
// order). The helpers below go through `littleEndian` so they are right on either endianness;
// the golden vectors in the tests are written for little-endian hosts (x86_64, aarch64).

/// Wire constants. Public so an adapter can build its own flag sets or match message types.
public enum NetlinkConstants {
    public static let messageHeaderLength = 16          // sizeof(struct nlmsghdr)
    public static let genericHeaderLength = 4           // GENL_HDRLEN
    public static let attributeHeaderLength = 4         // NLA_HDRLEN

    public static let flagRequest: UInt16 = 0x001       // NLM_F_REQUEST
    public static let flagMulti: UInt16 = 0x002         // NLM_F_MULTI
    public static let flagAck: UInt16 = 0x004           // NLM_F_ACK
    public static let flagDumpInterrupted: UInt16 = 0x010 // NLM_F_DUMP_INTR
    public static let flagDump: UInt16 = 0x300          // NLM_F_ROOT | NLM_F_MATCH
    public static let flagCapped: UInt16 = 0x100        // NLM_F_CAPPED (on NLMSG_ERROR)
    public static let flagAckTLVs: UInt16 = 0x200       // NLM_F_ACK_TLVS (on NLMSG_ERROR)

    public static let typeNoop: UInt16 = 1
    public static let typeError: UInt16 = 2
    public static let typeDone: UInt16 = 3
    public static let typeOverrun: UInt16 = 4

    public static let attributeNested: UInt16 = 0x8000  // NLA_F_NESTED
    public static let attributeNetByteOrder: UInt16 = 0x4000
    static let attributeTypeMask: UInt16 = 0x3FFF

    /// GENL_ID_CTRL: the controller's fixed family id, used to resolve "IPVS".
    public static let controllerFamilyID: UInt16 = 0x10
    static let controllerCommandNewFamily: UInt8 = 1
    static let controllerCommandGetFamily: UInt8 = 3
    static let controllerAttrFamilyID: UInt16 = 1
    static let controllerAttrFamilyName: UInt16 = 2
    static let controllerAttrVersion: UInt16 = 3
    static let controllerAttrMaxAttr: UInt16 = 5
    static let extAckAttrMessage: UInt16 = 1            // NLMSGERR_ATTR_MSG

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }
}

/// `IPVS_CMD_*`.
public enum IPVSCommand: UInt8, Hashable, Sendable, CaseIterable {
    case newService = 1, setService, delService, getService
    case newDest, setDest, delDest, getDest
    case newDaemon, delDaemon, getDaemon
    case setConfig, getConfig
    case setInfo, getInfo
    case zero, flush
}

/// Attribute ids from ip_vs.h. Internal: callers deal in typed values.
enum IPVSAttr {
    static let cmdService: UInt16 = 1
    static let cmdDest: UInt16 = 2

    static let svcAF: UInt16 = 1
    static let svcProtocol: UInt16 = 2
    static let svcAddr: UInt16 = 3
    static let svcPort: UInt16 = 4
    static let svcFwmark: UInt16 = 5
    static let svcSchedName: UInt16 = 6
    static let svcFlags: UInt16 = 7
    static let svcTimeout: UInt16 = 8
    static let svcNetmask: UInt16 = 9
    static let svcStats: UInt16 = 10
    static let svcPEName: UInt16 = 11
    static let svcStats64: UInt16 = 12

    static let destAddr: UInt16 = 1
    static let destPort: UInt16 = 2
    static let destFwdMethod: UInt16 = 3
    static let destWeight: UInt16 = 4
    static let destUThresh: UInt16 = 5
    static let destLThresh: UInt16 = 6
    static let destActiveConns: UInt16 = 7
    static let destInactConns: UInt16 = 8
    static let destPersistConns: UInt16 = 9
    static let destStats: UInt16 = 10
    static let destAddrFamily: UInt16 = 11
    static let destStats64: UInt16 = 12
    static let destTunType: UInt16 = 13
    static let destTunPort: UInt16 = 14
    static let destTunFlags: UInt16 = 15

    // IPVS_STATS_ATTR_*, inside a service's or destination's STATS/STATS64 nest.
    static let statsConns: UInt16 = 1
    static let statsInPackets: UInt16 = 2
    static let statsOutPackets: UInt16 = 3
    static let statsInBytes: UInt16 = 4
    static let statsOutBytes: UInt16 = 5

    static let infoVersion: UInt16 = 1
    static let infoConnTabSize: UInt16 = 2

    static let cmdDaemon: UInt16 = 3
    // IPVS_CMD_ATTR_TIMEOUT_*: top-level attributes of SET_CONFIG and of GET_CONFIG's reply.
    static let cmdTimeoutTCP: UInt16 = 4
    static let cmdTimeoutTCPFin: UInt16 = 5
    static let cmdTimeoutUDP: UInt16 = 6
    static let daemonState: UInt16 = 1
    static let daemonInterface: UInt16 = 2
    static let daemonSyncID: UInt16 = 3
    static let daemonMaxLength: UInt16 = 4
    static let daemonGroup: UInt16 = 5
    static let daemonGroup6: UInt16 = 6
    static let daemonPort: UInt16 = 7
    static let daemonTTL: UInt16 = 8

    /// IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN, including the NUL.
    static let nameMax = 16
}

/// Why a receive buffer could not be decoded. Every malformed input maps to one of these;
/// the decoder never traps, so a hostile or buggy peer cannot crash the daemon.
public enum IPVSDecodeError: Error, Hashable, Sendable {
    /// Fewer than 16 bytes left where a netlink header should start.
    case truncatedMessageHeader(offset: Int)
    /// `nlmsg_len` below the header size or past the end of the buffer.
    case badMessageLength(offset: Int, length: UInt32)
    /// The payload is shorter than its fixed part (genl header, nlmsgerr).
    case truncatedPayload(offset: Int, needed: Int, available: Int)
    /// Fewer than 4 bytes left where an attribute header should start.
    case truncatedAttribute(offset: Int)
    /// `nla_len` below 4 or past the end of the enclosing message or nest.
    case badAttributeLength(offset: Int, length: UInt16)
    /// An integer or fixed-size attribute whose payload has the wrong size.
    case attributeSize(attribute: String, expected: Int, actual: Int)
    case missingAttribute(String)
    case invalidValue(attribute: String, value: UInt64)
    /// A string attribute that is not UTF-8.
    case invalidString(attribute: String)
}

/// Why a request could not be encoded.
public enum IPVSEncodeError: Error, Hashable, Sendable {
    /// Scheduler, persistence-engine or family name longer than the kernel's 15 bytes, or
    /// containing a NUL; the kernel would reject or silently truncate it.
    case invalidName(String)
}

// MARK: - Writing

struct AttributeWriter {
    var bytes: [UInt8] = []

    mutating func put(_ type: UInt16, _ payload: [UInt8]) {
        appendHost16(UInt16(NetlinkConstants.attributeHeaderLength + payload.count))
        appendHost16(type)
        bytes += payload
        pad()
    }

    mutating func u8(_ type: UInt16, _ value: UInt8) { put(type, [value]) }
    mutating func u16(_ type: UInt16, _ value: UInt16) { put(type, host16(value)) }
    mutating func u32(_ type: UInt16, _ value: UInt32) { put(type, host32(value)) }
    mutating func be16(_ type: UInt16, _ value: UInt16) { put(type, [UInt8(value >> 8), UInt8(value & 0xFF)]) }
    mutating func be32(_ type: UInt16, _ value: UInt32) {
        put(type, [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }
    /// NUL-terminated, as `nla_put_string` does and NLA_NUL_STRING policies require.
    mutating func string(_ type: UInt16, _ value: String) { put(type, Array(value.utf8) + [0]) }

    /// NLA_F_NESTED is set as libnl and mdlayher/netlink do: strict kernel validation demands
    /// it, and the IPVS family's liberal parser ignores it.
    mutating func nested(_ type: UInt16, _ body: (inout AttributeWriter) -> Void) {
        var inner = AttributeWriter()
        body(&inner)
        put(type | NetlinkConstants.attributeNested, inner.bytes)
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    private mutating func appendHost16(_ value: UInt16) { bytes += host16(value) }
}

func host16(_ value: UInt16) -> [UInt8] {
    let v = value.littleEndian
    return [UInt8(v & 0xFF), UInt8(v >> 8)]
}

func host32(_ value: UInt32) -> [UInt8] {
    let v = value.littleEndian
    return [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
}

/// A whole generic netlink message: nlmsghdr, genlmsghdr, attributes.
func genericMessage(
    type: UInt16, flags: UInt16, seq: UInt32, pid: UInt32, command: UInt8, version: UInt8,
    attributes: [UInt8]
) -> [UInt8] {
    let length = NetlinkConstants.messageHeaderLength + NetlinkConstants.genericHeaderLength + attributes.count
    var out: [UInt8] = []
    out.reserveCapacity(length)
    out += host32(UInt32(length))
    out += host16(type)
    out += host16(flags)
    out += host32(seq)
    out += host32(pid)
    out += [command, version, 0, 0]
    out += attributes
    return out
}

// MARK: - Reading

func readHost16(_ b: [UInt8], _ i: Int) -> UInt16 {
    UInt16(littleEndian: UInt16(b[i]) | UInt16(b[i + 1]) << 8)
}

func readHost32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(littleEndian: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
}

func readHost64(_ b: [UInt8], _ i: Int) -> UInt64 {
    UInt64(readHost32(b, i)) | UInt64(readHost32(b, i + 4)) << 32
}

/// One attribute; `payload` indexes the buffer it came from.
struct RawAttribute {
    var type: UInt16
    var isNested: Bool
    var payload: Range<Int>
}

/// The attributes of one nest (or message body), in the order they came. A repeated type
/// reads as its last occurrence, as the kernel's `nla_parse` does. A nest holds at most a few
/// dozen attributes, so a lookup scans them: a dictionary per nest (hashing every type going in
/// and coming out) made decoding a dump of 1,000 destinations cost 2.9 ms, most of a scrape.
struct AttributeSet {
    let buffer: [UInt8]
    private var attributes: [RawAttribute] = []

    /// Checks every header against `range` before touching bytes, so a lying length cannot
    /// send a read past the end.
    init(_ buffer: [UInt8], _ range: Range<Int>) throws(IPVSDecodeError) {
        self.buffer = buffer
        attributes.reserveCapacity(min(32, range.count / NetlinkConstants.attributeHeaderLength))
        var offset = range.lowerBound
        while offset < range.upperBound {
            guard range.upperBound - offset >= NetlinkConstants.attributeHeaderLength else {
                throw .truncatedAttribute(offset: offset)
            }
            let length = readHost16(buffer, offset)
            let rawType = readHost16(buffer, offset + 2)
            guard Int(length) >= NetlinkConstants.attributeHeaderLength,
                  Int(length) <= range.upperBound - offset else {
                throw .badAttributeLength(offset: offset, length: length)
            }
            attributes.append(RawAttribute(
                type: rawType & NetlinkConstants.attributeTypeMask,
                isNested: rawType & NetlinkConstants.attributeNested != 0,
                payload: (offset + NetlinkConstants.attributeHeaderLength)..<(offset + Int(length))))
            // The last attribute of a nest may lack its padding; never step past the end.
            offset = min(offset + NetlinkConstants.align(Int(length)), range.upperBound)
        }
    }

    private func last(_ type: UInt16) -> RawAttribute? {
        var i = attributes.count
        while i > 0 {
            i -= 1
            if attributes[i].type == type { return attributes[i] }
        }
        return nil
    }

    func has(_ type: UInt16) -> Bool { last(type) != nil }

    func payload(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> Range<Int> {
        guard let attr = last(type) else { throw .missingAttribute(name) }
        return attr.payload
    }

    func nested(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> AttributeSet {
        try AttributeSet(buffer, payload(type, name))
    }

    private func sized(_ type: UInt16, _ name: String, _ size: Int) throws(IPVSDecodeError) -> Int {
        let range = try payload(type, name)
        guard range.count == size else { throw .attributeSize(attribute: name, expected: size, actual: range.count) }
        return range.lowerBound
    }

    func u8(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt8 {
        buffer[try sized(type, name, 1)]
    }

    func u16(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt16 {
        readHost16(buffer, try sized(type, name, 2))
    }

    func u32(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt32 {
        readHost32(buffer, try sized(type, name, 4))
    }

    func u64(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt64 {
        readHost64(buffer, try sized(type, name, 8))
    }

    /// A counter that is a u64 in IPVS_*_ATTR_STATS64 and a u32 in the older STATS nest.
    func counter(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt64 {
        let range = try payload(type, name)
        switch range.count {
        case 8: return readHost64(buffer, range.lowerBound)
        case 4: return UInt64(readHost32(buffer, range.lowerBound))
        default: throw .attributeSize(attribute: name, expected: 8, actual: range.count)
        }
    }

    func be16(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt16 {
        let i = try sized(type, name, 2)
        return UInt16(buffer[i]) << 8 | UInt16(buffer[i + 1])
    }

    func be32(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> UInt32 {
        let i = try sized(type, name, 4)
        return UInt32(buffer[i]) << 24 | UInt32(buffer[i + 1]) << 16 | UInt32(buffer[i + 2]) << 8 | UInt32(buffer[i + 3])
    }

    func bytes(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> [UInt8] {
        Array(buffer[try payload(type, name)])
    }

    /// Up to the first NUL; a missing terminator is tolerated (older kernels used NLA_STRING).
    func string(_ type: UInt16, _ name: String) throws(IPVSDecodeError) -> String {
        let range = try payload(type, name)
        let end = buffer[range].firstIndex(of: 0) ?? range.upperBound
        guard let text = String(validating: buffer[range.lowerBound..<end], as: UTF8.self) else {
            throw .invalidString(attribute: name)
        }
        return text
    }
}
