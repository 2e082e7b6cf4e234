import IPVS
import LVS
import Logging
import VRRPSpecs
import VigilConfig

/// What one reload did, as the daemon logs it in one line.
public struct ReloadOutcome: Sendable {
    public enum Result: Sendable, Equatable {
        /// Something changed and was applied.
        case applied
        /// The file means what the running configuration means: nothing was touched.
        case unchanged
        /// The file has errors (or cannot run): nothing was touched.
        case refused
    }

    public var result: Result
    /// The reload's log line.
    public var summary: String
    /// For a refused reload: the errors, each with file:line:column.
    public var errors: [String] = []
    /// The VRRP side's old × new plan (empty when refused).
    public var vrrpPlan = VRRPReloadPlan()
    public var lvsSummary = LVSReloadSummary()
    /// The IPVS operations the reload sent: 0 for an unchanged file.
    public var ipvsOperations: [IPVSOperation] = []
    public var durationMicroseconds: Int64 = 0
    /// When it happened, seconds since the epoch.
    public var wallTime: Double = 0
}

extension Daemon {
    /// SIGHUP. The file is read and checked completely, with the same checks as `vigil -t`,
    /// before anything changes; any error refuses the reload and the daemon runs on as it
    /// was. Otherwise VRRP instances continue by identity (see `VRRPReloadPlan`), track
    /// scripts by name, virtual and real servers by key with their checkers' state, and the
    /// IPVS table is changed by exactly the difference.
    @discardableResult
    public func reload() -> ReloadOutcome {
        let began = system.clock.now()
        // keepalived's reload_file: there while the reload runs, so an updater can wait for it.
        let reloadFile = configuration.globals.reloadFile
        if let reloadFile, !system.files.create(reloadFile) { logger.warning("Failed to create reload file (\(reloadFile))") }
        serviceNotify?.reloading(at: began)
        let outcome = attemptReload(began: began)
        for file in Set([reloadFile, configuration.globals.reloadFile].compactMap { $0 }) { system.files.remove(file) }
        var logged = outcome
        logged.durationMicroseconds = system.clock.now() - began
        logged.wallTime = system.clock.wallClock()
        switch outcome.result {
        case .refused:
            for error in outcome.errors { logger.error("\(error)") }
            logger.error("\(outcome.summary)")
        case .applied, .unchanged:
            logger.notice("\(outcome.summary) in \(Self.milliseconds(logged.durationMicroseconds))")
        }
        reloads.append(logged)
        if reloads.count > Self.recentReloads { reloads.removeFirst(reloads.count - Self.recentReloads) }
        switch logged.result {
        case .applied: reloadCounts.applied += 1
        case .unchanged: reloadCounts.unchanged += 1
        case .refused: reloadCounts.refused += 1
        }
        reloadCounts.last = (logged.wallTime, "\(logged.result)", logged.summary)
        if logged.result != .refused {
            reloadCounts.lastSuccessAt = logged.wallTime
            applyScheduling(configuration.globals)
            applyUmask(configuration.globals)
            loop.lateAfter = configuration.globals.minAutoPriorityDelay
        }
        serviceNotify?.reloaded()
        releaseStartupPages(after: "the reload")
        return logged
    }

