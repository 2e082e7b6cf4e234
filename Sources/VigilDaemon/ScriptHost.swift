import Logging
import ScriptRunner
import VRRPSpecs
import VigilConfig

/// Starts the daemon's scripts through the `ProcessRunner`: notify scripts on transitions
/// (fire and forget, no timeout, as in keepalived) and track-script runs for the tracker
/// host; decides which user they run as and which track scripts may run at all.
final class ScriptHost {
    private let runner: any ProcessRunner
    private let clock: any DaemonClock
    private let host: any HostProbe
    private var logger: Logger
    private var notifySequence = 0
    /// Who runs a script that names no user: script_user, else keepalived_script where that user
    /// exists, else root. Looked up at the first script, not at start: the lookup loads the NSS
    /// modules into a daemon that may run no script at all.
    private var defaultUser: (user: String, group: String?)? {
        if let resolvedDefaultUser { return resolvedDefaultUser }
        let user = scriptUser ?? (host.userExists("keepalived_script") ? ("keepalived_script", nil) : nil)
        resolvedDefaultUser = .some(user)
        return user
    }
    private var scriptUser: (user: String, group: String?)?
    private var resolvedDefaultUser: (user: String, group: String?)??
    private var enableScriptSecurity = false
    /// keepalived's notify FIFOs, which get a line wherever a notify script would run.
    private(set) var fifos: NotifyFIFOs!

    init(runner: any ProcessRunner, clock: any DaemonClock, host: any HostProbe, globals: GlobalDefs, logger: Logger,
         fifoControl: (any FIFOControl)? = nil) {
        self.runner = runner
        self.clock = clock
        self.host = host
        self.logger = logger
        fifos = NotifyFIFOs(control: fifoControl, clock: clock, logger: logger,
                            startScript: { [unowned self] command, path, id in self.startFIFOScript(command, path: path, id: id) },
                            stopScript: { [unowned self] id in self.runner.terminate(id, now: self.clock.now()) })
        configureScripts(globals)
    }

    /// script_user and enable_script_security. The FIFOs are opened by the daemon's start
    /// (a daemon that never starts leaves no FIFO or reader behind).
    private func configureScripts(_ globals: GlobalDefs) {
        enableScriptSecurity = globals.enableScriptSecurity
        scriptUser = globals.scriptUser.map { ($0.user, $0.group) }
        resolvedDefaultUser = nil
    }

    /// After a reload: the scripts' settings and the notify FIFOs.
    func configure(_ globals: GlobalDefs) {
        configureScripts(globals)
        fifos.configure(globals.notifyFIFOs)
    }

    /// keepalived adds the FIFO's path to the script's arguments; it runs as long as it likes.
    private func startFIFOScript(_ command: ScriptCommand, path: String, id: ScriptRunID) -> Bool {
        do {
            try runner.start(spec(ScriptLine(command), arguments: [path]), id: id, timeout: nil, now: clock.now())
            return true
        } catch {
            logger.error("notify fifo script \(command.command) cannot be started: \(error)")
            return false
        }
    }

    /// keepalived's load-time rules for a track script: one that cannot be found, or that
    /// would run as root from a path others can write under enable_script_security, is
    /// disabled (it neither adds nor subtracts priority). Returns why, or nil when it may run.
    func whyDisabled(_ script: TrackScriptSpec) -> String? {
        whyDisabled(program: script.program, user: script.line.user, what: "track script \(script.name)",
                    missingDetail: " (\(script.program))")
    }

    /// The same rules for a MISC_CHECK's misc_path.
    func whyDisabled(misc command: ScriptCommand) -> String? {
        whyDisabled(program: command.program, user: command.user?.user, what: "misc script \(command.command)", missingDetail: "")
    }

    private func whyDisabled(program: String, user: String?, what: String, missingDetail: String) -> String? {
        guard let path = HostChecks.resolve(program, host: host) else {
            return "Disabling \(what) since not found/accessible\(missingDetail)"
        }
        let runsAsRoot = (user ?? defaultUser?.user).map { $0 == "root" } ?? true
        if enableScriptSecurity && runsAsRoot, let unsafe = HostChecks.insecurePart(of: path, host: host) {
            return "Disabling \(what) due to insecure path: \(unsafe) is writable by a non-root user"
        }
        return nil
    }

