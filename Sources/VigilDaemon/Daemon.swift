@preconcurrency import Glibc
import Logging
import LVS
import VRRP
import VRRPSpecs
import VigilConfig
import VigilMetrics
import VigilStatus
import VigilSystem

public struct DaemonOptions: Sendable {
    public var configPath: String
    public var configID: String?
    public var logConsole: Bool
    public var logDetail: Bool
    public var foreground: Bool
    public var pidFile: String?
    /// `-p` was given: it wins over `use_pid_dir`.
    public var pidFileGiven = false
    /// keepalived's `-V`: keep VIPs (and send no priority-0 advert) on stop.
    public var releaseVIPsOnStop: Bool
    /// keepalived's `-I`: leave the IPVS services in place on stop.
    public var releaseIPVSOnStop: Bool
    /// `-P` / `-C`: run only one half.
    public var runVRRP: Bool
    public var runChecker: Bool
    /// The control socket (`vigil status`, `vigil reload`); nil: none.
    public var controlPath: String?
    /// `--control` was given (a path or none): it wins over net_namespace's and instance's.
    public var controlPathGiven = false
    /// keepalived's `-s NAME`: the network namespace, over the file's net_namespace.
    public var namespace: String?
    /// `--metrics ADDR:PORT`: where /metrics is served; nil: not at all.
    public var metricsListen: String?
    /// Where keepalived's dump files go (SIGUSR1, SIGUSR2, SIGJSON): keepalived's tmp_dir.
    public var dumpDirectory = "/tmp"
    /// `-u MASK`: the file-creation mask, over global_defs' `umask`.
    public var umask: UInt32?

    public init(configPath: String, configID: String?, logConsole: Bool, logDetail: Bool, foreground: Bool,
                pidFile: String?, releaseVIPsOnStop: Bool, releaseIPVSOnStop: Bool = true,
                runVRRP: Bool = true, runChecker: Bool = true, controlPath: String? = nil, metricsListen: String? = nil) {
        self.controlPath = controlPath
        self.metricsListen = metricsListen
        self.releaseIPVSOnStop = releaseIPVSOnStop
        self.runVRRP = runVRRP
        self.runChecker = runChecker
        self.configPath = configPath
        self.configID = configID
        self.logConsole = logConsole
        self.logDetail = logDetail
        self.foreground = foreground
        self.pidFile = pidFile
        self.releaseVIPsOnStop = releaseVIPsOnStop
    }
}

/// The daemon as wiring: one event loop, and the hosts that register with it: the VRRP host
/// (instances, sockets, VIPs, GARP/NA), the tracker host (track scripts and links) and the
/// checker host (IPVS and TCP_CHECK). Signals arrive on the loop too; SIGHUP is `reload()`
/// (Reload.swift). Every adapter comes from `DaemonSystem`, so the same daemon runs on the
/// machine and, in Tests/VigilDaemonTests, on fakes in virtual time.
public final class Daemon {
    public let options: DaemonOptions
    let system: DaemonSystem
    var logger: Logger
    public let loop: EventLoop
    let scripts: ScriptHost
    let trackers: TrackerHost
    let vrrp: VRRPHost
    let mail: MailHost
    let firewall: FirewallHost
    var checkers: CheckerHost?
    let announcements: AnnouncementHost
    let ipvsSettings: IPVSSettingsHost
    let codePages = CodePageRelease()
    var control: StreamServer?
    var metrics: VigilMetrics?
    var metricsServer: StreamServer?
    /// systemd's notifications, when the daemon runs under it (Type=notify).
    var serviceNotify: ServiceNotifyHost?
    /// The vrrp_* and checker_* scheduling last applied; nil until a configuration asked.
    var appliedScheduling: (vrrp: SchedulingSettings, checker: SchedulingSettings)?
    /// The loop thread's SCHED_RR priority as max_auto_priority raised it (nil: not raised).
    var autoRealtimePriority: Int?
    /// The configuration in force: the one loaded at start, or the last reload that applied.
    public internal(set) var configuration: Configuration
    var setup: VRRPSetup
    public private(set) var stopping = false
    /// The last reloads' outcomes, newest last (at most `recentReloads`; the counts of all
    /// of them are in `reloadCounts`).
    public internal(set) var reloads: [ReloadOutcome] = []
    static let recentReloads = 32
    public internal(set) var reloadCounts = ReloadCounts()
    /// When this daemon started, seconds since the epoch.
    public let startedAt: Double

