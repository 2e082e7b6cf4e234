@preconcurrency import Glibc

/// Owns running scripts for a single-threaded poll(2) loop: the loop calls `poll(now:)` after
/// SIGCHLD or when `nextDeadline` passes. Timeouts follow keepalived: SIGTERM to the process
/// group, SIGKILL 2 s later, then SIGKILL again every 10 s until the child is reaped; once a
/// timed-out leader is gone its group gets a SIGKILL so helpers that ignored SIGTERM die too.
///
/// Children are reaped by pid, never with waitpid(-1), so other children of the process are
/// left alone; conversely nothing else may reap these pids (see `ScriptRunner.reap()`).
public final class ScriptSupervisor<ID: Hashable & Sendable> {
    public struct Finished: Sendable {
        public let id: ID
        public let pid: pid_t
        /// nil if someone else reaped the child, which keepalived calls "lost".
        public let status: ExitStatus?
        /// The deadline passed and we signalled the group: a failure whatever the exit status,
        /// since a script that needed killing did not vouch for anything.
        public let timedOut: Bool
        /// From `start(now:)` to the `poll(now:)` that reaped it.
        public let runtime: Int64

        public var success: Bool { !timedOut && status?.isSuccess == true }
    }

    public static var terminateGrace: Int64 { 2_000_000 }
    public static var killRepeat: Int64 { 10_000_000 }

    private enum Phase { case running, terminating, killing }

    private struct Entry {
        let id: ID
        let pid: pid_t
        let startedAt: Int64
        var deadline: Int64?
        var phase: Phase
    }

    private var entries: [Entry] = []

    public init() {}

    /// `timeout` nil means no deadline (notify scripts run as long as they like, as in
    /// keepalived); deadlines are on the same µs clock as `now`.
    @discardableResult
    public func start(_ spec: ScriptSpec, id: ID, timeout: Int64?, now: Int64) throws(ScriptError) -> SpawnedScript {
        let spawned = try ScriptRunner.spawn(spec)
        entries.append(Entry(id: id, pid: spawned.pid, startedAt: now, deadline: timeout.map { now + $0 }, phase: .running))
        return spawned
    }

    /// For "already running, skipping run": a run being killed still counts.
    public func isRunning(_ id: ID) -> Bool { entries.contains { $0.id == id } }

    public var runningCount: Int { entries.count }

    /// When `poll(now:)` next has work that no SIGCHLD will announce.
    public var nextDeadline: Int64? { entries.lazy.compactMap { $0.deadline }.min() }

    /// Reaps what has finished, then escalates overdue runs. Reaping first means a script that
    /// exited just before its deadline is not counted as timed out because the loop woke late.
    public func poll(now: Int64) -> [Finished] {
        var finished: [Finished] = []
        var remaining: [Entry] = []
        for var entry in entries {
            let status: ExitStatus?
            switch ScriptRunner.waitOutcome(entry.pid) {
            case .running:
                if let deadline = entry.deadline, now >= deadline { escalate(&entry, now: now) }
                remaining.append(entry)
                continue
            case .exited(let exit): status = exit
            case .gone: status = nil
            }
            let timedOut = entry.phase != .running
            if timedOut { ScriptRunner.kill(group: entry.pid, signal: SIGKILL) }
            finished.append(Finished(id: entry.id, pid: entry.pid, status: status, timedOut: timedOut,
                                     runtime: now - entry.startedAt))
        }
        entries = remaining
        return finished
    }

    /// Shutdown: every script gets the timeout treatment now; keep polling until
    /// `runningCount` is 0 (or give up, as the children are in their own groups anyway).
    public func terminateAll(now: Int64) {
        for index in entries.indices where entries[index].phase == .running {
            escalate(&entries[index], now: now)
        }
    }

    /// The timeout treatment for the runs of `id`, now (a long-running reader whose FIFO closes).
    public func terminate(_ id: ID, now: Int64) {
        for index in entries.indices where entries[index].id == id && entries[index].phase == .running {
            escalate(&entries[index], now: now)
        }
    }

    private func escalate(_ entry: inout Entry, now: Int64) {
        switch entry.phase {
        case .running:
            ScriptRunner.kill(group: entry.pid, signal: SIGTERM)
            entry.phase = .terminating
            entry.deadline = now + Self.terminateGrace
        case .terminating, .killing:
            ScriptRunner.kill(group: entry.pid, signal: SIGKILL)
            entry.deadline = now + (entry.phase == .terminating ? Self.terminateGrace : Self.killRepeat)
            entry.phase = .killing
        }
    }
}
