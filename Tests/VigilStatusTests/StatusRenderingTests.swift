import Addressing
import IPVS
import Testing
import VRRP
@testable import VigilStatus
import VigilTestSupport

@Suite struct JSONWriterTests {
    @Test func stringsAreEscapedAsRFC8259Says() {
        let value = JSONValue.string("a\"b\\c\nd\te\u{01}é")
        #expect(value.rendered() == #""a\"b\\c\nd\te\u0001é""#)
    }

    @Test func numbersAndNesting() {
        let value = JSONValue.object([("whole", .double(5)), ("half", .double(0.5)), ("nan", .double(.nan)),
                                      ("big", .uint(UInt64.max)), ("list", .array([.null, .bool(true)])), ("empty", .object([]))])
        #expect(value.rendered() == #"{"whole":5,"half":0.5,"nan":null,"big":9223372036854775807,"list":[null,true],"empty":{}}"#)
        #expect(value.rendered(pretty: true).contains("\n  \"whole\": 5,\n"))
    }

    @Test(arguments: [(0.0, "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"),
                      (1_796_083_265.9, "2026-12-01T00:01:05Z"), (4_107_542_399, "2100-02-28T23:59:59Z"),
                      (-1, "1969-12-31T23:59:59Z")])
    func utcDates(epoch: Double, text: String) {
        #expect(formatUTC(epoch) == text)
    }

    /// keepalived's ctime_us_r layout: weekday, padded day, microseconds, year.
    @Test(arguments: [(1_796_118_640.186287, "Tue Dec  1 09:50:40.186287 2026"), (0.5, "Thu Jan  1 00:00:00.500000 1970"),
                      (951_782_400, "Tue Feb 29 00:00:00.000000 2000")])
    func ctimeDates(epoch: Double, text: String) {
        #expect(formatCTime(epoch) == text)
    }
}

@Suite struct StatusDocumentTests {
    @Test func usesKeepalivedNamesAndMasksThePassword() {
        let text = StatusDocument.render(sampleSnapshot())
        for field in [#""vigil_status_version": 1"#, #""iname": "VI_1""#, #""state": 2"#, #""state_name": "MASTER""#,
                      #""effective_priority": 140"#, #""base_priority": 150"#, #""last_transition": 1796083204.25"#,
                      #""last_transition_reason": "masterNoResponse""#, #""advert_sent": 61"#, #""auth_failure": 2"#,
                      #""auth_data": "********""#, #""10.0.0.100/24 brd 10.0.0.255 dev eth0 scope global label eth0:1 set""#,
                      #""10.0.0.101 dev eth0 scope global set""#, #""from": "BACKUP""#, #""in_bytes": 7000"#,
                      #""last_result": "connected""#, #""command": "/usr/bin/pgrep \"nginx\"""#] {
            #expect(text.contains(field), "missing \(field)")
        }
    }

    @Test func tableShowsEffectivePriorityTransitionAndChecks() {
        let table = StatusTable.render(sampleSnapshot())
        #expect(table.contains("150/140"))
        #expect(table.contains("2026-12-01T00:00:04Z BACKUP->MASTER (masterNoResponse)"))
        #expect(table.contains("10.0.0.100/24, 10.0.0.101"))
        #expect(table.contains("[10.0.1.1]:tcp:80"))
        #expect(table.contains("connected"))
        #expect(table.contains("1/1 real servers up"), "\(table)")
        #expect(!table.contains("secret"))
    }
}

@Suite struct KeepalivedDumpTests {
    /// keepalived 2.2.7's vrrp_print_stats, line for line.
    @Test func statsFileIsKeepalivedsFormat() {
        let expected = """
        VRRP Instance: VI_1
          Advertisements:
            Received: 3
            Sent: 61
          Became master: 1
          Released master: 0
          Packet Errors:
            Length: 0
            TTL: 0
            Invalid Type: 0
            Advertisement Interval: 0
            Address List: 0
          Authentication Errors:
            Invalid Type: 0
            Type Mismatch: 0
            Failure: 2
          Priority Zero:
            Received: 0
            Sent: 0

        """
        #expect(KeepalivedDumps.stats(sampleSnapshot()) == expected)
    }

    @Test func jsonDumpHasKeepalivedsShape() {
        let text = KeepalivedDumps.json(sampleSnapshot())
        #expect(text.hasPrefix(#"[{"data":{"iname":"VI_1","#))
        for field in [#""state":2"#, #""wantstate":2"#, #""vrid":51"#, #""effective_priority":140"#, #""ifp_ifname":"eth0""#,
                      #""script_master":"/etc/keepalived/notify.sh MASTER""#, #""track_script":["'/usr/bin/pgrep' '\"nginx\"'"]"#, #""accept":1"#,
                      #""auth_data":"********""#, #""stats":{"advert_rcvd":3,"advert_sent":61,"become_master":1,"#] {
            #expect(text.contains(field), "missing \(field)")
        }
    }

    /// The lines mehdy/keepalived-exporter's text mode reads from keepalived.data.
    @Test func dataFileHasTheLinesTheExporterReads() {
        let text = KeepalivedDumps.data(sampleSnapshot())
        for line in [" VRRP Instance = VI_1\n", "   State = MASTER\n", "   Interface = eth0\n", "   Virtual Router ID = 51\n",
                     "   Virtual IP (2):\n", "     10.0.0.100/24 brd 10.0.0.255 dev eth0 scope global label eth0:1 set\n",
                     "   Last transition = 1796083204.250000 (Tue Dec  1 00:00:04.250000 2026)\n", " VRRP Script = chk_nginx\n",
                     "   Status = BAD\n", "   Password = ********\n", "   Advert interval = 1 sec\n",
                     "   Command = '/usr/bin/pgrep' '\"nginx\"'\n"] {
            #expect(text.contains(line), "missing \(line)")
        }
    }
}

@Suite struct ControlProtocolTests {
    @Test(arguments: [("status\n", ControlProtocol.Parsed.command(.status(json: false))),
                      ("status json\r\n", .command(.status(json: true))),
                      ("reload\n", .command(.reload)),
                      ("stat", .incomplete)])
    func requests(text: String, parsed: ControlProtocol.Parsed) {
        #expect(ControlProtocol.parse(Array(text.utf8)) == parsed)
    }

    @Test func garbageIsRefusedWithAReason() {
        guard case .invalid(let why) = ControlProtocol.parse(Array("DELETE everything now\n".utf8)) else {
            Issue.record("accepted garbage")
            return
        }
        #expect(why.contains("DELETE everything"))
        guard case .invalid = ControlProtocol.parse([0xFF, 0x00, 0x0A]) else {
            Issue.record("accepted binary")
            return
        }
    }

    @Test func answersRoundTrip() {
        let answer = ControlProtocol.parseAnswer(ControlProtocol.answer(.refused, "line 3: bad\n"))
        #expect(answer?.outcome == .refused)
        #expect(answer?.body == "line 3: bad\n")
        #expect(ControlProtocol.parseAnswer(Array("HTTP/1.1 200 OK\r\n".utf8)) == nil)
        #expect(ControlProtocol.parseAnswer(Array("no newline".utf8)) == nil)
    }
}
