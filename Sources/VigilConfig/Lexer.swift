/// One token of a keepalived.conf line.
public struct Token: Hashable, Sendable {
    public enum Kind: Sendable { case word, quoted, open, close }
    public var kind: Kind
    /// The text with quotes removed and escapes resolved.
    public var text: String
    public var location: SourceLocation

    public init(_ kind: Kind, _ text: String, _ location: SourceLocation) {
        self.kind = kind
        self.text = text
        self.location = location
    }
}

/// Splits one logical line into tokens, the way keepalived's `alloc_strvec` does: whitespace
/// separates words, `{` and `}` are tokens of their own even when glued to a word, `!` and `#`
/// start a comment anywhere outside quotes, and `"…"`/`'…'` quote with shell-like escapes.
/// Works on UTF-8 bytes because configs can be tens of megabytes and may hold garbage.
public enum Lexer {
    public static func tokenize(_ line: String, file: String, line lineNumber: Int,
                                diagnostics: inout DiagnosticSink) -> [Token] {
        var text = line
        let fileID = SourceFiles.id(for: file)
        return text.withUTF8 { tokenize(bytes: $0, fileID: fileID, line: lineNumber, diagnostics: &diagnostics) }
    }

    static func tokenize(bytes: UnsafeBufferPointer<UInt8>, fileID: Int32, line lineNumber: Int,
                         diagnostics: inout DiagnosticSink) -> [Token] {
        var tokens: [Token] = []
        tokens.reserveCapacity(6)
        var index = 0
        func location(_ at: Int) -> SourceLocation { .init(fileID: fileID, line: lineNumber, column: at + 1) }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), 0x0B, 0x0C:
                index += 1
            case UInt8(ascii: "#"), UInt8(ascii: "!"):
                return tokens
            case UInt8(ascii: "{"):
                tokens.append(Token(.open, "{", location(index)))
                index += 1
            case UInt8(ascii: "}"):
                tokens.append(Token(.close, "}", location(index)))
                index += 1
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let start = index
                let quote = byte
                var text: [UInt8] = []
                index += 1
                var closed = false
                while index < bytes.count {
                    let c = bytes[index]
                    if c == quote { closed = true; index += 1; break }
                    if c == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") && index + 1 < bytes.count {
                        index += 1
                        index = unescape(bytes, at: index, into: &text)
                        continue
                    }
                    text.append(c)
                    index += 1
                }
                if !closed {
                    diagnostics.error(location(start), "unmatched quote: the string starting here is not closed on this line")
                }
                tokens.append(Token(.quoted, String(decoding: text, as: UTF8.self), location(start)))
            default:
                let start = index
                // A comment character only starts a comment at the start of a token; inside a
                // word it is an ordinary character (keepalived's alloc_strvec does the same).
                while index < bytes.count {
                    let c = bytes[index]
                    if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
                        || c == UInt8(ascii: "{") || c == UInt8(ascii: "}") || c == UInt8(ascii: "\"") {
                        break
                    }
                    index += 1
                }
                tokens.append(Token(.word, String(decoding: bytes[start..<index], as: UTF8.self), location(start)))
            }
        }
        return tokens
    }

    /// Resolves one backslash escape starting at `at` (the byte after the backslash); returns the
    /// index after it. Unknown escapes keep the character itself, as the shell does.
    private static func unescape(_ bytes: UnsafeBufferPointer<UInt8>, at: Int, into text: inout [UInt8]) -> Int {
        let c = bytes[at]
        switch c {
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "x"):
            var value: UInt8 = 0
            var consumed = 0
            var i = at + 1
            while consumed < 2, i < bytes.count, let digit = hexValue(bytes[i]) {
                value = value &* 16 &+ digit
                consumed += 1
                i += 1
            }
            if consumed == 0 { text.append(c); return at + 1 }
            text.append(value)
            return i
        default: text.append(c)
        }
        return at + 1
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
