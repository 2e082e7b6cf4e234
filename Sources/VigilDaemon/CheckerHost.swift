import Addressing
import BodyRegex
import HealthCheck
import IPVS
import LVS
import Logging
import TCPProbe
import VigilConfig
import VigilSystem

/// The IPVS half of the daemon: runs the checks the pure `LVSController` asks for (through
/// probers whose I/O is on worker threads on Linux; the loop sees one descriptor each), turns its events into log lines and notify
/// scripts, and keeps the kernel's table equal to the controller's desired table by planning
/// with `IPVSReconciler` against what Vigil last installed.
final class CheckerHost: LoopHost {
    private(set) var controller: LVSController
    private let kernel: (any IPVSClient)?
    private let prober: any ConnectProber
    private let loop: EventLoop
    private var logger: Logger
    private let scripts: ScriptHost
    private var globals: GlobalDefs
    /// What Vigil believes the kernel holds for the services it owns (foreign services are
    /// never recorded here, so nothing of theirs can end up in a plan).
    private(set) var installed: IPVSTable {
        get {
            if !unrecorded.isEmpty {
                recorded = IPVSReconciler.applying(unrecorded, to: recorded)
                unrecorded = []
            }
            return recorded
        }
        set {
            recorded = newValue
            unrecorded = []
            installedWeightCache = nil
        }
    }
    /// `installed` as last folded, and the operations sent since: a large plan goes out a
    /// request at a time, and folding each into the whole table would cost the table's size
    /// per request. The next reader folds them.
    private var recorded: IPVSTable = [:]
    private var unrecorded: [IPVSOperation] = []
    /// `installed`'s weights by service and destination, for status and every scrape; built on
    /// the first ask after the table changed.
    private var installedWeightCache: [IPVSServiceKey: [IPVSDestinationKey: Int32]]?
    var installedWeights: [IPVSServiceKey: [IPVSDestinationKey: Int32]] {
        if let installedWeightCache { return installedWeightCache }
        var weights: [IPVSServiceKey: [IPVSDestinationKey: Int32]] = [:]
        for (service, dests) in installed {
            var byKey: [IPVSDestinationKey: Int32] = [:]
            for d in dests { byKey[d.key] = d.weight }
            weights[service.key] = byKey
        }
        installedWeightCache = weights
        return weights
    }
    private var reconciledGeneration = -1
    /// How early a checker may run to share a loop wake-up with others (see
    /// `LVSController.timersFired`): 5 ms is 0.5 % of the shortest delay_loop anyone uses.
    static let timerSlack: Int64 = 5_000
    /// How many due checkers start in one turn of the loop: a burst (every checker of a
    /// delay_loop at once, after a start or a reload) is spread over turns, and the VRRP
    /// host's due work runs between them, so no advert waits for a thousand check starts.
    /// The results come back in batches of the same kind (`ProberThread.resultsPerCall`).
    static let checksStartedPerTurn = 16
    /// Socket address and options of every checker by slot, built once: the target never
    /// changes, and building it per check was a measurable part of the per-check cost.
    private var probeTargets: [(SocketAddress, ProbeOptions)?] = []
    private var started = false
    private let clock: any DaemonClock
    /// Each checker's last result, by slot, for `vigil status` and metrics.
    struct CheckRecord {
        var startedAt: Int64?
        /// The last result, kept as parts and made into status text only when asked: a check
        /// that passes thousands of times a second builds no string.
        var last: CheckResult?
        var result: String? { last?.description }
        var finishedAt: Double?
        var duration: Int64?
        var count: UInt64 = 0
    }
    private(set) var records: [CheckRecord] = []
    /// HTTP_GET / SSL_GET fetches (nil when the configuration has none, or no epoll).
    private let fetcher: (any HTTPFetcher)?
    /// UDP_CHECK / DNS_CHECK / PING_CHECK requests (nil when there are none, or no epoll).
    private let datagrams: (any ExchangeChecker<DatagramRequest>)?
    /// SMTP_CHECK conversations (nil when there are none, or no epoll).
    private let dialogues: (any ExchangeChecker<DialogueRequest>)?
    /// The two above that exist, for the loop's watch, deadlines and stop (made once: the
    /// deadlines are asked for on every turn of the loop).
    private let exchangeCheckers: [any ExchangeChecker]
    private var datagramSequence: UInt16 = 0
    /// SSL_GET's sessions from the SSL block; nil when it could not be made (then SSL_GETs do
    /// not run, and the start said why).
    private var tls: TLSSessionMaker?
    /// The number a track file reads now (the tracker host reads them once a second).
    var trackFileValue: (String) -> Int = { _ in 0 }
    /// Called with each finished check's duration (µs), for the metrics' histogram.
    var onCheckFinished: (CheckerKind, Int64) -> Void = { _, _ in }
    /// keepalived's real and virtual server smtp_alert mails; nil in hosts without mail.
    var mail: MailHost?

    /// ha_suspend: where the director's addresses are read.
    private let addresses: any AddressControl
    /// An address may have come or gone: the suspensions are looked at again this turn.
    private var suspensionDirty = false

