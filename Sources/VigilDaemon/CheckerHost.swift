@preconcurrency import Glibc
import IPVS
import LVS
import Logging
import TCPProbe
import VigilConfig
import VigilSystem

/// The IPVS half of the daemon: runs the TCP_CHECK connects the pure `LVSController` asks for
/// (all of them through one epoll descriptor in the daemon's poll set), turns its events into
/// log lines and notify scripts, and keeps the kernel's table equal to the controller's desired
/// table by planning with `IPVSReconciler` against what Vigil last installed.
final class CheckerHost {
    private var controller: LVSController
    private let kernel: IPVSKernel?
    private let prober: EpollTCPProber<CheckerID>?
    private let pollProber: TCPProber<CheckerID>?
    private var logger: Logger
    private let scripts: ScriptHost
    private let globals: GlobalDefs
    /// What Vigil believes the kernel holds for the services it owns (foreign services are
    /// never recorded here, so nothing of theirs can end up in a plan).
    private var installed: IPVSTable = [:]
    private var reconciledGeneration = -1
    /// How early a checker may run to share a loop wake-up with others (see
    /// `LVSController.timersFired`): 5 ms is 0.5 % of the shortest delay_loop anyone uses.
    static let timerSlack: Int64 = 5_000
    private let probeTargets: [(SocketAddress, ProbeOptions)?]
    private var started = false

    /// nil when the configuration has no usable virtual_server.
    init?(configuration: Configuration, logger: Logger, scripts: ScriptHost) {
        let (specs, warnings) = LVSSpecBuilder.build(configuration)
        for warning in warnings { logger.warning("\(warning)") }
        guard !specs.isEmpty else { return nil }
        self.logger = logger
        self.scripts = scripts
        self.globals = configuration.globals
        let controller = LVSController(specs: specs)
        self.controller = controller
        probeTargets = controller.checkers.map { Self.probeTarget(controller.target(of: $0)) }
        do {
            let kernel = try IPVSKernel()
            let info = try kernel.info()
            logger.info("IPVS: kernel version \(info.version >> 16).\((info.version >> 8) & 0xFF).\(info.version & 0xFF), connection table size \(info.connectionTableSize)")
            self.kernel = kernel
        } catch {
            // keepalived's checker exits here and takes the whole daemon down with it; Vigil
            // keeps VRRP running and says exactly what is missing.
            logger.error("IPVS: cannot initialise: \(error). Virtual servers are neither installed nor checked; VRRP keeps running")
            kernel = nil
        }
        if let epoll = EpollTCPProber<CheckerID>() {
            prober = epoll
            pollProber = nil
        } else {
            prober = nil
            pollProber = TCPProber<CheckerID>()
        }
        logger.info("IPVS: \(specs.count) virtual servers, \(controller.checkerCount) TCP_CHECKs (\(prober != nil ? "epoll" : "poll"))")
    }

    /// False when IPVS could not be initialised.
    var isActive: Bool { kernel != nil }

    /// The fds the daemon polls for readability on our behalf.
    var descriptors: [Int32] {
        guard kernel != nil else { return [] }
        if let prober { return [prober.descriptor] }
        return pollProber?.descriptors ?? []
    }

    var usesWritableDescriptors: Bool { prober == nil }

    var nextDeadline: Int64? {
        guard kernel != nil, started else { return nil }
        let probe = prober?.nextDeadline ?? pollProber?.nextDeadline
        switch (controller.nextDeadline, probe) {
        case let (a?, b?): return min(a, b)
        case let (a?, nil): return a
        case let (nil, b): return b
        }
    }

    /// Start-up: the owned part of the kernel's table is read (a restart adopts what an earlier
    /// run left instead of failing on EEXIST), `lvs_flush` empties it first if configured, then
    /// the configured pool goes in and the checkers start.
    func start(at now: Int64) {
        guard let kernel else { return }
        var clock = MonotonicClock.nowMicroseconds()
        let began = clock
        var stages: [String] = []
        func stage(_ name: String) {
            let t = MonotonicClock.nowMicroseconds()
            stages.append("\(name) \((t - clock) / 1000) ms")
            clock = t
        }
        let events = controller.start(at: now)
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
        stage("dump")
        let ops = IPVSReconciler.plan(desired: controller.desiredTable, actual: actual, owned: owned, flushFirst: globals.lvsFlush)
        installed = actual
        stage("plan")
        apply(ops, logEach: false)
        stage("apply")
        reconciledGeneration = controller.generation
        let services = installed.count
        let dests = installed.values.reduce(0) { $0 + $1.count }
        logger.debug("IPVS: start-up stages: \(stages.joined(separator: ", "))")
        logger.notice("IPVS: table programmed: \(services) services, \(dests) destinations, \(ops.count) operations in \((MonotonicClock.nowMicroseconds() - began + 500) / 1000) ms")
        started = true
        handle(events, at: now)
    }

    /// One loop turn: finished connects, timed-out connects, due checker timers; then the table
    /// is reconciled if health changed anything.
    func poll(at now: Int64, readable: [Int32]) {
        guard kernel != nil, started else { return }
        if let prober {
            finish(readable.contains(prober.descriptor) ? prober.collect(waitMs: 0, now: { now }) : prober.expire(now: now), at: now)
        } else if let pollProber {
            var results: [ProbeResult<CheckerID>] = []
            for fd in readable { if let r = pollProber.handleWritable(fd: fd) { results.append(r) } }
            finish(results + pollProber.expire(now: now), at: now)
        }
        let events = controller.timersFired(at: now, slack: Self.timerSlack)
        handle(events, at: now)
        // Loopback and LAN handshakes often finish within microseconds: collect them in this
        // turn instead of paying another wake-up for them.
        if !events.isEmpty, let prober, prober.count > 0 {
            finish(prober.collect(waitMs: 0, now: { now }), at: now)
        }
        reconcileIfNeeded()
    }

