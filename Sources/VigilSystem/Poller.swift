@preconcurrency import Glibc
import CNetlink
import TCPProbe

/// One poll(2) call: the daemon's loop owns its timers, so it only needs "which fds are
/// readable before this deadline".
public enum Poller {
    /// Returns the fds that are readable or in error (POLLERR/POLLHUP/POLLNVAL count, so a
    /// broken socket is not silently starved). Negative timeout waits forever. An interrupted
    /// wait (EINTR) returns no fds so the caller re-checks its clock and signals.
    public static func wait(readable fds: [Int32], timeoutMs: Int32) throws(SystemError) -> [Int32] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let count = entries.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMs) }
        if count < 0 {
            if errno == EINTR { return [] }
            throw SystemError.last("poll", nil)
        }
        return ready(entries)
    }

    /// The same with a microsecond timeout (ppoll), so timers fire on time rather than on the
    /// next millisecond. Negative waits forever.
    /// `writable` fds are watched for POLLOUT (non-blocking connects in flight) and reported
    /// in the same list.
    public static func wait(readable fds: [Int32], writable: [Int32] = [], timeoutMicroseconds: Int64) throws(SystemError) -> [Int32] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            + writable.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
        var timeout = timespec(tv_sec: Int(timeoutMicroseconds / 1_000_000), tv_nsec: Int(timeoutMicroseconds % 1_000_000) * 1000)
        let count = entries.withUnsafeMutableBufferPointer { buffer in
            timeoutMicroseconds < 0 ? ppoll(buffer.baseAddress, nfds_t(buffer.count), nil, nil)
                                    : ppoll(buffer.baseAddress, nfds_t(buffer.count), &timeout, nil)
        }
        if count < 0 {
            if errno == EINTR { return [] }
            throw SystemError.last("ppoll", nil)
        }
        return ready(entries)
    }
}

/// The fds with events. A plain loop: a key path here (`map(\.fd)`) was resolved through the
/// runtime's demangler on every loop turn, a measurable share of the daemon's CPU.
private func ready(_ entries: [pollfd]) -> [Int32] {
    var fds: [Int32] = []
    for entry in entries where entry.revents != 0 { fds.append(entry.fd) }
    return fds
}

/// Timers must not jump when the wall clock is stepped (NTP, manual date), as keepalived's
/// own timers use CLOCK_MONOTONIC.
public enum MonotonicClock {
    public static func nowMicroseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
    }
}

/// Waits like `Poller.wait`, but the timeout is a timerfd in the poll set rather than ppoll's
/// own: the kernel gives a poll timeout 0.1 % of its length as slack (select_estimate_accuracy),
/// so a wait of one second woke up to a millisecond late, and every advert and master-down
/// timer with it (keepalived's timers are timerfds and were 0.3 ms more punctual). A timerfd's
/// expiry has no such slack. Without a timerfd (nil from `init`), use `Poller.wait`.
public final class TimerFDPoller {
    private let timer: Int32

    public init?() {
        timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard timer >= 0 else { return nil }
    }

    deinit { close(timer) }

    public func wait(readable fds: [Int32], writable: [Int32] = [], timeoutMicroseconds: Int64) throws(SystemError) -> [Int32] {
        guard timeoutMicroseconds > 0 else { return try Poller.wait(readable: fds, writable: writable, timeoutMicroseconds: timeoutMicroseconds) }
        // Re-arming also clears an expiry left from a wait that descriptors ended first.
        var expiry = itimerspec(it_interval: timespec(),
                                it_value: timespec(tv_sec: Int(timeoutMicroseconds / 1_000_000), tv_nsec: Int(timeoutMicroseconds % 1_000_000) * 1000))
        guard timerfd_settime(timer, 0, &expiry, nil) == 0 else {
            return try Poller.wait(readable: fds, writable: writable, timeoutMicroseconds: timeoutMicroseconds)
        }
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            + writable.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
        entries.append(pollfd(fd: timer, events: Int16(POLLIN), revents: 0))
        let count = entries.withUnsafeMutableBufferPointer { ppoll($0.baseAddress, nfds_t($0.count), nil, nil) }
        if count < 0 {
            if errno == EINTR { return [] }
            throw SystemError.last("ppoll", nil)
        }
        if let last = entries.popLast(), last.revents != 0 {
            var expirations: UInt64 = 0
            _ = read(timer, &expirations, 8)
        }
        return ready(entries)
    }
}

