import Addressing
/// Reads keyword arguments with keepalived's rules (ranges, booleans, decimal timers) and
/// reports every problem at the exact token. Shared by every block's interpreter.
struct Reader {
    var diagnostics = DiagnosticSink()

    /// The Nth argument (1-based), or an error naming what was expected.
    mutating func argument(_ s: Statement, _ index: Int = 1, expecting what: @autoclosure () -> String) -> Token? {
        guard index < s.words.count else {
            let after = s.words.last!
            diagnostics.error(
                SourceLocation(fileID: after.location.fileID, line: after.location.line,
                               column: after.location.column + after.text.utf8.count + (after.kind == .quoted ? 2 : 0)),
                "'\(s.keyword)' is missing \(index == 1 ? "its" : "a") parameter: expected \(what())")
            return nil
        }
        return s.words[index]
    }

    /// Warns about arguments nobody reads: keepalived silently ignores them, which hides typos
    /// such as `interface eth0 eth1`.
    mutating func noExtra(_ s: Statement, after count: Int) {
        if s.words.count > count + 1 {
            let extra = s.words[(count + 1)...].map(\.text).joined(separator: " ")
            diagnostics.warning(s.words[count + 1].location, "unexpected extra argument(s) '\(extra)' after '\(s.keyword)' are ignored")
        }
    }

    mutating func integer(_ s: Statement, _ index: Int = 1, in range: ClosedRange<Int>, what: String? = nil) -> Int? {
        let expectation = { what ?? "an integer in \(range.lowerBound)...\(range.upperBound)" }
        guard let token = argument(s, index, expecting: expectation()) else { return nil }
        return integer(token, keyword: s.keyword, in: range, what: expectation())
    }

    mutating func integer(_ token: Token, keyword: String, in range: ClosedRange<Int>, what: @autoclosure () -> String) -> Int? {
        guard let value = Int(token.text) else {
            diagnostics.error(token.location, "invalid number '\(token.text)' for '\(keyword)': expected \(what())")
            return nil
        }
        guard range.contains(value) else {
            diagnostics.error(token.location, "'\(keyword)' \(value) is out of range: expected \(what())")
            return nil
        }
        return value
    }

    /// A decimal number of seconds (keepalived's `<TIMER>`), returned in microseconds.
    mutating func timer(_ s: Statement, _ index: Int = 1, min: Microseconds = 0,
                        max: Microseconds = 4_294_000_000_000) -> Microseconds? {
        let what = "a duration in seconds (decimal allowed)"
        guard let token = argument(s, index, expecting: what) else { return nil }
        guard let value = parseSeconds(token.text) else {
            diagnostics.error(token.location, "invalid duration '\(token.text)' for '\(s.keyword)': expected \(what)")
            return nil
        }
        guard value >= min, value <= max else {
            diagnostics.error(token.location, "'\(s.keyword)' \(token.text) is out of range: expected \(formatSeconds(min))...\(formatSeconds(max)) seconds")
            return nil
        }
        return value
    }

    /// `<BOOL>`: no argument means true.
    mutating func boolean(_ s: Statement) -> Bool? {
        guard s.words.count > 1 else { return true }
        let token = s.words[1]
        switch token.text.lowercased() {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default:
            diagnostics.error(token.location, "invalid boolean '\(token.text)' for '\(s.keyword)': expected on/off, true/false or yes/no")
            return nil
        }
    }

    mutating func address(_ token: Token, keyword: String) -> IPAddress? {
        guard let address = IPAddress(token.text) else {
            diagnostics.error(token.location, "invalid IP address '\(token.text)' for '\(keyword)'")
            return nil
        }
        return address
    }

    mutating func address(_ s: Statement, _ index: Int = 1) -> IPAddress? {
        guard let token = argument(s, index, expecting: "an IP address") else { return nil }
        return address(token, keyword: s.keyword)
    }

