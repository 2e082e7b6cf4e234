@preconcurrency import Glibc

/// How one connect attempt ended, in keepalived's classes (layer4.c `socket_bind_connect`,
/// `socket_state`).
public enum ProbeOutcome: Sendable, Hashable {
    /// The handshake completed (SO_ERROR 0). The socket is already closed: TCP_CHECK only
    /// proves the port accepts connections.
    case connected
    /// Refused, unreachable, reset: the server's fault, a failed check.
    case failed(errno: Int32)
    /// No answer within the connect timeout: a failed check.
    case timedOut
    /// The check could not be attempted (socket, bind, SO_MARK, SO_BINDTODEVICE, or a connect
    /// errno keepalived does not blame on the server, such as EADDRNOTAVAIL when local ports
    /// run out). keepalived reschedules without a verdict, so a local fault never empties a pool.
    case notRun(errno: Int32)

    /// What `TCPCheckMachine` wants: true/false for `connectFinished`, nil for `connectAborted`.
    public var verdict: Bool? {
        switch self {
        case .connected: return true
        case .failed, .timedOut: return false
        case .notRun: return nil
        }
    }
}

public struct ProbeResult<ID: Sendable>: Sendable {
    public var id: ID
    public var outcome: ProbeOutcome
    public init(id: ID, outcome: ProbeOutcome) {
        self.id = id
        self.outcome = outcome
    }
    public var success: Bool { outcome == .connected }
}

extension ProbeResult: Equatable where ID: Equatable {}

/// keepalived's conn_opts besides the destination.
public struct ProbeOptions: Sendable, Hashable {
    /// bindto / bind_port; a wildcard address with a port binds only the port.
    public var bindTo: SocketAddress?
    /// bind_if (SO_BINDTODEVICE); needed for IPv6 link-local targets.
    public var interface: String?
    /// fwmark (SO_MARK) so policy routing can steer checks like the traffic they stand for.
    public var fwmark: UInt32

    public init(bindTo: SocketAddress? = nil, interface: String? = nil, fwmark: UInt32 = 0) {
        self.bindTo = bindTo
        self.interface = interface
        self.fwmark = fwmark
    }

    /// keepalived's bindto / bind_port: the address with the port (0 = any), a bare port on
    /// the wildcard address of the target's family, or nothing.
    public static func localAddress(bindTo: SocketAddress?, bindPort: UInt16?, target: SocketAddress) -> SocketAddress? {
        if var local = bindTo {
            local.port = bindPort ?? 0
            return local
        }
        return bindPort.map { .any(target.family, port: $0) }
    }
}

public enum ProbeStart<ID: Sendable>: Sendable {
    /// Watch `fd` for writability (or error) until the deadline.
    case pending(fd: Int32)
    /// Decided without waiting (immediate refusal, local error, loopback fast path).
    case finished(ProbeResult<ID>)
}

/// Monotonic µs, the clock the probers' deadlines are meant to be compared against.
public enum ProbeClock {
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
    }
}

enum ProbeIO {
    enum Opened { case pending(Int32), done(ProbeOutcome) }

    /// Errnos keepalived treats as a failed check rather than a check that did not run, and
    /// three it does not: a blackhole route makes connect() fail with EINVAL, a prohibit route
    /// or a local firewall reject with EACCES / EPERM. keepalived then logs "Rescheduling" and
    /// keeps the server in forever, though it is unreachable from this director (found in the
    /// ECMP lab); Vigil counts them as failures.
    static let serverFaults: Set<Int32> = [ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, EHOSTDOWN, ENETDOWN, ECONNRESET, ECONNABORTED, ETIMEDOUT,
                                           EINVAL, EACCES, EPERM]

    /// socket → options → bind → non-blocking connect. A connect that completes at once is
    /// closed and reported unless the caller keeps the socket (`closeOnConnect` false: an
    /// HTTP fetch goes on over it, and the socket is pending and writable at once).
    static func open(_ target: SocketAddress, _ options: ProbeOptions, closeOnConnect: Bool = true) -> Opened {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(target.addressFamily, type, Int32(IPPROTO_TCP))
        guard fd >= 0 else { return .done(.notRun(errno: errno)) }
        func abandon(_ e: Int32) -> Opened {
            close(fd)
            return .done(.notRun(errno: e))
        }
        if let e = markAndBind(fd, options) { return abandon(e) }
        if let local = options.bindTo {
            guard local.family == target.family else { return abandon(EAFNOSUPPORT) }
            if local.port != 0 {
                // A fixed source port would otherwise be unusable for the next check while the
                // previous connection sits in TIME_WAIT.
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            if local.withSockAddr({ bind(fd, $0, $1) }) != 0 { return abandon(errno) }
        }
        if target.withSockAddr({ connect(fd, $0, $1) }) == 0 {
            guard closeOnConnect else { return .pending(fd) }
            closeAfterCheck(fd, .connected)
            return .done(.connected)
        }
        let e = errno
        if e == EINPROGRESS || e == EINTR { return .pending(fd) }
        close(fd)
        return .done(serverFaults.contains(e) ? .failed(errno: e) : .notRun(errno: e))
    }

    /// keepalived's fwmark (SO_MARK) and bind_if (SO_BINDTODEVICE) on a new check socket;
    /// the errno when one cannot be set.
    static func markAndBind(_ fd: Int32, _ options: ProbeOptions) -> Int32? {
        if options.fwmark != 0 {
            var mark = options.fwmark
            if setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, socklen_t(MemoryLayout<UInt32>.size)) != 0 { return errno }
        }
        if let name = options.interface {
            let rc = name.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
            if rc != 0 { return errno }
        }
        return nil
    }

