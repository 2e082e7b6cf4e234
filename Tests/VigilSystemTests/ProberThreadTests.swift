@preconcurrency import Glibc
import Addressing
import HealthCheck
import Testing
import TCPProbe
import VigilSystem

/// The checkers' worker thread: the caller only queues and collects, the worker does the
/// checks and keeps their deadlines, and a cancel leaves nothing behind.
@Suite(.serialized) struct ProberThreadTests {
    /// A prober whose checks block until the test opens a gate: if `start` ran on the caller's
    /// thread, the caller would be stuck there (for at most 5 s, then `gateTimedOut`).
    final class GatedProber: DescriptorProber {
        struct Result { var id: Int; var thread: pthread_t; var gateTimedOut: Bool }
        let gate = Pipe()
        let idle = Pipe()
        var descriptor: Int32 { idle.read }   // never readable: results only come from start
        var nextDeadline: Int64? { nil }
        func start(id: Int, _ request: Int, now: Int64) -> Result? {
            var entry = pollfd(fd: gate.read, events: Int16(POLLIN), revents: 0)
            let opened = poll(&entry, 1, 5_000) == 1
            return Result(id: id, thread: pthread_self(), gateTimedOut: !opened)
        }
        func ready(now: Int64) -> [Result] { [] }
        func expire(now: Int64) -> [Result] { [] }
        func cancelAll() {}
    }

    /// Answers every check at once, on the worker.
    final class InstantProber: DescriptorProber {
        let never = Pipe()
        var descriptor: Int32 { never.read }
        var nextDeadline: Int64? { nil }
        func start(id: Int, _ request: Int, now: Int64) -> Int? { id }
        func ready(now: Int64) -> [Int] { [] }
        func expire(now: Int64) -> [Int] { [] }
        func cancelAll() {}
    }

    /// A pipe that is never written to.
    final class Pipe {
        let read: Int32, write: Int32
        init() {
            var fds: [Int32] = [-1, -1]
            _ = pipe(&fds)
            (read, write) = (fds[0], fds[1])
        }
        deinit { close(read); close(write) }
    }

    static func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }

    /// A burst of results reaches the loop a batch per call, the descriptor readable until
    /// the last is taken, so the loop's timers run between the batches.
    @Test func aBurstOfResultsComesBackInBatches() throws {
        let worker = try #require(ProberThread(InstantProber(), resultsPerCall: 16))
        for id in 0..<40 { _ = worker.start(id: id, 0, now: 0) }
        var batches: [[Int]] = []
        let until = ProbeClock.now() + 10_000_000
        var seen = 0
        while seen < 40 && ProbeClock.now() < until {
            var entry = pollfd(fd: worker.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 50)
            let batch = worker.ready(now: 0)
            if !batch.isEmpty { batches.append(batch); seen += batch.count }
            if seen < 40 && seen > 0 && seen % 16 == 0 { #expect(Self.readable(worker.descriptor) || worker.count > 0) }
        }
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<40), "every result once")
        #expect(batches.allSatisfy { $0.count <= 16 })
        #expect(worker.count == 0)
        #expect(!Self.readable(worker.descriptor), "nothing left to take")
    }

    /// Waits (at most 10 s) until `want` results came through the descriptor.
    static func collect<P>(_ worker: ProberThread<P>, _ want: Int) -> [P.Result] {
        var results: [P.Result] = []
        let until = ProbeClock.now() + 10_000_000
        while results.count < want && ProbeClock.now() < until {
            var entry = pollfd(fd: worker.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 50)
            results += worker.ready(now: ProbeClock.now())
        }
        return results
    }

    @Test func theCheckRunsOnTheWorkerWhileTheCallerGoesOn() throws {
        let inner = GatedProber()
        let worker = try #require(ProberThread(inner))
        #expect(worker.start(id: 7, 0, now: ProbeClock.now()) == nil, "the caller gets no result from start")
        #expect(worker.count == 1)
        #expect(worker.nextDeadline == nil, "the worker keeps the deadlines")
        // The caller is back while the check still waits for the gate; opening it lets it end.
        var byte: UInt8 = 1
        _ = write(inner.gate.write, &byte, 1)
        let results = Self.collect(worker, 1)
        #expect(results.count == 1 && results.first?.id == 7)
        #expect(results.first?.gateTimedOut == false, "the check was still waiting when the caller opened the gate")
        #expect(results.first.map { pthread_equal($0.thread, pthread_self()) == 0 } == true, "the check ran on another thread")
        #expect(worker.count == 0)
    }

    /// Real fetches through the worker against Python's http.server in a namespace of our own,
    /// a closed port and a server that never answers, whose timeout the worker enforces with
    /// nobody calling `expire`.
    @Test func fetchesTheirFailuresAndTimeoutsComeBackFromTheWorker() throws {
        let lab = try NetnsLab("pthread")
        defer { lab.destroy() }
        let directory = "/tmp/vigil-pthread-\(getpid())"
        let server = try HTTPProberTests.webServer(in: lab, directory: directory, page: "hello")
        defer { server.stop() }
        let silent = try HTTPProberTests.silentServer(in: lab, port: 8090)
        defer { Shell.terminate(silent) }
        // Made inside the namespace: the worker is born there too.
        let worker = try #require(try lab.inside(lab.a) { HTTPProber<Int>().flatMap { ProberThread($0) } })
        let now = ProbeClock.now()
        for id in 0..<20 { _ = worker.start(id: id, HTTPProberTests.request("/index.html", port: 8080), now: now) }
        _ = worker.start(id: 100, HTTPProberTests.request("/", port: 8081), now: now)
        _ = worker.start(id: 200, HTTPProberTests.request("/", port: 8090, timeout: 300_000), now: now)
        #expect(worker.count == 22)
        let results = Self.collect(worker, 22)
        #expect(results.count == 22)
        var pages = 0
        for result in results {
            switch (result.id, result.outcome) {
            case (0..<20, .response(let response, let digest, _)):
                if response.statusCode == 200 && digest.map(MD5Digest.hex) == (try? Shell.md5sum("\(directory)/index.html")) { pages += 1 }
            case (100, .failed(let reason, _)): #expect(reason == "Error connecting")
            case (200, .failed(let reason, _)): #expect(reason == "Timeout WEB read", "the worker's own deadline")
            default: Issue.record("unexpected \(result.id): \(result.outcome)")
            }
        }
        #expect(pages == 20, "every page read and digested")
        #expect(worker.count == 0)
    }

    /// A cancel (reload, stop) ends what is in flight or queued without a result, and the
    /// worker goes on taking new checks.
    @Test func aCancelLeavesNoResultBehind() throws {
        let lab = try NetnsLab("pcancel")
        defer { lab.destroy() }
        let silent = try HTTPProberTests.silentServer(in: lab, port: 8090)
        defer { Shell.terminate(silent) }
        let worker = try #require(try lab.inside(lab.a) { HTTPProber<Int>().flatMap { ProberThread($0) } })
        for id in 0..<10 { _ = worker.start(id: id, HTTPProberTests.request("/", port: 8090, timeout: 200_000), now: ProbeClock.now()) }
        usleep(50_000)
        worker.cancelAll()
        #expect(worker.count == 0)
        usleep(400_000)   // past every timeout the cancelled fetches had
        #expect(worker.ready(now: ProbeClock.now()).isEmpty, "no result of a cancelled fetch")
        _ = worker.start(id: 42, HTTPProberTests.request("/", port: 8090, timeout: 200_000), now: ProbeClock.now())
        let after = Self.collect(worker, 1)
        #expect(after.map(\.id) == [42])
    }
}
