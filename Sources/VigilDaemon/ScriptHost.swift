@preconcurrency import Glibc
import Logging
import ScriptRunner
import Tracking
import VigilConfig

/// Runs track scripts on their intervals and notify scripts on transitions, without threads:
/// the event loop asks for `nextDeadline`, wakes on SIGCHLD or that deadline, and calls `poll`.
/// Verdicts follow keepalived's rise/fall counter (Tracking); processes are started as their
/// user, in their own process group, and killed at their timeout (ScriptRunner).
final class ScriptHost {
    enum RunID: Hashable, Sendable {
        case track(String)
        case notify(Int)
    }

    struct Tracked {
        let script: VRRPScript
        var state: TrackScriptState
        var schedule: TrackScriptSchedule
    }

    let configuration: Configuration
    var logger: Logger
    private var tracked: [String: Tracked] = [:]
    private let supervisor = ScriptSupervisor<RunID>()
    private var notifySequence = 0
    /// The user scripts run as when neither the script nor its block names one.
    private let defaultUser: ScriptUser?

    init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        if let user = configuration.globals.scriptUser {
            defaultUser = user
        } else if LocalHost().userExists("keepalived_script") {
            defaultUser = ScriptUser(user: "keepalived_script", group: nil, location: .unknown(""))
        } else {
            defaultUser = nil
        }
    }

    /// Only scripts some instance or group tracks are run, as in keepalived.
    func start(at now: Int64) {
        var names = Set<String>()
        for instance in configuration.instances { for t in instance.trackScripts { names.insert(t.name) } }
        for group in configuration.syncGroups { for t in group.trackScripts { names.insert(t.name) } }
        let host = LocalHost()
        for script in configuration.scripts where names.contains(script.name) && script.script != nil {
            // keepalived's load-time rules: a script that cannot be found, or that would run as
            // root from a path others can write under enable_script_security, is disabled and
            // stops counting for its instances (it neither adds nor subtracts priority).
            let command = script.script!
            guard let path = HostChecks.resolve(command.program, host: host) else {
                logger.error("Disabling track script \(script.name) since not found/accessible (\(command.program))")
                continue
            }
            let runsAsRoot = (script.user ?? defaultUser).map { $0.user == "root" } ?? true
            if configuration.globals.enableScriptSecurity && runsAsRoot,
               let unsafe = HostChecks.insecurePart(of: path, host: host) {
                logger.error("Disabling track script \(script.name) due to insecure path: \(unsafe) is writable by a non-root user")
                continue
            }
            tracked[script.name] = Tracked(script: script,
                                           state: TrackScriptState(rise: script.rise, fall: script.fall, initFail: script.initFail),
                                           schedule: TrackScriptSchedule(interval: script.interval, timeout: script.timeout, start: now))
        }
    }

    var nextDeadline: Int64? {
        let runs = tracked.values.lazy.map { $0.schedule.nextEvent }.min()
        switch (runs, supervisor.nextDeadline) {
        case let (a?, b?): return min(a, b)
        case let (a?, nil): return a
        case let (nil, b): return b
        }
    }

    /// Starts due scripts and collects finished ones; returns the scripts whose verdict changed.
    func poll(at now: Int64) -> [(name: String, up: Bool)] {
        var changes: [(name: String, up: Bool)] = []
        for finished in supervisor.poll(now: now) {
            guard case .track(let name) = finished.id, var entry = tracked[name] else { continue }
            entry.schedule.runFinished(at: now)
            if finished.timedOut {
                logger.warning("VRRP_Script(\(name)) timed out after \(finished.runtime / 1000) ms")
            }
            let wasAwaiting = entry.state.awaitingFirstResult
            if let transition = entry.state.record(success: finished.success) {
                changes.append((name, transition == .becameUp))
            } else if wasAwaiting {
                // The first result settles a script even when it confirms the initial verdict.
                changes.append((name, entry.state.isUp))
            }
            tracked[name] = entry
        }
        for name in tracked.keys.sorted() {
            var entry = tracked[name]!
            switch entry.schedule.decide(at: now) {
            case .wait:
                break
            case .skipStillRunning:
                logger.warning("Track script \(name) is already running, expect idle - skipping run")
            case .run:
                guard let command = entry.script.script else { break }
                let user = entry.script.user ?? defaultUser
                let spec = ScriptSpec(command.command, user: user?.user, group: user?.group)
                do {
                    try supervisor.start(spec, id: .track(name), timeout: entry.schedule.timeout, now: now)
                    entry.schedule.runStarted(at: now)
                } catch {
                    logger.error("VRRP_Script(\(name)) cannot be started: \(error)")
                    if let transition = entry.state.record(success: false) { changes.append((name, transition == .becameUp)) }
                }
            }
            tracked[name] = entry
        }
        return changes
    }

    /// Whether the script runs at all (disabled scripts do not count for their instances).
    func isTracked(_ name: String) -> Bool { tracked[name] != nil }

    /// The script's verdict as a tracker sees it; nil while no run has finished yet.
    func verdict(_ name: String) -> Bool? {
        guard let entry = tracked[name] else { return nil }
        return entry.state.awaitingFirstResult ? nil : entry.state.isUp
    }

    /// keepalived's order: the state's own script without arguments, then the generic `notify`
    /// with `INSTANCE name STATE priority`.
    func notify(instance: VigilConfig.VRRPInstance, state: String, priority: Int) {
        run(instance.notify, kind: "INSTANCE", name: instance.name, state: state, priority: priority, owner: instance.name)
    }

    /// A vrrp_sync_group's scripts, the same way with `GROUP name STATE 0`.
    func notify(group: SyncGroup, state: String) {
        run(group.notify, kind: "GROUP", name: group.name, state: state, priority: 0, owner: "VRRP_Group(\(group.name))")
    }

    private func run(_ scripts: NotifyScripts, kind: String, name: String, state: String, priority: Int, owner: String) {
        let specific: ScriptCommand?
        switch state {
        case "MASTER": specific = scripts.master
        case "BACKUP": specific = scripts.backup
        case "FAULT": specific = scripts.fault
        case "STOP": specific = scripts.stop
        default: specific = nil
        }
        if let specific { launch(specific, arguments: [], owner: owner) }
        if let generic = scripts.generic {
            launch(generic, arguments: [kind, name, state, String(priority)], owner: owner)
        }
    }

    func notifyLowerPriority(instance: VigilConfig.VRRPInstance) {
        if let command = instance.notify.masterRxLowerPri { launch(command, arguments: [], owner: instance.name) }
    }

    /// A script with only its configured arguments: notify_up/down, quorum_up/down (keepalived
    /// appends nothing to these).
    func run(_ command: ScriptCommand, owner: String) {
        launch(command, arguments: [], owner: owner)
    }

    private func launch(_ command: ScriptCommand, arguments: [String], owner: String) {
        let user = command.user ?? defaultUser
        notifySequence += 1
        do {
            try supervisor.start(ScriptSpec(command.command, arguments: arguments, user: user?.user, group: user?.group),
                                 id: .notify(notifySequence), timeout: nil, now: ScriptRunner.monotonicNow())
            logger.debug("(\(owner)) running notify script \(command.command) \(arguments.joined(separator: " "))")
        } catch {
            logger.error("(\(owner)) notify script \(command.command) cannot be started: \(error)")
        }
    }

    /// Shutdown: give running scripts keepalived's SIGTERM/SIGKILL treatment and wait briefly
    /// (notify_stop scripts get about a second, as in keepalived).
    func stopAll() {
        let start = ScriptRunner.monotonicNow()
        while supervisor.runningCount > 0 && ScriptRunner.monotonicNow() - start < 1_000_000 {
            _ = supervisor.poll(now: ScriptRunner.monotonicNow())
            usleepShort()
        }
        supervisor.terminateAll(now: ScriptRunner.monotonicNow())
        _ = supervisor.poll(now: ScriptRunner.monotonicNow())
    }

    private func usleepShort() {
        var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        nanosleep(&pause, nil)
    }
}