    private func attemptReload(began: Int64) -> ReloadOutcome {
        let file = options.configPath
        logger.debug("Reloading \(file)")
        // The loop is not turning while the file is read: adverts that fall due meanwhile
        // are sent from the parser's progress calls, so a large file cannot delay them.
        let (config, diagnostics) = ConfigLoader.load(path: file, configID: options.configID, fileSystem: system.files,
                                                      host: system.host, namespace: options.namespace, progress: { [vrrp, system] in vrrp.sendDueAdverts(at: system.clock.now()) })
        if let log = configuration.globals.reloadCheckConfigLog {
            // keepalived's reload_check_config LOG: the new file's config-test output.
            let shown = diagnostics.all.filter { $0.severity != .note }
            let text = shown.map(\.description).joined(separator: "\n") + (shown.isEmpty ? "" : "\n")
            if !system.files.write(text, to: log) { logger.warning("cannot write the reload check to \(log)") }
        }
        var errors = diagnostics.all.filter { $0.severity == .error }.map(\.description)
        if config.netNamespace != configuration.netNamespace {
            errors.append("\(file): net_namespace cannot change at a reload - please restart")
        }
        var (newSetup, problems) = options.runVRRP ? VRRPSetupBuilder.build(config) : (VRRPSetup(), [])
        errors += problems.map { "\($0.location): error: \($0.message)" }
        if !errors.isEmpty { return refused(file, errors) }
        for d in diagnostics.all where d.severity == .warning { logger.warning("\(d)") }
        if config.instanceName != configuration.instanceName {
            // keepalived reads `instance` at start only; the pid file and socket keep their names.
            logger.warning("\(file): instance cannot change at a reload: the pid file and control socket keep their names until a restart")
        }
        if config.globals.disableLocalIGMP != configuration.globals.disableLocalIGMP {
            // keepalived's words; the setting stays as the start made it.
            logger.info("Cannot change disable_local_igmp at a reload - please restart Vigil")
            newSetup.disableLocalIGMP = configuration.globals.disableLocalIGMP
        }

        let (checkerSpecs, checkerWarnings) = options.runChecker ? LVSSpecBuilder.build(config) : ([], [])
        if options.runChecker { Self.addTrackFiles(of: checkerSpecs, to: &newSetup) }
        let plan = VRRPReloadPlan.plan(old: setup, new: newSetup)
        let prepared: VRRPHost.PreparedReload
        do { prepared = try vrrp.prepareReload(to: newSetup, plan: plan) } catch { return refused(file, ["\(file): error: \(error)"]) }

        // From here on nothing can refuse: the new configuration is committed.
        let now = system.clock.now()
        scripts.configure(config.globals)
        trackers.reload(to: newSetup, plan: plan.scripts, at: now)
        firewall.configure(table: config.globals.nftablesTable, priority: config.globals.nftablesPriority)
        vrrp.commitReload(prepared, at: now, restateFIFOs: config.globals.fifoWriteStatesOnReload)
        mail.settings = VRRPSetupBuilder.mailSettings(config.globals)
        if !plan.kept.filter({ $0.changes.contains { $0.hasPrefix("VIPs") } }).isEmpty {
            logger.warning("VIPs changed: a keepalived peer rejects adverts whose address list differs from its own unless it has skip_check_adv_addr (keepalived #1603); reload the peers too")
        }
        var checkerResult: CheckerHost.ReloadResult?
        if options.runChecker {
            let specs = checkerSpecs
            for warning in checkerWarnings { logger.warning("\(warning)") }
            if let checkers {
                checkerResult = checkers.reload(to: specs, globals: config.globals, at: now)
            } else if let host = CheckerHost(specs: specs, globals: config.globals, system: system, loop: loop, scripts: scripts, logger: logger) {
                // The first virtual servers of this run.
                checkers = host
                connect(host)
                observeChecks(of: host)
                loop.add(host)
                let operations = host.start(at: now)
                checkerResult = CheckerHost.ReloadResult(
                    summary: LVSReloadSummary(virtualServersAdded: specs.count, realServersAdded: specs.reduce(0) { $0 + $1.realServers.count }),
                    operations: operations)
            }
        }
        if options.runChecker { configureAnnouncements(checkerSpecs, config.globals) }
        ipvsSettings.configure(SyncDaemonSpec.build(config), timeouts: config.globals.lvsTimeouts, isMaster: { [unowned self] name in self.vrrp.isMaster(name) })
        configuration = config
        setup = newSetup

        let operations = checkerResult?.operations ?? []
        let lvs = checkerResult?.summary ?? LVSReloadSummary()
        let changed = !plan.isEmpty || !lvs.isEmpty || !operations.isEmpty
        var outcome = ReloadOutcome(result: changed ? .applied : .unchanged, summary: "", vrrpPlan: plan, lvsSummary: lvs,
                                    ipvsOperations: operations)
        outcome.summary = changed ? describe(plan, newSetup, lvs, operations, file: file)
            : "Reload of \(file): nothing changed (\(newSetup.instances.count) VRRP instances, \(lvs.virtualServersKept) virtual servers as they were; 0 netlink operations)"
        return outcome
    }