/// The loop's waits on one epoll set, with the deadline as a timerfd in it (see
/// `TimerFDPoller` for why a timerfd). The set changes only when the loop's watches do
/// (`watchesChanged`): poll(2) added and removed a wait queue on every one of the loop's
/// descriptors at every turn, a tenth of an idle master's CPU per advert.
public final class EpollWaiter {
    private let epollSet: EpollSet
    private var epoll: Int32 { epollSet.descriptor }
    private let timer: Int32
    private var registered: [Int32: UInt32] = [:]
    private var stale = true

    public init?() {
        guard let set = EpollSet(batch: 64) else { return nil }
        epollSet = set
        timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard timer >= 0, Epoll.add(set.descriptor, fd: timer, events: Epoll.inbound) == 0 else {
            if timer >= 0 { close(timer) }
            return nil
        }
    }

    deinit { close(timer) }

    /// The next wait brings the set in line with the descriptors it is given.
    public func watchesChanged() { stale = true }

    /// The fds readable (or writable, for `writable`) or in error within the timeout (µs;
    /// negative: no limit). EINTR returns nothing, so the caller re-reads its clock and signals.
    public func wait(readable: [Int32], writable: [Int32], timeoutMicroseconds: Int64) throws(SystemError) -> [Int32] {
        if stale { synchronise(readable, writable) }
        var waitMs: Int32 = -1
        if timeoutMicroseconds == 0 {
            waitMs = 0
        } else {
            // Re-arming (or disarming, for no limit) also clears an expiry left from a wait
            // that descriptors ended first.
            let value = max(0, timeoutMicroseconds)
            var expiry = itimerspec(it_interval: timespec(),
                                    it_value: timespec(tv_sec: Int(value / 1_000_000), tv_nsec: Int(value % 1_000_000) * 1000))
            if timerfd_settime(timer, 0, &expiry, nil) != 0 {
                waitMs = Int32(clamping: (value + 999) / 1_000)
            }
        }
        var ready: [Int32] = []
        let count = epollSet.forEachReady(waitMs: waitMs) { fd, _ in
            if fd == timer {
                var expirations: UInt64 = 0
                _ = read(timer, &expirations, 8)
            } else {
                ready.append(fd)
            }
        }
        if count < 0 {
            if errno == EINTR { return [] }
            throw SystemError.last("epoll_wait", nil)
        }
        return ready
    }

    /// One epoll_ctl per descriptor that came, went or changed interest. A descriptor closed
    /// and its number reused since is no longer in the set (the kernel dropped it at the
    /// close), so a failed MOD is followed by an ADD.
    private func synchronise(_ readable: [Int32], _ writable: [Int32]) {
        stale = false
        var wanted: [Int32: UInt32] = [:]
        for fd in readable { wanted[fd, default: 0] |= Epoll.inbound }
        for fd in writable { wanted[fd, default: 0] |= Epoll.out }
        for fd in registered.keys where wanted[fd] == nil { _ = Epoll.delete(epoll, fd: fd) }
        for (fd, interest) in wanted {
            if registered[fd] != nil, Epoll.modify(epoll, fd: fd, events: interest) == 0 { continue }
            if Epoll.add(epoll, fd: fd, events: interest) != 0, errno == EEXIST {
                _ = Epoll.modify(epoll, fd: fd, events: interest)
            }
        }
        registered = wanted
    }
}