    /// nil when the configuration has no usable virtual_server.
    init?(specs: [VirtualServerSpec], globals: GlobalDefs, system: DaemonSystem, loop: EventLoop, scripts: ScriptHost, logger: Logger) {
        guard !specs.isEmpty else { return nil }
        self.logger = logger
        self.scripts = scripts
        self.globals = globals
        self.loop = loop
        clock = system.clock
        addresses = system.addresses
        controller = LVSController(specs: specs)
        do {
            let kernel = try system.openIPVS()
            let info = try kernel.info()
            logger.info("IPVS: kernel version \(info.version >> 16).\((info.version >> 8) & 0xFF).\(info.version & 0xFF), connection table size \(info.connectionTableSize)")
            self.kernel = kernel
        } catch {
            // keepalived's checker exits here and takes the whole daemon down with it; Vigil
            // keeps VRRP running and says exactly what is missing.
            logger.error("IPVS: cannot initialise: \(error). Virtual servers are neither installed nor checked; VRRP keeps running")
            kernel = nil
        }
        prober = system.makeProber()
        let checkers = specs.flatMap { $0.realServers.flatMap(\.checkers) }
        fetcher = checkers.contains { $0.http != nil } ? system.makeHTTPFetcher() : nil
        datagrams = checkers.contains { $0.datagram != nil } ? system.makeDatagramChecker() : nil
        dialogues = checkers.contains { $0.smtpHelo != nil } ? system.makeDialogueChecker() : nil
        exchangeCheckers = [datagrams as (any ExchangeChecker)?, dialogues as (any ExchangeChecker)?].compactMap { $0 }
        if checkers.contains(where: { $0.http?.tls == true }) {
            do { tls = try system.makeTLS(globals.ssl) } catch {
                logger.error("SSL_GET cannot run: \(error)")
            }
        }
        refreshProbeTargets()
        let fetches = checkers.filter { $0.http != nil }.count
        let kinds = Dictionary(grouping: checkers, by: \.kind).map { "\($0.value.count) \($0.key.rawValue)s" }.sorted()
        logger.info("IPVS: \(specs.count) virtual servers, checkers: \(kinds.isEmpty ? "none" : kinds.joined(separator: ", ")) (TCP_CHECK by \(prober.sharedDescriptor != nil ? "epoll" : "poll"))")
        if checkers.contains(where: { $0.datagram != nil }) && datagrams == nil { logger.error("UDP_CHECK/DNS_CHECK/PING_CHECK cannot run: no epoll descriptor") }
        if checkers.contains(where: { $0.smtpHelo != nil }) && dialogues == nil { logger.error("SMTP_CHECK cannot run: no epoll descriptor") }
        if fetches > 0 && fetcher == nil { logger.error("HTTP_GET/SSL_GET cannot run: no epoll descriptor") }
    }


    /// Some track file's number changed: FILE_CHECKs follow it at once.
    func trackFilesChanged(at now: Int64) {
        guard kernel != nil, started else { return }
        handle(controller.trackFilesRead(trackFileValue, at: now), at: now)
        reconcileIfNeeded()
    }

    /// False when IPVS could not be initialised.
    var isActive: Bool { kernel != nil }

    /// Called when a virtual server gains or loses quorum (the route announcements follow).
    var onQuorumChanged: () -> Void = {}
    func isQuorumUp(_ virtualServer: Int) -> Bool { controller.pools[virtualServer].isQuorumUp }

    /// The kernel's counters of every service and destination (empty without IPVS).
    func kernelStatistics() throws(IPVSKernelError) -> [IPVSServiceKey: IPVSServiceStatistics] {
        guard let kernel else { return [:] }
        return try kernel.statistics()
    }

    private var lastStatistics: [IPVSServiceKey: IPVSServiceStatistics] = [:]
    private var statisticsWarnedAt: Int64?

    /// The counters for status and scrapes. When the kernel does not answer, the last good
    /// ones stand (a counter dropping to nothing would read as a reset to every rate()), and
    /// the failure is logged at most once a minute, since scrapes come every few seconds.
    func statisticsForStatus() -> [IPVSServiceKey: IPVSServiceStatistics] {
        do {
            lastStatistics = try kernelStatistics()
        } catch {
            let now = clock.now()
            if statisticsWarnedAt.map({ now - $0 >= 60_000_000 }) ?? true {
                statisticsWarnedAt = now
                logger.warning("IPVS: cannot read the kernel's counters (\(error)); status and metrics show the last ones read")
            }
        }
        return lastStatistics
    }

    private func refreshProbeTargets() {
        while probeTargets.count < controller.machines.count {
            probeTargets.append(controller.target(of: CheckerID(slot: probeTargets.count)).map(Self.probeTarget))
        }
        while records.count < controller.machines.count { records.append(CheckRecord()) }
    }

    enum CheckResult: CustomStringConvertible {
        case text(String)
        case probe(ProbeOutcome)
        /// HTTP_GET/SSL_GET: the answer's status for the url's path, and what it failed on.
        case http(status: Int, path: String, failure: String?)

        var description: String {
            switch self {
            case .text(let text): text
            case .probe(let outcome): CheckerHost.describe(outcome)
            case .http(let status, let path, let failure?): "\(failure) url(\(path)): status \(status)"
            case .http(let status, let path, nil): "status \(status) url(\(path))"
            }
        }
    }

    /// " (the last result)" for a verdict's log line, or nothing before any result.
    private func lastResultSuffix(_ id: CheckerID) -> String {
        guard records.indices.contains(id.slot), let result = records[id.slot].result else { return "" }
        return " (\(result))"
    }

    private func recordResult(_ id: CheckerID, _ result: String, at now: Int64) {
        recordResult(id, .text(result), at: now)
    }

    private func recordResult(_ id: CheckerID, _ result: CheckResult, at now: Int64) {
        guard records.indices.contains(id.slot) else { return }
        let duration = records[id.slot].startedAt.map { now - $0 } ?? 0
        records[id.slot].last = result
        records[id.slot].finishedAt = clock.wallClock()
        records[id.slot].duration = duration
        records[id.slot].count += 1
        records[id.slot].startedAt = nil
        if let kind = controller.spec(of: id)?.kind { onCheckFinished(kind, duration) }
    }

    static func describe(_ outcome: ProbeOutcome) -> String {
        switch outcome {
        case .connected: "connected"
        case .failed(let e): "failed: \(SystemError.describe(e))"
        case .timedOut: "timed out"
        case .notRun(let e): "not run: \(SystemError.describe(e))"
        }
    }

    private static func probeTarget(_ target: CheckTarget) -> (SocketAddress, ProbeOptions) {
        let address = SocketAddress(target.address, port: target.port)
        let local = ProbeOptions.localAddress(bindTo: target.bindTo.map { SocketAddress($0) }, bindPort: target.bindPort, target: address)
        return (address, ProbeOptions(bindTo: local, interface: target.bindInterface, fwmark: target.fwmark))
    }