    private func refused(_ file: String, _ errors: [String]) -> ReloadOutcome {
        let first = errors.first ?? ""
        return ReloadOutcome(result: .refused, summary: "Reload of \(file) refused: \(errors.count) error\(errors.count == 1 ? "" : "s") (first: \(first)); still running the previous configuration",
                             errors: errors)
    }

    /// The one line: instances, VIPs, scripts, services, destinations.
    private func describe(_ plan: VRRPReloadPlan, _ setup: VRRPSetup, _ lvs: LVSReloadSummary, _ ops: [IPVSOperation], file: String) -> String {
        var parts: [String] = []
        if plan.kept.count + plan.added.count + plan.removed.count > 0 {
            let changed = plan.kept.filter { !$0.isUnchanged }
            var vrrp = "VRRP instances \(plan.kept.count) kept"
            if !changed.isEmpty {
                vrrp += " (" + changed.map { "\(setup.instances[$0.new].name): \($0.changes.joined(separator: ", "))" }.joined(separator: "; ") + ")"
            }
            vrrp += ", \(plan.added.count) added"
            if !plan.added.isEmpty { vrrp += " (" + plan.added.map { setup.instances[$0].name }.joined(separator: ", ") + ")" }
            vrrp += ", \(plan.removed.count) removed"
            parts.append(vrrp)
            parts.append("VIPs +\(plan.vipsAdded) -\(plan.vipsRemoved)")
        }
        let s = plan.scripts
        if !s.isEmpty {
            parts.append("track scripts \(s.unchanged.count) kept, \(s.retimed.count + s.replaced.count) changed, \(s.added.count) added, \(s.removed.count) removed")
        }
        if !plan.groupsChanged.isEmpty { parts.append("sync groups changed: \(plan.groupsChanged.joined(separator: ", "))") }
        if plan.staticChanged { parts.append("static addresses, routes, rules, mail or GARP pacing changed") }
        if options.runChecker && (lvs.virtualServersKept + lvs.virtualServersAdded + lvs.virtualServersRemoved > 0) {
            parts.append("virtual servers \(lvs.virtualServersKept) kept, \(lvs.virtualServersAdded) added, \(lvs.virtualServersRemoved) removed")
            parts.append("real servers \(lvs.realServersKept) kept, \(lvs.realServersAdded) added, \(lvs.realServersRemoved) removed")
            parts.append(Self.count(ops.count, "netlink operation") + (ops.isEmpty ? "" : " (" + Self.tally(ops) + ")"))
        }
        return "Reload of \(file) applied: " + parts.joined(separator: "; ")
    }

    /// "1 service added, 8 destinations added", in the order the operations go out.
    static func tally(_ ops: [IPVSOperation]) -> String {
        var counts: [(noun: String, verb: String, count: Int)] = []
        func add(_ noun: String, _ verb: String) {
            if let i = counts.firstIndex(where: { $0.noun == noun && $0.verb == verb }) { counts[i].count += 1 } else { counts.append((noun, verb, 1)) }
        }
        for op in ops {
            switch op {
            case .addService: add("service", "added")
            case .editService: add("service", "edited")
            case .deleteService: add("service", "deleted")
            case .addDestination: add("destination", "added")
            case .editDestination: add("destination", "edited")
            case .deleteDestination: add("destination", "deleted")
            case .flush: add("flush", "")
            }
        }
        return counts.map { count($0.count, $0.noun) + ($0.verb.isEmpty ? "" : " \($0.verb)") }.joined(separator: ", ")
    }

    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    static func milliseconds(_ microseconds: Int64) -> String {
        let tenths = (microseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10) ms"
    }
}
