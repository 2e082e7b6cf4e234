import Logging
import Tracking
import VigilStatus
import VRRPSpecs
import VigilSystem

/// What the VRRP instances track: track scripts on their intervals (keepalived's rise/fall
/// counter, Tracking), track files and processes (looked at once a second), and the links they
/// name: looked at when the VRRP host's netlink monitor reports a link change, as keepalived's
/// netlink monitor does, and every 30 s in case the kernel's report was missed; once a second
/// when there is no monitor. Whenever a verdict or a link changes it calls `onChange`, and the
/// VRRP host re-weighs its instances.
final class TrackerHost: LoopHost {
    private struct Script {
        var spec: TrackScriptSpec
        var state: TrackScriptState
        var schedule: TrackScriptSchedule
        /// Tells this script's runs from those of a script of the same name a reload replaced.
        var serial: Int
        var successes: UInt64 = 0
        var failures: UInt64 = 0
        var timeouts: UInt64 = 0
        var lastDuration: Int64?
    }

    private let scripts: ScriptHost
    private let addresses: any AddressControl
    private var logger: Logger
    private var running: [String: Script] = [:]
    private var disabled = Set<String>()
    private var interfaces: [String: Bool] = [:]
    /// interface_up_down_delays: link changes the instances see only once they last.
    private var debounce = LinkDebounce()
    /// linkbeat: tracked links looked at every second whatever the monitor reports.
    private var polledLinks: Set<String> = []
    private let files: any DaemonFileSystem
    private let processTable: (Bool) -> [RunningProcess]
    /// Tracked processes by name, with their quorum state.
    private var processes: [String: (spec: TrackProcessSpec, state: ProcessQuorumState)] = [:]
    /// Track files by name: where, and the number last read (0 when missing, as keepalived).
    private var trackFiles: [String: (path: String, value: Int)] = [:]
    private var nextInterfaceCheck: Int64 = 0
    /// Set by the VRRP host while its netlink monitor is open: link changes then arrive as
    /// events (`checkLinks`), and the periodic look is only a safety net. An idle master then
    /// wakes for its adverts alone (this look was half of its wake-ups).
    var linkEventsArrive = false
    static let pollInterval: Int64 = 1_000_000
    static let linkSafetyInterval: Int64 = 30_000_000
    private var nextSerial = 0
    /// Called after any verdict or link changed.
    var onChange: (Int64) -> Void = { _ in }
    /// Called for every finished run (metrics).
    var onRunFinished: (String, FinishedScript) -> Void = { _, _ in }
    /// An nft run of the firewall host ended.
    var onFirewallFinished: ((Bool) -> Void)?
    /// MISC_CHECK runs end here too (one poll of the process runner): the checker host's.
    var onMiscFinished: ((FinishedScript, Int64) -> Void)?

    init(scripts: ScriptHost, addresses: any AddressControl, files: any DaemonFileSystem,
         processTable: @escaping (Bool) -> [RunningProcess], logger: Logger) {
        self.scripts = scripts
        self.addresses = addresses
        self.files = files
        self.processTable = processTable
        self.logger = logger
    }

    // MARK: What the instances read

    func verdict(_ name: String) -> ScriptVerdict {
        guard let script = running[name] else { return .disabled }
        return script.state.awaitingFirstResult ? .pending : .result(up: script.state.isUp)
    }

    func interfaceUp(_ name: String) -> Bool? { interfaces[name] }

    func fileValue(_ name: String) -> Int { trackFiles[name]?.value ?? 0 }

    func processUp(_ name: String) -> Bool { processes[name]?.state.isUp ?? false }

    /// Every tracked script, for `vigil status`: enabled ones with their counts, disabled ones
    /// as such.
    func status(_ specs: [TrackScriptSpec]) -> [TrackScriptStatus] {
        specs.map { spec in
            guard let script = running[spec.name] else {
                return TrackScriptStatus(name: spec.name, command: spec.line.command, verdict: .disabled, running: false,
                                         successes: 0, failures: 0, timeouts: 0, lastDuration: nil)
            }
            let verdict: TrackScriptStatus.Verdict = script.state.awaitingFirstResult ? .pending : (script.state.isUp ? .up : .down)
            return TrackScriptStatus(name: spec.name, command: spec.line.command, verdict: verdict, running: script.schedule.isRunning,
                                     successes: script.successes, failures: script.failures, timeouts: script.timeouts,
                                     lastDuration: script.lastDuration.map { Double($0) / 1e6 })
        }
    }