    /// Builds everything the configuration asks for without starting it; throws when an
    /// instance cannot be set up at all (then nothing has been changed on the machine).
    public init(options: DaemonOptions, configuration: Configuration, system: DaemonSystem, logger: Logger) throws(DaemonError) {
        self.options = options
        self.system = system
        self.logger = logger
        self.configuration = configuration
        startedAt = system.clock.wallClock()
        loop = EventLoop(clock: system.clock, waiter: system.waiter)
        scripts = ScriptHost(runner: system.processes, clock: system.clock, host: system.host, globals: configuration.globals, logger: logger,
                             fifoControl: system.fifos)
        trackers = TrackerHost(scripts: scripts, addresses: system.addresses, files: system.files,
                               processTable: system.processTable, logger: logger)
        vrrp = VRRPHost(loop: loop, clock: system.clock, network: system.network, addresses: system.addresses, routing: system.routing,
                        links: system.links, scripts: scripts, trackers: trackers, logger: logger)
        mail = MailHost(loop: loop, clock: system.clock, connect: system.connectTCP, hostName: system.hostName,
                        userName: system.userName, logger: logger)
        vrrp.mail = mail
        firewall = FirewallHost(scripts: scripts, nft: system.nftPath, runNow: system.runNow, logger: logger)
        firewall.configure(table: configuration.globals.nftablesTable, priority: configuration.globals.nftablesPriority)
        vrrp.firewall = firewall
        trackers.onFirewallFinished = { [firewall] success in firewall.finished(success: success) }
        announcements = AnnouncementHost(routing: system.routing, table: configuration.globals.announceTable,
                                         protocolNumber: configuration.globals.announceProtocol, logger: logger)
        ipvsSettings = IPVSSettingsHost(openIPVS: system.openIPVS, logger: logger)
        setup = VRRPSetup()
        loop.onWaitError = { [logger] error in logger.error("poll: \(error)") }
        // The signal pipe first: it is then handled before the packets that arrived with it.
        loop.watch(system.signals.fd) { [unowned self] _ in self.handleSignals() }
        if options.runVRRP {
            let (built, problems) = VRRPSetupBuilder.build(configuration)
            if let problem = problems.first { throw DaemonError(problem.message) }
            setup = built
            try vrrp.setUp(setup)
        }
        mail.settings = VRRPSetupBuilder.mailSettings(configuration.globals)
        if options.runChecker {
            let (specs, warnings) = LVSSpecBuilder.build(configuration)
            for warning in warnings { logger.warning("\(warning)") }
            Self.addTrackFiles(of: specs, to: &setup)
            checkers = CheckerHost(specs: specs, globals: configuration.globals, system: system, loop: loop, scripts: scripts, logger: logger)
            if let checkers { connect(checkers) }
            configureAnnouncements(specs, configuration.globals)
        }
        codePages.release = { [unowned self] in self.releaseStartupPages(after: "the transitions settled") }
        vrrp.onStateChanged = { [unowned self] in
            self.codePages.transitioned(at: self.system.clock.now())
            self.announcements.changed()
            self.ipvsSettings.changed()
            self.checkers?.addressesMayHaveChanged()
        }
        vrrp.onAddressesChanged = { [unowned self] in self.checkers?.addressesMayHaveChanged() }
        trackers.onChange = { [unowned self] now in
            self.vrrp.trackersChanged(at: now)
            self.checkers?.trackFilesChanged(at: now)
        }
        trackers.onMiscFinished = { [unowned self] finished, now in self.checkers?.miscFinished(finished, at: now) }
        loop.add(vrrp)
        loop.add(trackers)
        loop.add(mail)
        if let checkers { loop.add(checkers) }
        // After the checker and VRRP hosts: a quorum or state change is announced in its turn.
        loop.add(announcements)
        loop.add(ipvsSettings)
        loop.add(codePages)
        if let path = options.controlPath { openControlSocket(path) }
        if let listen = options.metricsListen { openMetrics(listen) }
        if let manager = system.serviceManager {
            let host = ServiceNotifyHost(manager: manager, logger: logger, statusLine: { [unowned self] in self.serviceStatusLine() })
            serviceNotify = host
            loop.add(host)
        }
    }

