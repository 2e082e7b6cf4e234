@preconcurrency import Glibc
import VRRP
import VigilStatus
import VigilSystem

/// keepalived's signal functions (`keepalived --signum=NAME`), which scripts and exporters
/// use to ask a running keepalived for its dumps. The real-time ones are relative to glibc's
/// SIGRTMIN and SIGRTMAX, as keepalived defines them.
public enum KeepalivedSignal: String, CaseIterable, Sendable {
    case reload = "RELOAD"
    case stop = "STOP"
    case data = "DATA"
    case stats = "STATS"
    case statsClear = "STATS_CLEAR"
    case json = "JSON"

    public var number: Int32 {
        switch self {
        case .reload: SIGHUP
        case .stop: SIGTERM
        case .data: SIGUSR1
        case .stats: SIGUSR2
        case .statsClear: __libc_current_sigrtmax() - 1
        case .json: __libc_current_sigrtmin() + 2
        }
    }

    /// The signals the daemon handles in its loop.
    static var handled: [Int32] { [SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGXCPU] + [data, stats, statsClear, json].map(\.number) }

    init?(number: Int32) {
        guard let found = Self.allCases.first(where: { $0.number == number }) else { return nil }
        self = found
    }
}

/// keepalived's dump files: where they go and which signal writes which.
extension Daemon {
    /// keepalived's `tmp_dir`: $TMPDIR when it is an absolute path, else /tmp.
    public static func dumpDirectory(environment tmpdir: String?) -> String {
        guard let tmpdir, tmpdir.hasPrefix("/") else { return "/tmp" }
        return tmpdir.count > 1 && tmpdir.hasSuffix("/") ? String(tmpdir.dropLast()) : tmpdir
    }

    /// Writes the dump `signal` asks for, replacing the file atomically so that a reader never
    /// sees half of one (keepalived 2.2.7 writes into the renamed file, and exporters retry
    /// around that).
    func writeDump(for signal: KeepalivedSignal) {
        let snapshot = statusSnapshot(traffic: false)
        let (file, text): (String, String?)
        switch signal {
        case .data: (file, text) = ("keepalived.data", KeepalivedDumps.data(snapshot))
        case .stats, .statsClear: (file, text) = ("keepalived.stats", KeepalivedDumps.stats(snapshot))
        // keepalived writes no JSON file without VRRP instances.
        case .json: (file, text) = ("keepalived.json", snapshot.instances.isEmpty ? nil : KeepalivedDumps.json(snapshot))
        case .reload, .stop: return
        }
        if let text {
            let path = options.dumpDirectory + "/" + file
            do {
                try system.files.replace(path, with: text)
                logger.info("Wrote \(path) (signal \(signal.rawValue))")
            } catch {
                logger.error("Cannot write \(path) for signal \(signal.rawValue): \(error)")
            }
        }
        if signal == .statsClear {
            vrrp.clearStatistics()
            logger.info("VRRP statistics cleared")
        }
    }
}

extension VRRPHost {
    /// keepalived's SIGSTATS_CLEAR: every instance's counters start again from zero.
    func clearStatistics() {
        for instance in instances { instance.stats.clear() }
    }
}
