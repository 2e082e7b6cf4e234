import Logging
import VigilConfig

/// keepalived's notify FIFOs: `notify_fifo` gets every event line, `vrrp_notify_fifo` the
/// instances' and groups', `lvs_notify_fifo` the virtual and real servers'. Lines are
/// keepalived's (`INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP 0`,
/// `VS [10.0.0.1]:tcp:80 UP`, `RS [192.168.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN`).
///
/// Two things keepalived does that are traps, done otherwise here: keepalived's VRRP and
/// checker processes each open `notify_fifo` and each start its `notify_fifo_script`, so
/// the script runs twice; and every reload closes and reopens every FIFO and restarts the
/// scripts. Vigil is one writer, starts each script once, and a reload that leaves a FIFO's
/// lines as they were leaves the FIFO and its script alone.
final class NotifyFIFOs {
    private struct Open {
        var spec: NotifyFIFO
        var fd: Int32
        var created: Bool
        var script: ScriptRunID?
        var dropped = 0
        var droppedLoggedAt: Int64?
    }

    typealias StartScript = (_ command: ScriptCommand, _ fifoPath: String, _ id: ScriptRunID) -> Bool
    private let control: (any FIFOControl)?
    private let clock: any DaemonClock
    private var logger: Logger
    private let startScript: StartScript
    private let stopScript: (ScriptRunID) -> Void
    private var open: [NotifyFIFO.Kind: Open] = [:]
    private var scriptSerial = 0

    init(control: (any FIFOControl)?, clock: any DaemonClock, logger: Logger,
         startScript: @escaping StartScript, stopScript: @escaping (ScriptRunID) -> Void) {
        self.control = control
        self.clock = clock
        self.logger = logger
        self.startScript = startScript
        self.stopScript = stopScript
    }

    var isEmpty: Bool { open.isEmpty }

    /// At start and at each reload: FIFOs whose path, owner and script stayed the same are kept
    /// open with their script; the others are closed (their script stopped) and opened anew.
    func configure(_ wanted: [NotifyFIFO.Kind: NotifyFIFO]) {
        for (kind, current) in open where !(wanted[kind].map { Self.sameSetup($0, current.spec) } ?? false) {
            close(kind, current)
        }
        for (kind, spec) in wanted.sorted(by: { $0.key < $1.key }) where open[kind] == nil {
            openFIFO(kind, spec)
        }
    }

    /// Shutdown, after the last lines (the instances' STOP). The readers are not signalled
    /// here: with the FIFO closed they read what is left and see its end, within the second
    /// the daemon gives every script at stop. keepalived signals them at once, and its
    /// readers often lose the STOP lines.
    func closeAll() {
        for (kind, current) in open { close(kind, current, stoppingReader: false) }
    }

    /// A reader script ended; keepalived logs it and does not restart it.
    func scriptFinished(_ id: ScriptRunID) -> Bool {
        guard let kind = open.first(where: { $0.value.script == id })?.key else {
            if case .fifoScript = id { return true }
            return false
        }
        open[kind]?.script = nil
        logger.info("\([.all: "", .vrrp: "vrrp ", .lvs: "lvs "][kind] ?? "")notify fifo script terminated")
        return true
    }

    // MARK: keepalived's lines

    func instance(_ name: String, state: String, priority: Int) {
        write("INSTANCE \"\(name)\" \(state) \(priority)\n", to: .vrrp)
    }

    func group(_ name: String, state: String) {
        write("GROUP \"\(name)\" \(state) 0\n", to: .vrrp)
    }

    /// `notify_priority_changes`: keepalived tells only the FIFOs.
    func priorityChanged(instance name: String, isMaster: Bool, priority: Int) {
        instance(name, state: isMaster ? "MASTER_PRIORITY" : "BACKUP_PRIORITY", priority: priority)
    }

    func masterReceivedLowerPriority(instance name: String, priority: Int) {
        instance(name, state: "MASTER_RX_LOWER_PRI", priority: priority)
    }

    func virtualServer(_ name: String, up: Bool) {
        write("VS \(name) \(up ? "UP" : "DOWN")\n", to: .lvs)
    }

    func realServer(_ name: String, of virtualServer: String, up: Bool) {
        write("RS \(name) \(virtualServer) \(up ? "UP" : "DOWN")\n", to: .lvs)
    }

    // MARK: -

    private func write(_ line: String, to kind: NotifyFIFO.Kind) {
        guard !open.isEmpty, let control else { return }
        let bytes = Array(line.utf8)
        for target in [NotifyFIFO.Kind.all, kind] {
            guard var entry = open[target], !control.write(entry.fd, bytes) else { continue }
            // A reader that does not keep up loses lines, as with keepalived (which says
            // nothing); here it is counted and said at most once a minute.
            entry.dropped += 1
            let now = clock.now()
            if entry.droppedLoggedAt.map({ now - $0 >= 60_000_000 }) ?? true {
                logger.warning("\(target.keyword) \(entry.spec.path): the reader is not keeping up; \(entry.dropped) line(s) left out so far")
                entry.droppedLoggedAt = now
            }
            open[target] = entry
        }
    }

    private func openFIFO(_ kind: NotifyFIFO.Kind, _ spec: NotifyFIFO) {
        guard let control else {
            logger.error("\(spec.location): \(kind.keyword) \(spec.path): FIFOs cannot be opened here; no lines are written")
            return
        }
        do {
            let (fd, created) = try control.open(spec.path, owner: spec.owner.map { ($0.user, $0.group) })
            var entry = Open(spec: spec, fd: fd, created: created)
            if let script = spec.script {
                scriptSerial += 1
                let id = ScriptRunID.fifoScript(scriptSerial)
                if startScript(script, spec.path, id) { entry.script = id }
            }
            open[kind] = entry
            logger.info("\(kind.keyword) \(spec.path) open\(created ? " (made)" : "")\(entry.script != nil ? ", \(spec.script!.command) reads it" : "")")
        } catch {
            logger.error("\(spec.location): Unable to open \(kind.rawValue)notify fifo \(spec.path): \(error); no lines are written to it")
        }
    }

    private func close(_ kind: NotifyFIFO.Kind, _ entry: Open, stoppingReader: Bool = true) {
        control?.close(entry.fd, removing: entry.created ? entry.spec.path : nil)
        if stoppingReader, let script = entry.script { stopScript(script) }
        open[kind] = nil
    }

    private static func sameSetup(_ a: NotifyFIFO, _ b: NotifyFIFO) -> Bool {
        a.path == b.path && a.owner?.user == b.owner?.user && a.owner?.group == b.owner?.group
            && a.script?.command == b.script?.command && a.script?.user?.user == b.script?.user?.user
            && a.script?.user?.group == b.script?.user?.group
    }
}
