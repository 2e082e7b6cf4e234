import IPVS
import VigilSystem
import Logging
import LVS

/// keepalived's `lvs_sync_daemon`: starts the kernel's IPVS sync threads and, when an
/// instance is named, moves them between master and backup with it. The switch is made at
/// the end of the turn of the transition, after the VRRP host has sent what the transition
/// sends, so no netlink request sits between a state change and its advert.
final class SyncDaemonHost: LoopHost {
    private let openIPVS: () throws(IPVSKernelError) -> any IPVSClient
    private var kernel: (any IPVSClient)?
    private let logger: Logger
    private(set) var spec: SyncDaemonSpec?
    private var isMaster: (String) -> Bool = { _ in false }
    /// The threads Vigil started (or found running as wanted at start).
    private(set) var running: [IPVSSyncDaemon] = []
    private var dirty = false

    init(openIPVS: @escaping () throws(IPVSKernelError) -> any IPVSClient, logger: Logger) {
        self.openIPVS = openIPVS
        self.logger = logger
    }

    /// At start and after every reload. The first time, the kernel is asked what runs: a
    /// thread a killed run left that is as wanted is kept (no gap in the sync), others go.
    func configure(_ spec: SyncDaemonSpec?, isMaster: @escaping (String) -> Bool) {
        self.spec = spec
        self.isMaster = isMaster
        if spec != nil, kernel == nil {
            do {
                let kernel = try openIPVS()
                self.kernel = kernel
                running = try kernel.syncDaemons()
            } catch {
                logger.error("lvs_sync_daemon: IPVS is not available (\(error)): connections are not synchronised")
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
    }

    /// keepalived's checker stop: both threads go.
    func shutDown() {
        apply(SyncDaemonSpec.changes(running: running, wanted: []))
        spec = nil
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
