import Addressing
import Foundation
import IPVS
import Testing
import VRRP
@testable import VigilMetrics
import VigilStatus
import VigilTestSupport

/// The sample lines of one family, as `labels value` strings.
func samples(_ exposition: String, _ name: String) -> [String] {
    exposition.split(separator: "\n").compactMap { line in
        guard line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { return nil }
        return String(line.dropFirst(name.count))
    }
}

func render(_ metrics: VigilMetrics, _ snapshot: StatusSnapshot) -> String {
    String(decoding: metrics.exposition(of: snapshot), as: UTF8.self)
}

@Suite struct ExpositionTests {
    @Test func keepalivedExporterNamesLabelsAndStateEncoding() {
        let text = render(VigilMetrics(version: "0.2.0", startedAt: 1_796_083_200), sampleSnapshot())
        #expect(samples(text, "keepalived_up") == [" 1.0"])
        #expect(samples(text, "keepalived_vrrp_state").sorted() == [
            #"{iname="VI_1",intf="eth0",vrid="51",ip_address="10.0.0.100/24"} 2.0"#,
            #"{iname="VI_1",intf="eth0",vrid="51",ip_address="10.0.0.101"} 2.0"#,
        ])
        #expect(samples(text, "keepalived_advertisements_sent_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 61"#])
        #expect(samples(text, "keepalived_become_master_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 1"#])
        #expect(samples(text, "keepalived_authentication_failure_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 2"#])
        #expect(samples(text, "keepalived_gratuitous_arp_delay_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 5.0"#])
        #expect(samples(text, "keepalived_script_status") == [#"{name="chk_nginx"} 0.0"#])
        #expect(samples(text, "keepalived_script_state") == [#"{name="chk_nginx"} 0.0"#])
        #expect(text.contains("# TYPE keepalived_vrrp_state gauge\n"))
        #expect(text.contains("# TYPE keepalived_advertisements_received_total counter\n"))
    }

    @Test func ipvsSeriesUseGen2brainNames() {
        let text = render(VigilMetrics(version: "0.2.0", startedAt: 0), sampleSnapshot())
        #expect(samples(text, "keepalived_lvs_vip_conn") == [#"{addr="10.0.0.100:80",proto="6"} 7.0"#])
        #expect(samples(text, "keepalived_lvs_vip_in_bytes") == [#"{addr="10.0.0.100:80",proto="6"} 7000.0"#])
        #expect(samples(text, "keepalived_lvs_rs_out_packets") == [#"{vip="10.0.0.100:80",addr="10.0.1.1:80",proto="6"} 60.0"#])
    }

    @Test func vigilSeries() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 1_796_083_200)
        metrics.observeHealthCheck(kind: "TCP_CHECK", seconds: 0.0004)
        metrics.observeHealthCheck(kind: "TCP_CHECK", seconds: 0.2)
        metrics.observeTrackScript(name: "chk_nginx", seconds: 0.0125)
        let text = render(metrics, sampleSnapshot())
        #expect(samples(text, "vigil_build_info") == [#"{version="0.2.0"} 1.0"#])
        #expect(samples(text, "process_start_time_seconds") == [" 1796083200.0"])
        #expect(samples(text, "vigil_vrrp_effective_priority") == [#"{iname="VI_1"} 140.0"#])
        #expect(samples(text, "vigil_vrrp_priority") == [#"{iname="VI_1"} 150.0"#])
        #expect(samples(text, "vigil_vrrp_transitions_total").sorted() == [
            #"{iname="VI_1",from="BACKUP",to="MASTER"} 1"#, #"{iname="VI_1",from="INIT",to="BACKUP"} 1"#,
        ])
        #expect(samples(text, "vigil_vrrp_receive_errors_total") == [#"{iname="VI_1",reason="auth_failure"} 2"#])
        #expect(samples(text, "vigil_reloads_total").sorted() == [
            #"{result="applied"} 1"#, #"{result="refused"} 0"#, #"{result="unchanged"} 0"#,
        ])
        #expect(samples(text, "vigil_config_last_reload_successful") == [" 1.0"])
        #expect(samples(text, "vigil_config_last_reload_success_timestamp_seconds") == [" 1796083230.0"])
        #expect(samples(text, "vigil_real_server_up") == [#"{virtual_server="10.0.0.100:tcp:80",real_server="10.0.1.1:80"} 1.0"#])
        #expect(samples(text, "vigil_real_server_weight") == [#"{virtual_server="10.0.0.100:tcp:80",real_server="10.0.1.1:80"} 3.0"#])
        #expect(samples(text, "vigil_track_script_runs_total").sorted() == [
            #"{script="chk_nginx",result="failure"} 1"#, #"{script="chk_nginx",result="success"} 4"#,
            #"{script="chk_nginx",result="timeout"} 0"#,
        ])
        let check = samples(text, "vigil_health_check_duration_seconds_bucket")
        #expect(check.contains(#"{kind="TCP_CHECK",le="0.0005"} 1"#), "\(check)")
        #expect(check.contains(#"{kind="TCP_CHECK",le="0.25"} 2"#), "\(check)")
        #expect(samples(text, "vigil_health_check_duration_seconds_count") == [#"{kind="TCP_CHECK"} 2"#])
        #expect(samples(text, "vigil_track_script_duration_seconds_count") == [#"{script="chk_nginx"} 1"#])
    }

    @Test func countersFollowTheValuesAndRestartWhenTheyFall() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        _ = render(metrics, snapshot)
        snapshot.instances[0].stats.advertsSent = 100
        #expect(samples(render(metrics, snapshot), "keepalived_advertisements_sent_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 100"#])
        // keepalived's stats clear (SIGRTMAX-1): the counter restarts, as after a restart.
        snapshot.instances[0].stats.advertsSent = 3
        #expect(samples(render(metrics, snapshot), "keepalived_advertisements_sent_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 3"#])
    }

    @Test func aStatsClearZeroesTransitionsAndReasonsNotSeenSince() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        _ = render(metrics, snapshot)
        snapshot.instances[0].stats.clear()
        snapshot.instances[0].stats.receiveErrors = ["bad_ttl": 1]
        let text = render(metrics, snapshot)
        #expect(samples(text, "vigil_vrrp_transitions_total").sorted() == [
            #"{iname="VI_1",from="BACKUP",to="MASTER"} 0"#, #"{iname="VI_1",from="INIT",to="BACKUP"} 0"#,
        ])
        #expect(samples(text, "vigil_vrrp_receive_errors_total").sorted() == [
            #"{iname="VI_1",reason="auth_failure"} 0"#, #"{iname="VI_1",reason="bad_ttl"} 1"#,
        ])
        #expect(samples(text, "keepalived_advertisements_sent_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 0"#])
    }

    /// The kernel keeps mark 1 once per family: the two services and their real servers must be
    /// separate series, not one series written twice.
    @Test func firewallMarksOfBothFamiliesAreSeparateSeries() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        let v4 = IPVSServiceKey.fwmark(1, family: .ipv4), v6 = IPVSServiceKey.fwmark(1, family: .ipv6)
        let real4 = IPVSDestinationKey(.v4(IPv4Address(10, 0, 1, 1)), port: 80)
        let real6 = IPVSDestinationKey(.v6(IPv6Address("fd00::11")!), port: 80)
        func server(_ key: IPVSServiceKey, _ real: IPVSDestinationKey, up: Bool) -> VirtualServerStatus {
            VirtualServerStatus(name: "FWM 1", services: [(key: key, traffic: nil)], scheduler: "wlc", quorumUp: up, quorum: 1,
                                hysteresis: 0, sorryServerActive: false,
                                realServers: [RealServerStatus(address: real.address, port: 80, name: "", alive: up, configuredWeight: 1,
                                                               currentWeight: up ? 1 : 0, checks: [], traffic: nil)])
        }
        snapshot.virtualServers = [server(v4, real4, up: true), server(v6, real6, up: false)]
        func traffic(_ n: UInt64, _ real: IPVSDestinationKey) -> IPVSServiceStatistics {
            let s = IPVSStatistics(connections: n, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0)
            return IPVSServiceStatistics(service: s, destinations: [real: s])
        }
        snapshot.ipvsTraffic = [v4: traffic(4, real4), v6: traffic(6, real6)]
        let text = render(metrics, snapshot)
        #expect(samples(text, "vigil_virtual_server_quorum_up").sorted() == [
            #"{virtual_server="FWM 1 IPv6"} 0.0"#, #"{virtual_server="FWM 1"} 1.0"#,
        ])
        #expect(samples(text, "vigil_real_server_up").sorted() == [
            #"{virtual_server="FWM 1 IPv6",real_server="[fd00::11]:80"} 0.0"#, #"{virtual_server="FWM 1",real_server="10.0.1.1:80"} 1.0"#,
        ])
        #expect(samples(text, "keepalived_lvs_vip_conn").sorted() == [
            #"{addr="fwmark6:1",proto="0"} 6.0"#, #"{addr="fwmark:1",proto="0"} 4.0"#,
        ])
    }

    /// A scrape reuses the destination series found at the same place in the last one; when
    /// the kernel's list changes (one gone, one new, the order moved) every series must still
    /// carry its own destination's counters.
    @Test func destinationSeriesFollowTheirDestinationWhenTheListChanges() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        let service = snapshot.ipvsTraffic.keys.first!
        func real(_ n: UInt8) -> IPVSDestinationKey { IPVSDestinationKey(.v4(IPv4Address(10, 0, 2, n)), port: 80) }
        func counters(_ n: UInt64) -> IPVSStatistics { IPVSStatistics(connections: n, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0) }
        func scrape(_ reals: [UInt8]) -> [String] {
            var destinations: [IPVSDestinationKey: IPVSStatistics] = [:]
            for n in reals { destinations[real(n)] = counters(UInt64(n) * 10) }
            snapshot.ipvsTraffic = [service: IPVSServiceStatistics(service: counters(1), destinations: destinations)]
            return samples(render(metrics, snapshot), "keepalived_lvs_rs_conn").sorted()
        }
        func expected(_ reals: [UInt8]) -> [String] {
            reals.map { #"{vip="10.0.0.100:80",addr="10.0.2.\#($0):80",proto="6"} \#(Double($0) * 10)"# }.sorted()
        }
        let first: [UInt8] = Array(1...40)
        #expect(scrape(first) == expected(first))
        #expect(scrape(first) == expected(first))
        let changed: [UInt8] = Array(2...40).reversed() + [41, 42]
        #expect(scrape(changed) == expected(changed))
        let back: [UInt8] = [1] + Array(3...20)
        #expect(scrape(back) == expected(back))
    }

    @Test func seriesOfWhatIsGoneAreRemoved() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        _ = render(metrics, snapshot)
        // A reload drops one VIP, then the instance and the virtual server.
        snapshot.instances[0].vips.removeLast()
        snapshot.instances[0].stats.advertsSent = 70
        var text = render(metrics, snapshot)
        #expect(samples(text, "keepalived_vrrp_state") == [#"{iname="VI_1",intf="eth0",vrid="51",ip_address="10.0.0.100/24"} 2.0"#])
        #expect(samples(text, "keepalived_advertisements_sent_total") == [#"{iname="VI_1",intf="eth0",vrid="51"} 70"#])
        snapshot.instances = []
        snapshot.trackScripts = []
        snapshot.virtualServers = []
        snapshot.ipvsTraffic = [:]
        text = render(metrics, snapshot)
        for family in ["keepalived_vrrp_state", "keepalived_advertisements_sent_total", "vigil_vrrp_transitions_total",
                       "keepalived_script_status", "vigil_real_server_up", "keepalived_lvs_vip_conn", "keepalived_lvs_rs_conn",
                       "vigil_track_script_duration_seconds_count"] {
            #expect(samples(text, family).isEmpty, "\(family) still there")
        }
        #expect(samples(text, "keepalived_up") == [" 1.0"])
    }

    @Test func anInstanceWithoutVIPsHasOneStateSeries() {
        var snapshot = sampleSnapshot()
        snapshot.instances[0].vips = []
        snapshot.instances[0].state = .backup
        let text = render(VigilMetrics(version: "0.2.0", startedAt: 0), snapshot)
        #expect(samples(text, "keepalived_vrrp_state") == [#"{iname="VI_1",intf="eth0",vrid="51",ip_address=""} 1.0"#])
    }

    /// A large first scrape calls back, so the daemon can send adverts while it registers series.
    @Test func aLargeScrapeCallsBackAsItGoes() {
        var snapshot = sampleSnapshot()
        let server = snapshot.virtualServers[0].realServers[0]
        snapshot.virtualServers[0].realServers = (0..<600).map { n in
            var r = server
            r.address = .v4(IPv4Address(10, 1, UInt8(n / 250), UInt8(n % 250 + 1)))
            return r
        }
        var calls = 0
        let text = String(decoding: VigilMetrics(version: "0.2.0", startedAt: 0).exposition(of: snapshot, progress: { calls += 1 }), as: UTF8.self)
        #expect(samples(text, "vigil_real_server_up").count == 600)
        #expect(calls >= 600 / VigilMetrics.progressEvery, "\(calls) calls")
    }

    /// Only what changed is rendered again; the rest is the previous scrape's bytes, identical.
    @Test func unchangedFamiliesAreNotRenderedAgain() {
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 0)
        var snapshot = sampleSnapshot()
        let first = render(metrics, snapshot)
        #expect(render(metrics, snapshot) == first)
        snapshot.instances[0].stats.advertsSent += 1
        let second = render(metrics, snapshot)
        #expect(second != first)
        #expect(second.replacingOccurrences(of: "vrid=\"51\"} 62", with: "vrid=\"51\"} 61")
                      .replacingOccurrences(of: "iname=\"VI_1\"} 62", with: "iname=\"VI_1\"} 61") == first)
    }

    @Test func labelValuesAreEscaped() {
        var snapshot = sampleSnapshot()
        snapshot.trackScripts[0].name = #"odd"name\"#
        let text = render(VigilMetrics(version: "0.2.0", startedAt: 0), snapshot)
        #expect(samples(text, "keepalived_script_status") == [#"{name="odd\"name\\"} 0.0"#])
    }

    @Test func everyFamilyIsInTheREADME() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let missing = Family.allNames.filter { !text.contains("`\($0)`") }
        #expect(missing.isEmpty, "README does not list \(missing)")
    }
}