    /// Ends a finished check. A connected socket is reset (SO_LINGER 0) instead of closed with a
    /// FIN, as HAProxy does for its health checks: the check needs nothing past the handshake,
    /// and an orderly close costs three more packets and leaves a TIME_WAIT socket behind for
    /// 60 s, which at 2,000 checks a second is 120,000 sockets pinning ephemeral ports. The
    /// real server sees an aborted connection, never data.
    static func closeAfterCheck(_ fd: Int32, _ outcome: ProbeOutcome) {
        if outcome == .connected {
            var abort = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
        }
        close(fd)
    }

    /// SO_ERROR after writability; nil means still in progress (a spurious wake-up).
    static func finish(_ fd: Int32) -> ProbeOutcome? {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return .failed(errno: errno) }
        switch err {
        case 0: return .connected
        case EINPROGRESS, EALREADY: return nil
        case ETIMEDOUT: return .timedOut
        default: return .failed(errno: err)
        }
    }
}

/// Outstanding connects by fd plus a min-heap of deadlines, so expiring thousands of probes
/// costs log n per probe instead of a scan per wake-up. Heap entries carry a serial because
/// the kernel reuses fd numbers as soon as one is closed.
struct ProbeTable<ID: Sendable> {
    struct Entry {
        var id: ID
        var deadline: Int64
        var serial: UInt64
    }

    private(set) var entries: [Int32: Entry] = [:]
    private var heap: [(deadline: Int64, fd: Int32, serial: UInt64)] = []
    private var nextSerial: UInt64 = 0

    var count: Int { entries.count }

    mutating func insert(fd: Int32, id: ID, deadline: Int64) {
        nextSerial &+= 1
        entries[fd] = Entry(id: id, deadline: deadline, serial: nextSerial)
        heap.append((deadline, fd, nextSerial))
        siftUp(heap.count - 1)
    }

    mutating func remove(fd: Int32) -> Entry? { entries.removeValue(forKey: fd) }

    var nextDeadline: Int64? {
        mutating get {
            dropStale()
            return heap.first?.deadline
        }
    }

    /// Removes and returns every probe whose deadline is at or before `now`.
    mutating func popExpired(now: Int64) -> [(fd: Int32, entry: Entry)] {
        var out: [(Int32, Entry)] = []
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let e = entries[top.fd], e.serial == top.serial {
                entries[top.fd] = nil
                out.append((top.fd, e))
            }
        }
        return out
    }

    /// Closes and reports every probe past its deadline: what both probers' `expire` do.
    mutating func closeExpired(now: Int64) -> [ProbeResult<ID>] {
        popExpired(now: now).map { fd, entry in
            close(fd)
            return ProbeResult(id: entry.id, outcome: .timedOut)
        }
    }

    /// Closes a probe without a result; nil if the fd is not one of ours.
    mutating func closeWithoutResult(fd: Int32) -> ID? {
        guard let entry = remove(fd: fd) else { return nil }
        close(fd)
        return entry.id
    }

    mutating func closeAll() {
        for fd in entries.keys { _ = closeWithoutResult(fd: fd) }
    }

    private mutating func dropStale() {
        while let top = heap.first {
            if let e = entries[top.fd], e.serial == top.serial { return }
            popTop()
        }
    }

    private mutating func popTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftUp(_ i: Int) {
        var c = i
        while c > 0 {
            let p = (c - 1) / 2
            guard heap[c].deadline < heap[p].deadline else { return }
            heap.swapAt(c, p)
            c = p
        }
    }

    private mutating func siftDown(_ i: Int) {
        var p = i
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < heap.count && heap[l].deadline < heap[m].deadline { m = l }
            if r < heap.count && heap[r].deadline < heap[m].deadline { m = r }
            if m == p { return }
            heap.swapAt(p, m)
            p = m
        }
    }
}

/// How a request/answer check ended (UDP_CHECK, DNS_CHECK, PING_CHECK, SMTP_CHECK).
public enum ExchangeOutcome: Sendable, Hashable {
    case passed
    case failed(String)
    case notRun(errno: Int32)
}

public struct ExchangeResult<ID: Sendable> {
    public var id: ID
    public var outcome: ExchangeOutcome
    public init(id: ID, outcome: ExchangeOutcome) {
        self.id = id
        self.outcome = outcome
    }
}