    // MARK: Start

    /// The owned part of the kernel's table is read (a restart adopts what an earlier run left
    /// instead of failing on EEXIST), `lvs_flush` empties it first if configured, then the
    /// configured pool goes in and the checkers start. Returns the operations it sent.
    @discardableResult
    func start(at now: Int64) -> [IPVSOperation] {
        guard let kernel else { return [] }
        let began = MonotonicClock.nowMicroseconds()
        refreshSuspensions(starting: true)
        let events = controller.start(at: now, trackFile: trackFileValue)
        var actual: IPVSTable = [:]
        if globals.lvsFlush {
            logger.info("IPVS: lvs_flush: emptying the whole IPVS table")
        } else {
            do { actual = try kernel.dump() } catch {
                logger.error("IPVS: cannot read the current table: \(error)")
            }
        }
        let owned = controller.ownedServices
        actual = actual.filter { owned.contains($0.key.key) }
        let ops = IPVSReconciler.plan(desired: controller.desiredTable, actual: actual, owned: owned, flushFirst: globals.lvsFlush)
        installed = actual
        programming = (began, ops.count)
        apply(ops, logEach: false)
        reconciledGeneration = controller.generation
        if let shared = prober.sharedDescriptor {
            loop.watch(shared) { [unowned self] now in self.finish(self.prober.ready(fd: shared, now: now), at: now) }
        }
        for exchanges in exchangeCheckers {
            loop.watch(exchanges.descriptor) { [unowned self] now in
                self.finishExchanges(exchanges.ready(now: now), at: now)
                self.reconcileIfNeeded()
            }
        }
        if let fetcher {
            loop.watch(fetcher.descriptor) { [unowned self] now in
                self.finishFetches(fetcher.ready(now: now), at: now)
                self.reconcileIfNeeded()
            }
        }
        started = true
        handle(events, at: now)
        if globals.rsInitNotifies { initialNotifies(skipping: []) }
        return ops
    }

    /// keepalived's `rs_init_notifies`: a real server alive from the start (not one that
    /// came up through its checks, which has its own) runs notify_up and writes its FIFO
    /// line, at start and when a reload adds it.
    private func initialNotifies(skipping known: Set<String>) {
        for (v, vs) in controller.specs.enumerated() {
            for (r, rs) in vs.realServers.enumerated() where controller.servers[v][r].isAlive {
                let name = rs.destination.key.formatted(in: vs.services[0].key)
                guard !known.contains("\(vs.name) \(name)") else { continue }
                logger.debug("Real server \(name) of VS \(vs.name) is UP from the start (rs_init_notifies)")
                if let script = rs.notifyUp { scripts.run(script, owner: "real_server \(name)") }
                scripts.fifos.realServer(name, of: vs.name, up: true)
            }
        }
    }

    // MARK: ha_suspend

    /// A VRRP transition, or the netlink monitor saw an address come or go.
    func addressesMayHaveChanged() {
        if usesHASuspend { suspensionDirty = true }
    }

    private var usesHASuspend: Bool { controller.specs.contains { !$0.suspendUnless.isEmpty } }

    /// keepalived's update_checker_activity: the checkers of an ha_suspend virtual server run
    /// only while one of its addresses is on this director (the VIP: this director is
    /// MASTER), with keepalived's line per checker ("Deactivating" at start).
    private func refreshSuspensions(starting: Bool) {
        suspensionDirty = false
        guard usesHASuspend else { return }
        let local: Set<IPAddress>
        do { local = Set(try addresses.list(ifindex: nil).map(\.address)) } catch {
            logger.error("ha_suspend: cannot read this director's addresses: \(error); the checks' suspensions stay as they are")
            return
        }
        for (v, suspended) in controller.suspend(unlessLocal: local.contains) {
            let vs = controller.specs[v]
            let verb = suspended ? (starting ? "Deactivating" : "Suspending") : "Activating"
            for rs in vs.realServers where !rs.checkers.isEmpty {
                let name = rs.destination.key.formatted(in: vs.services[0].key)
                for _ in rs.checkers { logger.info("\(verb) healthchecker for service \(name) for VS \(vs.name)") }
            }
        }
    }

    // MARK: LoopHost

    var nextDeadline: Int64? {
        guard kernel != nil, started else { return nil }
        if !queued.isEmpty || suspensionDirty { return 0 }   // due at once
        return ([controller.nextDeadline, prober.nextDeadline, fetcher?.nextDeadline] + exchangeCheckers.map(\.nextDeadline)).compactMap { $0 }.min()
    }

    /// Timed-out connects and due checkers; then the table is reconciled if health changed.
    func runDueWork(at now: Int64) {
        guard kernel != nil, started else { return }
        if suspensionDirty { refreshSuspensions(starting: false) }
        finish(prober.expire(now: now), at: now)
        if let fetcher { finishFetches(fetcher.expire(now: now), at: now) }
        for exchanges in exchangeCheckers { finishExchanges(exchanges.expire(now: now), at: now) }
        let events = controller.timersFired(at: now, slack: Self.timerSlack, limit: Self.checksStartedPerTurn)
        handle(events, at: now)
        // Loopback and LAN handshakes often finish within microseconds: collect them in this
        // turn instead of paying another wake-up for them.
        if !events.isEmpty, let shared = prober.sharedDescriptor, prober.count > 0 {
            finish(prober.ready(fd: shared, now: now), at: now)
        }
        reconcileIfNeeded()
        if !queued.isEmpty { sendQueued() }
    }

