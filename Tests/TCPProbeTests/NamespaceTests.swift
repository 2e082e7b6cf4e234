@preconcurrency import Glibc
import Testing
import TCPProbe

/// Wire behaviour that loopback cannot show, inside a network namespace this test creates and
/// deletes: an on-link address nobody owns (a veth pair with both ends in the namespace; ARP
/// goes unanswered, so the connect hangs: a real timeout) and an
/// `unreachable` route (the kernel refuses at connect: a failure, not a local error). Nothing
/// leaves the namespace.
@Suite(.serialized) struct NamespaceTests {
    static let name = "hcprobe-\(getpid())"

    /// The sockets are created inside the namespace by switching only this thread into it; a
    /// socket stays in the namespace it was created in after the thread switches back.
    static func inNamespace<R>(_ body: () throws -> R) throws -> R { try inNamespace(name, body) }

    static func inNamespace<R>(_ namespace: String, _ body: () throws -> R) throws -> R {
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(nil, "setns") else { throw TestError("no setns") }
        let setns = unsafeBitCast(sym, to: SetNS.self)
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        defer { close(home); close(target) }
        guard home >= 0, target >= 0 else { throw TestError("open netns") }
        let CLONE_NEWNET: Int32 = 0x4000_0000
        guard setns(target, CLONE_NEWNET) == 0 else { throw TestError("setns") }
        defer { precondition(setns(home, CLONE_NEWNET) == 0, "could not return to the original namespace") }
        return try body()
    }

    @Test(.enabled(if: Env.netnsEnabled), arguments: Kind.allCases)
    func routedNowhereTimesOutAndUnreachableFails(kind: Kind) throws {
        let ip = try #require(Env.which("ip"), "ip(8) is needed")
        _ = try? run([ip, "netns", "del", Self.name])
        defer { _ = try? run([ip, "netns", "del", Self.name]) }
        for cmd in [
            ["netns", "add", Self.name],
            ["-n", Self.name, "link", "set", "lo", "up"],
            ["-n", Self.name, "link", "add", "hcv0", "type", "veth", "peer", "name", "hcv1"],
            ["-n", Self.name, "link", "set", "hcv0", "up"],
            ["-n", Self.name, "link", "set", "hcv1", "up"],
            ["-n", Self.name, "addr", "add", "10.77.0.1/24", "dev", "hcv0"],
            ["-n", Self.name, "route", "add", "unreachable", "10.78.0.0/16"],
            ["-n", Self.name, "-6", "route", "add", "unreachable", "2001:db8:78::/48"],
        ] {
            let r = try run([ip] + cmd)
            try #require(r.status == 0, "ip \(cmd.joined(separator: " ")): \(r.output)")
        }
        let p = try kind.make()
        let t0 = ProbeClock.now()
        let started = try Self.inNamespace {
            [
                p.start(id: 1, address: "10.77.0.2", port: 80, bindTo: nil, bindPort: nil, timeout: 400_000, now: t0),
                p.start(id: 2, address: "10.78.0.1", port: 80, bindTo: nil, bindPort: nil, timeout: 400_000, now: t0),
                p.start(id: 3, address: "2001:db8:78::1", port: 80, bindTo: nil, bindPort: nil, timeout: 400_000, now: t0),
            ]
        }
        let got = collect(p, started, expected: 3)
        #expect(got[1] == .timedOut)
        #expect(got[2] == .failed(errno: ENETUNREACH) || got[2] == .failed(errno: EHOSTUNREACH))
        #expect(got[3] == .failed(errno: ENETUNREACH) || got[3] == .failed(errno: EHOSTUNREACH))
        #expect(ProbeClock.now() - t0 >= 400_000)
    }

    /// TCP_CHECK's whole life against a real server in another namespace, over a veth pair: a
    /// listening server passes (and sees the configured bindto source), a stopped one is refused
    /// (a failed check, not a local error), one whose address is gone times out.
    @Test(.enabled(if: Env.netnsEnabled), arguments: Kind.allCases)
    func realServerInAnotherNamespace(kind: Kind) throws {
        let ip = try #require(Env.which("ip"), "ip(8) is needed")
        // The kinds run in parallel: each needs namespaces of its own.
        let director = "hcdir-\(getpid())-\(kind)", server = "hcrs-\(getpid())-\(kind)"
        for ns in [director, server] { _ = try? run([ip, "netns", "del", ns]) }
        defer { for ns in [director, server] { _ = try? run([ip, "netns", "del", ns]) } }
        for cmd in [
            ["netns", "add", director], ["netns", "add", server],
            ["-n", director, "link", "add", "hcd0", "type", "veth", "peer", "name", "hcr0", "netns", server],
            ["-n", director, "addr", "add", "10.79.0.1/24", "dev", "hcd0"],
            ["-n", director, "addr", "add", "10.79.0.5/24", "dev", "hcd0"],
            ["-n", server, "addr", "add", "10.79.0.2/24", "dev", "hcr0"],
            ["-n", server, "addr", "add", "10.79.0.3/24", "dev", "hcr0"],
            ["-n", director, "link", "set", "hcd0", "up"], ["-n", server, "link", "set", "hcr0", "up"],
        ] {
            let r = try run([ip] + cmd)
            try #require(r.status == 0, "ip \(cmd.joined(separator: " ")): \(r.output)")
        }
        var listener: Listener? = try Self.inNamespace(server) { try Listener("10.79.0.2") }
        let port = listener!.port
        let p = try kind.make()
        func probe(_ id: Int, _ address: String, bindTo: String? = nil, timeout: Int64 = 1_000_000) throws -> ProbeOutcome? {
            let started = try Self.inNamespace(director) {
                p.start(id: id, address: address, port: port, bindTo: bindTo, bindPort: nil, timeout: timeout, now: ProbeClock.now())
            }
            return collect(p, [started], expected: 1)[id]
        }
        #expect(try probe(1, "10.79.0.2", bindTo: "10.79.0.5") == .connected)
        #expect(listener!.acceptPeer()?.bytes == [10, 79, 0, 5])
        listener = nil
        #expect(try probe(2, "10.79.0.2") == .failed(errno: ECONNREFUSED))
        _ = try run([ip, "-n", server, "addr", "del", "10.79.0.3/24", "dev", "hcr0"])
        let t0 = ProbeClock.now()
        #expect(try probe(3, "10.79.0.3", timeout: 500_000) == .timedOut)
        #expect(ProbeClock.now() - t0 >= 500_000)
    }
}
