import Testing
import Addressing
@testable import IPVS

// Golden vectors, computed by hand from linux/netlink.h, genetlink.h and ip_vs.h.
// Layout: nlmsghdr {u32 len, u16 type, u16 flags, u32 seq, u32 pid} (host order, here
// little-endian), genlmsghdr {u8 cmd, u8 version = 1, u16 0}, then attributes
// {u16 len (header + payload, without padding), u16 type} padded to 4 bytes.
// Family id 0x23 stands for whatever the controller assigned to "IPVS".
// Nest types carry NLA_F_NESTED (0x8000): IPVS_CMD_ATTR_SERVICE 1 -> 0x8001 = "01 80".

/// The 48-byte SERVICE nest identifying TCP 10.0.0.1:80, shared by several vectors.
private let tcp80Identity = [
    "30 00 01 80",                  // nla_len 48, IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
    "06 00 01 00  02 00 00 00",     //   SVC_ATTR_AF (u16) = AF_INET 2, 2 bytes padding
    "06 00 02 00  06 00 00 00",     //   SVC_ATTR_PROTOCOL (u16) = IPPROTO_TCP 6, padding
    "14 00 03 00  0a 00 00 01",     //   SVC_ATTR_ADDR len 20: nf_inet_addr, 10.0.0.1 ...
    zeros(12),                      //   ... then 12 zero bytes (IPv4 fills the first 4)
    "06 00 04 00  00 50 00 00",     //   SVC_ATTR_PORT = 80 in network order, padding
]

