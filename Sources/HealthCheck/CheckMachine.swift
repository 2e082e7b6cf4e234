/// Every checker kind's schedule behind one face, so the controller keeps one slot table and
/// one timer heap: TCP_CHECK's connect (`TCPCheckMachine`) and HTTP_GET/SSL_GET's fetch of
/// one URL (`HTTPCheckMachine`). The driver runs what `.connect`/`.fetch` asks and reports the
/// verdict back through `finished` or `aborted`; FILE_CHECK (`FileCheckMachine`) is told each
/// number its file reads through `fileRead`.
public enum CheckMachine: Sendable, Hashable {
    case tcp(TCPCheckMachine)
    case http(HTTPCheckMachine)
    case misc(MiscCheckMachine)
    case file(FileCheckMachine)

    public enum Action: Sendable, Hashable {
        case connect(timeout: Int64)
        case fetch(url: Int, timeout: Int64)
        /// MISC_CHECK: run misc_path; report with `miscFinished`.
        case run(timeout: Int64)
        case reportUp
        case reportDown
        case setWeight(Int?)
        /// FILE_CHECK: what the checker adds to its real server's weight.
        case addWeight(Int)
    }

    public var config: TCPCheckConfig {
        switch self { case .tcp(let m): m.config; case .http(let m): m.config; case .misc(let m): m.config; case .file(let m): m.config }
    }

    public var isUp: Bool {
        switch self { case .tcp(let m): m.isUp; case .http(let m): m.isUp; case .misc(let m): m.isUp; case .file(let m): m.isUp }
    }

    public var hasRun: Bool {
        switch self { case .tcp(let m): m.hasRun; case .http(let m): m.hasRun; case .misc(let m): m.hasRun; case .file(let m): m.hasRun }
    }

    public var nextDeadline: Int64? {
        switch self { case .tcp(let m): m.nextDeadline; case .http(let m): m.nextDeadline; case .misc(let m): m.nextDeadline; case .file: nil }
    }

    public var isEnabled: Bool {
        get { switch self { case .tcp(let m): m.isEnabled; case .http(let m): m.isEnabled; case .misc(let m): m.isEnabled; case .file(let m): m.isEnabled } }
        set {
            switch self {
            case .tcp(var m): m.isEnabled = newValue; self = .tcp(m)
            case .http(var m): m.isEnabled = newValue; self = .http(m)
            case .misc(var m): m.isEnabled = newValue; self = .misc(m)
            case .file(var m): m.isEnabled = newValue; self = .file(m)
            }
        }
    }

    public mutating func start(at now: Int64, randomWarmup: Int64) -> [Action] {
        step { tcp in tcp.start(at: now, randomWarmup: randomWarmup) } http: { http in http.start(at: now, randomWarmup: randomWarmup) }
            misc: { misc in misc.start(at: now, randomWarmup: randomWarmup) }
    }

    public mutating func stop() {
        _ = step { tcp in tcp.stop(); return [] } http: { http in http.stop(); return [] } misc: { misc in misc.stop(); return [] }
        if case .file(var m) = self {
            m.isEnabled = false
            self = .file(m)
        }
    }

    /// FILE_CHECK: the number its file reads now (other kinds ignore it).
    public mutating func fileRead(_ value: Int) -> [Action] {
        guard case .file(var m) = self else { return [] }
        let actions = m.fileRead(value)
        self = .file(m)
        return actions.map { action in
            switch action {
            case .reportUp: .reportUp
            case .reportDown: .reportDown
            case .addWeight(let weight): .addWeight(weight)
            }
        }
    }

    public mutating func timerFired(at now: Int64) -> [Action] {
        step { tcp in tcp.timerFired(at: now) } http: { http in http.timerFired(at: now) } misc: { misc in misc.timerFired(at: now) }
    }

    public mutating func finished(success: Bool, at now: Int64) -> [Action] {
        step { tcp in tcp.connectFinished(success: success, at: now) } http: { http in http.fetchFinished(success: success, at: now) }
            misc: { _ in [] }
    }

    public mutating func aborted(at now: Int64) -> [Action] {
        step { tcp in tcp.connectAborted(at: now) } http: { http in http.fetchAborted(at: now) } misc: { misc in misc.runAborted(at: now) }
    }

    /// How a MISC_CHECK's run ended (other kinds ignore it).
    public mutating func miscFinished(_ result: MiscCheckMachine.Result, at now: Int64) -> [Action] {
        step { _ in [] } http: { _ in [] } misc: { misc in misc.runFinished(result, at: now) }
    }

    private mutating func step(_ tcp: (inout TCPCheckMachine) -> [TCPCheckMachine.Action],
                               http: (inout HTTPCheckMachine) -> [HTTPCheckMachine.Action],
                               misc: (inout MiscCheckMachine) -> [MiscCheckMachine.Action]) -> [Action] {
        switch self {
        case .tcp(var m):
            let actions = tcp(&m)
            self = .tcp(m)
            return actions.map { action in
                switch action {
                case .connect(let timeout): .connect(timeout: timeout)
                case .reportUp: .reportUp
                case .reportDown: .reportDown
                }
            }
        case .http(var m):
            let actions = http(&m)
            self = .http(m)
            return actions.map { action in
                switch action {
                case .fetch(let url, let timeout): .fetch(url: url, timeout: timeout)
                case .reportUp: .reportUp
                case .reportDown: .reportDown
                }
            }
        case .file:
            // Driven only by fileRead: no schedule, nothing to start, time out or finish.
            return []
        case .misc(var m):
            let actions = misc(&m)
            self = .misc(m)
            return actions.map { action in
                switch action {
                case .run(let timeout): .run(timeout: timeout)
                case .reportUp: .reportUp
                case .reportDown: .reportDown
                case .setWeight(let weight): .setWeight(weight)
                }
            }
        }
    }
}
