@preconcurrency import Glibc

/// What `ProberThread` can run: a prober with one descriptor that becomes readable when any
/// check can make progress, and a deadline for the ones that time out. `HTTPProber`,
/// `DatagramProber`, `DialogueProber` and `EpollTCPProber` (through `ConnectRequest`) are.
public protocol DescriptorProber: AnyObject {
    associatedtype ID: Sendable
    associatedtype Request
    associatedtype Result
    var descriptor: Int32 { get }
    var nextDeadline: Int64? { get }
    /// A result now when the check could not start.
    func start(id: ID, _ request: Request, now: Int64) -> Result?
    /// The checks that finished (the descriptor was readable) and the ones that timed out.
    func ready(now: Int64) -> [Result]
    func expire(now: Int64) -> [Result]
    func cancelAll()
}

extension HTTPProber: DescriptorProber {}
extension DatagramProber: DescriptorProber {}
extension DialogueProber: DescriptorProber {}

/// A TCP_CHECK connect as a request, so `EpollTCPProber` can run on a `ProberThread`.
public struct ConnectRequest: Sendable {
    public var target: SocketAddress
    public var options: ProbeOptions
    public var timeout: Int64
    public init(target: SocketAddress, options: ProbeOptions, timeout: Int64) {
        self.target = target
        self.options = options
        self.timeout = timeout
    }
}

extension EpollTCPProber: DescriptorProber {
    public func start(id: ID, _ request: ConnectRequest, now: Int64) -> ProbeResult<ID>? {
        switch start(id: id, target: request.target, options: request.options, timeout: request.timeout, now: now) {
        case .finished(let result): result
        case .pending: nil
        }
    }

    public func ready(now: Int64) -> [ProbeResult<ID>] { collect(waitMs: 0, now: { now }) }
}

/// A prober on a thread of its own, so that the syscalls, TLS handshakes and digests of
/// thousands of checks never hold the daemon's loop: keepalived keeps its checkers in a
/// process apart from VRRP for this reason, and a thread gives the kernel's scheduler the same
/// say. The loop's side only queues requests and takes results: `start` appends to a queue
/// (one eventfd write per batch wakes the worker), and `descriptor`, an eventfd, is readable
/// when results wait. The worker owns the inner prober and enforces its deadlines itself, on
/// the real monotonic clock the daemon uses, so `nextDeadline` is nil for the loop.
///
/// The thread is made in `init`, so it is in the network namespace of the thread that made it,
/// and it blocks every signal, so the daemon's handlers keep running on the loop's thread.
public final class ProberThread<Inner: DescriptorProber>: SchedulableThread, @unchecked Sendable {
    /// What the two threads share, behind `lock`; the worker holds a reference of its own.
    final class Shared: @unchecked Sendable {
        let inner: Inner
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Written by the loop's side to wake the worker; written by the worker when results wait.
        let toWorker: Int32
        let toLoop: Int32
        var requests: [(Inner.ID, Inner.Request)] = []
        var results: [Inner.Result] = []
        /// Raised by `cancelAll`; the worker cancels everything in flight and bumps `cancels`.
        var cancelWanted = false
        var cancels = 0
        var stopWanted = false
        /// The worker's kernel thread id, set before `ProberThread.init` returns.
        var threadID: Int32 = 0

        init(inner: Inner, toWorker: Int32, toLoop: Int32) {
            self.inner = inner
            self.toWorker = toWorker
            self.toLoop = toLoop
            pthread_mutex_init(lock, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(lock)
            lock.deallocate()
            changed.deallocate()
            close(toWorker)
            close(toLoop)
        }

        func locked<T>(_ body: () -> T) -> T {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return body()
        }
    }

    private let shared: Shared
    private var thread = pthread_t()
    /// Results taken from the worker, and how many of them `ready` has handed out.
    private var taken: [Inner.Result] = []
    private var handedOut = 0
    /// Started and not yet handed back (the loop's count of checks in flight).
    public private(set) var count = 0

    public let resultsPerCall: Int

