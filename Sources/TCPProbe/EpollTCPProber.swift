@preconcurrency import Glibc

/// The same prober behind one epoll descriptor: the daemon's poll(2) set gains a single fd
/// (`descriptor`, readable when any connect finished) however many checks are in flight, and
/// each wake-up costs only the ready sockets instead of a scan of all of them.
public final class EpollTCPProber<ID: Sendable> {
    var table = ProbeTable<ID>()
    /// The epoll instance; poll it for POLLIN.
    public let descriptor: Int32
    private let events: UnsafeMutableRawBufferPointer
    private let batch: Int

    /// nil when no epoll instance can be had (EMFILE, ENOMEM); fall back to `TCPProber` then.
    public init?(batch: Int = 256) {
        let fd = Epoll.create1(Epoll.cloexec)
        guard fd >= 0 else { return nil }
        descriptor = fd
        self.batch = max(1, batch)
        events = .allocate(byteCount: self.batch * Epoll.eventSize, alignment: 8)
    }

    deinit {
        cancelAll()
        close(descriptor)
        events.deallocate()
    }

    public var count: Int { table.count }
    public var nextDeadline: Int64? { table.nextDeadline }

    public func start(id: ID, target: SocketAddress, options: ProbeOptions = ProbeOptions(), timeout: Int64, now: Int64) -> ProbeStart<ID> {
        switch ProbeIO.open(target, options) {
        case .done(let outcome):
            return .finished(ProbeResult(id: id, outcome: outcome))
        case .pending(let fd):
            guard Epoll.add(descriptor, fd: fd, events: Epoll.out) == 0 else {
                let e = errno
                close(fd)
                return .finished(ProbeResult(id: id, outcome: .notRun(errno: e)))
            }
            table.insert(fd: fd, id: id, deadline: now + timeout)
            return .pending(fd: fd)
        }
    }


