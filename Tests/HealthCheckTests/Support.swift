import HealthCheck

let s: Int64 = 1_000_000
let ms: Int64 = 1_000

/// How a real server answers a connect started at a given instant.
enum Reply: Equatable {
    case accept(rtt: Int64)
    /// RST at once (nothing listening).
    case refuse
    /// No answer: the driver's connect timeout fires.
    case blackhole
}

enum Step: Equatable {
    case connect(Int64)
    case up(Int64)
    case down(Int64)
}

/// A driver on a virtual clock, doing what the daemon will do with a real prober: carry out
/// `.connect`, then report the verdict when the server's reply (or the timeout) is due.
struct Driver {
    var machine: TCPCheckMachine
    var pending: (due: Int64, success: Bool)?
    var steps: [Step] = []

    init(_ config: TCPCheckConfig) { machine = TCPCheckMachine(config: config) }

    var nextEvent: Int64? { pending?.due ?? machine.nextDeadline }

    /// Handles the single next event if it is due by `end`; returns its time.
    mutating func step(until end: Int64, server: (Int64) -> Reply) -> (Int64, [TCPCheckMachine.Action])? {
        guard let t = nextEvent, t <= end else { return nil }
        let actions: [TCPCheckMachine.Action]
        if let p = pending {
            pending = nil
            actions = machine.connectFinished(success: p.success, at: t)
        } else {
            actions = machine.timerFired(at: t)
        }
        for a in actions {
            switch a {
            case .connect(let timeout):
                steps.append(.connect(t))
                switch server(t) {
                case .accept(let rtt): pending = (t + min(rtt, timeout), rtt < timeout)
                case .refuse: pending = (t, false)
                case .blackhole: pending = (t + timeout, false)
                }
            case .reportUp: steps.append(.up(t))
            case .reportDown: steps.append(.down(t))
            }
        }
        return (t, actions)
    }

    mutating func run(until end: Int64, server: (Int64) -> Reply) {
        while step(until: end, server: server) != nil {}
    }
}