    // MARK: Start and reload

    /// The scripts the setup tracks, and the links its instances name (read at once, so the
    /// first weighing sees the real link states).
    func start(_ setup: VRRPSetup, at now: Int64) {
        for spec in setup.trackScripts { begin(spec, at: now) }
        track(interfacesOf: setup)
        track(filesOf: setup, initialising: true)
        track(processesOf: setup, at: now)
        nextInterfaceCheck = now + periodicInterval
    }

    /// Track files and processes have no events here: with either, the look stays once a second.
    private var periodicInterval: Int64 {
        linkEventsArrive && trackFiles.isEmpty && processes.isEmpty && polledLinks.isEmpty ? Self.linkSafetyInterval : Self.pollInterval
    }

    /// Nothing tracked at all: no periodic look.
    private var tracksNothingPeriodic: Bool { interfaces.isEmpty && trackFiles.isEmpty && processes.isEmpty }

    /// The monitor reported a link change: every tracked link is looked at now.
    func checkLinks(at now: Int64) {
        if linksChanged(at: now) { onChange(now) }
    }

    /// One SIOCGIFFLAGS per tracked link; true when one changed (now, not delayed).
    private func linksChanged(at now: Int64) -> Bool {
        var changed = false
        for name in interfaces.keys.sorted() {
            let up = isUp(name)
            switch debounce.observe(name, up: up, shown: interfaces[name] ?? false, at: now) {
            case .unchanged: continue
            case .cancelled:
                logger.info("Delay timer for \(name) cancelled")
                continue
            case .delayed(let until):
                logger.info("\(name): \(up ? "up" : "down") change delayed by \(Double(until - now) / 1e6) s (interface_up_down_delays)")
                continue
            case .now: show(name, up: up)
            }
            changed = true
        }
        return changed
    }

    private func show(_ name: String, up: Bool) {
        interfaces[name] = up
        logger.warning("Netlink reports \(name) \(up ? "up" : "down")")
    }

    private func begin(_ spec: TrackScriptSpec, at now: Int64) {
        if let why = scripts.whyDisabled(spec) {
            logger.error("\(why)")
            disabled.insert(spec.name)
            return
        }
        nextSerial += 1
        running[spec.name] = Script(spec: spec, state: TrackScriptState(rise: spec.rise, fall: spec.fall, initFail: spec.initFail),
                                    schedule: TrackScriptSchedule(interval: spec.interval, timeout: spec.timeout, start: now),
                                    serial: nextSerial)
    }

    private func track(interfacesOf setup: VRRPSetup) {
        var names = Set<String>()
        for instance in setup.instances {
            for rule in instance.trackers { if case .interface(let name) = rule.source { names.insert(name) } }
        }
        var current: [String: Bool] = [:]
        for name in names { current[name] = interfaces[name] ?? isUp(name) }
        interfaces = current
        debounce.keep(only: names, delays: setup.linkDelays)
        polledLinks = setup.polledLinks.intersection(names)
    }

    private func isUp(_ name: String) -> Bool { addresses.isUpAndRunning(name) }

