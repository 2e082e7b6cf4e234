@preconcurrency import Glibc
import Testing
import TCPProbe
import VigilSystem

/// checker_* settings on a real worker thread, read back from /proc as `ps -L` and `chrt -p`
/// would: nice, SCHED_RR with its priority, the CPU mask, and back to the start when a reload
/// removes them.
@Suite(.serialized) struct ThreadSchedulingTests {
    /// (nice, rt_priority, policy) of a thread of this process: /proc/self/task/TID/stat's
    /// fields 19, 40 and 41.
    static func schedulingOf(_ tid: Int32) throws -> (nice: Int, rtPriority: Int, policy: Int) {
        let text = try #require(readText("/proc/self/task/\(tid)/stat"))
        // The command name is in parentheses and may hold spaces: count fields after it.
        let close = try #require(text.lastIndex(of: ")"))
        let fields = text[text.index(after: close)...].split(separator: " ").map(String.init)
        // fields[0] is field 3 (state).
        return (Int(fields[19 - 3])!, Int(fields[40 - 3])!, Int(fields[41 - 3])!)
    }

    static func cpusOf(_ tid: Int32) throws -> String {
        let text = try #require(readText("/proc/self/task/\(tid)/status"))
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        return line.split(separator: "\t").last.map(String.init) ?? ""
    }

    static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func aWorkerGetsTheCheckerPlanAndLosesItWhenItGoes() throws {
        guard getuid() == 0 else { throw SchedulingTestError.needsRoot }
        let scheduling = ThreadScheduling()
        let prober = try #require(EpollTCPProber<Int>())
        let worker = try #require(ProberThread(prober))
        let tid = worker.threadID
        #expect(tid > 0 && tid != ThreadScheduling.currentThreadID)
        let started = try Self.schedulingOf(tid)
        let startCPUs = try Self.cpusOf(tid)

        // Adopted before any plan: left as it was made.
        scheduling.adopt(worker)
        #expect(try Self.schedulingOf(tid) == started)

        #expect(scheduling.apply(loop: .init(), checkers: .init(nice: 7, cpus: [0])) == [])
        #expect(try Self.schedulingOf(tid).nice == 7)
        #expect(try Self.cpusOf(tid) == "0")

        #expect(scheduling.apply(loop: .init(), checkers: .init(nice: 7, realtimePriority: 12)) == [])
        let realtime = try Self.schedulingOf(tid)
        #expect(realtime.policy == 2 && realtime.rtPriority == 12, "SCHED_RR 12: \(realtime)")
        #expect(realtime.nice == started.nice, "keepalived sets the nice value only without a real-time priority")
        #expect(try Self.cpusOf(tid) == startCPUs, "no affinity: back to the mask the process had")

        // A second worker made now gets the plan at once.
        let secondProber = try #require(EpollTCPProber<Int>())
        let second = try #require(ProberThread(secondProber))
        scheduling.adopt(second)
        #expect(try Self.schedulingOf(second.threadID).policy == 2)

        #expect(scheduling.apply(loop: .init(), checkers: .init()) == [])
        #expect(try Self.schedulingOf(tid) == started)
        #expect(try Self.schedulingOf(second.threadID) == started)
    }

    @Test func aCPUThatIsNotThereIsReportedNotFatal() throws {
        guard getuid() == 0 else { throw SchedulingTestError.needsRoot }
        let scheduling = ThreadScheduling()
        let prober = try #require(EpollTCPProber<Int>())
        let worker = try #require(ProberThread(prober))
        scheduling.adopt(worker)
        let failures = scheduling.apply(loop: .init(), checkers: .init(cpus: [1000]))
        #expect(failures.count == 1 && failures[0].hasPrefix("checker_cpu_affinity 1000: sched_setaffinity of thread \(worker.threadID): "), "\(failures)")
        _ = scheduling.apply(loop: .init(), checkers: .init())
    }

    @Test func theRealtimeLimitIsSoftOnly() throws {
        guard getuid() == 0 else { throw SchedulingTestError.needsRoot }
        var before = rlimit()
        getrlimit(__rlimit_resource_t(15), &before)
        let scheduling = ThreadScheduling()
        #expect(scheduling.setRealtimeLimit(10_000) == nil)
        var now = rlimit()
        getrlimit(__rlimit_resource_t(15), &now)
        #expect(now.rlim_cur == 5_000 && now.rlim_max == rlim_t.max)
        #expect(scheduling.setRealtimeLimit(nil) == nil)
        getrlimit(__rlimit_resource_t(15), &now)
        #expect(now.rlim_cur == rlim_t.max)
        setrlimit(__rlimit_resource_t(15), &before)
    }
}

enum SchedulingTestError: Error { case needsRoot }
