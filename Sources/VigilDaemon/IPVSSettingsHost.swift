import IPVS
import VigilConfig
import VigilSystem
import Logging
import LVS

/// The kernel's IPVS settings that are not the table. keepalived's `lvs_sync_daemon`: starts
/// the IPVS sync threads and, when an instance is named, moves them between master and backup
/// with it. keepalived's `lvs_timeouts`: the connection timeouts while Vigil runs, the
/// kernel's own values back at stop or when a reload drops the keyword. Both are applied at
/// the end of a turn, after the VRRP host has sent what the turn sends, so no netlink
/// request sits between a state change and its advert.
final class IPVSSettingsHost: LoopHost {
    private let openIPVS: () throws(IPVSKernelError) -> any IPVSClient
    private var kernel: (any IPVSClient)?
    private let logger: Logger
    private(set) var spec: SyncDaemonSpec?
    private var isMaster: (String) -> Bool = { _ in false }
    /// The threads Vigil started (or found running as wanted at start).
    private(set) var running: [IPVSSyncDaemon] = []
    private var dirty = false
    private var wantedTimeouts: LVSTimeouts?
    /// The kernel's timeouts before Vigil first changed them: what stop puts back.
    private var kernelTimeouts: IPVSTimeouts?
    private var appliedTimeouts: IPVSTimeouts?

    init(openIPVS: @escaping () throws(IPVSKernelError) -> any IPVSClient, logger: Logger) {
        self.openIPVS = openIPVS
        self.logger = logger
    }

    /// At start and after every reload. The first time, the kernel is asked what runs: a
    /// thread a killed run left that is as wanted is kept (no gap in the sync), others go.
    func configure(_ spec: SyncDaemonSpec?, timeouts: LVSTimeouts?, isMaster: @escaping (String) -> Bool) {
        self.spec = spec
        self.isMaster = isMaster
        wantedTimeouts = timeouts
        if spec != nil || timeouts != nil, kernel == nil {
            do {
                let kernel = try openIPVS()
                self.kernel = kernel
                if spec != nil { running = try kernel.syncDaemons() }
            } catch {
                if spec != nil { logger.error("lvs_sync_daemon: IPVS is not available (\(error)): connections are not synchronised") }
                if timeouts != nil { logger.error("lvs_timeouts: IPVS is not available (\(error)): the timeouts are not set") }
            }
        }
        dirty = true
    }

    /// A VRRP transition: the threads follow at the end of the turn.
    func changed() { if spec?.instance != nil { dirty = true } }

    var nextDeadline: Int64? { dirty ? 0 : nil }

    func runDueWork(at now: Int64) {
        guard dirty else { return }
        dirty = false
        let wanted = spec.map { spec in spec.wanted(instanceIsMaster: spec.instance.map(isMaster) ?? false) } ?? []
        apply(SyncDaemonSpec.changes(running: running, wanted: wanted))
        applyTimeouts()
    }

    /// keepalived's checker stop: both threads go, the timeouts are the kernel's again.
    func shutDown() {
        apply(SyncDaemonSpec.changes(running: running, wanted: []))
        spec = nil
        wantedTimeouts = nil
        applyTimeouts()
    }

    /// keepalived's ipvs_set_timeout: the ones given, the kernel's original value for the
    /// others (0 counts as not given).
    static func merged(_ wanted: LVSTimeouts, over original: IPVSTimeouts) -> IPVSTimeouts {
        func pick(_ value: UInt32?, _ fallback: UInt32) -> UInt32 { value.flatMap { $0 == 0 ? nil : $0 } ?? fallback }
        return IPVSTimeouts(tcp: pick(wanted.tcp, original.tcp), tcpFin: pick(wanted.tcpFin, original.tcpFin),
                            udp: pick(wanted.udp, original.udp))
    }

    /// Asks nothing of the kernel when nothing changed (a reload of the same file sends no
    /// IPVS request): the values last set are remembered.
    private func applyTimeouts() {
        guard let kernel else { return }
        let given = wantedTimeouts.flatMap { [$0.tcp, $0.tcpFin, $0.udp].contains { ($0 ?? 0) != 0 } ? $0 : nil }
        do {
            if let given {
                let original: IPVSTimeouts
                if let kernelTimeouts { original = kernelTimeouts } else {
                    original = try kernel.timeouts()
                    kernelTimeouts = original
                    appliedTimeouts = original
                }
                let target = Self.merged(given, over: original)
                guard target != appliedTimeouts else { return }
                try kernel.setTimeouts(target)
                appliedTimeouts = target
                logger.info("lvs_timeouts: IPVS timeouts set to \(target) (the kernel had \(original))")
            } else if let original = kernelTimeouts {
                if appliedTimeouts != original { try kernel.setTimeouts(original) }
                kernelTimeouts = nil
                appliedTimeouts = nil
                logger.info("lvs_timeouts: IPVS timeouts back to the kernel's \(original)")
            }
        } catch {
            logger.error("lvs_timeouts: Failed to set ipvs timeouts: \(error)")
        }
    }

    private func apply(_ changes: (stop: [IPVSSyncDaemon], start: [IPVSSyncDaemon])) {
        guard let kernel else { return }
        for thread in changes.stop {
            do {
                try kernel.stopSyncDaemon(thread.state, syncID: thread.syncID)
                logger.notice("lvs_sync_daemon: stopped the \(thread)")
            } catch IPVSKernelError.refused(_, 3) {
                // ESRCH: it had already gone.
            } catch {
                logger.error("lvs_sync_daemon: cannot stop the \(thread.state) thread: \(error)")
            }
            running.removeAll { $0.state == thread.state }
        }
        for thread in changes.start {
            do {
                try kernel.startSyncDaemon(thread)
                running.append(thread)
                logger.notice("lvs_sync_daemon: started the \(thread)")
            } catch {
                logger.error("lvs_sync_daemon: cannot start the \(thread): \(error)")
            }
        }
    }
}
