import Testing
import Addressing
@testable import IPVS

/// IPVS_CMD_NEW_DAEMON / DEL_DAEMON / GET_DAEMON: the layout of keepalived's libipvs
/// (`ipvs_start_daemon`), computed by hand from ip_vs.h; the kernel lab reads the threads
/// back with `ipvsadm -L --daemon`.
@Suite struct SyncDaemonCodecTests {
    static let master = IPVSSyncDaemon(state: .master, interface: "eth1", syncID: 7, port: 8850, ttl: 2, group: IPAddress("239.1.2.3"))

    @Test func startDaemonGolden() throws {
        let expected = hex([
            "4c 00 00 00",              // nlmsg_len 76
            "23 00  05 00",             // IPVS family, REQUEST | ACK
            "2a 00 00 00  00 00 00 00", // seq 42, pid 0
            "09 01 00 00",              // cmd IPVS_CMD_NEW_DAEMON 9, version 1
            "38 00 03 80",              // IPVS_CMD_ATTR_DAEMON 3 | NESTED, len 56
            "08 00 01 00  01 00 00 00", //   STATE = IP_VS_STATE_MASTER
            "09 00 02 00  65 74 68 31 00 00 00 00", // MCAST_IFN "eth1\0", padded
            "08 00 03 00  07 00 00 00", //   SYNC_ID 7
            "06 00 07 00  92 22 00 00", //   MCAST_PORT 8850, host order
            "05 00 08 00  02 00 00 00", //   MCAST_TTL 2
            "08 00 05 00  ef 01 02 03", //   MCAST_GROUP 239.1.2.3 as the in_addr
        ])
        #expect(try IPVSNetlink.encode(.startSyncDaemon(Self.master), familyID: familyID, seq: 42) == expected)
    }

    @Test func stopDaemonAndDumpGolden() throws {
        #expect(try IPVSNetlink.encode(.stopSyncDaemon(.backup, syncID: 7), familyID: familyID, seq: 1) == hex([
            "28 00 00 00  23 00 05 00  01 00 00 00  00 00 00 00",
            "0a 01 00 00",              // IPVS_CMD_DEL_DAEMON 10
            "14 00 03 80",
            "08 00 01 00  02 00 00 00", //   STATE = BACKUP
            "08 00 03 00  07 00 00 00", //   SYNC_ID 7
        ]))
        #expect(try IPVSNetlink.encode(.dumpSyncDaemons, familyID: familyID, seq: 2) == hex([
            "14 00 00 00  23 00 01 03  02 00 00 00  00 00 00 00",  // REQUEST | DUMP
            "0b 01 00 00",              // IPVS_CMD_GET_DAEMON 11
        ]))
    }

    @Test func aDumpedThreadDecodesWithEveryOption() throws {
        var v6 = Self.master
        v6.state = .backup
        v6.group = IPAddress("ff02::81")
        v6.maxLength = 1400
        for thread in [Self.master, v6] {
            let bytes = try IPVSNetlink.encode(.startSyncDaemon(thread), familyID: familyID, seq: 3)
            let messages = try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID)
            #expect(messages.map(\.payload) == [.syncDaemon(thread)])
        }
    }

    @Test func aBadStateOrGroupIsAnErrorNotACrash() throws {
        var bytes = try IPVSNetlink.encode(.startSyncDaemon(Self.master), familyID: familyID, seq: 3)
        bytes[28] = 9   // STATE 9
        #expect(throws: IPVSDecodeError.invalidValue(attribute: "IPVS_DAEMON_ATTR_STATE", value: 9)) {
            try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID)
        }
        var short = try IPVSNetlink.encode(.startSyncDaemon(Self.master), familyID: familyID, seq: 3)
        short[68] = 7   // MCAST_GROUP's nla_len 7: three bytes of address
        #expect(throws: IPVSDecodeError.self) { try IPVSNetlink.decode(short, ipvsFamilyID: familyID) }
    }
}