    private func finish(_ results: [ProbeResult<CheckerID>], at now: Int64) {
        for result in results {
            recordResult(result.id, .probe(result.outcome), at: now)
            if result.outcome.verdict == false, let spec = controller.spec(of: result.id), logsThisFailure(result.id, spec, beforeFirstVerdict: false) {
                // keepalived's check_tcp.c words.
                logger.info("TCP connection to \(spec.target) \(result.outcome == .timedOut ? "timeout" : "failed").")
            }
            handle(controller.probeFinished(result.id, verdict: result.outcome.verdict, at: now), at: now)
            if case .notRun(let e) = result.outcome, let target = controller.target(of: result.id) {
                logger.warning("TCP_CHECK of \(target) could not run: \(SystemError.describe(e)); rescheduling")
            }
        }
    }

    /// The fetches that ended: judged against their url block, recorded, fed to the machine.
    private func finishFetches(_ results: [HTTPFetchResult<CheckerID>], at now: Int64) {
        for result in results {
            guard let spec = controller.spec(of: result.id), let http = spec.http else { continue }
            // The machine still holds the URL it asked for until it is told how the fetch went.
            guard case .http(let machine) = controller.machines[result.id.slot] else { continue }
            let url = machine.urlIndex
            let verdict: Bool?
            let last: CheckResult
            switch result.outcome {
            case .response(let response, let digest, let regexMatched):
                let failure = http.urls.indices.contains(url) ? http.urls[url].expectation.failure(of: response, bodyDigest: digest, regexMatched: regexMatched) : nil
                verdict = failure == nil
                last = .http(status: response.statusCode, path: http.urls.indices.contains(url) ? http.urls[url].path : "?", failure: failure)
            case .failed(let reason, let detail):
                verdict = false
                last = .text(reason + (detail.map { ": \($0)" } ?? ""))
            case .notRun(let e):
                verdict = nil
                last = .text("not run: \(SystemError.describe(e))")
                logger.warning("\(spec.kind.rawValue) of \(spec.target) could not run: \(SystemError.describe(e)); rescheduling")
            }
            if verdict == false { logger.debug("\(spec.kind.rawValue) \(spec.target): \(last)") }
            if case .failed(let reason, _) = result.outcome, logsThisFailure(result.id, spec, beforeFirstVerdict: true) {
                // keepalived's timeout_epilog: "Timeout connecting server [10.0.1.1]:tcp:80."
                logger.info("\(reason) server \(spec.target).")
            }
            recordResult(result.id, last, at: now)
            handle(controller.probeFinished(result.id, verdict: verdict, at: now), at: now)
        }
    }

    /// keepalived logs a failed attempt only with log_all_failures, and only while the checker
    /// is up (HTTP_GET/SSL_GET: or before its first verdict): the verdict's own line covers
    /// the rest.
    private func logsThisFailure(_ id: CheckerID, _ spec: CheckerSpec, beforeFirstVerdict: Bool) -> Bool {
        guard spec.logAllFailures, controller.machines.indices.contains(id.slot) else { return false }
        let machine = controller.machines[id.slot]
        return machine.isUp || (beforeFirstVerdict && !machine.hasRun)
    }

    struct RequestKey: Hashable { var slot: Int; var url: Int }
    /// Each url's request, built once (a reload's new checkers get new slots; a reload clears it).
    private var requestBytes: [RequestKey: [UInt8]] = [:]

    private func startFetch(_ id: CheckerID, url: Int, timeout: Int64, now: Int64) {
        guard let fetcher, let spec = controller.spec(of: id), let http = spec.http, http.urls.indices.contains(url),
              probeTargets.indices.contains(id.slot), let (address, options) = probeTargets[id.slot] else {
            handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
            return
        }
        var tlsSession: ((Int32) -> (any TLSSession)?)?
        if http.tls {
            guard let tls else {
                recordResult(id, "not run: no TLS context (see the start's log)", at: now)
                handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
                return
            }
            let name = http.serverName
            tlsSession = { fd in tls(fd, name) }
        }
        let target = http.urls[url]
        let key = RequestKey(slot: id.slot, url: url)
        let request: [UInt8]
        if let cached = requestBytes[key] { request = cached } else {
            request = Array(HTTPRequest.get(path: target.path, version: http.version, virtualhost: target.virtualhost,
                                            address: spec.target.address, port: spec.target.port).utf8)
            requestBytes[key] = request
        }
        var fetch = HTTPFetchRequest(target: address, options: options, request: request, tls: tlsSession,
                                     digest: target.expectation.digest == nil ? nil : { MD5Digest() }, timeout: timeout)
        if let rule = target.expectation.regex, let regex = compiled(rule) {
            fetch.matcher = { StreamingRegexMatch(regex, minimumOffset: rule.minimumOffset, maximumOffset: rule.maximumOffset) }
        }
        records[id.slot].startedAt = now
        if let result = fetcher.start(id: id, fetch, now: now) { finishFetches([result], at: now) }
    }

    /// Each url regex compiled once, shared by the urls that name the same pattern and options
    /// (nil: it does not compile; the config test refuses such a file, so this is only logged).
    private var regexes: [RegexKey: CompiledRegex?] = [:]
    struct RegexKey: Hashable { var pattern: String; var options: UInt32 }

    private func compiled(_ rule: HTTPRegexRule) -> CompiledRegex? {
        let key = RegexKey(pattern: rule.pattern, options: rule.options)
        if let known = regexes[key] { return known }
        var regex: CompiledRegex?
        do { regex = try CompiledRegex(pattern: rule.pattern, options: rule.options) } catch {
            logger.error("Invalid regex: '\(rule.pattern)' at offset \(error.offset): \(error.message); the url's check fails")
        }
        regexes[key] = regex
        return regex
    }

    /// Each MISC_CHECK slot's run serial, so a result of a checker a reload replaced is dropped.
    private var miscSerials: [Int: Int] = [:]
    private var miscSerial = 0
    /// MISC_CHECKs keepalived's rules disable (not found, insecure), logged once each.
    private var disabledMisc: [Int: String] = [:]

