@preconcurrency import Glibc
import Testing
@testable import TCPProbe

@Suite struct SocketAddressTests {
    @Test func parsesTextAndBytes() {
        #expect(SocketAddress("10.1.2.3", port: 80)?.bytes == [10, 1, 2, 3])
        #expect(SocketAddress("10.1.2.3", port: 80)?.description == "10.1.2.3:80")
        #expect(SocketAddress("::1", port: 443)?.bytes == Array(repeating: 0, count: 15) + [1])
        #expect(SocketAddress("2001:db8::5", port: 443)?.description == "[2001:db8::5]:443")
        #expect(SocketAddress("fe80::1%lo")?.scopeID == if_nametoindex("lo"))
        #expect(SocketAddress("fe80::1%nosuchif0") == nil)
        #expect(SocketAddress("1.2.3.4%lo") == nil)
        #expect(SocketAddress("300.1.1.1") == nil)
        #expect(SocketAddress("example.org") == nil)
        #expect(SocketAddress(bytes: [127, 0, 0, 1], port: 9)?.family == .ipv4)
        #expect(SocketAddress(bytes: [1, 2, 3]) == nil)
        #expect(SocketAddress.any(.ipv6, port: 7).description == "[::]:7")
    }

    @Test func verdictsFollowKeepalived() {
        #expect(ProbeOutcome.connected.verdict == true)
        #expect(ProbeOutcome.failed(errno: ECONNREFUSED).verdict == false)
        #expect(ProbeOutcome.timedOut.verdict == false)
        #expect(ProbeOutcome.notRun(errno: EADDRNOTAVAIL).verdict == nil)
    }
}

@Suite struct ProbeTableTests {
    @Test func deadlinesComeOutInOrderAndReusedDescriptorsAreNotConfused() {
        var t = ProbeTable<Int>()
        var rng = SystemRandomNumberGenerator()
        var expected: [Int64] = []
        for i in 0..<2_000 {
            let d = Int64.random(in: 0...1_000_000, using: &rng)
            t.insert(fd: Int32(i), id: i, deadline: d)
            expected.append(d)
        }
        // fd 5 finishes, and the kernel hands the number out again for a later probe.
        let old = t.remove(fd: 5)!
        t.insert(fd: 5, id: 9_999, deadline: 2_000_000)
        expected.removeAll { $0 == old.deadline }
        #expect(t.nextDeadline == expected.min())
        let first = t.popExpired(now: 1_000_000)
        #expect(first.map(\.entry.deadline) == expected.sorted())
        #expect(!first.contains { $0.entry.id == 9_999 })
        #expect(t.count == 1 && t.nextDeadline == 2_000_000)
        #expect(t.popExpired(now: 2_000_000).map(\.entry.id) == [9_999])
        #expect(t.nextDeadline == nil)
    }
}

@Suite struct TCPProbeLoopbackTests {
    @Test(arguments: Kind.allCases, ["127.0.0.1", "::1"])
    func connectsToAListener(kind: Kind, host: String) throws {
        let l = try Listener(host)
        let p = try kind.make()
        let started = p.start(id: 1, address: host, port: l.port, timeout: 2_000_000, now: ProbeClock.now())
        let got = collect(p, [started], expected: 1)
        #expect(got == [1: .connected])
        #expect(p.count == 0)  // the socket is closed straight away
        #expect(l.acceptPeer() != nil)
    }

    @Test(arguments: Kind.allCases)
    func bytesAddressAndRefusedPort(kind: Kind) throws {
        let l = try Listener()
        let dead = try closedPort()
        let p = try kind.make()
        let now = ProbeClock.now()
        let started = [
            p.start(id: 1, target: SocketAddress(bytes: [127, 0, 0, 1], port: l.port)!, options: ProbeOptions(), timeout: 2_000_000, now: now),
            p.start(id: 2, target: SocketAddress(bytes: [127, 0, 0, 1], port: dead)!, options: ProbeOptions(), timeout: 2_000_000, now: now),
        ]
        #expect(collect(p, started, expected: 2) == [1: .connected, 2: .failed(errno: ECONNREFUSED)])
    }