@Suite struct GoldenEncodeTests {
    @Test func newServiceTCPPersistent() throws {
        let service = IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360)
        let expected = hex([
            "68 00 00 00",              // nlmsg_len 104 = 16 + 4 + 84
            "23 00",                    // nlmsg_type = IPVS family id
            "05 00",                    // NLM_F_REQUEST | NLM_F_ACK
            "01 00 00 00",              // seq 1
            "00 00 00 00",              // pid 0 (kernel assigns)
            "01 01 00 00",              // cmd IPVS_CMD_NEW_SERVICE 1, version 1, reserved
            "54 00 01 80",              // nla_len 84 = 4 + 80, SERVICE | NESTED
            "06 00 01 00  02 00 00 00", //   AF = 2
            "06 00 02 00  06 00 00 00", //   PROTOCOL = 6
            "14 00 03 00  0a 00 00 01", //   ADDR 10.0.0.1 ...
            zeros(12),                  //   ... zero tail of the 16-byte union
            "06 00 04 00  00 50 00 00", //   PORT 80, network order
            "08 00 06 00  77 6c 63 00", //   SCHED_NAME "wlc\0" (len 8, no padding needed)
            "0c 00 07 00",              //   FLAGS, struct ip_vs_flags (len 12):
            "01 00 00 00  ff ff ff ff", //     flags = PERSISTENT 0x1, mask = 0xffffffff
            "08 00 08 00  68 01 00 00", //   TIMEOUT = 360 = 0x168
            "08 00 09 00  ff ff ff ff", //   NETMASK 255.255.255.255 (network order)
        ])
        #expect(try encode(.addService(service), seq: 1) == expected)
    }

    @Test func newDestDirectRoute() throws {
        let dest = IPVSDestination(rs21, forwarding: .directRoute, weight: 2)
        let expected = hex([
            "8c 00 00 00",              // nlmsg_len 140 = 16 + 4 + 48 + 72
            "23 00  05 00",             // type, REQUEST | ACK
            "02 00 00 00  00 00 00 00", // seq 2, pid 0
            "05 01 00 00",              // cmd IPVS_CMD_NEW_DEST 5, version 1
        ] + tcp80Identity + [          // SERVICE: identity only, the kernel needs no more
            "48 00 02 80",              // nla_len 72, IPVS_CMD_ATTR_DEST 2 | NESTED
            "06 00 0b 00  02 00 00 00", //   DEST_ATTR_ADDR_FAMILY (11) = AF_INET
            "14 00 01 00  c0 a8 00 15", //   DEST_ATTR_ADDR 192.168.0.21 ...
            zeros(12),                  //   ... zero tail
            "06 00 02 00  00 50 00 00", //   DEST_ATTR_PORT 80, network order
            "08 00 03 00  03 00 00 00", //   FWD_METHOD = IP_VS_CONN_F_DROUTE 3
            "08 00 04 00  02 00 00 00", //   WEIGHT = 2
            "08 00 05 00  00 00 00 00", //   U_THRESH = 0 (none)
            "08 00 06 00  00 00 00 00", //   L_THRESH = 0 (none)
        ])
        #expect(try encode(.addDestination(dest, to: tcp80), seq: 2) == expected)
    }

    @Test func newServiceFwmark() throws {
        let service = IPVSService(.fwmark(1, family: .ipv4), scheduler: "wlc")
        let expected = hex([
            "4c 00 00 00",              // nlmsg_len 76 = 16 + 4 + 56
            "23 00  05 00",
            "03 00 00 00  00 00 00 00", // seq 3
            "01 01 00 00",              // NEW_SERVICE
            "38 00 01 80",              // SERVICE nest, len 56
            "06 00 01 00  02 00 00 00", //   AF = 2
            "08 00 05 00  01 00 00 00", //   FWMARK = 1; no PROTOCOL/ADDR/PORT
            "08 00 06 00  77 6c 63 00", //   SCHED_NAME "wlc"
            "0c 00 07 00",              //   FLAGS:
            "00 00 00 00  ff ff ff ff", //     flags 0, mask all
            "08 00 08 00  00 00 00 00", //   TIMEOUT 0
            "08 00 09 00  ff ff ff ff", //   NETMASK 255.255.255.255
        ])
        #expect(try encode(.addService(service), seq: 3) == expected)
    }

    @Test func newServiceIPv6() throws {
        let service = IPVSService(.address(.udp, IPAddress("2001:db8::1")!, port: 53), scheduler: "rr")
        let expected = hex([
            "68 00 00 00",              // nlmsg_len 104
            "23 00  05 00",
            "04 00 00 00  00 00 00 00", // seq 4
            "01 01 00 00",              // NEW_SERVICE
            "54 00 01 80",              // SERVICE nest, len 84
            "06 00 01 00  0a 00 00 00", //   AF = AF_INET6 10
            "06 00 02 00  11 00 00 00", //   PROTOCOL = IPPROTO_UDP 17
            "14 00 03 00",              //   ADDR, 16 bytes:
            "20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01", // 2001:db8::1
            "06 00 04 00  00 35 00 00", //   PORT 53, network order
            "07 00 06 00  72 72 00 00", //   SCHED_NAME "rr\0": len 7, one byte padding
            "0c 00 07 00",              //   FLAGS:
            "00 00 00 00  ff ff ff ff", //     flags 0, mask all
            "08 00 08 00  00 00 00 00", //   TIMEOUT 0
            "08 00 09 00  80 00 00 00", //   NETMASK: IPv6 prefix length 128 as a host-order u32
        ])
        #expect(try encode(.addService(service), seq: 4) == expected)
    }

    @Test func getFamilyRequest() throws {
        let expected = hex([
            "20 00 00 00",              // nlmsg_len 32 = 16 + 4 + 12
            "10 00",                    // GENL_ID_CTRL
            "05 00",                    // REQUEST | ACK
            "05 00 00 00  00 00 00 00", // seq 5, pid 0
            "03 01 00 00",              // CTRL_CMD_GETFAMILY 3, version 1
            "09 00 02 00",              // CTRL_ATTR_FAMILY_NAME, len 9 = 4 + "IPVS\0"
            "49 50 56 53 00 00 00 00",  // "IPVS\0" + 3 bytes padding
        ])
        #expect(try IPVSNetlink.encodeGetFamily(seq: 5) == expected)
    }

    @Test func dumpServices() throws {
        let expected = hex([
            "14 00 00 00",              // nlmsg_len 20: headers only
            "23 00",
            "01 03",                    // NLM_F_REQUEST | NLM_F_DUMP (0x301)
            "06 00 00 00  00 00 00 00", // seq 6
            "04 01 00 00",              // IPVS_CMD_GET_SERVICE 4
        ])
        #expect(try IPVSNetlink.encode(.dumpServices, familyID: familyID, seq: 6) == expected)
    }

    @Test func dumpDestinations() throws {
        let expected = hex([
            "44 00 00 00",              // nlmsg_len 68 = 20 + 48
            "23 00  01 03",             // REQUEST | DUMP
            "07 00 00 00  00 00 00 00", // seq 7
            "08 01 00 00",              // IPVS_CMD_GET_DEST 8
        ] + tcp80Identity)              // which service to list
        #expect(try IPVSNetlink.encode(.dumpDestinations(tcp80), familyID: familyID, seq: 7) == expected)
    }

    @Test func flushAndGetInfo() throws {
        #expect(try encode(.flush, seq: 8) == hex([
            "14 00 00 00  23 00 05 00", // len 20, type, REQUEST | ACK
            "08 00 00 00  00 00 00 00", // seq 8
            "11 01 00 00",              // IPVS_CMD_FLUSH 17
        ]))
        #expect(try IPVSNetlink.encode(.getInfo, familyID: familyID, seq: 9, pid: 0x1234) == hex([
            "14 00 00 00  23 00 05 00",
            "09 00 00 00  34 12 00 00", // seq 9, pid 0x1234
            "0f 01 00 00",              // IPVS_CMD_GET_INFO 15
        ]))
    }

    @Test func deleteDestinationAndFwmarkService() throws {
        #expect(try encode(.deleteDestination(rs21, from: tcp80), seq: 10) == hex([
            "6c 00 00 00",              // nlmsg_len 108 = 20 + 48 + 40
            "23 00 05 00  0a 00 00 00  00 00 00 00",
            "07 01 00 00",              // IPVS_CMD_DEL_DEST 7
        ] + tcp80Identity + [
            "28 00 02 80",              // DEST nest, len 40: identity only
            "06 00 0b 00  02 00 00 00", //   ADDR_FAMILY
            "14 00 01 00  c0 a8 00 15", //   ADDR 192.168.0.21 ...
            zeros(12),
            "06 00 02 00  00 50 00 00", //   PORT 80
        ]))
        #expect(try encode(.deleteService(.fwmark(1, family: .ipv6)), seq: 11) == hex([
            "28 00 00 00",              // nlmsg_len 40 = 20 + 20
            "23 00 05 00  0b 00 00 00  00 00 00 00",
            "03 01 00 00",              // IPVS_CMD_DEL_SERVICE 3
            "14 00 01 80",              // SERVICE nest, len 20
            "06 00 01 00  0a 00 00 00", //   AF = AF_INET6
            "08 00 05 00  01 00 00 00", //   FWMARK 1
        ]))
    }

    @Test func newDestGUETunnel() throws {
        let dest = IPVSDestination(
            IPVSDestinationKey(IPAddress("10.0.0.2")!, port: 0),
            forwarding: .tunnel(.gue(port: 6080, flags: 1)), weight: 1)
        #expect(try encode(.addDestination(dest, to: .fwmark(1, family: .ipv4)), seq: 12) == hex([
            "88 00 00 00",              // nlmsg_len 136 = 20 + 20 + 96
            "23 00 05 00  0c 00 00 00  00 00 00 00",
            "05 01 00 00",              // NEW_DEST
            "14 00 01 80",              // SERVICE nest: AF + FWMARK
            "06 00 01 00  02 00 00 00",
            "08 00 05 00  01 00 00 00",
            "60 00 02 80",              // DEST nest, len 96
            "06 00 0b 00  02 00 00 00", //   ADDR_FAMILY
            "14 00 01 00  0a 00 00 02", //   ADDR 10.0.0.2 ...
            zeros(12),
            "06 00 02 00  00 00 00 00", //   PORT 0 (fwmark service, non-NAT)
            "08 00 03 00  02 00 00 00", //   FWD_METHOD = TUNNEL 2
            "08 00 04 00  01 00 00 00", //   WEIGHT 1
            "05 00 0d 00  01 00 00 00", //   TUN_TYPE (u8, len 5) = GUE 1, 3 bytes padding
            "06 00 0e 00  17 c0 00 00", //   TUN_PORT 6080 = 0x17c0, network order
            "06 00 0f 00  01 00 00 00", //   TUN_FLAGS (u16) = CSUM 1
            "08 00 05 00  00 00 00 00", //   U_THRESH
            "08 00 06 00  00 00 00 00", //   L_THRESH
        ]))
    }

    @Test func rejectsOverlongNames() {
        let longName = IPVSService(tcp80, scheduler: "abcdefghijklmnop") // 16 bytes + NUL
        #expect(throws: IPVSEncodeError.invalidName("abcdefghijklmnop")) { try encode(.addService(longName)) }
        #expect(throws: IPVSEncodeError.self) { try encode(.addService(IPVSService(tcp80, scheduler: "w\0c"))) }
        #expect(throws: IPVSEncodeError.self) {
            try encode(.editService(IPVSService(tcp80, persistenceEngine: String(repeating: "x", count: 16))))
        }
        // 15 bytes is the longest name the kernel's 16-byte buffer holds.
        #expect(throws: Never.self) { try encode(.addService(IPVSService(tcp80, scheduler: "abcdefghijklmno"))) }
    }
}