    /// FILE_CHECK's track files are read by the tracker host with the instances' own (one
    /// read a second for both, and init_file written once).
    static func addTrackFiles(of specs: [VirtualServerSpec], to setup: inout VRRPSetup) {
        for file in specs.flatMap({ $0.realServers.flatMap { $0.checkers.compactMap(\.file) } })
        where !setup.trackFiles.contains(where: { $0.name == file.trackFile }) {
            setup.trackFiles.append(TrackFileSpec(name: file.trackFile, path: file.path, initValue: file.initValue, initOverwrite: file.initOverwrite))
        }
    }

    /// The virtual servers' route announcements, read against the checker host's quorum and
    /// the VRRP host's states. Without IPVS nothing is checked, so nothing is announced.
    func configureAnnouncements(_ specs: [VirtualServerSpec], _ globals: GlobalDefs) {
        announcements.configure(specs, table: globals.announceTable, protocolNumber: globals.announceProtocol,
                                quorumUp: { [unowned self] v in self.checkers?.isActive == true && self.checkers?.isQuorumUp(v) == true },
                                isMaster: { [unowned self] name in self.vrrp.isMaster(name) })
        checkers?.onQuorumChanged = { [unowned self] in self.announcements.changed() }
        if announcements.isConfigured, checkers?.isActive != true {
            logger.warning("announce: IPVS is not available, so no virtual server has quorum: nothing is announced")
        }
    }

    /// Whether anything runs: no VRRP instance and no usable IPVS leaves nothing to do.
    public var hasWork: Bool { !vrrp.instances.isEmpty || (checkers?.isActive ?? false) }

    /// keepalived's default file-creation mask: files the daemon makes (pid file, dumps,
    /// FIFOs) are its own alone unless `umask` or `-u` says otherwise.
    public static let defaultUmask: UInt32 = 0o177

    /// The mask that applies: `-u`, else the configuration's, else keepalived's default.
    static func fileCreationMask(_ options: DaemonOptions, _ globals: GlobalDefs) -> UInt32 {
        options.umask ?? globals.umask ?? defaultUmask
    }

    /// At start and after each reload, as keepalived's parser sets it.
    func applyUmask(_ globals: GlobalDefs) {
        if options.umask != nil, globals.umask != nil {
            logger.info("umask command line option specified, ignoring config option")
        }
        system.setUmask(Self.fileCreationMask(options, globals))
    }

    /// keepalived's startup_script and shutdown_script: run to their end (killed at their
    /// timeout) before anything starts and after everything has stopped; whatever their
    /// outcome, the daemon goes on, as keepalived.
    private func runToEnd(_ command: ScriptCommand?, timeout: Int64, type: String) {
        guard let command else { return }
        logger.info("Running \(type) script \(command.command)")
        let (success, output) = system.runNow(scripts.spec(for: command), timeout)
        if success {
            logger.debug("\(type) script succeeded")
        } else {
            logger.warning("\(type) script \(command.command) failed: \(output.isEmpty ? "no output" : output)")
        }
    }

    public func start() {
        system.scheduling?.report = { [logger] failure in logger.warning("\(failure)") }
        loop.lateAfter = configuration.globals.minAutoPriorityDelay
        loop.onLate = { [unowned self] late in self.loopWasLate(by: late) }
        applyUmask(configuration.globals)
        runToEnd(configuration.globals.startupScript, timeout: configuration.globals.startupScriptTimeout, type: "startup")
        scripts.fifos.configure(configuration.globals.notifyFIFOs)
        applyScheduling(configuration.globals)
        let now = system.clock.now()
        trackers.start(setup, at: now)
        vrrp.start(at: now)
        checkers?.start(at: system.clock.now())
        announcements.start(at: system.clock.now())
        ipvsSettings.configure(SyncDaemonSpec.build(configuration), timeouts: configuration.globals.lvsTimeouts, isMaster: { [unowned self] name in self.vrrp.isMaster(name) })
        serviceNotify?.ready(at: system.clock.now())
        releaseStartupPages(after: "start")
    }

