@preconcurrency import Glibc
import VigilConfig

/// One script invocation, as keepalived describes it: a command line from the config, the
/// extra arguments notify scripts get (`INSTANCE name STATE prio`) and the `user [group]`.
public struct ScriptSpec: Sendable, Equatable {
    public var command: String
    /// Passed as separate argv words, never re-split, so names with spaces stay intact.
    public var arguments: [String]
    /// nil keeps the daemon's own identity; a name is looked up with getpwnam.
    public var user: String?
    /// nil means the user's primary group.
    public var group: String?
    /// Where stdout and stderr go (stdin is always /dev/null); nil means /dev/null, so a
    /// chatty script can never block on a pipe nobody reads.
    public var output: Int32?

    public init(_ command: String, arguments: [String] = [], user: String? = nil, group: String? = nil,
                output: Int32? = nil) {
        self.command = command
        self.arguments = arguments
        self.user = user
        self.group = group
        self.output = output
    }

    /// Same rule as VigilConfig's `ScriptCommand.needsShell`: only a line with shell syntax pays
    /// for /bin/sh (and its quoting pitfalls); plain `prog arg arg` is executed directly.
    public static func needsShell(_ command: String) -> Bool {
        command.contains { "<>|&;$`*?()[]{}~\"'\\".contains($0) }
    }

    public var needsShell: Bool { Self.needsShell(command) }
}

public struct SpawnedScript: Sendable, Equatable {
    /// Also the process group id: every script leads its own group.
    public let pid: pid_t
    /// CLOCK_MONOTONIC µs, taken once exec succeeded.
    public let startedAt: Int64
}

