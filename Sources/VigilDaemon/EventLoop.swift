import VigilSystem

/// A part of the daemon with timed work: the loop wakes at the earliest host's deadline and
/// then lets every host do what is due. Hosts compute their deadlines from their pure cores
/// (state machines, heaps, schedules), so a deadline can never be lost or doubled: it is
/// always the core's own, re-read every turn.
public protocol LoopHost: AnyObject {
    var nextDeadline: Int64? { get }
    func runDueWork(at now: Int64)
}

/// The daemon's main thread (the checkers' I/O has workers of its own, `ProberThread`): a
/// registry of descriptors and hosts, and a turn that waits for the earliest of them. Hosts
/// register and withdraw as they come and go (a reload opens and closes VRRP sockets), and
/// handlers run in registration order, so the signal pipe, which registers first, is always
/// handled before the packets that arrived with it.
public final class EventLoop {
    public enum Interest: Sendable { case readable, writable }

    private struct Watch {
        var fd: Int32
        var interest: Interest
        var serial: Int
        var handler: (Int64) -> Void
    }

    private let clock: any DaemonClock
    private let waiter: any DescriptorWaiter
    private var watches: [Watch] = []
    /// The descriptors by interest, rebuilt only when the watches change, not at every turn.
    private var readable: [Int32] = []
    private var writable: [Int32] = []
    private var serials: [Int32: Int] = [:]
    private var nextSerial = 0
    private var hosts: [any LoopHost] = []
    /// The longest single wait, so a clock or deadline bug can never park the daemon.
    public static let maximumWait: Int64 = 60_000_000
    public var onWaitError: (SystemError) -> Void = { _ in }

    public init(clock: any DaemonClock, waiter: any DescriptorWaiter) {
        self.clock = clock
        self.waiter = waiter
    }

    public func watch(_ fd: Int32, for interest: Interest = .readable, _ handler: @escaping (Int64) -> Void) {
        unwatch(fd)
        nextSerial += 1
        serials[fd] = nextSerial
        watches.append(Watch(fd: fd, interest: interest, serial: nextSerial, handler: handler))
        watchesChanged()
    }

    public func unwatch(_ fd: Int32) {
        guard serials.removeValue(forKey: fd) != nil else { return }
        watches.removeAll { $0.fd == fd }
        watchesChanged()
    }

    private func watchesChanged() {
        readable = []
        writable = []
        for w in watches { if w.interest == .readable { readable.append(w.fd) } else { writable.append(w.fd) } }
        waiter.watchesChanged()
    }

    /// How many descriptors are registered (tests check that a reload withdrew some).
    public var watchedDescriptors: Int { watches.count }

    public func add(_ host: any LoopHost) {
        guard !hosts.contains(where: { $0 === host }) else { return }
        hosts.append(host)
    }

    /// The earliest deadline of any host.
    public var nextDeadline: Int64? {
        var earliest: Int64?
        for host in hosts { if let d = host.nextDeadline, d < (earliest ?? .max) { earliest = d } }
        return earliest
    }

    /// One turn: wait until a descriptor is ready or the earliest deadline (at most
    /// `maxWait` µs), run the ready descriptors' handlers, then every host's due work.
    /// Called when a wait ended more than `lateAfter` µs past the earliest deadline it waited
    /// for: the process was not scheduled (keepalived's "A thread timer expired").
    public var onLate: ((Int64) -> Void)?
    public var lateAfter: Int64 = 1_000_000

    public func turn(maxWait: Int64 = EventLoop.maximumWait) {
        let now = clock.now()
        let deadline = nextDeadline
        let until = deadline.map { $0 - now } ?? maxWait
        let timeout = min(max(0, until), maxWait)
        let ready: [Int32]
        do { ready = try waiter.wait(readable: readable, writable: writable, timeout: timeout) } catch {
            onWaitError(error)
            return
        }
        if let onLate, let deadline {
            // Past what the wait was asked for (a deadline already due means "at once": a
            // host's 0 is not lateness).
            let late = clock.now() - max(deadline, now)
            if late > lateAfter { onLate(late) }
        }
        if !ready.isEmpty {
            let started = clock.now()
            // A snapshot, because handlers may register or withdraw descriptors; a watch
            // withdrawn (or replaced) meanwhile is skipped. A turn has few ready descriptors:
            // a linear search beats building a set.
            for w in watches where ready.contains(w.fd) && serials[w.fd] == w.serial {
                w.handler(clock.now())
            }
            // A handler that took long (a reload reading a large file) let packets queue that
            // this turn's wait did not see: the next turn reads them before any timer runs, so
            // a backup hears the master's adverts before its down timer is looked at.
            if clock.now() - started > Self.slowHandler { return }
        }
        for host in hosts { host.runDueWork(at: clock.now()) }
    }

    /// Handlers slower than this end the turn before the hosts' due work (see `turn`).
    public static let slowHandler: Int64 = 10_000
}
