import Addressing
import Testing
import VRRP
import VigilSystem
@testable import VigilDaemon

/// /metrics on the simulated pair: the series say what the wire and the interfaces show,
/// before and after a failover, and a scraper cannot hold the loop.
@Suite struct MetricsEndpointTests {
    static let instance = #"{iname="VI_1",intf="eth0",vrid="77"}"#
    static let vip = #"{iname="VI_1",intf="eth0",vrid="77",ip_address="10.0.0.100/24"}"#

    @Test func countersMoveExactlyAsTheWireShowsThroughAFailover() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim)
        let lvs02Start = Int64(500_000)
        let wire = sim.wire(since: 0)
        let sentBy01 = wire.filter { $0.node == "lvs01" && $0.advert != nil }
        #expect(lvs01.metric("keepalived_vrrp_state" + Self.vip, in: sim) == 2)
        #expect(lvs02.metric("keepalived_vrrp_state" + Self.vip, in: sim) == 1)
        #expect(lvs01.metric("keepalived_advertisements_sent_total" + Self.instance, in: sim) == Double(sentBy01.count))
        #expect(lvs02.metric("keepalived_advertisements_received_total" + Self.instance, in: sim)
                == Double(sentBy01.filter { $0.time >= lvs02Start }.count))
        #expect(lvs01.metric(#"vigil_vrrp_gratuitous_announcements_sent_total{iname="VI_1"}"#, in: sim)
                == Double(wire.filter { $0.node == "lvs01" && $0.isAnnouncement }.count))
        #expect(lvs01.metric("keepalived_become_master_total" + Self.instance, in: sim) == 1)
        #expect(lvs01.metric(#"vigil_vrrp_transitions_total{iname="VI_1",from="BACKUP",to="MASTER"}"#, in: sim) == 1)
        #expect(lvs02.metric("keepalived_become_master_total" + Self.instance, in: sim) == 0)

        // lvs01 stops: its priority-0 advert makes lvs02 master at once.
        lvs01.stop(in: sim)
        sim.run(3)
        #expect(lvs02.state("VI_1") == .master)
        #expect(lvs02.metric("keepalived_vrrp_state" + Self.vip, in: sim) == 2)
        #expect(lvs02.metric("keepalived_become_master_total" + Self.instance, in: sim) == 1)
        #expect(lvs02.metric("keepalived_priority_zero_received_total" + Self.instance, in: sim) == 1)
        #expect(lvs02.metric(#"vigil_vrrp_transitions_total{iname="VI_1",from="BACKUP",to="MASTER"}"#, in: sim) == 1)
        let sentBy02 = sim.wire(since: 0).filter { $0.node == "lvs02" && $0.advert != nil }.count
        #expect(lvs02.metric("keepalived_advertisements_sent_total" + Self.instance, in: sim) == Double(sentBy02))
        #expect(lvs02.metric(#"vigil_vrrp_effective_priority{iname="VI_1"}"#, in: sim) == 95)
    }

    @Test func reloadsAreCountedByResult() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        lvs01.hangUp()
        sim.run(1)
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(1)
        lvs01.hangUp(with: "vrrp_instance {\n")
        sim.run(1)
        #expect(lvs01.metric(#"vigil_reloads_total{result="unchanged"}"#, in: sim) == 1)
        #expect(lvs01.metric(#"vigil_reloads_total{result="applied"}"#, in: sim) == 1)
        #expect(lvs01.metric(#"vigil_reloads_total{result="refused"}"#, in: sim) == 1)
        #expect(lvs01.metric("vigil_config_last_reload_successful", in: sim) == 0)
        // The new VIP has its state series; both are MASTER's.
        #expect(lvs01.metric(#"keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="77",ip_address="10.0.0.101/24"}"#, in: sim) == 2)
    }

    @Test func slowScrapersDoNotDelayAdverts() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        let listener = try #require(lvs01.listeners[lvs01.metricsAddress])
        let since = sim.now
        let deaf = listener.connect(sending: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8), readsPerTurn: 0)
        let silent = listener.connect()
        let flood = listener.connect(sending: Array(repeating: 0x47, count: 1024 * 1024))
        for _ in 0..<30 { listener.connect(sending: Array("GET /metr".utf8)) }
        sim.run(7)
        #expect(deaf.closed && silent.closed && flood.closed)
        #expect(flood.text.hasPrefix("HTTP/1.1 503"), "\(flood.text.prefix(80))")
        #expect(VRRPReloadTests.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
        #expect(lvs01.scrape("/nothing", in: sim).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(lvs01.scrape(in: sim).contains("keepalived_up 1.0\n"))
    }
}