/// Debian's promtool, the reference linter of the exposition format.
@Suite struct PromtoolTests {
    static let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func promtoolFindsNothingToComplainAbout() throws {
        guard let promtool = Self.promtool else {
            // CI installs Debian's prometheus package (make deps); elsewhere this is a skip that says so.
            #expect(ProcessInfo.processInfo.environment["CI"] != "true", "promtool is not installed (Debian package prometheus)")
            return
        }
        let metrics = VigilMetrics(version: "0.2.0", startedAt: 1_796_083_200)
        metrics.observeHealthCheck(kind: "TCP_CHECK", seconds: 0.001)
        metrics.observeTrackScript(name: "chk_nginx", seconds: 0.01)
        var snapshot = sampleSnapshot()
        snapshot.reloads.refused = 1
        let exposition = metrics.exposition(of: snapshot)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "promtool: \(said)")
        #expect(said.isEmpty, "promtool: \(said)")
    }
}

@Suite struct MetricsHTTPTests {
    @Test func aScrapeIsRecognised() {
        #expect(MetricsHTTP.parse(Array("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".utf8)) == .metrics(head: false))
        #expect(MetricsHTTP.parse(Array("HEAD /metrics?x=1 HTTP/1.0\n\n".utf8)) == .metrics(head: true))
        #expect(MetricsHTTP.parse(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8)) == .incomplete)
    }

