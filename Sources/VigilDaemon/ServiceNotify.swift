@preconcurrency import Glibc
import Logging
import VRRP
import VigilStatus
import VigilSystem

/// Tells systemd (Type=notify) what the daemon is doing: READY once the first configuration is
/// applied, RELOADING/READY around each reload, STOPPING, a STATUS line a person can read in
/// `systemctl status`, and WATCHDOG=1 from the loop itself, so that a loop that hangs stops
/// the pings and systemd restarts the daemon (keepalived has no watchdog).
final class ServiceNotifyHost: LoopHost {
    /// The STATUS line is told at most this often. Whatever changes it (a transition, a real
    /// server's verdict, a reload) happens in a loop turn, so it is looked at in the turns that
    /// happen anyway; a turn sooner than this after the last look owes one at its end, the only
    /// wake of this host's own. An idle director therefore wakes for its adverts alone, not
    /// once more a second for a line that cannot have changed.
    static let statusRefresh: Int64 = 1_000_000
    /// A turn this close to the end of the refresh looks at once: adverts are due every
    /// advert_int from when the last was sent, so turns drift by the loop's latency and must
    /// not each owe a wake a few microseconds later.
    static let statusSlack: Int64 = 50_000

    private let manager: any ServiceManager
    private let logger: Logger
    private let statusLine: () -> String
    private var lastStatus: String?
    /// When the line was last looked at; nil before READY.
    private var lastStatusCheck: Int64?
    private var statusCheckOwed = false
    private var nextWatchdog: Int64?
    private var failing = false

    init(manager: any ServiceManager, logger: Logger, statusLine: @escaping () -> String) {
        self.manager = manager
        self.logger = logger
        self.statusLine = statusLine
    }

    func ready(at now: Int64) {
        send("READY=1\nMAINPID=\(getpid())\n" + status())
        lastStatusCheck = now
        if let interval = manager.watchdogInterval {
            // Half the interval, as sd_watchdog_enabled(3) advises.
            send("WATCHDOG=1")
            nextWatchdog = now + max(interval / 2, 1)
        }
    }

    /// `now` is CLOCK_MONOTONIC µs, which is what systemd's MONOTONIC_USEC wants.
    func reloading(at now: Int64) { send("RELOADING=1\nMONOTONIC_USEC=\(now)\nSTATUS=Reloading the configuration") }

    func reloaded() {
        lastStatus = nil
        send("READY=1\n" + status())
    }

    func stopping() { send("STOPPING=1\nSTATUS=Stopping: releasing VIPs and IPVS services") }

    private func status() -> String {
        let line = statusLine()
        lastStatus = line
        return "STATUS=\(line)"
    }

    private func send(_ message: String) {
        do {
            try manager.notify(message)
            failing = false
        } catch {
            // Said once per run of failures: the notify socket is not worth a log line a second.
            if !failing { logger.warning("systemd notification failed: \(error)") }
            failing = true
        }
    }

    // MARK: LoopHost

    var nextDeadline: Int64? {
        let owed = statusCheckOwed ? lastStatusCheck.map { $0 + Self.statusRefresh } : nil
        guard let owed else { return nextWatchdog }
        return min(owed, nextWatchdog ?? .max)
    }

    func runDueWork(at now: Int64) {
        if let due = nextWatchdog, due <= now, let interval = manager.watchdogInterval {
            send("WATCHDOG=1")
            nextWatchdog = now + max(interval / 2, 1)
        }
        guard let last = lastStatusCheck else { return }
        guard now - last >= Self.statusRefresh - Self.statusSlack else {
            statusCheckOwed = true
            return
        }
        statusCheckOwed = false
        lastStatusCheck = now
        let line = statusLine()
        if line != lastStatus {
            lastStatus = line
            send("STATUS=\(line)")
        }
    }
}

extension Daemon {
    /// "MASTER on VI_1; BACKUP on VI_2; 2 virtual servers, 7/8 real servers up".
    func serviceStatusLine() -> String {
        var parts: [String] = []
        for state in [VRRPState.master, .backup, .fault, .initialize, .stopped] {
            let names = vrrp.instances.filter { $0.machine.state == state }.map(\.name)
            if !names.isEmpty { parts.append("\(stateName(state)) on \(names.joined(separator: ", "))") }
        }
        if let checkers, !checkers.controller.specs.isEmpty {
            let specs = checkers.controller.specs
            let total = specs.reduce(0) { $0 + $1.realServers.count }
            let up = checkers.controller.servers.reduce(0) { $0 + $1.filter(\.isAlive).count }
            let count = specs.count == 1 ? "1 virtual server" : "\(specs.count) virtual servers"
            parts.append(checkers.isActive ? "\(count), \(up)/\(total) real servers up" : "\(count) (no IPVS in this kernel)")
        }
        if parts.isEmpty { parts.append("nothing configured") }
        if reloadCounts.last?.result == "refused" { parts.append("last reload refused (see the log or vigil reload)") }
        return parts.joined(separator: "; ")
    }
}
