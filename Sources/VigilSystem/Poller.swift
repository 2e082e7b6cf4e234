@preconcurrency import Glibc
import CNetlink

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