    /// A command line plus optional `user [group]`, as notify/script keywords take them.
    mutating func command(_ s: Statement) -> ScriptCommand? {
        guard let token = argument(s, 1, expecting: "a command line (quote it if it has spaces)") else { return nil }
        var user: ScriptUser?
        if s.words.count > 2 {
            user = ScriptUser(user: s.words[2].text, group: s.words.count > 3 ? s.words[3].text : nil,
                              location: s.words[2].location)
        }
        noExtra(s, after: 3)
        return ScriptCommand(command: token.text, user: user, location: token.location)
    }

    mutating func user(_ s: Statement) -> ScriptUser? {
        guard let token = argument(s, 1, expecting: "a user name") else { return nil }
        var group: String?
        if s.words.count > 2 {
            group = s.words[2].text.hasPrefix(":") ? String(s.words[2].text.dropFirst()) : s.words[2].text
        }
        var name = token.text
        if group == nil, let colon = name.firstIndex(of: ":") {
            group = String(name[name.index(after: colon)...])
            name = String(name[..<colon])
        }
        noExtra(s, after: 2)
        return ScriptUser(user: name, group: group, location: token.location)
    }

    mutating func string(_ s: Statement, expecting what: @autoclosure () -> String) -> String? {
        let token = argument(s, 1, expecting: what())
        noExtra(s, after: 1)
        return token?.text
    }

    mutating func requireBlock(_ s: Statement) -> [Statement]? {
        guard let block = s.block else {
            diagnostics.error(s.location, "'\(s.keyword)' needs a block: \(s.keyword) { … }")
            return nil
        }
        return block
    }

    mutating func forbidBlock(_ s: Statement) {
        if s.block != nil {
            diagnostics.error(s.location, "'\(s.keyword)' does not take a block")
        }
    }

    mutating func unknown(_ s: Statement, in blockName: String, known: [String]) {
        diagnostics.error(s.location, "unknown keyword '\(s.keyword)' in \(blockName)",
                          suggestion: nearest(s.keyword, in: known))
    }
}

/// Seconds with up to six decimals, to microseconds. No exponent, no sign: as keepalived's
/// `read_decimal_unsigned_strvec`.
func parseSeconds(_ text: String) -> Microseconds? {
    var whole: Int64 = 0, fraction: Int64 = 0
    var wholeDigits = 0, fractionDigits = 0, seenDot = false
    for c in text.utf8 {
        if c == UInt8(ascii: ".") {
            if seenDot { return nil }
            seenDot = true
        } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
            let digit = Int64(c - UInt8(ascii: "0"))
            if seenDot {
                fractionDigits += 1
                if fractionDigits > 6 { return nil }
                fraction = fraction * 10 + digit
            } else {
                wholeDigits += 1
                if wholeDigits > 12 { return nil }
                whole = whole * 10 + digit
            }
        } else {
            return nil
        }
    }
    guard wholeDigits + fractionDigits > 0 else { return nil }
    for _ in fractionDigits..<6 { fraction *= 10 }
    return whole * 1_000_000 + fraction
}

func formatSeconds(_ us: Microseconds) -> String {
    if us % 1_000_000 == 0 { return "\(us / 1_000_000)" }
    var fraction = String(us % 1_000_000)
    while fraction.count < 6 { fraction = "0" + fraction }
    while fraction.hasSuffix("0") { fraction.removeLast() }
    return "\(us / 1_000_000).\(fraction)"
}

/// strtol with base 0, as keepalived reads `umask` and `-u`: 0x.. hexadecimal, 0.. octal, else
/// decimal; the whole text or nil.
public func parseCInteger(_ text: String) -> Int? {
    if text.hasPrefix("0x") || text.hasPrefix("0X") { return Int(text.dropFirst(2), radix: 16) }
    if text.count > 1 && text.hasPrefix("0") { return Int(text.dropFirst(), radix: 8) }
    return Int(text, radix: 10)
}
