import Addressing
import VigilTestSupport
@testable import IPVS

/// Bytes from hex fragments, so golden vectors can be written one field per line with a
/// comment saying what the field is.
func hex(_ parts: [String]) -> [UInt8] {
    var out: [UInt8] = []
    for part in parts {
        for token in part.split(separator: " ") {
            var rest = Substring(token)
            while !rest.isEmpty {
                let pair = rest.prefix(2)
                out.append(UInt8(pair, radix: 16)!)
                rest = rest.dropFirst(2)
            }
        }
    }
    return out
}

func zeros(_ n: Int) -> String { Array(repeating: "00", count: n).joined(separator: " ") }


let familyID: UInt16 = 0x23

let vip = IPAddress("10.0.0.1")!
let tcp80 = IPVSServiceKey.address(.tcp, vip, port: 80)
let rs21 = IPVSDestinationKey(IPAddress("192.168.0.21")!, port: 80)
let rs22 = IPVSDestinationKey(IPAddress("192.168.0.22")!, port: 80)
let rs23 = IPVSDestinationKey(IPAddress("192.168.0.23")!, port: 80)

func encode(_ op: IPVSOperation, seq: UInt32 = 1) throws -> [UInt8] {
    try IPVSNetlink.encode(.operation(op), familyID: familyID, seq: seq)
}

/// Decodes a buffer that must hold exactly one message and returns its payload.
func decodeOne(_ bytes: [UInt8], fallback: AddressFamily? = nil) throws -> IPVSNetlinkMessage.Payload {
    let messages = try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID, destinationFamilyFallback: fallback)
    guard messages.count == 1 else { throw TestFailure.count(messages.count) }
    return messages[0].payload
}

enum TestFailure: Error { case count(Int) }

/// Builds a dump reply the way the kernel does (`ip_vs_genl_fill_service`/`_dest`): nests
/// without NLA_F_NESTED, NLM_F_MULTI, the HASHED flag, counters and stats nests included.
enum KernelReply {
    static func service(_ s: IPVSService, seq: UInt32 = 1) -> [UInt8] {
        var w = AttributeWriter()
        var inner = AttributeWriter()
        inner.u16(IPVSAttr.svcAF, s.key.family.linuxNumber)
        switch s.key {
        case .fwmark(let mark, _):
            inner.u32(IPVSAttr.svcFwmark, mark)
        case .address(let proto, let address, let port):
            inner.u16(IPVSAttr.svcProtocol, proto.rawValue)
            inner.put(IPVSAttr.svcAddr, address.nfInetAddr)
            inner.be16(IPVSAttr.svcPort, port)
        }
        inner.string(IPVSAttr.svcSchedName, s.scheduler)
        if let pe = s.persistenceEngine { inner.string(IPVSAttr.svcPEName, pe) }
        inner.put(IPVSAttr.svcFlags, host32(s.flags.union(.hashed).rawValue) + host32(0xFFFF_FFFF))
        inner.u32(IPVSAttr.svcTimeout, s.timeout)
        if s.key.family == .ipv4 { inner.be32(IPVSAttr.svcNetmask, s.netmask) } else { inner.u32(IPVSAttr.svcNetmask, s.netmask) }
        inner.put(IPVSAttr.svcStats, stats())
        inner.put(IPVSAttr.svcStats64, stats())
        w.put(IPVSAttr.cmdService, inner.bytes)
        return genericMessage(type: familyID, flags: NetlinkConstants.flagMulti, seq: seq, pid: 0,
                              command: IPVSCommand.newService.rawValue, version: 1, attributes: w.bytes)
    }

    static func destination(_ d: IPVSDestination, seq: UInt32 = 1, withFamily: Bool = true) -> [UInt8] {
        var inner = AttributeWriter()
        inner.put(IPVSAttr.destAddr, d.key.address.nfInetAddr)
        inner.be16(IPVSAttr.destPort, d.key.port)
        inner.u32(IPVSAttr.destFwdMethod, d.forwarding.code)
        inner.u32(IPVSAttr.destWeight, UInt32(bitPattern: d.weight))
        var type: UInt8 = 0, port: UInt16 = 0, flags: UInt16 = 0
        if case .tunnel(let t) = d.forwarding {
            type = t.typeCode
            switch t {
            case .ipip: break
            case .gue(let p, let f): port = p; flags = f
            case .gre(let f): flags = f
            }
        }
        inner.u8(IPVSAttr.destTunType, type)
        inner.be16(IPVSAttr.destTunPort, port)
        inner.u16(IPVSAttr.destTunFlags, flags)
        inner.u32(IPVSAttr.destUThresh, d.upperThreshold)
        inner.u32(IPVSAttr.destLThresh, d.lowerThreshold)
        inner.u32(IPVSAttr.destActiveConns, 7)
        inner.u32(IPVSAttr.destInactConns, 3)
        inner.u32(IPVSAttr.destPersistConns, 1)
        if withFamily { inner.u16(IPVSAttr.destAddrFamily, d.family.linuxNumber) }
        inner.put(IPVSAttr.destStats, stats())
        inner.put(IPVSAttr.destStats64, stats())
        var w = AttributeWriter()
        w.put(IPVSAttr.cmdDest, inner.bytes)
        return genericMessage(type: familyID, flags: NetlinkConstants.flagMulti, seq: seq, pid: 0,
                              command: IPVSCommand.newDest.rawValue, version: 1, attributes: w.bytes)
    }

    static func done(seq: UInt32 = 1, errno: Int32 = 0) -> [UInt8] {
        host32(20) + host16(NetlinkConstants.typeDone) + host16(NetlinkConstants.flagMulti)
            + host32(seq) + host32(0) + host32(UInt32(bitPattern: -errno))
    }

    static func ack(seq: UInt32 = 1, errno: Int32 = 0) -> [UInt8] {
        host32(36) + host16(NetlinkConstants.typeError) + host16(NetlinkConstants.flagCapped)
            + host32(seq) + host32(0) + host32(UInt32(bitPattern: -errno))
            + host32(20) + host16(familyID) + host16(5) + host32(seq) + host32(0)
    }

    private static func stats() -> [UInt8] {
        var s = AttributeWriter()
        s.u32(1, 42)                           // IPVS_STATS_ATTR_CONNS
        s.put(4, host32(1000) + host32(0))     // IPVS_STATS_ATTR_INBYTES (u64)
        return s.bytes
    }
}

func v4addr(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> IPAddress { .v4(IPv4Address(a, b, c, d)) }
