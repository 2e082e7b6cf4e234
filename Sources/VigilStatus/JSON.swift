/// A small JSON value and its writer: the daemon must not load Foundation (idle memory), and
/// its documents are small. Object keys keep their order, so documents diff and read well.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered() == b.rendered() }

    public static func uint(_ v: UInt64) -> JSONValue { .int(Int64(clamping: v)) }
    public static func int<T: BinaryInteger>(_ v: T) -> JSONValue { .int(Int64(clamping: v)) }
    public static func optional(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
    public static func optional(_ v: Double?) -> JSONValue { v.map(JSONValue.double) ?? .null }

    /// Compact unless `pretty`, then two-space indentation.
    public func rendered(pretty: Bool = false) -> String {
        var out = ""
        write(into: &out, pretty: pretty, depth: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, depth: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite {
                // Whole numbers print without ".0"; others in Swift's shortest round-trip form.
                if d == d.rounded(), abs(d) < 1e15 { out += String(Int64(d)) } else { out += "\(d)" }
            } else {
                out += "null"
            }
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: depth + 1) }
                item.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: depth) }
            out += "]"
        case .object(let fields):
            if fields.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: depth + 1) }
                Self.writeString(key, into: &out)
                out += pretty ? ": " : ":"
                value.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: depth) }
            out += "}"
        }
    }

    /// RFC 8259 escaping: quotes, backslash, control characters; everything else as is (UTF-8).
    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// A moment as the calendar has it, in UTC (Howard Hinnant's civil_from_days), without
/// Foundation or the C library's time zone machinery.
struct CivilTime {
    var year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64
    /// 0 Sunday … 6 Saturday.
    var weekday: Int64

    init(_ epoch: Double) {
        let seconds = Int64(epoch.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        weekday = ((days % 7) + 11) % 7 // 1970-01-01 was a Thursday
    }
}

private func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

/// `2026-12-01T08:00:05Z` from seconds since the epoch.
public func formatUTC(_ epoch: Double) -> String {
    let t = CivilTime(epoch)
    return "\(t.year)-\(two(t.month))-\(two(t.day))T\(two(t.hour)):\(two(t.minute)):\(two(t.second))Z"
}

/// keepalived's `ctime_us_r`: `Tue Dec  1 09:50:40.186287 2026` (in UTC here).
public func formatCTime(_ epoch: Double) -> String {
    let t = CivilTime(epoch)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let micro = String(Int64(((epoch - epoch.rounded(.down)) * 1e6).rounded()) % 1_000_000)
    let paddedDay = t.day < 10 ? " \(t.day)" : "\(t.day)"
    return "\(days[Int(t.weekday)]) \(months[Int(t.month - 1)]) \(paddedDay) \(two(t.hour)):\(two(t.minute)):\(two(t.second))."
        + String(repeating: "0", count: 6 - micro.count) + micro + " \(t.year)"
}