    /// keepalived's vrrp_* settings on the loop's thread, checker_* on the checkers' workers,
    /// at start and at each reload that changes them (keepalived applies them only when its
    /// child starts). RLIMIT_RTTIME is the process's: with both real-time, the larger limit.
    func applyScheduling(_ globals: GlobalDefs) {
        guard let control = system.scheduling else { return }
        let wanted = (vrrp: globals.vrrpScheduling, checker: globals.checkerScheduling)
        if let applied = appliedScheduling {
            if applied.vrrp == wanted.vrrp && applied.checker == wanted.checker { return }
        } else if wanted.vrrp.isDefault && wanted.checker.isDefault {
            return
        }
        appliedScheduling = wanted
        autoRealtimePriority = nil
        var failures = control.apply(loop: Self.plan(wanted.vrrp), checkers: Self.plan(wanted.checker))
        if let failure = control.lockMemory(wanted.vrrp.noSwap || wanted.checker.noSwap) { failures.append(failure) }
        let limits = [wanted.vrrp, wanted.checker].filter { $0.realtimePriority != nil }
            .map { $0.realtimeLimit ?? SchedulingSettings.defaultRealtimeLimit }
        if let failure = control.setRealtimeLimit(limits.max()) { failures.append(failure) }
        for failure in failures { logger.warning("\(failure)") }
        logger.info("Scheduling: \(Self.describe(wanted.vrrp, "loop thread (VRRP)")); \(Self.describe(wanted.checker, "checker threads"))\(control.isMemoryLocked ? "; memory locked" : "")\(limits.max().map { "; SIGXCPU after \($0 / 2) µs of real-time CPU without sleeping" } ?? "")")
    }

    static func plan(_ s: SchedulingSettings) -> ThreadScheduling.Plan {
        ThreadScheduling.Plan(nice: s.nice, realtimePriority: s.realtimePriority, cpus: s.cpus)
    }

    /// keepalived's scheduler check: a wake more than min_auto_priority_delay late is logged,
    /// and with max_auto_priority the loop thread goes one SCHED_RR step up (from the lowest),
    /// to at most that priority, with keepalived's default RLIMIT_RTTIME when it was not
    /// real-time before.
    func loopWasLate(by late: Int64) {
        logger.info("A thread timer expired \(late / 1_000_000).\(String(repeating: "0", count: 6 - String(late % 1_000_000).count))\(late % 1_000_000) seconds ago")
        let globals = configuration.globals
        guard globals.maxAutoPriority > 0, let control = system.scheduling else { return }
        let current = autoRealtimePriority ?? globals.vrrpScheduling.realtimePriority ?? 0
        guard current < globals.maxAutoPriority else { return }
        let next = current == 0 ? 1 : current + 1
        var loopPlan = Self.plan(globals.vrrpScheduling)
        loopPlan.realtimePriority = next
        var failures = control.apply(loop: loopPlan, checkers: Self.plan(globals.checkerScheduling))
        if current == 0, let failure = control.setRealtimeLimit(globals.vrrpScheduling.realtimeLimit ?? SchedulingSettings.defaultRealtimeLimit) {
            failures.append(failure)
        }
        for failure in failures { logger.warning("\(failure)") }
        autoRealtimePriority = next
        appliedScheduling = (globals.vrrpScheduling, globals.checkerScheduling)
        logger.info("Set realtime priority \(next)")
    }

    static func describe(_ s: SchedulingSettings, _ who: String) -> String {
        var parts: [String] = []
        if let p = s.realtimePriority { parts.append("SCHED_RR \(p)") } else if let n = s.nice { parts.append("nice \(n)") }
        if !s.cpus.isEmpty { parts.append("CPUs \(s.cpus.map(String.init).joined(separator: ","))") }
        return "\(who) \(parts.isEmpty ? "as started" : parts.joined(separator: ", "))"
    }

    /// The parser, the checks and the first apply ran once: their code need not stay resident.
    func releaseStartupPages(after what: String) {
        // Locked pages cannot be dropped (madvise refuses them): *_no_swap keeps them.
        if system.scheduling?.isMemoryLocked == true { return }
        codePages.released()
        let released = system.releaseStartupPages()
        if released > 0 { logger.debug("\(released) kB of code pages resident after \(what) released") }
    }

    /// One turn of the loop (see `EventLoop.turn`).
    public func turn(maxWait: Int64 = EventLoop.maximumWait) { loop.turn(maxWait: maxWait) }