    /// nil when no eventfd or thread can be had; the caller runs the prober on its loop then.
    public init?(_ inner: Inner, resultsPerCall: Int = 16) {
        self.resultsPerCall = max(1, resultsPerCall)
        let toWorker = EventFD.make()
        guard toWorker >= 0 else { return nil }
        let toLoop = EventFD.make()
        guard toLoop >= 0 else {
            close(toWorker)
            return nil
        }
        shared = Shared(inner: inner, toWorker: toWorker, toLoop: toLoop)
        // A C function pointer cannot capture the generic parameter: the worker is reached
        // through a non-generic box.
        let context = Unmanaged.passRetained(WorkerBox(shared.run)).toOpaque()
        guard pthread_create(&thread, nil, { context in
            Unmanaged<WorkerBox>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context) == 0 else {
            Unmanaged<WorkerBox>.fromOpaque(context).release()
            return nil
        }
        // The worker says who it is first, so the daemon can schedule it as checker_* says.
        shared.locked { while shared.threadID == 0 { pthread_cond_wait(shared.changed, shared.lock) } }
    }

    /// The worker's kernel thread id (sched_setscheduler, setpriority and sched_setaffinity
    /// take it).
    public var threadID: Int32 { shared.locked { shared.threadID } }

    deinit {
        shared.locked { shared.stopWanted = true }
        EventFD.signal(shared.toWorker)
        pthread_join(thread, nil)
        shared.inner.cancelAll()
    }

    /// Readable when results wait for `ready`.
    public var descriptor: Int32 { shared.toLoop }
    /// The worker keeps the deadlines.
    public var nextDeadline: Int64? { nil }

    /// Queues the check; its result, even a failure to start, comes back through `ready`.
    public func start(id: Inner.ID, _ request: Inner.Request, now: Int64) -> Inner.Result? {
        let wasIdle = shared.locked {
            shared.requests.append((id, request))
            return shared.requests.count == 1
        }
        count += 1
        if wasIdle { EventFD.signal(shared.toWorker) }
        return nil
    }

    /// What the worker finished since the last call, at most `resultsPerCall` of it: the
    /// descriptor stays readable while more wait, so the loop takes the rest on its next turns
    /// and runs its timers in between.
    public func ready(now: Int64) -> [Inner.Result] {
        // Under the lock the worker appends and signals under, so the descriptor is readable
        // exactly while something waits (here or with the worker) after each side's turn.
        pthread_mutex_lock(shared.lock)
        EventFD.drain(shared.toLoop)
        if handedOut == taken.count {
            taken = shared.results
            shared.results = []
            handedOut = 0
        }
        let end = min(taken.count, handedOut + resultsPerCall)
        let results = Array(taken[handedOut..<end])
        handedOut = end
        if handedOut < taken.count || !shared.results.isEmpty { EventFD.signal(shared.toLoop) }
        pthread_mutex_unlock(shared.lock)
        count -= results.count
        return results
    }

    public func expire(now: Int64) -> [Inner.Result] { [] }

    /// Every check in flight or queued ends without a result; returns once the worker has
    /// cancelled them (a reload or the stop must not see a result of a check it dropped).
    public func cancelAll() {
        pthread_mutex_lock(shared.lock)
        shared.requests = []
        shared.cancelWanted = true
        let target = shared.cancels + 1
        EventFD.signal(shared.toWorker)
        while shared.cancels < target { pthread_cond_wait(shared.changed, shared.lock) }
        shared.results = []
        pthread_mutex_unlock(shared.lock)
        EventFD.drain(shared.toLoop)
        taken = []
        handedOut = 0
        count = 0
    }
}

extension ProberThread.Shared {
    /// The worker: waits for the inner prober's descriptor, a request or the next deadline.
    func run() {
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        locked {
            threadID = KernelThread.currentID
            pthread_cond_broadcast(changed)
        }
        var fds = [pollfd(fd: toWorker, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: inner.descriptor, events: Int16(POLLIN), revents: 0)]
        while true {
            let timeout: Int32 = inner.nextDeadline.map { deadline in
                Int32(clamping: max(0, (deadline - ProbeClock.now() + 999) / 1_000))
            } ?? -1
            let n = poll(&fds, 2, timeout)
            if n < 0 && errno != EINTR { usleep(1_000) }
            if fds[0].revents != 0 { EventFD.drain(toWorker) }
            pthread_mutex_lock(lock)
            let stop = stopWanted
            let cancel = cancelWanted
            cancelWanted = false
            let queued = requests
            requests = []
            pthread_mutex_unlock(lock)
            if stop { return }
            if cancel {
                inner.cancelAll()
                pthread_mutex_lock(lock)
                cancels += 1
                pthread_cond_broadcast(changed)
                pthread_mutex_unlock(lock)
                continue
            }
            let now = ProbeClock.now()
            var finished: [Inner.Result] = []
            for (id, request) in queued {
                if let result = inner.start(id: id, request, now: now) { finished.append(result) }
            }
            finished += fds[1].revents != 0 ? inner.ready(now: ProbeClock.now()) : inner.expire(now: ProbeClock.now())
            guard !finished.isEmpty else { continue }
            locked {
                if results.isEmpty { EventFD.signal(toLoop) }
                results += finished
            }
        }
    }
}

/// A thread the daemon may schedule (checker_priority, checker_rt_priority,
/// checker_cpu_affinity), by its kernel thread id.
public protocol SchedulableThread: AnyObject {
    var threadID: Int32 { get }
}

/// gettid(2), bound by symbol name (Glibc's module does not export it).
public enum KernelThread {
    @_silgen_name("gettid") private static func gettid() -> Int32
    public static var currentID: Int32 { gettid() }
}

/// A worker's body as a non-generic object for `pthread_create`'s context pointer.
final class WorkerBox: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// eventfd(2), bound by symbol name as `Epoll`'s calls are (Glibc's module lacks the header).
enum EventFD {
    @_silgen_name("eventfd") private static func eventfd(_ initial: UInt32, _ flags: Int32) -> Int32
    private static let nonBlocking: Int32 = 0o4000     // EFD_NONBLOCK == O_NONBLOCK
    private static let closeOnExec: Int32 = 0o2000000  // EFD_CLOEXEC == O_CLOEXEC

    static func make() -> Int32 { eventfd(0, nonBlocking | closeOnExec) }

    static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    static func drain(_ fd: Int32) {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}
