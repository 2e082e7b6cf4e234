@preconcurrency import Glibc

/// The same prober behind one epoll descriptor: the daemon's poll(2) set gains a single fd
/// (`descriptor`, readable when any connect finished) however many checks are in flight, and
/// each wake-up costs only the ready sockets instead of a scan of all of them.
public final class EpollTCPProber<ID: Sendable> {
    var table = ProbeTable<ID>()
    /// The epoll instance; poll it for POLLIN.
    public let descriptor: Int32
    private var events: [UInt8]
    private let batch: Int
    private let api: Epoll.API

    /// nil when no epoll instance can be had (symbols missing from the libc, EMFILE); fall back
    /// to `TCPProber` then.
    public init?(batch: Int = 256) {
        guard let api = Epoll.api else { return nil }
        self.api = api
        let fd = api.create1(Epoll.cloexec)
        guard fd >= 0 else { return nil }
        descriptor = fd
        self.batch = max(1, batch)
        events = Array(repeating: 0, count: self.batch * Epoll.eventSize)
    }

    deinit {
        cancelAll()
        close(descriptor)
    }

    public var count: Int { table.count }
    public var nextDeadline: Int64? { table.nextDeadline }

    public func start(id: ID, target: SocketAddress, options: ProbeOptions = ProbeOptions(), timeout: Int64, now: Int64) -> ProbeStart<ID> {
        switch ProbeIO.open(target, options) {
        case .done(let outcome):
            return .finished(ProbeResult(id: id, outcome: outcome))
        case .pending(let fd):
            var ev = Epoll.event(events: Epoll.out, fd: fd)
            guard api.ctl(descriptor, Epoll.ctlAdd, fd, &ev) == 0 else {
                let e = errno
                close(fd)
                return .finished(ProbeResult(id: id, outcome: .notRun(errno: e)))
            }
            table.insert(fd: fd, id: id, deadline: now + timeout)
            return .pending(fd: fd)
        }
    }

    public func start(id: ID, address: String, port: UInt16, bindTo: String? = nil, bindPort: UInt16? = nil, timeout: Int64, now: Int64) -> ProbeStart<ID> {
        guard let options = TCPProber<ID>.options(target: address, bindTo: bindTo, bindPort: bindPort),
              let target = SocketAddress(address, port: port) else {
            return .finished(ProbeResult(id: id, outcome: .notRun(errno: EINVAL)))
        }
        return start(id: id, target: target, options: options, timeout: timeout, now: now)
    }

    /// Drains finished connects (waiting at most `waitMs`, 0 = don't block), then expires the
    /// overdue ones at `now()`, sampled after the wait so a long wait cannot hide a deadline.
    public func collect(waitMs: Int32 = 0, now: () -> Int64 = ProbeClock.now) -> [ProbeResult<ID>] {
        var results: [ProbeResult<ID>] = []
        var timeout = waitMs
        while true {
            let n = api.wait(descriptor, &events, Int32(batch), timeout)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            for i in 0..<Int(n) {
                let fd = Epoll.fd(in: events, at: i)
                guard table.entries[fd] != nil, let outcome = ProbeIO.finish(fd), let entry = table.remove(fd: fd) else { continue }
                close(fd)
                results.append(ProbeResult(id: entry.id, outcome: outcome))
            }
            if Int(n) < batch { break }
            timeout = 0
        }
        return results + expire(now: now())
    }

    /// Convenience loop step: waits up to `maxWait` µs or until the next deadline.
    public func wait(maxWait: Int64) -> [ProbeResult<ID>] {
        let start = ProbeClock.now()
        let until = min(start + max(0, maxWait), nextDeadline ?? Int64.max)
        let ms = Int32(clamping: max(0, (until - start + 999) / 1_000))
        return collect(waitMs: ms)
    }

    public func expire(now: Int64) -> [ProbeResult<ID>] {
        table.closeExpired(now: now)
    }

    @discardableResult
    public func cancel(fd: Int32) -> ID? {
        table.closeWithoutResult(fd: fd)
    }

    public func cancelAll() {
        table.closeAll()
    }
}

/// The Swift Glibc module does not export <sys/epoll.h>, and this package has no C targets,
/// so the three calls are looked up in the already-loaded libc and `struct epoll_event` is
/// laid out by hand (packed to 12 bytes on x86-64, 16 elsewhere).
enum Epoll {
    typealias Create1 = @convention(c) (Int32) -> Int32
    typealias Ctl = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias Wait = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    struct API: @unchecked Sendable {
        let create1: Create1
        let ctl: Ctl
        let wait: Wait
    }

    static let api: API? = {
        guard let c = dlsym(nil, "epoll_create1"), let t = dlsym(nil, "epoll_ctl"), let w = dlsym(nil, "epoll_wait") else { return nil }
        return API(create1: unsafeBitCast(c, to: Create1.self), ctl: unsafeBitCast(t, to: Ctl.self), wait: unsafeBitCast(w, to: Wait.self))
    }()

    static let cloexec: Int32 = 0o2000000  // EPOLL_CLOEXEC == O_CLOEXEC
    static let out: UInt32 = 0x004         // EPOLLOUT
    static let ctlAdd: Int32 = 1           // EPOLL_CTL_ADD
    #if arch(x86_64)
    static let eventSize = 12
    static let dataOffset = 4
    #else
    static let eventSize = 16
    static let dataOffset = 8
    #endif

    static func event(events: UInt32, fd: Int32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: eventSize)
        withUnsafeBytes(of: events) { bytes.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: fd) { bytes.replaceSubrange(dataOffset..<dataOffset + 4, with: $0) }
        return bytes
    }

    static func fd(in buffer: [UInt8], at index: Int) -> Int32 {
        buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * eventSize + dataOffset, as: Int32.self) }
    }
}