    /// Drains finished connects (waiting at most `waitMs`, 0 = don't block), then expires the
    /// overdue ones at `now()`, sampled after the wait so a long wait cannot hide a deadline.
    public func collect(waitMs: Int32 = 0, now: () -> Int64 = ProbeClock.now) -> [ProbeResult<ID>] {
        var results: [ProbeResult<ID>] = []
        var timeout = waitMs
        while true {
            let n = Epoll.wait(descriptor, events.baseAddress, Int32(batch), timeout)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            let ready = UnsafeRawBufferPointer(events)
            for i in 0..<Int(n) {
                let fd = Epoll.fd(in: ready, at: i)
                // Writable without error or hang-up is a completed handshake: no SO_ERROR call.
                let clean = Epoll.flags(in: ready, at: i) & (Epoll.error | Epoll.hangUp) == 0
                guard table.entries[fd] != nil, let outcome = clean ? .connected : ProbeIO.finish(fd),
                      let entry = table.remove(fd: fd) else { continue }
                ProbeIO.closeAfterCheck(fd, outcome)
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

/// An epoll instance with its event buffer, as the HTTP and datagram probers keep one: one
/// descriptor for the loop however many checks are in flight. The daemon's loop waits on one
/// too (`EpollWaiter`).
public final class EpollSet {
    public let descriptor: Int32
    private let events: UnsafeMutableRawBufferPointer
    private let batch: Int

    public init?(batch: Int) {
        let fd = Epoll.create1(Epoll.cloexec)
        guard fd >= 0 else { return nil }
        descriptor = fd
        self.batch = max(1, batch)
        events = .allocate(byteCount: self.batch * Epoll.eventSize, alignment: 8)
    }

    deinit {
        close(descriptor)
        events.deallocate()
    }

    /// A non-blocking connect whose socket the caller keeps (an HTTP fetch, an SMTP
    /// conversation), added to this set for writability; `.done` when it ended at once (refused,
    /// not attempted, or the set would not take it).
    func openWatched(_ target: SocketAddress, _ options: ProbeOptions) -> ProbeIO.Opened {
        let opened = ProbeIO.open(target, options, closeOnConnect: false)
        guard case .pending(let fd) = opened else { return opened }
        guard Epoll.add(descriptor, fd: fd, events: Epoll.out) == 0 else {
            let e = errno
            close(fd)
            return .done(.notRun(errno: e))
        }
        return opened
    }

    /// Waits on `fd` for `events` from now on, unless that is what `interest` already says.
    func watch(_ fd: Int32, _ events: UInt32, interest: inout UInt32) {
        guard interest != events else { return }
        interest = events
        _ = Epoll.modify(descriptor, fd: fd, events: events)
    }

    /// Each ready descriptor and its flags, waiting at most `waitMs` for the first (0: not at
    /// all, -1: without limit); at most one batch per call, the rest stays ready for the next
    /// turn. Returns epoll_wait's count (negative: errno says why).
    @discardableResult
    public func forEachReady(waitMs: Int32 = 0, _ body: (Int32, UInt32) -> Void) -> Int32 {
        let n = Epoll.wait(descriptor, events.baseAddress, Int32(batch), waitMs)
        guard n > 0 else { return n }
        let ready = UnsafeRawBufferPointer(events)
        for i in 0..<Int(n) { body(Epoll.fd(in: ready, at: i), Epoll.flags(in: ready, at: i)) }
        return n
    }
}

/// The Swift Glibc module does not export <sys/epoll.h>, and this package has no C targets, so
/// the three calls are bound by symbol name (resolved by the linker, so this works in a fully
/// static executable, where dlsym cannot find libc's own symbols) and `struct epoll_event` is
/// laid out by hand (packed to 12 bytes on x86-64, 16 elsewhere).
public enum Epoll {
    @_silgen_name("epoll_create1") public static func create1(_ flags: Int32) -> Int32
    @_silgen_name("epoll_ctl") public static func ctl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ event: UnsafeMutableRawPointer?) -> Int32
    @_silgen_name("epoll_wait") public static func wait(_ epfd: Int32, _ events: UnsafeMutableRawPointer?, _ max: Int32, _ timeout: Int32) -> Int32

    public static let cloexec: Int32 = 0o2000000  // EPOLL_CLOEXEC == O_CLOEXEC
    public static let inbound: UInt32 = 0x001     // EPOLLIN
    public static let out: UInt32 = 0x004         // EPOLLOUT
    public static let error: UInt32 = 0x008       // EPOLLERR
    public static let hangUp: UInt32 = 0x010      // EPOLLHUP
    public static let ctlAdd: Int32 = 1           // EPOLL_CTL_ADD
    public static let ctlDelete: Int32 = 2        // EPOLL_CTL_DEL
    public static let ctlModify: Int32 = 3        // EPOLL_CTL_MOD
    #if arch(x86_64)
    public static let eventSize = 12
    public static let dataOffset = 4
    #else
    public static let eventSize = 16
    public static let dataOffset = 8
    #endif

    /// EPOLL_CTL_ADD of `fd` for `events`, the event built on the stack.
    public static func add(_ epfd: Int32, fd: Int32, events: UInt32) -> Int32 {
        control(epfd, ctlAdd, fd: fd, events: events)
    }

    public static func modify(_ epfd: Int32, fd: Int32, events: UInt32) -> Int32 {
        control(epfd, ctlModify, fd: fd, events: events)
    }

    public static func delete(_ epfd: Int32, fd: Int32) -> Int32 {
        ctl(epfd, ctlDelete, fd, nil)
    }

    private static func control(_ epfd: Int32, _ op: Int32, fd: Int32, events: UInt32) -> Int32 {
        withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            buffer.storeBytes(of: fd, toByteOffset: dataOffset, as: Int32.self)
            return ctl(epfd, op, fd, buffer.baseAddress)
        }
    }

    public static func fd(in buffer: UnsafeRawBufferPointer, at index: Int) -> Int32 {
        buffer.loadUnaligned(fromByteOffset: index * eventSize + dataOffset, as: Int32.self)
    }

    public static func flags(in buffer: UnsafeRawBufferPointer, at index: Int) -> UInt32 {
        buffer.loadUnaligned(fromByteOffset: index * eventSize, as: UInt32.self)
    }
}
