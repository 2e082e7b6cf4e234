import VigilConfig
import VigilStatus

/// `vigil -t --json`: a stable, machine-readable form of the diagnostics, for CI pipelines and
/// editors. Written with VigilStatus's JSON writer, to keep Foundation out of the binary.
enum JSONReport {
    static func render(_ diagnostics: [Diagnostic], status: Int32, file: String) -> String {
        let items = diagnostics.map { d -> String in
            var fields = [
                "\"severity\":\(quote(d.severity.rawValue))",
                "\"file\":\(quote(d.location.file))",
                "\"line\":\(d.location.line)",
                "\"column\":\(d.location.column)",
                "\"message\":\(quote(d.message))",
            ]
            if let s = d.suggestion { fields.append("\"suggestion\":\(quote(s))") }
            return "{" + fields.joined(separator: ",") + "}"
        }
        return "{\"file\":\(quote(file)),\"exit_status\":\(status),\"diagnostics\":[" + items.joined(separator: ",") + "]}"
    }

    static func quote(_ text: String) -> String { JSONValue.string(text).rendered() }
}