    /// A MISC_CHECK run: SIGTERM at the timeout, then SIGKILL, as keepalived.
    func startMisc(_ command: ScriptCommand, id: ScriptRunID, timeout: Int64, now: Int64) throws(ScriptError) {
        try runner.start(spec(ScriptLine(command)), id: id, timeout: timeout, now: now)
    }

    func startTrack(_ script: TrackScriptSpec, id: ScriptRunID, timeout: Int64, now: Int64) throws(ScriptError) {
        try runner.start(spec(script.line), id: id, timeout: timeout, now: now)
    }

    /// Finished runs of every kind; notify scripts are only reaped here, FIFO readers end here.
    func poll(now: Int64) -> [FinishedScript] {
        runner.poll(now: now).filter { !fifos.scriptFinished($0.id) }
    }
    var nextDeadline: Int64? { runner.nextDeadline }

    /// keepalived's order: the state's own script without arguments, then the generic
    /// `notify` with `INSTANCE name STATE priority`.
    /// Then the FIFOs' line, as keepalived's send_instance_notifies.
    func notify(instance: InstanceSpec, state: String, priority: Int) {
        notify(instance.notify, kind: "INSTANCE", name: instance.name, state: state, priority: priority, owner: instance.name)
        fifos.instance(instance.name, state: state, priority: priority)
    }

    /// A vrrp_sync_group's scripts, the same way with `GROUP name STATE 0`.
    func notify(group: SyncGroupSpec, state: String) {
        notify(group.notify, kind: "GROUP", name: group.name, state: state, priority: 0, owner: "VRRP_Group(\(group.name))")
        fifos.group(group.name, state: state)
    }

    private func notify(_ scripts: NotifyCommands, kind: String, name: String, state: String, priority: Int, owner: String) {
        if let specific = scripts.specific(to: state) { launch(specific, arguments: [], owner: owner) }
        if let generic = scripts.generic { launch(generic, arguments: [kind, name, state, String(priority)], owner: owner) }
    }

    func notifyLowerPriority(instance: InstanceSpec, priority: Int) {
        if let command = instance.notify.masterRxLowerPriority { launch(command, arguments: [], owner: instance.name) }
        fifos.masterReceivedLowerPriority(instance: instance.name, priority: priority)
    }

    /// A script with only its configured arguments: notify_up/down, quorum_up/down (keepalived
    /// appends nothing to these).
    func run(_ command: ScriptCommand, owner: String) {
        launch(ScriptLine(command), arguments: [], owner: owner)
    }

    /// A command as the daemon would run it (its user, or the default script user).
    func spec(for command: ScriptCommand) -> ScriptSpec { spec(ScriptLine(command)) }

    private func spec(_ line: ScriptLine, arguments: [String] = []) -> ScriptSpec {
        let user = line.user.map { ($0, line.group) } ?? defaultUser
        return ScriptSpec(line.command, arguments: arguments, user: user?.0, group: user?.1)
    }

    private func launch(_ line: ScriptLine, arguments: [String], owner: String) {
        notifySequence += 1
        do {
            try runner.start(spec(line, arguments: arguments), id: .notify(notifySequence), timeout: nil, now: clock.now())
            logger.debug("(\(owner)) running notify script \(line.command) \(arguments.joined(separator: " "))")
        } catch {
            logger.error("(\(owner)) notify script \(line.command) cannot be started: \(error)")
        }
    }

    /// `nft` with the whole rule set as its one argument (nft reads its arguments as a file).
    func runFirewall(_ nft: String, script: String, serial: Int) throws(ScriptError) {
        try runner.start(ScriptSpec(nft, arguments: [script]), id: .firewall(serial), timeout: 10_000_000, now: clock.now())
    }

    /// Shutdown: running scripts get `grace` to finish (a second, or child_wait_time: the
    /// notify_stop scripts, as in keepalived; the FIFOs' readers, which see their FIFO end),
    /// then keepalived's SIGTERM/SIGKILL treatment.
    func stopAll(grace: Int64 = 1_000_000) {
        fifos.closeAll()
        let start = clock.now()
        while runner.runningCount > 0 && clock.now() - start < grace {
            _ = runner.poll(now: clock.now())
            if runner.runningCount > 0 { clock.pause(20_000) }
        }
        runner.terminateAll(now: clock.now())
        _ = runner.poll(now: clock.now())
    }
}
