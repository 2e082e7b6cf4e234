/// The control socket's protocol: one request line from the client (`status`, `status json`,
/// `reload`), one answer from the daemon, then the daemon closes. The answer's first line says
/// how it went (`vigil-control 1 ok|refused|error`), the rest is the body the client prints.
/// Parsing is pure and bounded, so any bytes a client sends give an answer, never a trap.
public enum ControlCommand: Hashable, Sendable {
    case status(json: Bool)
    case reload
}

public enum ControlProtocol {
    public static let version = 1
    public static let defaultSocket = "/run/vigil/vigil.sock"

    public enum Parsed: Hashable, Sendable {
        /// No newline yet.
        case incomplete
        case command(ControlCommand)
        case invalid(String)
    }

    /// The request so far: complete once it holds a newline.
    public static func parse(_ bytes: [UInt8]) -> Parsed {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return .incomplete }
        var line = bytes[..<newline]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return .invalid("the request is not a line of printable ASCII") }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
        switch words {
        case ["status"]: return .command(.status(json: false))
        case ["status", "json"]: return .command(.status(json: true))
        case ["reload"]: return .command(.reload)
        default:
            let shown = words.joined(separator: " ").prefix(40)
            return .invalid("unknown request '\(shown)': expected 'status', 'status json' or 'reload'")
        }
    }

    public enum Outcome: String, Sendable {
        case ok, refused, error
    }

    public static func answer(_ outcome: Outcome, _ body: String) -> [UInt8] {
        Array("vigil-control \(version) \(outcome.rawValue)\n\(body)".utf8)
    }

    /// The client's side: the outcome and the body, or nil for an answer that is not one.
    public static func parseAnswer(_ bytes: [UInt8]) -> (outcome: Outcome, body: String)? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let head = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard head.count == 3, head[0] == "vigil-control", let outcome = Outcome(rawValue: String(head[2])) else { return nil }
        return (outcome, String(decoding: bytes[(newline + 1)...], as: UTF8.self))
    }
}
