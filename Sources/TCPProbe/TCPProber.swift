@preconcurrency import Glibc

/// Many TCP_CHECK connects in flight on one thread: each is a non-blocking socket watched for
/// writability, so thousands of checks cost file descriptors, not threads. The caller owns the
/// loop: it polls `descriptors` for POLLOUT (or uses `wait`), then calls `handleWritable` and
/// `expire`. Not thread-safe; one prober per event loop.
public final class TCPProber<ID: Sendable> {
    var table = ProbeTable<ID>()

    public init() {}

    deinit { cancelAll() }

    /// Probes in flight.
    public var count: Int { table.count }

    /// The sockets to poll for POLLOUT.
    public var descriptors: [Int32] { Array(table.entries.keys) }

    /// When `expire` next has something to do.
    public var nextDeadline: Int64? { table.nextDeadline }

    public func start(id: ID, target: SocketAddress, options: ProbeOptions = ProbeOptions(), timeout: Int64, now: Int64) -> ProbeStart<ID> {
        switch ProbeIO.open(target, options) {
        case .done(let outcome):
            return .finished(ProbeResult(id: id, outcome: outcome))
        case .pending(let fd):
            table.insert(fd: fd, id: id, deadline: now + timeout)
            return .pending(fd: fd)
        }
    }


    /// Call for POLLOUT, POLLERR or POLLHUP on one of `descriptors`; nil if the connect is
    /// still in progress or the fd is not ours.
    public func handleWritable(fd: Int32) -> ProbeResult<ID>? {
        guard table.entries[fd] != nil, let outcome = ProbeIO.finish(fd), let entry = table.remove(fd: fd) else { return nil }
        ProbeIO.closeAfterCheck(fd, outcome)
        return ProbeResult(id: entry.id, outcome: outcome)
    }

    /// Times out every probe whose deadline has passed.
    public func expire(now: Int64) -> [ProbeResult<ID>] {
        table.closeExpired(now: now)
    }

    /// Abandons a probe without a result (checker removed on reload, shutdown).
    @discardableResult
    public func cancel(fd: Int32) -> ID? {
        table.closeWithoutResult(fd: fd)
    }

    public func cancelAll() {
        table.closeAll()
    }

    /// Convenience loop step for callers without their own poll set: waits up to `maxWait` µs
    /// (or the next deadline) on ProbeClock and returns whatever finished.
    public func wait(maxWait: Int64) -> [ProbeResult<ID>] {
        let now = ProbeClock.now()
        var fds = table.entries.keys.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
        let until = min(now + max(0, maxWait), nextDeadline ?? Int64.max)
        let ms = Int32(clamping: max(0, (until - now + 999) / 1_000))
        var results: [ProbeResult<ID>] = []
        if fds.isEmpty {
            if ms > 0 { usleep(UInt32(clamping: Int64(ms) * 1_000)) }
        } else if poll(&fds, nfds_t(fds.count), ms) > 0 {
            for p in fds where p.revents != 0 {
                if let r = handleWritable(fd: p.fd) { results.append(r) }
            }
        }
        return results + expire(now: ProbeClock.now())
    }
}
