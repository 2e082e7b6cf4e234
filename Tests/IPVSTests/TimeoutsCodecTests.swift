import Testing
@testable import IPVS

/// IPVS_CMD_SET_CONFIG / GET_CONFIG (keepalived's `ipvs_set_timeout`, ipvsadm's `--set` and
/// `-L --timeout`): laid out by hand from ip_vs.h; the kernel lab reads the values back with
/// `ipvsadm -L --timeout`.
@Suite struct TimeoutsCodecTests {
    @Test func setConfigGolden() throws {
        let timeouts = IPVSTimeouts(tcp: 7200, tcpFin: 60, udp: 30)
        #expect(try IPVSNetlink.encode(.setTimeouts(timeouts), familyID: familyID, seq: 5) == hex([
            "2c 00 00 00  23 00 05 00  05 00 00 00  00 00 00 00",  // REQUEST | ACK
            "0c 01 00 00",              // IPVS_CMD_SET_CONFIG 12, version 1
            "08 00 04 00  20 1c 00 00", // TIMEOUT_TCP 7200
            "08 00 05 00  3c 00 00 00", // TIMEOUT_TCP_FIN 60
            "08 00 06 00  1e 00 00 00", // TIMEOUT_UDP 30
        ]))
        #expect(try IPVSNetlink.encode(.getTimeouts, familyID: familyID, seq: 6) == hex([
            "14 00 00 00  23 00 05 00  06 00 00 00  00 00 00 00",
            "0d 01 00 00",              // IPVS_CMD_GET_CONFIG 13: answered with SET_CONFIG
        ]))
    }

    /// GET_CONFIG's answer has SET_CONFIG's command and attributes.
    @Test func theReplyDecodes() throws {
        let timeouts = IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300)
        let bytes = try IPVSNetlink.encode(.setTimeouts(timeouts), familyID: familyID, seq: 1)
        #expect(try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID).map(\.payload) == [.timeouts(timeouts)])
    }

    @Test func aMissingOrShortTimeoutIsAnErrorNotACrash() throws {
        var bytes = try IPVSNetlink.encode(.setTimeouts(IPVSTimeouts(tcp: 1, tcpFin: 2, udp: 3)), familyID: familyID, seq: 1)
        bytes[28] = 7   // TIMEOUT_TCP_FIN's nla_len 7
        #expect(throws: IPVSDecodeError.self) { try IPVSNetlink.decode(bytes, ipvsFamilyID: familyID) }
        var missing = try IPVSNetlink.encode(.setTimeouts(IPVSTimeouts(tcp: 1, tcpFin: 2, udp: 3)), familyID: familyID, seq: 1)
        missing[38] = 9   // TIMEOUT_UDP becomes attribute 9: absent
        #expect(throws: IPVSDecodeError.missingAttribute("IPVS_CMD_ATTR_TIMEOUT_UDP")) {
            try IPVSNetlink.decode(missing, ipvsFamilyID: familyID)
        }
    }
}
