import Foundation
import Glibc
import ScriptRunner
import Testing

private typealias ExitStatus = ScriptRunner.ExitStatus

private let isRoot = getuid() == 0
private let second: Int64 = 1_000_000

/// A scratch directory anyone may write to, so scripts running as `nobody` can leave evidence.
private func scratchDirectory() throws -> String {
    var template = Array("/tmp/vigil-script-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
    let path = String(cString: made)
    chmod(path, 0o777)
    return path
}

private func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

/// Bounded, so a runner bug fails the test instead of hanging the suite.
private func waitForExit(_ pid: pid_t, within limit: Int64 = 5 * second) -> ExitStatus? {
    let deadline = ScriptRunner.monotonicNow() + limit
    while ScriptRunner.monotonicNow() < deadline {
        if let status = ScriptRunner.reap(pid: pid) { return status }
        usleep(5_000)
    }
    return nil
}

private func exitStatus(of spec: ScriptSpec) throws -> ExitStatus? {
    waitForExit(try ScriptRunner.spawn(spec).pid)
}

private func waitForFile(_ path: String, within limit: Int64 = 5 * second) -> String? {
    let deadline = ScriptRunner.monotonicNow() + limit
    while ScriptRunner.monotonicNow() < deadline {
        if let text = read(path), text.hasSuffix("\n") { return text }
        usleep(5_000)
    }
    return nil
}

/// Polls the supervisor the way the daemon's loop does, until something finishes.
private func pollUntilFinished<ID>(_ supervisor: ScriptSupervisor<ID>, within limit: Int64 = 10 * second)
    -> [ScriptSupervisor<ID>.Finished] {
    let deadline = ScriptRunner.monotonicNow() + limit
    while ScriptRunner.monotonicNow() < deadline {
        let done = supervisor.poll(now: ScriptRunner.monotonicNow())
        if !done.isEmpty { return done }
        usleep(10_000)
    }
    return []
}

/// Gone or a zombie: PID 1 in a container may never reap an orphan we killed.
private func isDead(_ pid: pid_t) -> Bool {
    guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}

private func exe(of pid: pid_t) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe") }

/// Serialized: `reap()` waits for any child, which would steal other tests' children.
@Suite("Script runner", .serialized)
struct ScriptRunnerTests {
    @Test func waitStatusDecoding() {
        #expect(ExitStatus(waitStatus: 0) == .exited(0))
        #expect(ExitStatus(waitStatus: 3 << 8) == .exited(3))
        #expect(ExitStatus(waitStatus: 9) == .signaled(9))
        #expect(ExitStatus(waitStatus: 15 | 0x80) == .signaled(15)) // core-dump bit
        #expect(ExitStatus.exited(0).isSuccess && !ExitStatus.exited(1).isSuccess && !ExitStatus.signaled(15).isSuccess)
    }

    @Test func exitCodesAndSignals() throws {
        #expect(try exitStatus(of: ScriptSpec("true")) == .exited(0))
        #expect(try exitStatus(of: ScriptSpec("false")) == .exited(1))
        #expect(try exitStatus(of: ScriptSpec("test 1 = 2")) == .exited(1))
        #expect(try exitStatus(of: ScriptSpec("/bin/sh -c 'exit 3'")) == .exited(3))
        #expect(try exitStatus(of: ScriptSpec("kill -KILL $$")) == .signaled(SIGKILL))
    }

    @Test func shellOnlyWhenNeeded() throws {
        let plain = try ScriptRunner.resolve(ScriptSpec("  sleep\t1  ", arguments: ["a b"]))
        #expect(plain.path == "/usr/bin/sleep")
        #expect(plain.argv == ["sleep", "1", "a b"])
        let shell = try ScriptRunner.resolve(ScriptSpec("echo $HOME"))
        #expect(shell.path == "/bin/sh" && shell.argv == ["/bin/sh", "-c", "echo $HOME"])
        let notify = try ScriptRunner.resolve(ScriptSpec("echo $HOME", arguments: ["INSTANCE", "VI_1"]))
        #expect(notify.argv == ["/bin/sh", "-c", "echo $HOME \"$@\"", "sh", "INSTANCE", "VI_1"])
        for special in ["a<b", "a>b", "a|b", "a&b", "a;b", "$a", "`a`", "a*", "a?", "(a)", "[a]", "{a}", "~a", "\"a\"", "'a'", "a\\b"] {
            #expect(ScriptSpec.needsShell(special), "\(special)")
        }
        #expect(!ScriptSpec.needsShell("/usr/local/bin/check-haproxy --port=80 -v"))
    }

    /// What actually runs, checked on the live process rather than on our own bookkeeping.
    @Test func processImageAndGroup() throws {
        let plain = try ScriptRunner.spawn(ScriptSpec("sleep 5"))
        let shelled = try ScriptRunner.spawn(ScriptSpec("sleep 5; : $HOME"))
        defer {
            for pid in [plain.pid, shelled.pid] {
                ScriptRunner.kill(group: pid, signal: SIGKILL)
                _ = waitForExit(pid)
            }
        }
        #expect(exe(of: plain.pid) == "/usr/bin/sleep")
        #expect(exe(of: shelled.pid) == URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath().path)
        #expect(getpgid(plain.pid) == plain.pid && getpgid(shelled.pid) == shelled.pid)
        #expect(getpgid(plain.pid) != getpgrp())
    }

    @Test func environmentAndStdioAreMinimal() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fd = open("\(dir)/env", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let leaky = open("/dev/null", O_RDONLY) // no O_CLOEXEC: the runner must still close it
        defer { close(leaky) }
        #expect(try exitStatus(of: ScriptSpec("env", output: fd)) == .exited(0))
        #expect(try exitStatus(of: ScriptSpec("echo \"$PATH\"; cat; ls /proc/self/fd", output: fd)) == .exited(0))
        close(fd)
        // env prints PATH only; cat reads /dev/null; the shell's ls sees only 0, 1, 2 and its
        // own directory fd.
        let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        #expect(read("\(dir)/env") == "PATH=\(path)\n\(path)\n0\n1\n2\n3\n")
    }

    @Test func notifyArgumentsArriveAsSeparateWords() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = "\(dir)/notify.sh"
        try "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > \(dir)/direct\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let args = ["INSTANCE", "VI 1", "MASTER", "100"]
        let expected = "[INSTANCE]\n[VI 1]\n[MASTER]\n[100]\n"
        #expect(try exitStatus(of: ScriptSpec(script, arguments: args)) == .exited(0))
        #expect(read("\(dir)/direct") == expected)
        #expect(try exitStatus(of: ScriptSpec("printf '[%s]\\n' > \(dir)/shell", arguments: args)) == .exited(0))
        #expect(read("\(dir)/shell") == expected)
    }

    @Test(.enabled(if: isRoot, "needs root to switch users"))
    func runsAsConfiguredUser() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let probe = "id -u > \(dir)/uid; id -g > \(dir)/gid; id -G > \(dir)/groups"
        #expect(try exitStatus(of: ScriptSpec(probe, user: "nobody")) == .exited(0))
        #expect(read("\(dir)/uid") == "65534\n")
        #expect(read("\(dir)/gid") == "65534\n")
        #expect(read("\(dir)/groups") == "65534\n") // root's supplementary groups are gone
        #expect(try exitStatus(of: ScriptSpec(probe, user: "nobody", group: "daemon")) == .exited(0))
        #expect(read("\(dir)/uid") == "65534\n")
        #expect(read("\(dir)/gid") == "1\n")
        #expect(read("\(dir)/groups") == "1\n")
        #expect(try exitStatus(of: ScriptSpec(probe, user: "root")) == .exited(0))
        #expect(read("\(dir)/uid") == "0\n")
    }

    @Test func spawnFailuresAreErrors() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let notExecutable = "\(dir)/plain"
        try "#!/bin/sh\n".write(toFile: notExecutable, atomically: true, encoding: .utf8)
        chmod(notExecutable, 0o644)
        #expect(throws: ScriptError.emptyCommand) { try ScriptRunner.spawn(ScriptSpec("   ")) }
        #expect(throws: ScriptError.commandNotFound("no-such-program-vigil")) {
            try ScriptRunner.spawn(ScriptSpec("no-such-program-vigil --x"))
        }
        #expect(throws: ScriptError.unknownUser("no-such-user-vigil")) {
            try ScriptRunner.spawn(ScriptSpec("true", user: "no-such-user-vigil"))
        }
        #expect(throws: ScriptError.unknownGroup("no-such-group-vigil")) {
            try ScriptRunner.spawn(ScriptSpec("true", user: "nobody", group: "no-such-group-vigil"))
        }
        // Reported by the child before exec; the child is reaped by spawn itself.
        #expect(throws: ScriptError.failed("execve", errno: EACCES)) {
            try ScriptRunner.spawn(ScriptSpec(notExecutable))
        }
    }

    @Test func hungScriptIsKilledAtItsTimeout() throws {
        let supervisor = ScriptSupervisor<String>()
        let start = ScriptRunner.monotonicNow()
        try supervisor.start(ScriptSpec("sleep 30"), id: "chk", timeout: second, now: start)
        #expect(supervisor.isRunning("chk") && supervisor.nextDeadline == start + second)
        let done = pollUntilFinished(supervisor)
        let elapsed = ScriptRunner.monotonicNow() - start
        #expect(done.count == 1)
        #expect(done.first?.id == "chk" && done.first?.timedOut == true && done.first?.success == false)
        #expect(done.first?.status == .signaled(SIGTERM))
        #expect(elapsed >= second && elapsed < second + second / 2, "took \(elapsed) µs")
        #expect(!supervisor.isRunning("chk") && supervisor.nextDeadline == nil)
    }

    @Test func finishedRunsReportTheirResult() throws {
        let supervisor = ScriptSupervisor<Int>()
        let now = ScriptRunner.monotonicNow()
        try supervisor.start(ScriptSpec("true"), id: 1, timeout: 5 * second, now: now)
        try supervisor.start(ScriptSpec("false"), id: 2, timeout: nil, now: now)
        var results: [Int: Bool] = [:]
        while results.count < 2, ScriptRunner.monotonicNow() < now + 5 * second {
            for finished in pollUntilFinished(supervisor) {
                #expect(!finished.timedOut)
                results[finished.id] = finished.success
            }
        }
        #expect(results == [1: true, 2: false])
        #expect(supervisor.runningCount == 0)
    }

    /// The grandchild ignores SIGTERM, so only the SIGKILL to the group that follows the
    /// leader's death can remove it.
    @Test func timeoutKillsTheWholeProcessGroup() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let supervisor = ScriptSupervisor<String>()
        let start = ScriptRunner.monotonicNow()
        try supervisor.start(ScriptSpec("(trap '' TERM; exec sleep 30) & echo $! > \(dir)/child; wait"),
                             id: "grp", timeout: second, now: start)
        let child = try #require(waitForFile("\(dir)/child").flatMap { pid_t($0.dropLast()) })
        #expect(!isDead(child))
        let done = pollUntilFinished(supervisor)
        #expect(done.first?.timedOut == true && done.first?.success == false)
        #expect(ScriptRunner.monotonicNow() - start < second + second / 2)
        var dead = false
        for _ in 0..<100 where !dead {
            dead = isDead(child)
            if !dead { usleep(10_000) }
        }
        #expect(dead)
        ScriptRunner.kill(group: child, signal: SIGKILL) // in case of failure, don't leak it
    }

    /// A script that ignores SIGTERM gets SIGKILL 2 s later, as in keepalived.
    @Test func sigtermIgnoredEscalatesToSigkill() throws {
        let supervisor = ScriptSupervisor<String>()
        let start = ScriptRunner.monotonicNow()
        try supervisor.start(ScriptSpec("trap '' TERM; sleep 30"), id: "stubborn", timeout: second / 5, now: start)
        usleep(300_000)
        let afterDeadline = ScriptRunner.monotonicNow()
        #expect(supervisor.poll(now: afterDeadline).isEmpty) // SIGTERM sent, ignored
        #expect(supervisor.nextDeadline == afterDeadline + ScriptSupervisor<String>.terminateGrace)
        #expect(supervisor.isRunning("stubborn"))
        let done = pollUntilFinished(supervisor)
        let elapsed = ScriptRunner.monotonicNow() - start
        #expect(done.first?.timedOut == true && done.first?.status == .signaled(SIGKILL))
        #expect(elapsed >= afterDeadline - start + 2 * second && elapsed < 3 * second, "took \(elapsed) µs")
    }

    @Test func terminateAllStopsEverything() throws {
        let supervisor = ScriptSupervisor<String>()
        let now = ScriptRunner.monotonicNow()
        try supervisor.start(ScriptSpec("sleep 30"), id: "notify", timeout: nil, now: now)
        #expect(supervisor.nextDeadline == nil)
        supervisor.terminateAll(now: now)
        #expect(supervisor.nextDeadline == now + ScriptSupervisor<String>.terminateGrace)
        let done = pollUntilFinished(supervisor, within: 3 * second)
        #expect(done.first?.timedOut == true && done.first?.status == .signaled(SIGTERM))
    }

    @Test func globalReapCollectsExitedChildren() throws {
        let spawned = try ScriptRunner.spawn(ScriptSpec("sh -c 'exit 7'"))
        var found: ExitStatus?
        for _ in 0..<500 where found == nil {
            found = ScriptRunner.reap().first { $0.pid == spawned.pid }?.status
            if found == nil { usleep(5_000) }
        }
        #expect(found == .exited(7))
        #expect(ScriptRunner.reap(pid: spawned.pid) == nil) // already collected
    }
}