/// Repeated receive errors: each one is counted, few are logged.
@Suite struct ReceiveErrorLogTests {
    /// Packets no instance can be given (a VRID nobody runs here, too short to name one) are
    /// counted by interface, so every packet read is accounted for.
    @Test func packetsNoInstanceTakesAreCountedByInterface() throws {
        let sim = Simulation()
        let (_, lvs02) = try VRRPReloadTests.settledPair(sim)
        let attacker = IPAddress("10.0.0.66")!, group = IPAddress("224.0.0.18")!
        let foreign = VRRPAdvert(version: .v2, vrid: 12, priority: 200, addresses: [IPAddress("10.0.0.100")!], advertIntervalSeconds: 1)
        let payload = foreign.encode(endpoints: VRRPEndpoints(source: attacker, destination: group)!)
        let header = VRRPSocket.ipv4Header(payloadLength: payload.count, source: IPv4Address("10.0.0.66")!, destination: IPv4Address("224.0.0.18")!, ttl: 255)
        for i in 0..<30 { sim.after(Double(i) * 0.1) { sim.lan.inject(header + payload, source: attacker, segment: "lan") } }
        for i in 0..<7 { sim.after(Double(i) * 0.1) { sim.lan.inject(Array((header + payload).prefix(21)), source: attacker, segment: "lan") } }
        sim.run(5)
        #expect(lvs02.state("VI_1") == .backup)
        #expect(lvs02.metric(#"vigil_vrrp_unmatched_packets_total{intf="eth0",family="inet",reason="unknown_vrid"}"#, in: sim) == 30)
        #expect(lvs02.metric(#"vigil_vrrp_unmatched_packets_total{intf="eth0",family="inet",reason="truncated"}"#, in: sim) == 7)
    }

    /// log_unknown_vrids: keepalived's line for the first such advert of a VRID on an
    /// interface, then a count every window (keepalived logs every one); without it, nothing.
    @Test func unknownVRIDsAreLoggedWhenAsked() throws {
        for asked in [true, false] {
            let sim = Simulation()
            let (_, lvs02) = try VRRPReloadTests.settledPair(sim, lvs02: Configs.pair(priority: 95, globals: asked ? "log_unknown_vrids" : ""))
            let attacker = IPAddress("10.0.0.66")!, group = IPAddress("224.0.0.18")!
            let foreign = VRRPAdvert(version: .v2, vrid: 12, priority: 200, addresses: [IPAddress("10.0.0.100")!], advertIntervalSeconds: 1)
            let payload = foreign.encode(endpoints: VRRPEndpoints(source: attacker, destination: group)!)
            let header = VRRPSocket.ipv4Header(payloadLength: payload.count, source: IPv4Address("10.0.0.66")!, destination: IPv4Address("224.0.0.18")!, ttl: 255)
            for i in 0..<30 { sim.after(Double(i) * 0.1) { sim.lan.inject(header + payload, source: attacker, segment: "lan") } }
            sim.run(12)
            let lines = lvs02.log.lines.map(\.text)
            #expect(lines.filter { $0.contains("Unknown VRID(12) received on interface(eth0). ignoring...") }.count == (asked ? 1 : 0))
            #expect(lines.contains { $0.contains("29 more adverts for VRIDs no instance here runs in the last") && $0.hasSuffix(": VRID 12 on eth0 29") } == asked)
            #expect(lvs02.state("VI_1") == .backup)
        }
    }

    @Test func aFloodOfBadAdvertsIsCountedInFullAndLoggedWithACount() throws {
        let sim = Simulation()
        let (_, lvs02) = try VRRPReloadTests.settledPair(sim)
        let attacker = IPAddress("10.0.0.66")!, group = IPAddress("224.0.0.18")!
        let advert = VRRPAdvert(version: .v2, vrid: 77, priority: 200, addresses: [IPAddress("10.0.0.100")!],
                                authType: .simplePassword, authData: VRRPAdvert.passwordAuthData("guessed"), advertIntervalSeconds: 1)
        let payload = advert.encode(endpoints: VRRPEndpoints(source: attacker, destination: group)!)
        let packet = VRRPSocket.ipv4Header(payloadLength: payload.count, source: IPv4Address("10.0.0.66")!,
                                           destination: IPv4Address("224.0.0.18")!, ttl: 255) + payload
        let logBefore = lvs02.log.lines.count
        for i in 0..<250 { sim.after(Double(i) * 0.1) { sim.lan.inject(packet, source: attacker, segment: "lan") } }
        sim.run(26)
        #expect(lvs02.state("VI_1") == .backup, "a wrong password never takes over")
        #expect(lvs02.instance("VI_1")!.stats.authFailures == 250)
        #expect(lvs02.metric(#"keepalived_authentication_failure_total{iname="VI_1",intf="eth0",vrid="77"}"#, in: sim) == 250)
        #expect(lvs02.metric(#"vigil_vrrp_receive_errors_total{iname="VI_1",reason="auth_failure"}"#, in: sim) == 250)
        let logged = lvs02.log.lines.dropFirst(logBefore).map(\.text).filter { $0.contains("auth_failure") }
        #expect(logged.count <= 6, "one line and one summary per 10 s: \(logged)")
        let summed = logged.compactMap { line -> Int? in
            guard let range = line.range(of: " more adverts counted") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last!)
        }
        #expect(summed.count >= 2 && summed.allSatisfy { $0 > 90 }, "\(logged)")
    }
}
