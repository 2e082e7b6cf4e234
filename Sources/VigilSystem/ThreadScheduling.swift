@preconcurrency import Glibc
import TCPProbe

/// keepalived schedules its VRRP and checker processes as `vrrp_*` and `checker_*` say (nice,
/// SCHED_RR, CPU affinity, mlockall, RLIMIT_RTTIME). Vigil is one process, and on Linux the
/// first three are per thread: the loop's thread (which sends the adverts) gets the `vrrp_*`
/// plan, the checkers' worker threads the `checker_*` one. Memory locking and the real-time
/// limit are the process's. Used from the loop's thread only.
public final class ThreadScheduling {
    public struct Plan: Equatable, Sendable {
        public var nice: Int?
        public var realtimePriority: Int?
        public var cpus: [Int]
        public init(nice: Int? = nil, realtimePriority: Int? = nil, cpus: [Int] = []) {
            self.nice = nice
            self.realtimePriority = realtimePriority
            self.cpus = cpus
        }
    }

    private struct WeakThread { weak var thread: (any SchedulableThread)? }
    private var workers: [WeakThread] = []
    private var workerPlan = Plan()
    /// Set by the first `apply`: until a configuration asks for something, threads keep what
    /// they were started with (a `chrt` or `taskset` around the daemon included).
    private var active = false
    /// The loop thread's nice value and CPU mask before any plan: what an unset setting means.
    private let originalNice: Int32
    private var originalCPUs = [UInt8](repeating: 0, count: ThreadScheduling.cpuSetSize)
    private let hasOriginalCPUs: Bool
    private var memoryLocked = false
    private var limitSet = false
    /// Failures of plans applied to workers as they start (no caller to hand them to then).
    public var report: (String) -> Void = { _ in }

    public init() {
        errno = 0
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        originalNice = errno == 0 ? nice : 0
        hasOriginalCPUs = originalCPUs.withUnsafeMutableBytes { Self.sched_getaffinity(0, $0.count, $0.baseAddress!) } == 0
    }

    /// The caller's thread, for the loop.
    public static var currentThreadID: Int32 { KernelThread.currentID }

    /// Applies `loop` to the calling (loop) thread and `checkers` to every worker running and
    /// to come; returns one message per call the kernel refused.
    public func apply(loop: Plan, checkers: Plan) -> [String] {
        active = true
        var failures = apply(loop, to: Self.currentThreadID, role: "vrrp")
        workerPlan = checkers
        workers.removeAll { $0.thread == nil }
        for worker in workers {
            guard let thread = worker.thread else { continue }
            failures += apply(checkers, to: thread.threadID, role: "checker")
        }
        return failures
    }

    /// A worker thread was made: it gets the checker plan now.
    public func adopt(_ thread: any SchedulableThread) {
        workers.removeAll { $0.thread == nil }
        workers.append(WeakThread(thread: thread))
        guard active else { return }
        for failure in apply(workerPlan, to: thread.threadID, role: "checker") { report(failure) }
    }

    /// Every setting, so that one a reload removed goes back to what the thread started with
    /// (a worker made by a real-time loop inherits SCHED_RR: it is set back too).
    private func apply(_ plan: Plan, to tid: Int32, role: String) -> [String] {
        var failures: [String] = []
        var param = sched_param()
        param.sched_priority = Int32(plan.realtimePriority ?? 0)
        // SCHED_RESET_ON_FORK: the scripts the loop starts do not inherit real-time priority.
        let policy = plan.realtimePriority == nil ? SCHED_OTHER : SCHED_RR | Self.resetOnFork
        if sched_setscheduler(tid, policy, &param) != 0 {
            failures.append("\(role)_rt_priority \(plan.realtimePriority ?? 0): sched_setscheduler of thread \(tid): \(Self.describe(errno))")
        }
        // keepalived sets the nice value only without a real-time priority.
        let nice = plan.realtimePriority == nil ? Int32(plan.nice ?? Int(originalNice)) : originalNice
        if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(tid), nice) != 0 {
            failures.append("\(role)_priority \(nice): setpriority of thread \(tid): \(Self.describe(errno))")
        }
        var set = [UInt8](repeating: 0, count: Self.cpuSetSize)
        if plan.cpus.isEmpty {
            guard hasOriginalCPUs else { return failures }
            set = originalCPUs
        } else {
            for cpu in plan.cpus { Self.add(cpu, to: &set) }
        }
        if set.withUnsafeMutableBytes({ Self.sched_setaffinity(tid, $0.count, $0.baseAddress!) }) != 0 {
            let cpus = plan.cpus.map(String.init).joined(separator: " ")
            failures.append("\(role)_cpu_affinity \(cpus): sched_setaffinity of thread \(tid): \(Self.describe(errno))")
        }
        return failures
    }

    /// mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), as keepalived's *_no_swap: pages are
    /// locked as they are touched, so the resident size stays what it was.
    public func lockMemory(_ wanted: Bool) -> String? {
        guard wanted != memoryLocked else { return nil }
        if wanted {
            guard mlockall(MCL_CURRENT | MCL_FUTURE | Self.onFault) == 0 else { return "no_swap: mlockall: \(Self.describe(errno))" }
        } else {
            munlockall()
        }
        memoryLocked = wanted
        return nil
    }

    public var isMemoryLocked: Bool { memoryLocked }

    /// RLIMIT_RTTIME's soft limit at half of `microseconds` (keepalived's warning point), so
    /// the kernel sends SIGXCPU when a real-time thread runs that long without sleeping. The
    /// hard limit stays unlimited: keepalived's kills its child there and restarts it, which in
    /// one process would take the VIPs down with it. nil: back to unlimited.
    public func setRealtimeLimit(_ microseconds: UInt64?) -> String? {
        guard microseconds != nil || limitSet else { return nil }
        var limit = rlimit(rlim_cur: microseconds.map { rlim_t($0 / 2) } ?? rlim_t.max, rlim_max: rlim_t.max)
        guard setrlimit(__rlimit_resource_t(Self.rlimitRealtime), &limit) == 0 else {
            return "rlimit_rttime \(microseconds ?? 0): setrlimit: \(Self.describe(errno))"
        }
        limitSet = microseconds != nil
        return nil
    }

    // MARK: Glibc's macros

    private static let resetOnFork: Int32 = 0x4000_0000
    private static let onFault: Int32 = 4

    /// CPU_SETSIZE bits.
    static let cpuSetSize = 128
    private static let rlimitRealtime: UInt32 = 15 // RLIMIT_RTTIME
    @_silgen_name("sched_getaffinity") private static func sched_getaffinity(_ pid: Int32, _ size: Int, _ set: UnsafeMutableRawPointer) -> Int32
    @_silgen_name("sched_setaffinity") private static func sched_setaffinity(_ pid: Int32, _ size: Int, _ set: UnsafeMutableRawPointer) -> Int32

    private static func add(_ cpu: Int, to set: inout [UInt8]) {
        guard cpu >= 0, cpu < cpuSetSize * 8 else { return }
        set[cpu / 8] |= UInt8(1 << (cpu % 8))
    }

    private static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