    /// Signals, drained in order: a SIGTERM stops; SIGHUPs that arrived together are one
    /// reload (keepalived also queues at most one); one that arrives during a reload waits in
    /// the pipe and is the next turn's reload, so none is lost.
    func handleSignals() {
        var reloadWanted = false
        for signal in system.signals.drain() {
            switch signal {
            case SIGTERM, SIGINT:
                if reloadWanted { reload(); reloadWanted = false }
                logger.notice("Stopping on signal \(signal)")
                stopping = true
                return
            case SIGHUP:
                reloadWanted = true
            case SIGXCPU:
                // RLIMIT_RTTIME's soft limit (see `applyScheduling`): keepalived's child is
                // killed at the hard limit; Vigil sets none, and says so here.
                logger.warning("A real-time thread ran past half of its rlimit_rttime without sleeping (SIGXCPU); Vigil carries on (keepalived's process would be killed at the limit)")
            default:
                // SIGCHLD: the tracker host reaps by pid in its turn.
                if let dump = KeepalivedSignal(number: signal) { writeDump(for: dump) }
            }
        }
        if reloadWanted { reload() }
    }

    /// What a checker host reads from and reports to the rest of the daemon (at start, or on
    /// the reload that brings the first virtual servers).
    func connect(_ host: CheckerHost) {
        host.trackFileValue = { [unowned self] name in self.trackers.fileValue(name) }
        host.mail = mail
    }

    /// keepalived's stop: instances leave (priority 0, VIPs released unless -V), IPVS is
    /// torn down (unless -I), scripts get their second to finish.
    public func shutDown() {
        serviceNotify?.stopping()
        closeEndpoints()
        announcements.shutDown()
        vrrp.shutDown(at: system.clock.now(), keepVIPs: !options.releaseVIPsOnStop)
        checkers?.shutDown(release: options.releaseIPVSOnStop)
        mail.deliverPending(waiter: system.waiter, until: system.clock.now() + 5_000_000)
        ipvsSettings.shutDown()
        scripts.stopAll(grace: Int64(configuration.globals.childWaitTime ?? 1) * 1_000_000)
        // After stopAll: a background nft run still going could otherwise bring a table back.
        if options.releaseVIPsOnStop { firewall.removeAll() }
        runToEnd(configuration.globals.shutdownScript, timeout: configuration.globals.shutdownScriptTimeout, type: "shutdown")
        logger.notice("Stopped Vigil")
    }

    /// The control socket (its file removed) and the metrics listener.
    func closeEndpoints() {
        control?.close()
        metricsServer?.close()
    }

    // MARK: The process

    /// The pid file: `-p`, else one in Vigil's run directory under `use_pid_dir`,
    /// `net_namespace` or `instance` (each turns keepalived's use_pid_dir on), else the default.
    static func pidFile(_ options: DaemonOptions, usePidDir: Bool, namespace: String? = nil, instance: String? = nil) -> String? {
        guard usePidDir || namespace != nil || instance != nil, !options.pidFileGiven else { return options.pidFile }
        return runFile(namespace: namespace, instance: instance, suffix: ".pid")
    }
    static let pidDirectory = "/run/vigil"

    /// The control socket where `vigil status` looks for it: /run/vigil/vigil.sock, in a
    /// directory of the namespace's name under net_namespace (keepalived's pid files are at
    /// /run/keepalived/NAMESPACE/ seen from outside), named vigil_INSTANCE.sock under instance
    /// (keepalived's keepalived_INSTANCE.pid): daemons side by side never share one.
    public static func controlSocket(namespace: String?, instance: String?) -> String {
        runFile(namespace: namespace, instance: instance, suffix: ".sock")
    }

    static func runFile(namespace: String?, instance: String?, suffix: String) -> String {
        pidDirectory + (namespace.map { "/\($0)" } ?? "") + "/vigil" + (instance.map { "_\($0)" } ?? "") + suffix
    }

    /// The run directory and the namespace's under it (0755), as `mkdir -p` would.
    static func makeParentDirectories(of path: String) {
        var directory = ""
        for part in path.split(separator: "/").dropLast() {
            directory += "/" + part
            mkdir(directory, 0o755)
        }
    }