    private func startMisc(_ id: CheckerID, timeout: Int64, now: Int64) {
        guard let spec = controller.spec(of: id), let misc = spec.misc else {
            handle(controller.miscFinished(id, nil, at: now), at: now)
            return
        }
        if disabledMisc[id.slot] == nil, let why = scripts.whyDisabled(misc: misc.command) {
            disabledMisc[id.slot] = why
            logger.warning("\(why)")
        }
        if let why = disabledMisc[id.slot] {
            recordResult(id, "not run: \(why)", at: now)
            handle(controller.miscFinished(id, nil, at: now), at: now)
            return
        }
        miscSerial += 1
        miscSerials[id.slot] = miscSerial
        records[id.slot].startedAt = now
        do {
            try scripts.startMisc(misc.command, id: .misc(slot: id.slot, serial: miscSerial), timeout: timeout, now: now)
        } catch {
            logger.warning("MISC_CHECK of \(spec.target) could not run \(misc.command.command): \(error); rescheduling")
            recordResult(id, "not run: \(error)", at: now)
            handle(controller.miscFinished(id, nil, at: now), at: now)
        }
    }

    /// A MISC_CHECK run ended: keepalived's reading of its exit, and its log line.
    func miscFinished(_ finished: FinishedScript, at now: Int64) {
        guard case .misc(let slot, let serial) = finished.id, miscSerials[slot] == serial else { return }
        miscSerials[slot] = nil
        let id = CheckerID(slot: slot)
        guard let spec = controller.spec(of: id), let misc = spec.misc else { return }
        let result: MiscCheckMachine.Result
        let text: String
        if finished.timedOut {
            result = .timedOut
            text = "timed out"
        } else {
            switch finished.status {
            case .exited(let code)?: result = .exited(Int(code)); text = "exited with status \(code)"
            case .signaled(let signal)?: result = .signaled(Int(signal)); text = "failed due to signal \(signal)"
            case nil: result = .signaled(9); text = "lost"
            }
        }
        recordResult(id, text, at: now)
        let wasUp = controller.machines[slot].isUp, hadRun = controller.machines[slot].hasRun
        let events = controller.miscFinished(id, result, at: now)
        let isUp = controller.machines[slot].isUp
        let vs = controller.places[slot].map { controller.specs[$0.virtualServer].name } ?? "?"
        if isUp && (!wasUp || !hadRun) {
            logger.info("Misc check for [\(spec.target) VS \(vs)] by [\(misc.command.command)] succeeded.")
        } else if !isUp && (wasUp || !hadRun) && controller.machines[slot].hasRun {
            let retries = spec.timing.retry == 0 ? " with retry disabled" : " after \(spec.timing.retry) \(spec.timing.retry == 1 ? "retry" : "retries")"
            logger.info("Misc check for [\(spec.target) VS \(vs)] by [\(misc.command.command)] \(result == .timedOut ? "timed out" : "failed")\(retries) (\(text)).")
        } else if wasUp && isUp && spec.logAllFailures {
            // log_all_failures: a failed run that a retry follows (keepalived's message_only).
            let failed: Bool
            switch result {
            case .exited(let code): failed = code == 1 || (!misc.dynamic && code != 0)
            case .timedOut, .signaled: failed = true
            }
            if failed { logger.info("Misc check for [\(spec.target) VS \(vs)] by [\(misc.command.command)] \(result == .timedOut ? "timed out" : "failed") (\(text)).") }
        }
        handle(events, at: now)
        reconcileIfNeeded()
    }

    private func handle(_ events: [LVSEvent], at now: Int64) {
        if mail?.settings != nil { mailAlerts(for: events) }
        for event in events {
            switch event {
            case .connect(let id, let timeout):
                startProbe(id, timeout: timeout, now: now)
            case .run(let id, let timeout):
                startMisc(id, timeout: timeout, now: now)
            case .weightChanged(let v, let r, let weight):
                let vs = controller.specs[v]
                let rs = vs.realServers[r]
                logger.info("Changing weight to \(weight) for rs \(rs.destination.key.formatted(in: vs.services[0].key)) of VS \(vs.name)")
            case .fetch(let id, let url, let timeout):
                startFetch(id, url: url, timeout: timeout, now: now)
            case .checkerVerdict(let id, let up, _):
                // A MISC_CHECK's verdict was logged with its script's exit (miscFinished).
                guard let spec = controller.spec(of: id), spec.misc == nil else { continue }
                if let file = spec.file {
                    // keepalived's track_file.c lines.
                    recordResult(id, "track file \(file.trackFile) reads \(trackFileValue(file.trackFile))", at: now)
                    logger.info("(\(spec.target)): tracked file \(file.trackFile) \(up ? "leaving" : "now") FAULT state")
                } else if spec.smtpHelo != nil {
                    // keepalived's check_smtp.c lines (its failure line is the error itself).
                    if up { logger.info("Remote SMTP server \(spec.target) succeed on service.") }
                    else { logger.info("SMTP_CHECK on service \(spec.target) failed after \(spec.timing.retry) retries.\(lastResultSuffix(id))") }
                } else if spec.http != nil {
                    // keepalived's check_http.c lines.
                    if up { logger.info("Remote Web server \(spec.target) succeed on service.") }
                    else {
                        logger.info("HTTP_CHECK on service \(spec.target) failed after \(spec.timing.retry) retries.\(lastResultSuffix(id))")
                    }
                } else {
                    // keepalived's words per kind: "TCP/UDP/ICMP connection to ... success.",
                    // "TCP_CHECK/UDP_CHECK/PING_CHECK on service ... failed after N retries."
                    let name = [.udp: "UDP", .ping: "ICMP", .dns: "DNS"][spec.kind] ?? "TCP"
                    if up { logger.info("\(name) connection to \(spec.target) success.") }
                    else {
                        logger.info("\(spec.kind.rawValue) on service \(spec.target) failed after \(spec.timing.retry) retries.\(lastResultSuffix(id))")
                    }
                }
            case .realServer(let v, let r, let change):
                let vs = controller.specs[v]
                let rs = vs.realServers[r]
                let name = rs.destination.key.formatted(in: vs.services[0].key)
                switch change {
                case .up:
                    logger.notice("Real server \(name) of VS \(vs.name) is UP")
                    if let script = rs.notifyUp { scripts.run(script, owner: "real_server \(name)") }
                    scripts.fifos.realServer(name, of: vs.name, up: true)
                case .down, .stillDown:
                    logger.notice("Real server \(name) of VS \(vs.name) is DOWN")
                    if let script = rs.notifyDown { scripts.run(script, owner: "real_server \(name)") }
                    scripts.fifos.realServer(name, of: vs.name, up: false)
                }
            case .quorum(let v, let q):
                onQuorumChanged()
                let vs = controller.specs[v]
                if q.isUp {
                    logger.notice("\(q.initial ? "Starting with" : "Gained") quorum \(vs.quorum)+\(vs.hysteresis)=\(q.threshold) <= \(q.weightSum) for VS \(vs.name)")
                    if let script = vs.quorumUp { scripts.run(script, owner: "VS \(vs.name)") }
                    scripts.fifos.virtualServer(vs.name, up: true)
                } else {
                    logger.notice("\(q.initial ? "Starting with" : "Lost") quorum \(vs.quorum)-\(vs.hysteresis)=\(q.threshold) > \(q.weightSum) for VS \(vs.name)")
                    if let script = vs.quorumDown { scripts.run(script, owner: "VS \(vs.name)") }
                    scripts.fifos.virtualServer(vs.name, up: false)
                }
            }
        }
    }