    /// A reload: an unchanged script keeps its verdict, counter and schedule (a run in flight
    /// included); one with a new interval, timeout, rise or fall keeps its verdict mapped onto
    /// the new counts; one with a new command, and a new script, start as at start-up.
    func reload(to setup: VRRPSetup, plan: TrackScriptPlan, at now: Int64) {
        track(filesOf: setup, initialising: false)
        track(processesOf: setup, at: now)
        let specs = Dictionary(setup.trackScripts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in plan.removed + plan.replaced {
            running[name] = nil
            disabled.remove(name)
        }
        for name in plan.retimed {
            guard let spec = specs[name] else { continue }
            guard var script = running[name] else { disabled.remove(name); begin(spec, at: now); continue }
            script.state = TrackScriptState(carryingOver: script.state, rise: spec.rise, fall: spec.fall, initFail: spec.initFail)
            script.schedule = TrackScriptSchedule(continuing: script.schedule, interval: spec.interval, timeout: spec.timeout, now: now)
            script.spec = spec
            running[name] = script
            logger.info("VRRP_Script(\(name)) considered \(script.state.isUp ? "successful" : "unsuccessful") on reload")
        }
        for name in plan.replaced + plan.added {
            if let spec = specs[name] { begin(spec, at: now) }
        }
        // Disabled scripts are looked at again: the file may exist now, or be safe.
        for name in plan.unchanged where disabled.contains(name) {
            disabled.remove(name)
            if let spec = specs[name] { begin(spec, at: now) }
        }
        track(interfacesOf: setup)
    }

    // MARK: Track files

    /// The track files the setup uses, read at once. init_file writes its value into a missing
    /// file (at start and at a reload), and with overwrite into an existing regular one at
    /// start only, as keepalived.
    func track(filesOf setup: VRRPSetup, initialising: Bool) {
        var next: [String: (path: String, value: Int)] = [:]
        for spec in setup.trackFiles {
            let kind = files.kind(of: spec.path)
            if let value = spec.initValue, kind == nil || (kind == .regular && spec.initOverwrite && initialising) {
                // In place, 0644, as keepalived's fopen "w": other tools read and write it.
                if !files.write("\(value)\n", to: spec.path) {
                    logger.error("Unable to initialise track file \(spec.name) (\(spec.path))")
                }
            }
            next[spec.name] = (spec.path, trackFiles[spec.name].map { $0.path == spec.path ? $0.value : 0 } ?? 0)
        }
        trackFiles = next
        _ = readTrackFiles()
    }

    /// Reads every track file (once a second, with the links: keepalived watches them with
    /// inotify, so it may react up to a second sooner); true when a number changed.
    private func readTrackFiles() -> Bool {
        var changed = false
        for name in trackFiles.keys.sorted() {
            guard let entry = trackFiles[name] else { continue }
            // Non-blocking and at most 127 bytes, as keepalived: a FIFO or a huge file named by
            // mistake cannot stall the loop.
            let bytes = files.readSmall(entry.path, max: 127)
            guard let value = bytes.map(trackFileValue) ?? 0 else {
                logger.warning("Track file \(name) (\(entry.path)) holds an invalid number: ignored")
                continue
            }
            guard value != entry.value else { continue }
            logger.info("Track file \(name) (\(entry.path)) now reads \(value), was \(entry.value)")
            trackFiles[name] = (entry.path, value)
            changed = true
        }
        return changed
    }

    // MARK: Track processes

    /// The tracked processes of the setup; a kept one (same pattern and quorum) keeps its
    /// state, a new one is counted at once.
    func track(processesOf setup: VRRPSetup, at now: Int64) {
        var next: [String: (spec: TrackProcessSpec, state: ProcessQuorumState)] = [:]
        for spec in setup.trackProcesses {
            if let kept = processes[spec.name], kept.spec == spec { next[spec.name] = kept; continue }
            next[spec.name] = (spec, ProcessQuorumState(quorum: spec.quorum, quorumMax: spec.quorumMax,
                                                         forkDelay: spec.forkDelay, terminateDelay: spec.terminateDelay))
        }
        let fresh = Set(next.keys).subtracting(processes.keys)
        processes = next
        _ = countProcesses(at: now, first: fresh)
    }

    /// One look at the process table (command lines read only if a pattern needs them).
    private func countProcesses(at now: Int64, first: Set<String> = []) -> Bool {
        guard !processes.isEmpty else { return false }
        let table = processTable(processes.values.contains { $0.spec.pattern.fullCommand })
        var changed = false
        for name in processes.keys.sorted() {
            guard var entry = processes[name] else { continue }
            let count = table.reduce(0) { $0 + (entry.spec.pattern.matches(comm: $1.comm, commandLine: $1.commandLine) ? 1 : 0) }
            if entry.state.record(count: count, at: now, first: first.contains(name)) {
                logger.info("Track process \(name) is now \(entry.state.isUp ? "up" : "down") (\(count) running, quorum \(entry.spec.quorum))")
                changed = true
            }
            processes[name] = entry
        }
        return changed
    }

    // MARK: LoopHost

    /// The next run, link check or script timeout. A run's own deadline is not among them:
    /// the process runner enforces it (SIGTERM, then SIGKILL later) and reports the run when
    /// it is reaped; waking at a deadline already past would spin until then.
    var nextDeadline: Int64? {
        var earliest = tracksNothingPeriodic ? Int64.max : nextInterfaceCheck
        for script in running.values { earliest = min(earliest, script.schedule.nextRunAt) }
        if let d = scripts.nextDeadline { earliest = min(earliest, d) }
        if let d = debounce.nextDeadline { earliest = min(earliest, d) }
        // A fork_delay / terminate_delay that ends between two looks at the table.
        for entry in processes.values { if let d = entry.state.pendingUntil { earliest = min(earliest, d) } }
        return earliest == Int64.max ? nil : earliest
    }

    func runDueWork(at now: Int64) {
        var changed = false
        for finished in scripts.poll(now: now) {
            if case .firewall = finished.id { onFirewallFinished?(finished.success) }
            if case .misc = finished.id { onMiscFinished?(finished, now) }
            guard case .track(let name, let serial) = finished.id, var script = running[name], script.serial == serial else { continue }
            script.schedule.runFinished(at: now)
            script.lastDuration = finished.runtime
            // success, failure and timeout are exclusive, so their sum is the number of runs.
            if finished.timedOut {
                script.timeouts += 1
                logger.warning("VRRP_Script(\(name)) timed out after \(finished.runtime / 1000) ms")
            } else if finished.success {
                script.successes += 1
            } else {
                script.failures += 1
            }
            onRunFinished(name, finished)
            let wasAwaiting = script.state.awaitingFirstResult
            if let transition = script.state.record(success: finished.success) {
                logger.info("VRRP_Script(\(name)) \(transition == .becameUp ? "succeeded" : "failed")")
                changed = true
            } else if wasAwaiting {
                // The first result settles a script even when it confirms the initial verdict.
                logger.info("VRRP_Script(\(name)) \(script.state.isUp ? "succeeded" : "failed")")
                changed = true
            }
            running[name] = script
        }
        // Sorted (runs start in name order) only when one is due: this is every loop turn.
        let due = running.values.contains { $0.schedule.nextRunAt <= now } ? running.keys.sorted() : []
        for name in due {
            guard var script = running[name], script.schedule.nextRunAt <= now else { continue }
            switch script.schedule.decide(at: now) {
            case .wait:
                break
            case .skipStillRunning:
                logger.warning("Track script \(name) is already running, expect idle - skipping run")
            case .run:
                do {
                    try scripts.startTrack(script.spec, id: .track(name, serial: script.serial), timeout: script.schedule.timeout, now: now)
                    script.schedule.runStarted(at: now)
                } catch {
                    logger.error("VRRP_Script(\(name)) cannot be started: \(error)")
                    if script.state.record(success: false) != nil { changed = true }
                }
            }
            running[name] = script
        }
        if now < nextInterfaceCheck, processes.values.contains(where: { $0.state.pendingUntil.map { $0 <= now } ?? false }) {
            if countProcesses(at: now) { changed = true }
        }
        for change in debounce.due(at: now) where interfaces[change.name] != nil {
            show(change.name, up: change.up)
            changed = true
        }
        if now >= nextInterfaceCheck {
            nextInterfaceCheck = now + periodicInterval
            if linksChanged(at: now) { changed = true }
            if readTrackFiles() { changed = true }
            if countProcesses(at: now) { changed = true }
        }
        if changed { onChange(now) }
    }
}