    @Test(arguments: [("POST /metrics HTTP/1.1\r\n\r\n", "405 Method Not Allowed"), ("GET /nope HTTP/1.1\r\n\r\n", "404 Not Found"),
                      ("hello there\r\n\r\n", "400 Bad Request"), ("GET / HTTP/1.1\r\n\r\n", "200 OK"),
                      ("\u{01}\u{02} / HTTP/1.1\r\n\r\n", "400 Bad Request")])
    func otherRequestsGetAStatus(request: String, status: String) {
        guard case .answer(let bytes) = MetricsHTTP.parse(Array(request.utf8)) else {
            Issue.record("no answer for \(request)")
            return
        }
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 \(status)\r\n"))
    }

    @Test func responsesCarryLengthAndType() {
        let text = String(decoding: MetricsHTTP.metrics(Array("a 1\n".utf8), head: false), as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\na 1\n")
        #expect(!String(decoding: MetricsHTTP.metrics(Array("a 1\n".utf8), head: true), as: UTF8.self).hasSuffix("a 1\n"))
    }

    @Test(arguments: [("127.0.0.1:9165", "127.0.0.1", 9165), (":9165", "0.0.0.0", 9165), ("9165", "0.0.0.0", 9165),
                      ("[::1]:9650", "::1", 9650)])
    func listenAddresses(text: String, address: String, port: UInt16) {
        let parsed = MetricsListenAddress.parse(text)
        #expect(parsed?.address == IPAddress(address))
        #expect(parsed?.port == port)
    }

    @Test(arguments: ["", "localhost:9165", "::1:9165", "10.0.0.1:0", "10.0.0.1:70000", "[::1]9165", "10.0.0.1:"])
    func badListenAddresses(text: String) {
        #expect(MetricsListenAddress.parse(text) == nil)
    }
}