    private func finishExchanges(_ results: [ExchangeResult<CheckerID>], at now: Int64) {
        for result in results {
            let verdict: Bool?
            let text: String
            switch result.outcome {
            case .passed: verdict = true; text = "passed"
            case .failed(let why):
                verdict = false
                text = "failed: \(why)"
                if let spec = controller.spec(of: result.id), logsThisFailure(result.id, spec, beforeFirstVerdict: false) {
                    // keepalived's words per kind (check_udp.c, check_ping.c, check_smtp.c, check_dns.c).
                    switch spec.kind {
                    case .udp: logger.info("UDP connection to \(spec.target) failed.")
                    case .ping: logger.info("ICMP connection to \(spec.target) failed.")
                    default: logger.info("\(spec.kind.rawValue) \(why) to \(spec.target).")
                    }
                }
            case .notRun(let e):
                verdict = nil
                text = "not run: \(SystemError.describe(e))"
                if let spec = controller.spec(of: result.id) { logger.warning("\(spec.kind.rawValue) of \(spec.target) could not run: \(SystemError.describe(e)); rescheduling") }
            }
            recordResult(result.id, text, at: now)
            handle(controller.probeFinished(result.id, verdict: verdict, at: now), at: now)
        }
    }

    /// A UDP_CHECK, DNS_CHECK or PING_CHECK request, built from its spec.
    private func startDatagram(_ id: CheckerID, _ check: DatagramCheckSpec, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) {
        guard let datagrams else {
            handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
            return
        }
        datagramSequence &+= 1
        let sequence = datagramSequence
        // One echo id per checker: two PING_CHECKs of one host tell their replies apart.
        let identifier = UInt16(truncatingIfNeeded: id.slot)
        let request: DatagramRequest
        switch check {
        case .udp(let udp):
            request = DatagramRequest(transport: .udp, target: target, options: options, payload: udp.payload, judge: udp.judge,
                                      timeoutPasses: udp.timeoutPasses, timeout: timeout)
        case .dns(let query):
            request = DatagramRequest(transport: .udp, target: target, options: options, payload: query.message(id: sequence),
                                      judge: { DNSQuery.judge($0, id: sequence) }, timeout: timeout)
        case .ping:
            let ipv6 = target.family == .ipv6
            request = DatagramRequest(transport: .icmp, target: target, options: options,
                                      payload: ICMPEcho.request(ipv6: ipv6, id: identifier, sequence: sequence),
                                      judge: { ICMPEcho.judge($0, ipv6: ipv6, id: identifier, sequence: sequence) }, timeout: timeout)
        }
        records[id.slot].startedAt = now
        if let result = datagrams.start(id: id, request, now: now) { finishExchanges([result], at: now) }
    }

    private func startDialogue(_ id: CheckerID, _ dialogue: any StreamDialogue, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) {
        guard let dialogues else {
            handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
            return
        }
        records[id.slot].startedAt = now
        let request = DialogueRequest(target: target, options: options, dialogue: dialogue, timeout: timeout)
        if let result = dialogues.start(id: id, request, now: now) { finishExchanges([result], at: now) }
    }

    private func startProbe(_ id: CheckerID, timeout: Int64, now: Int64) {
        guard probeTargets.indices.contains(id.slot), let (address, options) = probeTargets[id.slot] else {
            handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
            return
        }
        if let check = controller.spec(of: id)?.datagram {
            startDatagram(id, check, target: address, options: options, timeout: timeout, now: now)
            return
        }
        if let helo = controller.spec(of: id)?.smtpHelo {
            startDialogue(id, SMTPCheckDialogue(heloName: helo), target: address, options: options, timeout: timeout, now: now)
            return
        }
        records[id.slot].startedAt = now
        switch prober.start(id: id, target: address, options: options, timeout: timeout, now: now) {
        case .finished(let result):
            recordResult(id, .probe(result.outcome), at: now)
            handle(controller.probeFinished(id, verdict: result.outcome.verdict, at: now), at: now)
        case .pending(let fd):
            if prober.sharedDescriptor == nil {
                loop.watch(fd, for: .writable) { [unowned self] now in
                    self.loop.unwatch(fd)
                    self.finish(self.prober.ready(fd: fd, now: now), at: now)
                }
            }
        }
    }