    private func finish(_ results: [ProbeResult<CheckerID>], at now: Int64) {
        for result in results {
            handle(controller.probeFinished(result.id, verdict: result.outcome.verdict, at: now), at: now)
            if case .notRun(let e) = result.outcome {
                logger.warning("TCP_CHECK of \(controller.target(of: result.id)) could not run: \(SystemError.describe(e)); rescheduling")
            }
        }
    }

    private func handle(_ events: [LVSEvent], at now: Int64) {
        for event in events {
            switch event {
            case .connect(let id, let timeout):
                startProbe(id, timeout: timeout, now: now)
            case .checkerVerdict(let id, let up):
                let spec = controller.specs[id.virtualServer].realServers[id.realServer].checkers[id.checker]
                if up { logger.info("TCP connection to \(spec.target) success.") }
                else { logger.info("TCP_CHECK on service \(spec.target) failed after \(spec.timing.retry) retries.") }
            case .realServer(let v, let r, let change):
                let vs = controller.specs[v]
                let rs = vs.realServers[r]
                let name = rs.destination.key.formatted(in: vs.services[0].key)
                switch change {
                case .up:
                    logger.notice("Real server \(name) of VS \(vs.name) is UP")
                    if let script = rs.notifyUp { scripts.run(script, owner: "real_server \(name)") }
                case .down, .stillDown:
                    logger.notice("Real server \(name) of VS \(vs.name) is DOWN")
                    if let script = rs.notifyDown { scripts.run(script, owner: "real_server \(name)") }
                }
            case .quorum(let v, let q):
                let vs = controller.specs[v]
                if q.isUp {
                    logger.notice("\(q.initial ? "Starting with" : "Gained") quorum \(vs.quorum)+\(vs.hysteresis)=\(q.threshold) <= \(q.weightSum) for VS \(vs.name)")
                    if let script = vs.quorumUp { scripts.run(script, owner: "VS \(vs.name)") }
                } else {
                    logger.notice("\(q.initial ? "Starting with" : "Lost") quorum \(vs.quorum)-\(vs.hysteresis)=\(q.threshold) > \(q.weightSum) for VS \(vs.name)")
                    if let script = vs.quorumDown { scripts.run(script, owner: "VS \(vs.name)") }
                }
            }
        }
    }

    private func startProbe(_ id: CheckerID, timeout: Int64, now: Int64) {
        guard let (address, options) = probeTargets[id.index] else {
            handle(controller.probeFinished(id, verdict: nil, at: now), at: now)
            return
        }
        let start = prober?.start(id: id, target: address, options: options, timeout: timeout, now: now)
            ?? pollProber!.start(id: id, target: address, options: options, timeout: timeout, now: now)
        if case .finished(let result) = start {
            handle(controller.probeFinished(id, verdict: result.outcome.verdict, at: now), at: now)
        }
    }

    /// Socket address and options of every checker, built once: the target never changes, and
    /// building it per check was a measurable part of the per-check cost.
    private static func probeTarget(_ target: CheckTarget) -> (SocketAddress, ProbeOptions)? {
        guard let address = SocketAddress(bytes: target.address.bytes, port: target.port) else { return nil }
        let local = ProbeOptions.localAddress(bindTo: target.bindTo.flatMap { SocketAddress(bytes: $0.bytes) },
                                              bindPort: target.bindPort, target: address)
        return (address, ProbeOptions(bindTo: local, interface: target.bindInterface, fwmark: target.fwmark))
    }

    private func reconcileIfNeeded() {
        guard controller.generation != reconciledGeneration else { return }
        reconciledGeneration = controller.generation
        let ops = IPVSReconciler.plan(desired: controller.desiredTable, actual: installed, owned: controller.ownedServices)
        apply(ops, logEach: true)
    }

    /// Runs the operations, logs them as keepalived does, and records the result in
    /// `installed`; after a failure the owned part of the table is read back from the kernel,
    /// so the next plan starts from the truth rather than from a hope.
    private func apply(_ ops: [IPVSOperation], logEach: Bool) {
        guard let kernel, !ops.isEmpty else { return }
        if logEach { for op in ops { logger.info("IPVS: \(describe(op))") } }
        let failures: [IPVSOperationFailure]
        do { failures = try kernel.apply(ops) } catch {
            logger.error("IPVS: \(error)")
            resync(kernel)
            return
        }
        if failures.isEmpty {
            installed = IPVSReconciler.applying(ops, to: installed)
            return
        }
        for failure in failures.prefix(20) { logger.error("\(failure.message)") }
        if failures.count > 20 { logger.error("IPVS: \(failures.count - 20) more operations failed") }
        resync(kernel)
    }

    private func resync(_ kernel: IPVSKernel) {
        let owned = controller.ownedServices
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

    /// Stop: unless -I, remove what Vigil installed (a single FLUSH with lvs_flush_on_stop).
    /// With omega, the down scripts run for what is being removed, as in keepalived.
    func shutDown(release: Bool) {
        prober?.cancelAll()
        pollProber?.cancelAll()
        guard let kernel, started else { return }
        guard release else {
            logger.info("IPVS: -I given: leaving \(installed.count) services in place")
            return
        }
        for (v, vs) in controller.specs.enumerated() where vs.omega {
            for (r, rs) in vs.realServers.enumerated() where controller.servers[v][r].isAlive {
                if let script = rs.notifyDown { scripts.run(script, owner: "real_server \(rs.destination.key.formatted(in: vs.services[0].key))") }
            }
            if controller.pools[v].isQuorumUp, let script = vs.quorumDown { scripts.run(script, owner: "VS \(vs.name)") }
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
