@preconcurrency import Glibc
import Testing
import Addressing
import TCPProbe

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d + " (errno \(errno))" }
}

/// A listening socket the test owns. `backlog: 0` plus one completed connection fills the
/// accept queue, after which the kernel drops SYNs: a timeout on the wire that never leaves
/// 127.0.0.1.
final class Listener {
    let fd: Int32
    let address: SocketAddress

    init(_ host: String = "127.0.0.1", backlog: Int32 = 128) throws {
        guard let any = SocketAddress(host, port: 0) else { throw TestError("bad host \(host)") }
        let s = socket(any.family == .ipv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw TestError("socket") }
        guard any.withRawSockAddr({ bind(s, $0, $1) }) == 0, listen(s, backlog) == 0 else {
            close(s)
            throw TestError("bind/listen \(host)")
        }
        var bound = any
        bound.port = localPort(s)
        fd = s
        address = bound
    }

    deinit { close(fd) }

    var port: UInt16 { address.port }

    /// Accepts one queued connection (waiting up to 2 s) and returns the client's address.
    func acceptPeer() -> SocketAddress? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 2_000) == 1 else { return nil }
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let c = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &len) } }
        guard c >= 0 else { return nil }
        defer { close(c) }
        return SocketAddress(storage: ss)
    }
}

func localPort(_ fd: Int32) -> UInt16 {
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return SocketAddress(storage: ss)?.port ?? 0
}

/// A port on `host` with nothing listening (bound, read, released).
func closedPort(_ host: String = "127.0.0.1") throws -> UInt16 {
    let l = try Listener(host)
    return l.port
}

extension SocketAddress {
    init?(storage ss: sockaddr_storage) {
        var ss = ss
        switch Int32(ss.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &ss) { $0.load(as: sockaddr_in.self) }
            self.init(bytes: withUnsafeBytes(of: sin.sin_addr) { Array($0) }, port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &ss) { $0.load(as: sockaddr_in6.self) }
            self.init(bytes: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        default:
            return nil
        }
    }

    /// Test-side sockaddr builder (the library's is internal on purpose).
    func withRawSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if family == .ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    }
}

enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case poll, epoll
    var testDescription: String { rawValue }

    func make() throws -> any TCPProbing<Int> {
        switch self {
        case .poll: return TCPProber<Int>()
        case .epoll:
            guard let p = EpollTCPProber<Int>() else { throw TestError("epoll unavailable") }
            return p
        }
    }
}

/// Runs the prober until `expected` results arrived or `limit` µs passed.
func collect(_ p: any TCPProbing<Int>, _ started: [ProbeStart<Int>], expected: Int, limit: Int64 = 5_000_000) -> [Int: ProbeOutcome] {
    var out: [Int: ProbeOutcome] = [:]
    for s in started { if case .finished(let r) = s { out[r.id] = r.outcome } }
    let end = ProbeClock.now() + limit
    while out.count < expected && ProbeClock.now() < end {
        for r in p.wait(maxWait: 50_000) { out[r.id] = r.outcome }
    }
    return out
}

/// Raises the soft descriptor limit towards the hard one (the Debian default soft limit of 1024
/// is below what the scale test holds open); returns the soft limit in force.
@discardableResult
func raiseDescriptorLimit(to wanted: rlim_t) -> rlim_t {
    var rl = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &rl) == 0 else { return 0 }
    if rl.rlim_cur < wanted {
        rl.rlim_cur = min(wanted, rl.rlim_max)
        _ = setrlimit(resource, &rl)
        _ = getrlimit(resource, &rl)
    }
    return rl.rlim_cur
}

enum Env {
    static var isCI: Bool { getenv("CI").map { String(cString: $0) == "true" } ?? false }
    static var isRoot: Bool { geteuid() == 0 }
    static func which(_ tool: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + tool }.first { access($0, X_OK) == 0 }
    }
    /// As in VigilSystemTests: namespace tests run when possible, and under CI=true a missing
    /// prerequisite fails instead of skipping silently.
    static var netnsEnabled: Bool { isCI || (isRoot && which("ip") != nil) }
}

/// posix_spawn without a shell; returns the exit status and combined output.
@discardableResult
func run(_ args: [String]) throws -> (status: Int32, output: String) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw TestError("pipe") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, args[0], &actions, nil, &argv, environ)
    close(fds[1])
    guard rc == 0 else { close(fds[0]); throw TestError("spawn \(args[0])") }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fds[0], &chunk, chunk.count)
        if n > 0 { output += chunk[..<n] } else if n < 0 && errno == EINTR { continue } else { break }
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return ((status >> 8) & 0xFF, String(decoding: output, as: UTF8.self))
}