    private func reconcileIfNeeded() {
        guard controller.generation != reconciledGeneration else { return }
        reconciledGeneration = controller.generation
        let ops = IPVSReconciler.plan(desired: controller.desiredTable, actual: installed, owned: controller.ownedServices)
        apply(ops, logEach: true)
    }

    /// Operations planned and not sent yet: a large plan (a start or a reload of thousands of
    /// services) goes to the kernel `operationsPerRequest` at a time, for at most
    /// `sendingBudget` µs a turn, so the VRRP host's adverts go out between its requests
    /// instead of after all of them (1,000 × 10 take 5 s in the TCG guest). A new plan replaces
    /// what is still queued: it is made against `installed`, which holds only what was sent.
    private var queued: ArraySlice<IPVSOperation> = []
    private var queuedAreLogged = false
    /// The start's plan (when it began, how many operations), logged once it is all sent.
    private var programming: (began: Int64, operations: Int)?
    static let operationsPerRequest = 32
    static let sendingBudget: Int64 = 1_000

    private func apply(_ ops: [IPVSOperation], logEach: Bool) {
        guard kernel != nil else { return }
        queued = ArraySlice(ops)
        // While the start's table is still going in, a new plan is the rest of it: not logged
        // one operation a line, as the start's is not.
        queuedAreLogged = logEach && programming == nil
        sendQueued()
    }

    /// Sends queued operations until the turn's budget is spent (at least one request).
    private func sendQueued() {
        let began = clock.now()
        while !queued.isEmpty {
            let chunk = Array(queued.prefix(Self.operationsPerRequest))
            queued = queued.dropFirst(chunk.count)
            send(chunk, logEach: queuedAreLogged)
            if clock.now() - began >= Self.sendingBudget { break }
        }
        if queued.isEmpty, let (began, operations) = programming {
            programming = nil
            let dests = installed.values.reduce(0) { $0 + $1.count }
            logger.notice("IPVS: table programmed: \(installed.count) services, \(dests) destinations, \(operations) operations in \((MonotonicClock.nowMicroseconds() - began + 500) / 1000) ms")
        }
    }

    /// Runs the operations, logs them as keepalived does, and records the result in
    /// `installed`; after a failure the owned part of the table is read back from the kernel,
    /// so the next plan starts from the truth rather than from a hope.
    private func send(_ ops: [IPVSOperation], logEach: Bool) {
        guard let kernel, !ops.isEmpty else { return }
        if logEach { for op in ops { logger.info("IPVS: \(describe(op))") } }
        let failures: [IPVSOperationFailure]
        do { failures = try kernel.apply(ops) } catch {
            logger.error("IPVS: \(error)")
            resync(kernel, owned: controller.ownedServices)
            return
        }
        if failures.isEmpty {
            unrecorded += ops
            installedWeightCache = nil
            return
        }
        for failure in failures.prefix(20) { logger.error("\(failure.message)") }
        if failures.count > 20 { logger.error("IPVS: \(failures.count - 20) more operations failed") }
        resync(kernel, owned: controller.ownedServices)
    }

    private func resync(_ kernel: any IPVSClient, owned: Set<IPVSServiceKey>) {
        do { installed = try kernel.dump().filter { owned.contains($0.key.key) } } catch {
            logger.error("IPVS: cannot read the table back: \(error)")
        }
    }

    /// keepalived's words for the common operations, so existing log searches keep working.
    private func describe(_ op: IPVSOperation) -> String {
        switch op {
        case .addDestination(let d, let k): "Adding service \(d.key.formatted(in: k)) to VS \(k) (weight \(d.weight))"
        case .editDestination(let d, let k):
            d.weight == 0 ? "Disabling service \(d.key.formatted(in: k)) from VS \(k)" : "Enabling service \(d.key.formatted(in: k)) to VS \(k) (weight \(d.weight))"
        case .deleteDestination(let d, let k): "Removing service \(d.formatted(in: k)) from VS \(k)"
        default: op.description
        }
    }

    // MARK: Reload

    struct ReloadResult {
        var summary: LVSReloadSummary
        var operations: [IPVSOperation]
    }

    /// The controller continues under the new specs (see `LVSController.reload`), then the
    /// table is planned against what Vigil installed, owning what it owned before as well as
    /// what it owns now: unchanged services and destinations give no operation at all, so
    /// their connections, persistence templates and counters are untouched; a weight or
    /// scheduler change is one edit; removed ones are deleted.
    func reload(to specs: [VirtualServerSpec], globals: GlobalDefs, at now: Int64) -> ReloadResult {
        self.globals = globals
        let owned = Set(installed.keys.map(\.key))
        let oldSpecs = controller.specs, oldAlive = controller.servers.map { $0.map(\.isAlive) }
        let (events, summary) = controller.reload(to: specs, at: now)
        refreshSuspensions(starting: true)
        if started { mailRemovedServers(oldSpecs: oldSpecs, oldAlive: oldAlive) }
        refreshProbeTargets()
        requestBytes = [:]
        guard kernel != nil, started else { return ReloadResult(summary: summary, operations: []) }
        handle(events, at: now)
        if globals.rsInitNotifies {
            initialNotifies(skipping: Set(oldSpecs.flatMap { vs in vs.realServers.map { "\(vs.name) \($0.destination.key.formatted(in: vs.services[0].key))" } }))
        }
        // New FILE_CHECKs read their files before the table is planned.
        handle(controller.trackFilesRead(trackFileValue, at: now), at: now)
        let ops = IPVSReconciler.plan(desired: controller.desiredTable, actual: installed, owned: controller.ownedServices.union(owned))
        reconciledGeneration = controller.generation
        apply(ops, logEach: true)
        return ReloadResult(summary: summary, operations: ops)
    }

    // MARK: Mail

