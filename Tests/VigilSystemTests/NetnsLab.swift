@preconcurrency import Glibc
import CNetlink
import Testing
import Addressing
import VigilSystem

/// Why a lab could not be built; under CI=true this fails the test instead of skipping it.
struct LabError: Error, CustomStringConvertible {
    let description: String
}

enum Env {
    static var isCI: Bool { getenv("CI").map { String(cString: $0) == "true" } ?? false }
    static func which(_ tool: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + tool }.first { access($0, X_OK) == 0 }
    }
    static var isRoot: Bool { geteuid() == 0 }
    /// Namespace tests run when possible; under CI they always run so a missing
    /// prerequisite is a failure, not a silent skip.
    static var labEnabled: Bool { isCI || (isRoot && which("ip") != nil) }
    static var tcpdumpEnabled: Bool { isCI || (labEnabled && which("tcpdump") != nil) }
}

/// Runs programs without a shell: posix_spawn + a pipe for combined stdout/stderr.
enum Shell {
    @discardableResult
    static func run(_ args: [String], check: Bool = true) throws -> (status: Int32, output: String) {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw LabError(description: "pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        let pid = try spawn(args, &actions)
        close(pipeFDs[1])
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(pipeFDs[0], &chunk, chunk.count)
            if n > 0 { output += chunk[..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(pipeFDs[0])
        let status = waitExit(pid)
        let text = String(decoding: output, as: UTF8.self)
        if check && status != 0 {
            throw LabError(description: "`\(args.joined(separator: " "))` exited \(status): \(text)")
        }
        return (status, text)
    }

    /// Starts a long-running program with output to a file; the caller waits or kills it.
    static func background(_ args: [String], output path: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        return try spawn(args, &actions)
    }

    static func spawn(_ args: [String], _ actions: inout posix_spawn_file_actions_t) throws -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        // The test process blocks signals for its own threads; a child must not inherit that,
        // or SIGTERM would never reach a server it started.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let rc = posix_spawnp(&pid, args[0], &actions, &attributes, &argv, environ)
        if rc != 0 { throw LabError(description: "cannot run \(args[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    static func waitExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Polls for exit until the deadline; returns whether it exited (and was reaped).
    static func waitExit(_ pid: pid_t, timeoutMs: Int) -> Bool {
        var status: Int32 = 0
        for _ in 0..<max(1, timeoutMs / 20) {
            if waitpid(pid, &status, WNOHANG) == pid { return true }
            usleep(20_000)
        }
        return false
    }

    static func terminate(_ pid: pid_t) {
        var status: Int32 = 0
        kill(pid, SIGTERM)
        _ = waitpid(pid, &status, 0)
    }

    static func readFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let n = read(fd, &chunk, chunk.count), n > 0 { out += chunk[..<n] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Two private network namespaces joined by a veth pair (va in A, vb in B):
///   A: va 172.16.10.1/24 fd00:10::1/64     B: vb 172.16.10.2/24 fd00:10::2/64
/// Everything is created inside the namespaces (`ip -n`), so the host's links and addresses
/// are never touched; deleting the namespaces removes the veth pair too.
final class NetnsLab {
    static let cloneNewNet: Int32 = 0x4000_0000

    let a: String
    let b: String

    init(_ tag: String) throws {
        guard Env.isRoot else { throw LabError(description: "network namespace tests need root (CAP_NET_ADMIN)") }
        guard Env.which("ip") != nil else { throw LabError(description: "iproute2 `ip` not found") }
        NetnsLab.removeStale()
        a = "vgt-\(getpid())-\(tag)-a"
        b = "vgt-\(getpid())-\(tag)-b"
        do {
            for ns in [a, b] {
                try Shell.run(["ip", "netns", "add", ns])
                try Shell.run(["ip", "-n", ns, "link", "set", "lo", "up"])
            }
            try Shell.run(["ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b])
            for (ns, dev, last) in [(a, "va", "1"), (b, "vb", "2")] {
                // No DAD, so IPv6 addresses are usable at once.
                try Shell.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.\(dev).accept_dad=0"])
                try Shell.run(["ip", "-n", ns, "addr", "add", "172.16.10.\(last)/24", "dev", dev])
                try Shell.run(["ip", "-n", ns, "addr", "add", "fd00:10::\(last)/64", "dev", dev, "nodad"])
                try Shell.run(["ip", "-n", ns, "link", "set", dev, "up"])
            }
        } catch {
            destroy()
            throw error
        }
    }

    func destroy() {
        for ns in [a, b] { _ = try? Shell.run(["ip", "netns", "del", ns], check: false) }
    }

    /// Leftovers of an earlier run that was killed before its `defer` ran.
    static func removeStale() {
        guard let listing = try? Shell.run(["ip", "netns", "list"], check: false).output else { return }
        for line in listing.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count >= 2, parts[0] == "vgt", let pid = Int32(parts[1]), pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            _ = try? Shell.run(["ip", "netns", "del", name], check: false)
        }
    }

    /// Runs `body` on a fresh thread that has joined namespace `ns`. Sockets created there
    /// stay in that namespace afterwards and can be used from any thread; the test's own
    /// thread never changes namespace.
    func inside<T>(_ ns: String, _ body: () throws -> T) throws -> T {
        var result: Result<T, any Error>?
        try withoutActuallyEscaping(body) { body in
            let job = Job {
                let fd = open("/run/netns/\(ns)", O_RDONLY | O_CLOEXEC)
                guard fd >= 0, setns(fd, NetnsLab.cloneNewNet) == 0 else {
                    result = .failure(LabError(description: "setns(\(ns)) failed: errno \(errno)"))
                    if fd >= 0 { close(fd) }
                    return
                }
                close(fd)
                result = Result { try body() }
            }
            var thread = pthread_t()
            let context = Unmanaged.passRetained(job).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().work()
                return nil
            }, context)
            if rc != 0 {
                Unmanaged<Job>.fromOpaque(context).release()
                throw LabError(description: "pthread_create failed: \(rc)")
            }
            pthread_join(thread, nil)
        }
        return try result!.get()
    }

    private final class Job {
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    /// tcpdump in namespace `ns`, started and ready before `trigger` runs; returns its output.
    func tcpdump(in ns: String, _ arguments: [String], trigger: () throws -> Void) throws -> String {
        guard Env.which("tcpdump") != nil else { throw LabError(description: "tcpdump not installed") }
        let path = "/tmp/vgt-\(getpid())-\(ns)-\(MonotonicTag.next()).txt"
        defer { unlink(path) }
        let pid = try Shell.background(["ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-c", "1"] + arguments,
                                       output: path)
        var ready = false
        for _ in 0..<250 where !ready {
            usleep(20_000)
            ready = Shell.readFile(path).contains("listening on")
        }
        guard ready else {
            Shell.terminate(pid)
            throw LabError(description: "tcpdump did not start: \(Shell.readFile(path))")
        }
        var exited = false
        do {
            for _ in 0..<5 where !exited {
                try trigger()
                exited = Shell.waitExit(pid, timeoutMs: 1000)
            }
        } catch {
            Shell.terminate(pid)
            throw error
        }
        if !exited { Shell.terminate(pid) }
        return Shell.readFile(path)
    }
}

enum MonotonicTag {
    static func next() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// RFC 1071, written independently of the library's copy so the test checks it.
func rfc1071(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < bytes.count { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// VRRPv2 advert: version 2 type 1, PASS auth, one VIP, interval 1 s.
func vrrpV2Advert(vrid: UInt8 = 77, priority: UInt8 = 100, vips: [IPv4Address] = [IPv4Address(172, 16, 10, 40)],
                  password: String = "11111") -> [UInt8] {
    var pdu: [UInt8] = [0x21, vrid, priority, UInt8(vips.count), 1, 1, 0, 0]
    for vip in vips { pdu += vip.bytes }
    let pass = Array(password.utf8.prefix(8))
    pdu += pass + [UInt8](repeating: 0, count: 8 - pass.count)
    let sum = rfc1071(pdu)
    pdu[6] = UInt8(sum >> 8)
    pdu[7] = UInt8(sum & 0xFF)
    return pdu
}

/// VRRPv3 advert for IPv6 with the checksum left 0: the kernel fills it (IPV6_CHECKSUM).
func vrrpV3Advert(vrid: UInt8 = 77, priority: UInt8 = 100, centiseconds: UInt16 = 100, vips: [IPv6Address]) -> [UInt8] {
    var pdu: [UInt8] = [0x31, vrid, priority, UInt8(vips.count),
                        UInt8(centiseconds >> 8 & 0x0F), UInt8(centiseconds & 0xFF), 0, 0]
    for vip in vips { pdu += vip.bytes }
    return pdu
}

/// The VRRPv3/IPv6 checksum as a receiver checks it: RFC 1071 over pseudo-header + payload.
func ipv6UpperChecksum(source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, _ payload: [UInt8]) -> UInt16 {
    let length = UInt32(payload.count)
    let pseudo = source.bytes + destination.bytes
        + [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0, 0, 0, nextHeader]
    return rfc1071(pseudo + payload)
}