@Suite struct GoldenDecodeTests {
    @Test func controllerReplyThenAck() throws {
        let reply = hex([
            "58 00 00 00",              // nlmsg_len 88
            "10 00  00 00",             // GENL_ID_CTRL, no flags
            "05 00 00 00  34 12 00 00", // seq 5, pid 0x1234
            "01 02 00 00",              // CTRL_CMD_NEWFAMILY 1, controller version 2
            "09 00 02 00  49 50 56 53 00 00 00 00", // FAMILY_NAME "IPVS"
            "06 00 01 00  23 00 00 00", // FAMILY_ID (u16) 0x23
            "08 00 03 00  01 00 00 00", // VERSION 1
            "08 00 04 00  00 00 00 00", // HDRSIZE 0
            "08 00 05 00  06 00 00 00", // MAXATTR 6
            "18 00 06 00",              // OPS (nested, no NLA_F_NESTED), len 24
            "14 00 01 00",              //   op #1, len 20
            "08 00 01 00  01 00 00 00", //     CTRL_ATTR_OP_ID 1
            "08 00 02 00  0b 00 00 00", //     CTRL_ATTR_OP_FLAGS
        ])
        let ack = hex([
            "24 00 00 00  02 00 00 01", // len 36, NLMSG_ERROR, NLM_F_CAPPED
            "05 00 00 00  34 12 00 00", // seq 5
            "00 00 00 00",              // error 0: an ACK
            "20 00 00 00  10 00 05 00  05 00 00 00  00 00 00 00", // echoed request header
        ])
        let messages = try IPVSNetlink.decode(reply + ack, ipvsFamilyID: nil)
        #expect(messages.map(\.payload) == [
            .family(GenericNetlinkFamily(id: 0x23, name: "IPVS", version: 1, maxAttribute: 6)),
            .ack,
        ])
        #expect(messages[0].seq == 5 && messages[0].pid == 0x1234)
    }

    @Test func errorWithExtendedAck() throws {
        let bytes = hex([
            "2c 00 00 00  02 00 00 03", // len 44, NLMSG_ERROR, CAPPED | ACK_TLVS
            "07 00 00 00  00 00 00 00",
            "ea ff ff ff",              // error -22 (EINVAL)
            "68 00 00 00  23 00 05 00  07 00 00 00  00 00 00 00", // echoed header
            "08 00 01 00  62 61 64 00", // NLMSGERR_ATTR_MSG "bad"
        ])
        #expect(try decodeOne(bytes) == .error(errno: 22, message: "bad"))
        #expect(try decodeOne(KernelReply.ack(errno: 17)) == .error(errno: 17, message: nil))
    }

    /// A service dump reply as the kernel writes it, by hand.
    @Test func kernelServiceDumpThenDone() throws {
        let bytes = hex([
            "90 00 00 00",              // nlmsg_len 144 = 20 + 124
            "23 00  02 00",             // NLM_F_MULTI
            "06 00 00 00  34 12 00 00", // seq 6
            "01 01 00 00",              // replies to GET_SERVICE come as NEW_SERVICE
            "7c 00 01 00",              // SERVICE nest, len 124, no NLA_F_NESTED (nla_nest_start_noflag)
            "06 00 01 00  02 00 00 00", //   AF
            "06 00 02 00  06 00 00 00", //   PROTOCOL tcp
            "14 00 03 00  0a 00 00 01", //   ADDR 10.0.0.1
            zeros(12),
            "06 00 04 00  00 50 00 00", //   PORT 80
            "08 00 06 00  77 6c 63 00", //   SCHED_NAME wlc
            "0c 00 07 00  03 00 00 00  ff ff ff ff", // FLAGS: PERSISTENT | HASHED, mask ~0
            "08 00 08 00  68 01 00 00", //   TIMEOUT 360
            "08 00 09 00  ff ff ff ff", //   NETMASK
            "18 00 0a 00",              //   STATS nest, len 24 (STATS64 wins)
            "08 00 01 00  05 00 00 00", //     CONNS 5
            "0c 00 04 00  00 10 00 00 00 00 00 00", // INBYTES (u64)
            "10 00 0c 00",              //   STATS64 nest, len 16
            "0c 00 01 00  07 00 00 00 00 00 00 00", // CONNS 7 (u64)
            "14 00 00 00  03 00 02 00", // NLMSG_DONE, len 20, MULTI
            "06 00 00 00  34 12 00 00",
            "00 00 00 00",              // dump status 0
        ])
        let messages = try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID)
        let want = IPVSService(tcp80, scheduler: "wlc", flags: .persistent, timeout: 360)
        guard case .service(let got) = messages.first?.payload else {
            Issue.record("expected a service, got \(messages)")
            return
        }
        #expect(got.flags == [.persistent, .hashed])
        #expect(got.hasSameSettings(as: want))
        #expect(messages.count == 2 && messages[1].payload == .done(errno: 0))
        #expect(messages[0].flags == NetlinkConstants.flagMulti)
        // The counters: STATS64 when present (7 connections; the counters it lacks read 0).
        #expect(messages[0].statistics == IPVSStatistics(connections: 7))
        #expect(messages[1].statistics == nil)
    }

    /// A destination with only the 32-bit STATS nest (older kernels) still has its counters.
    @Test func destinationCountersFromEitherNest() throws {
        let dest = IPVSDestination(IPVSDestinationKey(v4addr(192, 168, 0, 5), port: 80))
        let both = try IPVSNetlink.decode(KernelReply.destination(dest), ipvsFamilyID: familyID)
        #expect(both[0].statistics == IPVSStatistics(connections: 42, inBytes: 1000))
    }

    @Test func getInfoReply() throws {
        let bytes = hex([
            "24 00 00 00  23 00 00 00  09 00 00 00  00 00 00 00", // len 36
            "0e 01 00 00",              // IPVS_CMD_SET_INFO 14 (the GET_INFO reply command)
            "08 00 01 00  01 02 01 00", // INFO_ATTR_VERSION = IP_VS_VERSION_CODE 0x010201
            "08 00 02 00  00 10 00 00", // CONN_TAB_SIZE 4096
        ])
        #expect(try decodeOne(bytes) == .info(version: 0x010201, connectionTableSize: 4096))
    }

    @Test func unknownFamilyAndNoopAreOther() throws {
        let noop = host32(16) + host16(NetlinkConstants.typeNoop) + host16(0) + host32(0) + host32(0)
        let foreign = genericMessage(type: 0x40, flags: 0, seq: 0, pid: 0, command: 1, version: 1, attributes: [])
        #expect(try IPVSNetlink.decode(noop + foreign, ipvsFamilyID: familyID).map(\.payload) == [.other, .other])
        // Before the family is resolved IPVS messages are not interpreted.
        #expect(try IPVSNetlink.decode(KernelReply.service(IPVSService(tcp80)), ipvsFamilyID: nil).map(\.payload) == [.other])
        #expect(try IPVSNetlink.decode([], ipvsFamilyID: familyID).isEmpty)
    }
}
