@preconcurrency import Glibc
import Addressing
import HealthCheck
import Testing
import TCPProbe

/// UDP_CHECK, DNS_CHECK and PING_CHECK requests against real peers in a namespace of our own:
/// a Python UDP echo, dnsmasq, and the peer's own ICMP.
@Suite(.serialized) struct DatagramProberTests {
    static func run(_ prober: DatagramProber<Int>, _ request: DatagramRequest) -> ExchangeOutcome? {
        runExchange(descriptor: prober.descriptor, start: { prober.start(id: 1, request, now: $0) }, ready: prober.ready)
    }

    @Test func udpEchoDNSAndPingAgainstRealPeers() throws {
        let lab = try NetnsLab("dgram")
        defer { lab.destroy() }
        let echo = try Shell.background(["ip", "netns", "exec", lab.b, "python3", "-c",
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('172.16.10.2',7007))\nwhile True:\n d,a=s.recvfrom(2048);s.sendto(d,a)"],
            output: "/dev/null")
        defer { Shell.terminate(echo) }
        let dns = try Shell.background(["ip", "netns", "exec", lab.b, "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                                        "--listen-address=172.16.10.2", "--bind-interfaces", "--port=53",
                                        "--address=/web.lab/172.16.10.44", "--pid-file=", "--user=root"], output: "/tmp/vigil-dnsmasq-\(getpid()).log")
        defer {
            Shell.terminate(dns)
            unlink("/tmp/vigil-dnsmasq-\(getpid()).log")
        }
        usleep(700_000)
        let prober = try #require(try lab.inside(lab.a) { DatagramProber<Int>() })
        let peer = SocketAddress("172.16.10.2", port: 7007)!
        func udp(_ spec: UDPCheckSpec, port: UInt16 = 7007) throws -> ExchangeOutcome? {
            var target = peer
            target.port = port
            let request = DatagramRequest(transport: .udp, target: target, payload: spec.payload, judge: spec.judge,
                                          timeoutPasses: spec.timeoutPasses, timeout: 500_000)
            return try lab.inside(lab.a) { Self.run(prober, request) }
        }
        let hello = Array("hello".utf8)
        #expect(try udp(UDPCheckSpec(payload: hello, requireReply: true, replyData: hello)) == .passed, "the echo answers the payload")
        #expect(try udp(UDPCheckSpec(payload: hello, requireReply: true, replyData: Array("HELLO".utf8))) == .failed("reply data mismatch"))
        #expect(try udp(UDPCheckSpec(payload: hello, requireReply: true, replyData: Array("HELLO".utf8), replyMask: [0x20, 0x20, 0x20, 0x20, 0x20])) == .passed,
                "mask bits are not compared")
        #expect(try udp(UDPCheckSpec(payload: hello, requireReply: true, maxReplyLength: 3)) == .failed("reply of 5 bytes outside 0...3"))
        if case .failed? = try udp(UDPCheckSpec(payload: hello), port: 7008) {} else { Issue.record("a closed port answers port unreachable: a failure") }
        let query = DNSQuery(name: "web.lab", type: 1)
        let id: UInt16 = 0x4242
        let dnsRequest = DatagramRequest(transport: .udp, target: SocketAddress("172.16.10.2", port: 53)!, payload: query.message(id: id),
                                         judge: { DNSQuery.judge($0, id: id) }, timeout: 1_000_000)
        #expect(try lab.inside(lab.a) { Self.run(prober, dnsRequest) } == .passed, "dnsmasq answers NOERROR: \(Shell.readFile("/tmp/vigil-dnsmasq-\(getpid()).log"))")
        let refusedQuery = DNSQuery(name: "elsewhere.example", type: 1)
        let refused = DatagramRequest(transport: .udp, target: SocketAddress("172.16.10.2", port: 53)!, payload: refusedQuery.message(id: id),
                                      judge: { DNSQuery.judge($0, id: id) }, timeout: 1_000_000)
        if case .failed(let why)? = try lab.inside(lab.a, { Self.run(prober, refused) }) { #expect(why.contains("rcode")) }
        else { Issue.record("a name dnsmasq does not serve (no upstream) is not NOERROR") }
        for (address, ipv6) in [("172.16.10.2", false), ("fd00:10::2", true)] {
            let echoID: UInt16 = 0x1234, sequence: UInt16 = 7
            let ping = DatagramRequest(transport: .icmp, target: SocketAddress(address)!, payload: ICMPEcho.request(ipv6: ipv6, id: echoID, sequence: sequence),
                                       judge: { ICMPEcho.judge($0, ipv6: ipv6, id: echoID, sequence: sequence) }, timeout: 1_000_000)
            // On a link just made, the first echo can be lost while the neighbour is being
            // resolved (a real director's checker retries); a second one must pass.
            var outcome = try lab.inside(lab.a) { Self.run(prober, ping) }
            if outcome != .passed { outcome = try lab.inside(lab.a) { Self.run(prober, ping) } }
            #expect(outcome == .passed, "PING_CHECK \(address): \(String(describing: outcome))")
        }
        let silent = DatagramRequest(transport: .icmp, target: SocketAddress("172.16.10.77")!, payload: ICMPEcho.request(ipv6: false, id: 1, sequence: 1),
                                     judge: { ICMPEcho.judge($0, ipv6: false, id: 1, sequence: 1) }, timeout: 300_000)
        #expect(try lab.inside(lab.a) { Self.run(prober, silent) } != .passed, "no one at .77")
        #expect(prober.count == 0)
    }
}

/// Starts one request/answer check and polls its prober until it is over (at most 10 s).
func runExchange(descriptor: Int32, start: (Int64) -> ExchangeResult<Int>?, ready: (Int64) -> [ExchangeResult<Int>]) -> ExchangeOutcome? {
    if let now = start(ProbeClock.now()) { return now.outcome }
    let until = ProbeClock.now() + 10_000_000
    while ProbeClock.now() < until {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&entry, 1, 20)
        if let result = ready(ProbeClock.now()).first { return result.outcome }
    }
    return nil
}
