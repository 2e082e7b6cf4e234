@preconcurrency import Glibc
import Testing
import VigilSystem

/// The loop's epoll waiter against the kernel: what is readable or writable is reported, the
/// deadline ends an empty wait, and a descriptor closed and its number reused is watched
/// again once the loop says its watches changed.
@Suite struct EpollWaiterTests {
    static func pipePair() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return (fds[0], fds[1])
    }

    @Test func readableWritableAndTheDeadline() throws {
        let waiter = try #require(EpollWaiter())
        let (r, w) = try Self.pipePair()
        defer { close(r); close(w) }
        let started = MonotonicClock.nowMicroseconds()
        #expect(try waiter.wait(readable: [r], writable: [], timeoutMicroseconds: 20_000) == [])
        #expect(MonotonicClock.nowMicroseconds() - started >= 20_000, "the timerfd ended the wait, not earlier")
        _ = write(w, "x", 1)
        #expect(try waiter.wait(readable: [r], writable: [], timeoutMicroseconds: 1_000_000) == [r])
        #expect(try waiter.wait(readable: [r], writable: [], timeoutMicroseconds: 0) == [r], "level-triggered, as poll")
        var byte: UInt8 = 0
        _ = read(r, &byte, 1)
        #expect(try waiter.wait(readable: [r], writable: [], timeoutMicroseconds: 0) == [])
        waiter.watchesChanged()
        #expect(try waiter.wait(readable: [r], writable: [w], timeoutMicroseconds: 1_000_000) == [w], "a pipe with room is writable")
        waiter.watchesChanged()
        #expect(try waiter.wait(readable: [], writable: [], timeoutMicroseconds: 0) == [], "withdrawn: the write end is no longer reported")
    }

    @Test func aReusedDescriptorNumberIsWatchedAgain() throws {
        let waiter = try #require(EpollWaiter())
        let (r, w) = try Self.pipePair()
        #expect(try waiter.wait(readable: [r], writable: [], timeoutMicroseconds: 0) == [])
        close(r)
        close(w)
        // The lowest free numbers: the same ones again, for new files the set never held.
        let (r2, w2) = try Self.pipePair()
        defer { close(r2); close(w2) }
        #expect(r2 == r || r2 == w)
        waiter.watchesChanged()
        _ = write(w2, "x", 1)
        #expect(try waiter.wait(readable: [r2], writable: [], timeoutMicroseconds: 1_000_000) == [r2])
    }
}