    public static func run(_ launched: DaemonOptions) -> Int32 {
        var options = {
            var options = launched
            options.dumpDirectory = dumpDirectory(environment: getenv("TMPDIR").map { String(cString: $0) })
            return options
        }()
        UserDatabase.useFilesOnlyIfStatic()
        LoggingSystem.bootstrap { _ in
            VigilLogHandler(destination: options.logConsole ? .console : .syslog,
                            level: options.logDetail ? .debug : .info)
        }
        var logger = Logger(label: "vigil")
        if !options.logConsole { openlog("Vigil", LOG_PID, LOG_DAEMON) }

        logger.notice("Starting Vigil with \(options.configPath)")
        let loadStart = MonotonicClock.nowMicroseconds()
        let (config, diagnostics) = ConfigLoader.load(path: options.configPath, configID: options.configID,
                                                      namespace: options.namespace, entersNamespace: true)
        logger.debug("configuration read in \((MonotonicClock.nowMicroseconds() - loadStart) / 1000) ms")
        // Every error and warning, those that do not change `-t`'s exit status included
        // (a checker or keyword Vigil does not act on yet must be in the log, not only in -t).
        for d in diagnostics.all where d.severity != .note {
            logger.log(level: d.severity == .error ? .error : .warning, "\(d)")
        }
        if diagnostics.all.contains(where: { $0.klass == .fatal }) {
            logger.critical("configuration has fatal problems (see above): not starting; check it with vigil -t")
            return 2
        }
        if let namespace = config.netNamespace { logger.info("Running in network namespace \(namespace)") }
        if config.netNamespace != nil || config.instanceName != nil {
            // keepalived's syslog ident keepalived_NAMESPACE_INSTANCE, so their lines tell apart.
            let ident = (["Vigil"] + [config.netNamespace, config.instanceName].compactMap { $0 }).joined(separator: "_")
            logger.info("Changing syslog ident to \(ident)")
            if !options.logConsole {
                closelog()
                openlog(strdup(ident), LOG_PID, LOG_DAEMON)
            }
        }
        options.pidFile = pidFile(options, usePidDir: config.globals.usePidDir, namespace: config.netNamespace, instance: config.instanceName)
        if !options.controlPathGiven {
            options.controlPath = controlSocket(namespace: config.netNamespace, instance: config.instanceName)
        }
        for path in [options.pidFile, options.controlPath].compactMap({ $0 }) where path.hasPrefix(pidDirectory + "/") {
            makeParentDirectories(of: path)
        }
        let hasVRRP = options.runVRRP && !config.instances.isEmpty
        let hasLVS = options.runChecker && !config.virtualServers.isEmpty
        if !hasVRRP && !hasLVS {
            logger.critical("no vrrp_instance and no virtual_server to run: nothing to do")
            return 2
        }
        if !options.foreground { daemonize(&logger) }
        // Before the pid file: it is made under the configured mask, as keepalived's.
        Glibc.umask(mode_t(fileCreationMask(options, config.globals)))
        do {
            let system = try DaemonSystem.linux()
            // keepalived exits when it cannot write its pid file; a full disk or a missing
            // directory must not keep the VIPs down, so Vigil says so and runs without one.
            var wrotePidFile = false
            if let pidFile = options.pidFile {
                do {
                    try writePidFile(pidFile)
                    wrotePidFile = true
                } catch {
                    logger.error("\(error); running without a pid file")
                }
            }
            defer { if wrotePidFile, let pidFile = options.pidFile { unlink(pidFile) } }
            let daemon = try Daemon(options: options, configuration: config, system: system, logger: logger)
            guard daemon.hasWork else {
                daemon.closeEndpoints()
                logger.critical("nothing left to run: no VRRP instance, and the virtual servers need IPVS")
                return 1
            }
            daemon.start()
            while !daemon.stopping { daemon.turn() }
            daemon.shutDown()
            return 0
        } catch {
            logger.critical("cannot start: \(error)")
            return 1
        }
    }

    private static func writePidFile(_ path: String) throws(DaemonError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DaemonError("cannot write pid file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // rw-r--r-- whatever the umask, as keepalived's pid files.
        fchmod(fd, 0o644)
        let text = "\(getpid())\n"
        let length = strlen(text)
        guard text.withCString({ write(fd, $0, length) }) == length else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw DaemonError("cannot write pid file \(path): \(reason)")
        }
    }

    /// Classic daemon start: fork, new session, stdio to /dev/null. Done before any socket or
    /// thread exists.
    static func daemonize(_ logger: inout Logger) {
        let pid = fork()
        if pid < 0 { logger.critical("fork: \(String(cString: strerror(errno)))"); exit(1) }
        if pid > 0 { exit(0) }
        setsid()
        let null = open("/dev/null", O_RDWR)
        if null >= 0 { dup2(null, 0); dup2(null, 1); dup2(null, 2); if null > 2 { close(null) } }
    }
}