public enum ScriptError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyCommand
    case commandNotFound(String)
    case unknownUser(String)
    case unknownGroup(String)
    /// A failed call; the child reports setpgid/dup2/setgroups/setgid/setuid/execve failures
    /// back before `spawn` returns, so a script that could not even start is an error here,
    /// not a mysterious exit status 127 later.
    case failed(String, errno: Int32)

    public var description: String {
        switch self {
        case .emptyCommand: "empty command line"
        case .commandNotFound(let name): "\(name): not found in \(ScriptRunner.searchPath)"
        case .unknownUser(let name): "unknown user \(name)"
        case .unknownGroup(let name): "unknown group \(name)"
        case .failed(let call, let code): "\(call): \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

public enum ScriptRunner {
    /// Scripts get exactly this environment: nothing from the daemon (which may have been
    /// started with an arbitrary one) leaks into code running as another user.
    /// The same list `vigil -t` searched when it said the script exists.
    public static let searchPath = HostChecks.scriptSearchPath.joined(separator: ":")

    /// What will be executed. With a shell, extra arguments become `"$@"` positional
    /// parameters (`sh -c 'CMD "$@"' sh args…`), so they are never re-parsed by the shell.
    public static func resolve(_ spec: ScriptSpec) throws(ScriptError) -> (path: String, argv: [String]) {
        if spec.needsShell {
            if spec.arguments.isEmpty { return ("/bin/sh", ["/bin/sh", "-c", spec.command]) }
            return ("/bin/sh", ["/bin/sh", "-c", spec.command + " \"$@\"", "sh"] + spec.arguments)
        }
        let words = spec.command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let program = words.first else { throw .emptyCommand }
        return (try locate(program), words + spec.arguments)
    }

    /// Launches the script and returns once it has exec'd (or throws why it could not).
    /// fork+exec rather than posix_spawn, which cannot change uid/gid.
    public static func spawn(_ spec: ScriptSpec) throws(ScriptError) -> SpawnedScript {
        let (path, argv) = try resolve(spec)
        let identity = try identity(user: spec.user, group: spec.group)

        // Everything the child touches is prepared here: after fork in a multi-threaded process
        // only async-signal-safe calls are allowed, so no allocation, no Swift arrays, no locks.
        let cPath = strdup(path)!
        let cArgv = CStringArray(argv)
        let cEnv = CStringArray(["PATH=" + searchPath])
        let report = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        let groups = UnsafeMutablePointer<gid_t>.allocate(capacity: 1)
        let defaultAction = UnsafeMutablePointer<sigaction>.allocate(capacity: 1)
        let emptyMask = UnsafeMutablePointer<sigset_t>.allocate(capacity: 1)
        defer {
            free(cPath)
            cArgv.free()
            cEnv.free()
            report.deallocate()
            groups.deallocate()
            defaultAction.deallocate()
            emptyMask.deallocate()
        }
        defaultAction.initialize(to: sigaction()) // sa_handler nil is SIG_DFL
        sigemptyset(emptyMask)
        groups.initialize(to: identity?.gid ?? 0)

        let devNull = try aboveStdio(open("/dev/null", O_RDWR | O_CLOEXEC), "open(/dev/null)")
        defer { close(devNull) }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .failed("socketpair", errno: errno)
        }
        let reader = pair[0]
        defer { close(reader) }
        let writer: Int32
        do { writer = try aboveStdio(pair[1], "socketpair") } catch { close(pair[1]); throw error }
        let inherited = openDescriptors().filter { $0 != writer }
        let closeList = UnsafeMutablePointer<Int32>.allocate(capacity: max(inherited.count, 1))
        defer { closeList.deallocate() }
        for (index, fd) in inherited.enumerated() { (closeList + index).initialize(to: fd) }

        let plan = ChildPlan(
            path: cPath, argv: cArgv.pointer, envp: cEnv.pointer,
            input: devNull, output: spec.output ?? devNull, report: report, reportFD: writer,
            closeList: closeList, closeCount: inherited.count,
            changeIdentity: identity != nil, uid: identity?.uid ?? 0, gid: identity?.gid ?? 0, groups: groups,
            defaultAction: defaultAction, emptyMask: emptyMask)

        // Blocked across fork so none of the daemon's handlers can run in the child before
        // the child has reset them.
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        let pid = fork()
        if pid == 0 { runChild(plan) }
        let forkErrno = errno
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        close(writer)
        guard pid > 0 else { throw .failed("fork", errno: forkErrno) }

        // EOF means exec succeeded (the CLOEXEC end closed); 8 bytes are (stage, errno).
        var buffer: (Int32, Int32) = (0, 0)
        var got = 0
        withUnsafeMutableBytes(of: &buffer) { bytes in
            while got < 8 {
                let n = read(reader, bytes.baseAddress! + got, 8 - got)
                if n > 0 { got += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
        if got == 8 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            throw .failed(Stage(rawValue: buffer.0)?.name ?? "child", errno: buffer.1)
        }
        return SpawnedScript(pid: pid, startedAt: monotonicNow())
    }

    /// Collects every exited child without blocking. It reaps children it did not start too,
    /// so a process that also uses `ScriptSupervisor` must let the supervisor do the reaping.
    public static func reap() -> [(pid: pid_t, status: ExitStatus)] {
        var done: [(pid: pid_t, status: ExitStatus)] = []
        var status: Int32 = 0
        while true {
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 { done.append((pid, ExitStatus(waitStatus: status))); continue }
            if pid < 0 && errno == EINTR { continue }
            return done
        }
    }

    /// One child, without blocking; nil while it runs (or if it is not ours to wait for).
    public static func reap(pid: pid_t) -> ExitStatus? {
        if case .exited(let status) = waitOutcome(pid) { return status }
        return nil
    }

    /// Signals the whole process group, so helpers a script started die with it.
    @discardableResult
    public static func kill(group: pid_t, signal: Int32) -> Bool {
        group > 0 && Glibc.kill(-group, signal) == 0
    }

    /// Timers and deadlines must not jump with the wall clock.
    public static func monotonicNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
    }

    // MARK: - Parent-side helpers

    enum WaitOutcome { case running, exited(ExitStatus), gone }

    static func waitOutcome(_ pid: pid_t) -> WaitOutcome {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return .exited(ExitStatus(waitStatus: status)) }
            if result == 0 { return .running }
            if errno == EINTR { continue }
            return .gone
        }
    }

    /// PATH search happens here rather than via execvp in the child, which is not
    /// async-signal-safe, and so that a missing program is reported at spawn time.
    private static func locate(_ program: String) throws(ScriptError) -> String {
        if program.contains("/") { return program }
        guard let path = HostChecks.resolve(program, host: LocalHost()) else { throw .commandNotFound(program) }
        return path
    }

    private struct Identity { var uid: uid_t, gid: gid_t }

    /// Resolved before fork: getpwnam/getgrnam read files and allocate. Reentrant variants,
    /// since other threads may be looking users up too. nil means "keep ours".
    private static func identity(user: String?, group: String?) throws(ScriptError) -> Identity? {
        guard user != nil || group != nil else { return nil }
        var uid = geteuid(), gid = getegid()
        if let user {
            var entry = passwd()
            guard lookup({ getpwnam_r(user, &entry, $0, $1, $2) }) else { throw .unknownUser(user) }
            uid = entry.pw_uid
            gid = entry.pw_gid
        }
        if let group {
            var entry = Glibc.group()
            guard lookup({ getgrnam_r(group, &entry, $0, $1, $2) }) else { throw .unknownGroup(group) }
            gid = entry.gr_gid
        }
        if uid == geteuid() && gid == getegid() { return nil }
        return Identity(uid: uid, gid: gid)
    }

    /// Retries with a larger buffer on ERANGE; true when the entry was found. The buffer only
    /// has to outlive the call because callers copy the numeric ids out.
    private static func lookup<Entry>(
        _ call: (UnsafeMutablePointer<CChar>, Int, UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>) -> Int32
    ) -> Bool {
        var size = 4096
        while size <= 1 << 20 {
            var result: UnsafeMutablePointer<Entry>?
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let code = call(buffer, size, &result)
            if code == ERANGE { size *= 2; continue }
            return code == 0 && result != nil
        }
        return false
    }

    /// The child dup2()s onto 0/1/2; a helper fd sitting there (a daemon started with closed
    /// stdio) would be clobbered first.
    private static func aboveStdio(_ fd: Int32, _ call: String) throws(ScriptError) -> Int32 {
        guard fd >= 0 else { throw .failed(call, errno: errno) }
        guard fd < 3 else { return fd }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        let code = errno
        close(fd)
        guard moved >= 0 else { throw .failed("fcntl(F_DUPFD_CLOEXEC)", errno: code) }
        return moved
    }

    /// Descriptors the child closes before exec: the daemon's raw VRRP and netlink sockets
    /// should all be CLOEXEC, but a script running as `nobody` must never inherit one if a
    /// single open() forgot the flag.
    private static func openDescriptors() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return Array(3..<1024) }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var fds: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if let fd = Int32(name), fd >= 3, fd != own { fds.append(fd) }
        }
        return fds
    }

    // MARK: - Child side

    private enum Stage: Int32 {
        case setpgid = 1, dup2, setgroups, setgid, setuid, execve
        var name: String { "\(self)" }
    }

    /// Plain pointers and integers only, so the child needs no Swift runtime work.
    private struct ChildPlan {
        var path: UnsafeMutablePointer<CChar>
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var input: Int32
        var output: Int32
        var report: UnsafeMutablePointer<Int32>
        var reportFD: Int32
        var closeList: UnsafeMutablePointer<Int32>
        var closeCount: Int
        var changeIdentity: Bool
        var uid: uid_t
        var gid: gid_t
        var groups: UnsafeMutablePointer<gid_t>
        var defaultAction: UnsafeMutablePointer<sigaction>
        var emptyMask: UnsafeMutablePointer<sigset_t>
    }

    @inline(never)
    private static func runChild(_ plan: ChildPlan) -> Never {
        // Own group first, so a timeout can kill everything the script starts.
        if setpgid(0, 0) != 0 { childFail(plan, .setpgid) }
        // Ignored signals (SIGPIPE, …) and the daemon's blocked mask survive exec; scripts
        // must start with the defaults.
        var signal: Int32 = 1
        while signal < 65 {
            _ = sigaction(signal, plan.defaultAction, nil)
            signal += 1
        }
        _ = sigprocmask(SIG_SETMASK, plan.emptyMask, nil)

        if dup2(plan.output, 1) < 0 || dup2(plan.output, 2) < 0 || dup2(plan.input, 0) < 0 {
            childFail(plan, .dup2)
        }
        var index = 0
        while index < plan.closeCount {
            _ = close(plan.closeList[index])
            index += 1
        }

        if plan.changeIdentity {
            // Groups before gid before uid: after setuid we could no longer drop them.
            // Like keepalived, supplementary groups are just the script's gid, never root's.
            if setgroups(1, plan.groups) != 0 { childFail(plan, .setgroups) }
            if setgid(plan.gid) != 0 { childFail(plan, .setgid) }
            if setuid(plan.uid) != 0 { childFail(plan, .setuid) }
            // Belt and braces: a non-root script must not be able to get root back.
            if plan.uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() == 0) {
                errno = EPERM
                childFail(plan, .setuid)
            }
        }
        _ = execve(plan.path, plan.argv, plan.envp)
        childFail(plan, .execve)
    }

    private static func childFail(_ plan: ChildPlan, _ stage: Stage) -> Never {
        plan.report[0] = stage.rawValue
        plan.report[1] = errno
        _ = write(plan.reportFD, plan.report, 8)
        _exit(127)
    }
}

/// A NULL-terminated `char *[]` that outlives the Swift strings it was built from.
private struct CStringArray {
    let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { (pointer + index).initialize(to: strdup(string)) }
        (pointer + strings.count).initialize(to: nil)
    }

    func free() {
        for index in 0..<count { Glibc.free(pointer[index]) }
        pointer.deallocate()
    }
}

/// Nested so it can be spelled `ScriptRunner.ExitStatus` where Swift Testing's own
/// `ExitStatus` is also in scope (the module name is shadowed by the enum).
public typealias ExitStatus = ScriptRunner.ExitStatus

extension ScriptRunner {
    /// How a child ended. keepalived counts only `.exited(0)` as success.
    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        /// The WIFEXITED/WTERMSIG macros are not imported into Swift, so decode the bits directly.
        public init(waitStatus: Int32) {
            let signal = waitStatus & 0x7f
            self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
        }

        public var isSuccess: Bool { self == .exited(0) }

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "signal \(signal)"
            }
        }
    }
}