    /// The accept queue of a backlog-0 listener holds one connection; the next SYN is dropped,
    /// so the connect hangs exactly as against a blackholed server.
    @Test(arguments: Kind.allCases)
    func timesOutOnTheWire(kind: Kind) throws {
        let l = try Listener(backlog: 0)
        let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(filler) }
        #expect(l.address.withRawSockAddr { connect(filler, $0, $1) } == 0)
        let p = try kind.make()
        let t0 = ProbeClock.now()
        let started = p.start(id: 7, target: l.address, options: ProbeOptions(), timeout: 300_000, now: t0)
        guard case .pending = started else {
            Issue.record("expected a pending connect, got \(started)")
            return
        }
        #expect(p.nextDeadline == t0 + 300_000)
        #expect(collect(p, [started], expected: 1) == [7: .timedOut])
        let elapsed = ProbeClock.now() - t0
        #expect(elapsed >= 300_000 && elapsed < 1_000_000, "elapsed \(elapsed) µs")
        #expect(p.count == 0 && p.nextDeadline == nil)
    }

    @Test(arguments: Kind.allCases)
    func expireIsDrivenByTheCallersClock(kind: Kind) throws {
        let l = try Listener(backlog: 0)
        let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(filler) }
        #expect(l.address.withRawSockAddr { connect(filler, $0, $1) } == 0)
        let p = try kind.make()
        let t0: Int64 = 1_000_000_000  // any clock will do; the prober only compares
        guard case .pending(let fd) = p.start(id: 3, target: l.address, options: ProbeOptions(), timeout: 10_000_000, now: t0) else {
            Issue.record("expected pending")
            return
        }
        #expect(p.expire(now: t0 + 9_999_999).isEmpty)
        #expect(p.expire(now: t0 + 10_000_000).map(\.outcome) == [.timedOut])
        #expect(p.count == 0 && p.cancel(fd: fd) == nil)
        // cancel abandons without a result
        guard case .pending(let fd2) = p.start(id: 4, target: l.address, options: ProbeOptions(), timeout: 10_000_000, now: t0) else {
            Issue.record("expected pending")
            return
        }
        #expect(p.cancel(fd: fd2) == 4)
        #expect(p.expire(now: .max).isEmpty && p.count == 0)
    }

    @Test(arguments: Kind.allCases)
    func bindsSourceAddressAndPort(kind: Kind) throws {
        let l = try Listener()
        let p = try kind.make()
        let sourcePort = try closedPort("127.0.0.2")
        let started = p.start(id: 1, address: "127.0.0.1", port: l.port, bindTo: "127.0.0.2", bindPort: sourcePort, timeout: 2_000_000, now: ProbeClock.now())
        #expect(collect(p, [started], expected: 1) == [1: .connected])
        let peer = try #require(l.acceptPeer())
        #expect(peer.bytes == [127, 0, 0, 2] && peer.port == sourcePort)

        let portOnly = try closedPort()
        let s2 = p.start(id: 2, address: "127.0.0.1", port: l.port, bindTo: nil, bindPort: portOnly, timeout: 2_000_000, now: ProbeClock.now())
        #expect(collect(p, [s2], expected: 1) == [2: .connected])
        #expect(l.acceptPeer()?.port == portOnly)
    }

    @Test(arguments: Kind.allCases)
    func localProblemsAreNotVerdicts(kind: Kind) throws {
        let l = try Listener()
        let p = try kind.make()
        let now = ProbeClock.now()
        func outcome(_ s: ProbeStart<Int>) -> ProbeOutcome? {
            if case .finished(let r) = s { return r.outcome }
            return nil
        }
        #expect(outcome(p.start(id: 1, address: "not-an-ip", port: 80, bindTo: nil, bindPort: nil, timeout: 1, now: now)) == .notRun(errno: EINVAL))
        // 192.0.2.1 is not local: bind fails before anything is sent.
        #expect(outcome(p.start(id: 2, address: "127.0.0.1", port: l.port, bindTo: "192.0.2.1", bindPort: nil, timeout: 1, now: now)) == .notRun(errno: EADDRNOTAVAIL))
        #expect(outcome(p.start(id: 3, target: l.address, options: ProbeOptions(bindTo: SocketAddress("::1")), timeout: 1, now: now)) == .notRun(errno: EAFNOSUPPORT))
        #expect(outcome(p.start(id: 4, target: l.address, options: ProbeOptions(interface: "nosuchif0"), timeout: 1, now: now)) == .notRun(errno: ENODEV))
        #expect(p.count == 0)
    }

    @Test(arguments: Kind.allCases)
    func interfaceAndFwmarkOptions(kind: Kind) throws {
        let l = try Listener()
        let p = try kind.make()
        let s1 = p.start(id: 1, target: l.address, options: ProbeOptions(interface: "lo"), timeout: 2_000_000, now: ProbeClock.now())
        let s2 = p.start(id: 2, target: l.address, options: ProbeOptions(fwmark: 7), timeout: 2_000_000, now: ProbeClock.now())
        let got = collect(p, [s1, s2], expected: 2)
        #expect(got[1] == .connected)
        // SO_MARK needs CAP_NET_ADMIN; without it the check cannot run, which is not a verdict.
        #expect(got[2] == (Env.isRoot ? .connected : .notRun(errno: EPERM)))
    }

    /// Thousands of checks in flight on one thread: 1 500 connects and 500 refusals at once
    /// (fewer if the hard descriptor limit does not allow it; both cases may run concurrently).
    @Test(arguments: Kind.allCases)
    func manyConcurrentProbes(kind: Kind) throws {
        let limit = Int(raiseDescriptorLimit(to: 16_384))
        let total = min(2_000, max(200, (limit - 512) / 2))
        let good = total * 3 / 4
        let l = try Listener(backlog: 4_096)
        let dead = try closedPort()
        let p = try kind.make()
        let now = ProbeClock.now()
        var started: [ProbeStart<Int>] = []
        for i in 0..<total {
            let port = i < good ? l.port : dead
            started.append(p.start(id: i, target: SocketAddress(bytes: [127, 0, 0, 1], port: port)!, options: ProbeOptions(), timeout: 5_000_000, now: now))
        }
        let t0 = ProbeClock.now()
        let got = collect(p, started, expected: total, limit: 20_000_000)
        #expect(got.count == total)
        #expect(got.filter { $0.key < good && $0.value == .connected }.count == good)
        #expect(got.filter { $0.key >= good && $0.value == .failed(errno: ECONNREFUSED) }.count == total - good)
        #expect(p.count == 0)
        #expect(ProbeClock.now() - t0 < 10_000_000)
    }
}