    /// keepalived's checker mails (check_*.c, ipwrapper.c): a real server's when one of its
    /// checkers changes verdict (with no_checker_emails only when the server itself came or
    /// went), a virtual server's when its quorum changes. Subjects and bodies are keepalived's.
    private func mailAlerts(for events: [LVSEvent]) {
        guard let mail else { return }
        var serverChanged = Set<Int>()
        for case .realServer(let v, let r, let change) in events where change != .stillDown { serverChanged.insert(v << 20 | r) }
        for event in events {
            switch event {
            case .checkerVerdict(let id, let up, let wasUp):
                guard let spec = controller.spec(of: id), spec.file == nil, let place = controller.places[id.slot] else { continue }
                // MISC_CHECK mails its first verdict whatever it is; the others only a change
                // (a first verdict changes a non-alpha checker only when it fails).
                guard up != (wasUp ?? !spec.timing.alpha) || (spec.misc != nil && wasUp == nil) else { continue }
                let vs = controller.specs[place.virtualServer]
                let rs = vs.realServers[place.realServer]
                guard rs.smtpAlert, !globals.noCheckerEmails || serverChanged.contains(place.virtualServer << 20 | place.realServer) else { continue }
                let alive = controller.servers[place.virtualServer][place.realServer].isAlive
                mail.send(about: "Realserver \(rs.destination.key.formatted(in: vs.services[0].key)) of virtual server \(vs.name)",
                          alive ? "UP" : "DOWN", body: Self.verdictMailBody(spec, up: up, lastResult: records[id.slot].result))
            case .quorum(let v, let q):
                let vs = controller.specs[v]
                guard vs.smtpAlert else { continue }
                let what = q.isUp ? (q.initial ? "Starting with quorum up" : "Gained quorum")
                                  : (q.initial ? "Starting with quorum down" : "Lost quorum")
                // keepalived writes "+" and "<=" whichever way quorum went.
                mail.send(about: "Virtualserver \(vs.name)", q.isUp ? "UP" : "DOWN",
                          body: "=> \(what) \(vs.quorum)+\(vs.hysteresis)=\(q.threshold) <= \(q.weightSum) <=")
            default: continue
            }
        }
    }

    /// The body keepalived's checker of this kind sends.
    static func verdictMailBody(_ spec: CheckerSpec, up: Bool, lastResult: String?) -> String {
        if spec.misc != nil { return "=> MISC CHECK \(up ? "succeeded" : lastResult == "timed out" ? "timed out" : "failed") on service <=" }
        if spec.smtpHelo != nil {
            return up ? "=> CHECK succeed on service <=" : "=> CHECK failed on service\(lastResult.map { " : \($0)" } ?? "") <="
        }
        if spec.http != nil { return up ? "=> CHECK succeed on service <=" : "=> CHECK failed on service : HTTP request failed <=" }
        switch spec.kind {
        case .dns: return "=> DNS_CHECK: \(up ? "succeed" : "failed") on service <="
        case .udp: return "=> UDP CHECK \(up ? "succeed" : "failed") on service <="
        case .ping: return "=> ICMP CHECK \(up ? "succeed" : "failed") on service <="
        default: return "=> TCP CHECK \(up ? "succeed" : "failed") on service <="
        }
    }

    /// A reload that drops a real server that was alive mails it as keepalived's
    /// clear_service_rs does ("=> Removing <=").
    private func mailRemovedServers(oldSpecs: [VirtualServerSpec], oldAlive: [[Bool]]) {
        guard let mail, mail.settings != nil else { return }
        var kept = Set<String>()
        for vs in controller.specs { for rs in vs.realServers { kept.insert("\(vs.identity)|\(rs.destination.key)") } }
        for (v, vs) in oldSpecs.enumerated() {
            for (r, rs) in vs.realServers.enumerated() where rs.smtpAlert && oldAlive[v][r] && !kept.contains("\(vs.identity)|\(rs.destination.key)") {
                mail.send(about: "Realserver \(rs.destination.key.formatted(in: vs.services[0].key)) of virtual server \(vs.name)", "DOWN", body: "=> Removing <=")
            }
        }
    }

    // MARK: Stop

    /// Unless -I, remove what Vigil installed (a single FLUSH with lvs_flush_on_stop).
    /// With omega, the down scripts run for what is being removed, as in keepalived.
    func shutDown(release: Bool) {
        prober.cancelAll()
        fetcher?.cancelAll()
        for exchanges in exchangeCheckers { exchanges.cancelAll() }
        queued = []
        guard let kernel, started else { return }
        guard release else {
            logger.info("IPVS: -I given: leaving \(installed.count) services in place")
            return
        }
        for (v, vs) in controller.specs.enumerated() where vs.omega {
            for (r, rs) in vs.realServers.enumerated() where controller.servers[v][r].isAlive {
                let name = rs.destination.key.formatted(in: vs.services[0].key)
                if let script = rs.notifyDown { scripts.run(script, owner: "real_server \(name)") }
                // keepalived's clear_service_rs: a live server is mailed about, unless the
                // whole table goes in one flush (then only the virtual servers are).
                if rs.smtpAlert && !globals.lvsFlushOnStop {
                    mail?.send(about: "Realserver \(name) of virtual server \(vs.name)", "DOWN", body: "=> Shutting down <=")
                }
            }
            if controller.pools[v].isQuorumUp, let script = vs.quorumDown { scripts.run(script, owner: "VS \(vs.name)") }
            // keepalived's update_vs_notifies at stop: whatever the quorum was.
            if vs.smtpAlert { mail?.send(about: "Virtualserver \(vs.name)", "DOWN", body: "=> Shutting down <=") }
        }
        let ops = IPVSReconciler.teardown(owned: installed, mode: globals.lvsFlushOnStop ? .flush : .destinationsThenServices)
        do {
            let failures = try kernel.apply(ops)
            for failure in failures.prefix(20) { logger.error("\(failure.message)") }
            logger.notice("IPVS: removed \(installed.count) services Vigil installed")
        } catch {
            logger.error("IPVS: cannot remove the services: \(error)")
        }
        installed = [:]
    }
}

extension StreamingRegexMatch: BodyMatcher {}
