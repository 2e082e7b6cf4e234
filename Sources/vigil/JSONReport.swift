import VigilConfig

/// `vigil -t --json`: a stable, machine-readable form of the diagnostics, for CI pipelines and
/// editors. Hand-rolled to keep Foundation out of the binary.
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

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
