import Addressing

/// keepalived's GET request (check_http.c `request_template`): HTTP/1.0 unless `http_protocol
/// 1.1`, `Connection: close` with 1.0C and 1.1, `Host:` from the virtualhost chain, else the
/// server's address and port (bracketed for IPv6).
public enum HTTPProtocolVersion: String, Sendable, Hashable {
    case http10 = "1.0", http10Close = "1.0C", http11 = "1.1"
}

public enum HTTPRequest {
    public static func get(path: String, version: HTTPProtocolVersion, virtualhost: String?,
                           address: IPAddress, port: UInt16) -> String {
        let host: String
        if let virtualhost { host = virtualhost }
        else if address.isV6 { host = "[\(address)]:\(port)" }
        else { host = "\(address):\(port)" }
        return "GET \(path) HTTP/1.\(version == .http11 ? 1 : 0)\r\n"
            + "User-Agent: KeepAliveClient\r\n"
            + (version == .http10 ? "" : "Connection: close\r\n")
            + "Host: \(host)\r\n\r\n"
    }
}

/// A response read as keepalived reads it: the header up to the first blank line (CR LF CR
/// LF), the status code from the status line, and the body, which is all that follows until
/// the server closes, cut at Content-Length when there is one (what keepalived digests).
///
/// Where keepalived falls into a trap this does better: a header longer than keepalived's
/// 4 KiB buffer made keepalived read "no data"; here up to `headerLimit` is accepted and more
/// is an error that says so. Content-Length is matched without regard to case (keepalived
/// looks for "Content-Length:" exactly, and anywhere in the buffer), and a status line without
/// a reason phrase ("HTTP/1.1 200") has its code.
public struct HTTPResponseReader: Sendable {
    public static let headerLimit = 16 * 1024

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case headerTooLong(Int)
        public var description: String {
            switch self {
            case .headerTooLong(let limit): "the response header is longer than \(limit) bytes"
            }
        }
    }

    /// The header without its blank line.
    public private(set) var header: [UInt8] = []
    public private(set) var headerComplete = false
    /// Keep the digested body in `body` (genhash -v shows it); off for checks.
    public var keepsBody = false
    public private(set) var body: [UInt8] = []
    /// 0 when the status line has none keepalived would read (keepalived's value, a failure).
    public private(set) var statusCode = 0
    public private(set) var contentLength: Int?
    /// Body bytes received (all of them, also past Content-Length).
    public private(set) var bodyBytes = 0
    /// Body bytes handed to `body` (at most Content-Length).
    public private(set) var digestedBytes = 0
    /// Anything at all arrived.
    public private(set) var receivedAny = false

    public init(keepsBody: Bool = false) { self.keepsBody = keepsBody }

    /// Takes the next bytes read; `body` gets the part of them to digest.
    public mutating func consume(_ bytes: ArraySlice<UInt8>, body: (ArraySlice<UInt8>) -> Void) throws(Failure) {
        let copy = Array(bytes)
        var failure: Failure?
        copy.withUnsafeBytes { raw in
            do throws(Failure) { try consume(raw) { part in body(Array(part)[...]) } } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// The same without copying what was read: the prober hands its read buffer over, and the
    /// body goes to the digest from there (only the header is kept).
    public mutating func consume(_ bytes: UnsafeRawBufferPointer, body: (UnsafeRawBufferPointer) -> Void) throws(Failure) {
        guard !bytes.isEmpty else { return }
        receivedAny = true
        var start = 0
        if !headerComplete {
            let before = header.count
            header.append(contentsOf: bytes)
            // The blank line may straddle two reads: look from three bytes back.
            guard let end = Self.blankLine(in: header, from: max(0, before - 3)) else {
                if header.count > Self.headerLimit { throw .headerTooLong(Self.headerLimit) }
                return
            }
            headerComplete = true
            start = end - before
            header.removeSubrange((end - 4)...)
            parseHeader()
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
        bodyBytes += rest.count
        var wanted = rest
        if let contentLength {
            wanted = UnsafeRawBufferPointer(rebasing: rest.prefix(max(0, contentLength - digestedBytes)))
        }
        if !wanted.isEmpty {
            digestedBytes += wanted.count
            if keepsBody { self.body.append(contentsOf: wanted) }
            body(wanted)
        }
    }

    /// The index just past the first CR LF CR LF at or after `from`.
    static func blankLine(in bytes: [UInt8], from: Int) -> Int? {
        var i = from
        while i + 3 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
            i += 1
        }
        return nil
    }

    /// The status line's code and Content-Length, read in place (a check reads thousands of
    /// headers a second; no line or header name becomes a String).
    private mutating func parseHeader() {
        var lineStart = 0
        var first = true
        while lineStart < header.count {
            var lineEnd = lineStart
            while lineEnd < header.count && header[lineEnd] != 10 { lineEnd += 1 }
            let contentEnd = lineEnd > lineStart && header[lineEnd - 1] == 13 ? lineEnd - 1 : lineEnd
            let line = header[lineStart..<contentEnd]
            if first {
                statusCode = Self.statusCode(inStatusLine: line)
                first = false
            } else if let length = Self.contentLength(line) {
                contentLength = length
            }
            lineStart = lineEnd + 1
        }
    }

    private static let contentLengthName = Array("content-length".utf8)

    /// The value of a `Content-Length:` line, whatever the name's case; nil for any other line.
    static func contentLength(_ line: ArraySlice<UInt8>) -> Int? {
        let name = contentLengthName
        guard line.count > name.count, line[line.startIndex + name.count] == UInt8(ascii: ":") else { return nil }
        for (i, c) in name.enumerated() where line[line.startIndex + i] | 0x20 != c && !(c == UInt8(ascii: "-") && line[line.startIndex + i] == c) {
            return nil
        }
        var value = 0
        var digits = 0
        for byte in line[(line.startIndex + name.count + 1)...] {
            if byte == 32 || byte == 9 { if digits == 0 { continue } else { break } }
            guard byte >= 48 && byte <= 57, value < Int.max / 10 - 9 else { return nil }
            value = value * 10 + Int(byte - 48)
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The three digits after the first space of the status line, followed by a space or the
    /// end of the line; 0 otherwise.
    public static func statusCode(inStatusLine line: ArraySlice<UInt8>) -> Int {
        guard let space = line.firstIndex(of: 32) else { return 0 }
        let digits = line[(space + 1)...].prefix(4)
        guard digits.count >= 3 else { return 0 }
        let code = digits.prefix(3)
        guard code.allSatisfy({ $0 >= 48 && $0 <= 57 }), digits.count == 3 || digits.last == 32 else { return 0 }
        return code.reduce(0) { $0 * 10 + Int($1 - 48) }
    }
}

/// What one `url` block asks of the response, and keepalived's words when it is not met.
public struct HTTPExpectation: Sendable, Hashable {
    /// keepalived's default: 200–299.
    public var statusCodes: [ClosedRange<Int>]
    /// MD5 of the body, 16 bytes.
    public var digest: [UInt8]?
    /// The url's `regex`, matched by the prober as the body streams in (see BodyRegex).
    public var regex: HTTPRegexRule?

    public init(statusCodes: [ClosedRange<Int>] = [], digest: [UInt8]? = nil, regex: HTTPRegexRule? = nil) {
        self.statusCodes = statusCodes.isEmpty ? [200...299] : statusCodes
        self.digest = digest
        self.regex = regex
    }

    /// nil when the response passes, else keepalived's reason ("HTTP status code error to").
    /// `regexMatched`: whether the body matched the url's regex (nil: it was not matched).
    public func failure(of response: HTTPResponseReader, bodyDigest: [UInt8]?, regexMatched: Bool? = nil) -> String? {
        guard response.receivedAny, response.headerComplete else { return "Read, no data received from" }
        let code = response.statusCode
        guard (100...599).contains(code), statusCodes.contains(where: { $0.contains(code) }) else {
            return "HTTP status code error to"
        }
        if let digest, digest != bodyDigest { return "MD5 digest error to" }
        if let regex, (regexMatched ?? false) == regex.noMatch { return "Regex match failed" }
        return nil
    }
}

/// A url's `regex` with keepalived's options: `regex_no_match` passes when it does not match;
/// `regex_min_offset`/`regex_max_offset` bound where in the body a match may start.
public struct HTTPRegexRule: Sendable, Hashable {
    public var pattern: String
    /// PCRE2 compile options (`regex_options`).
    public var options: UInt32
    public var noMatch: Bool
    public var minimumOffset: Int
    public var maximumOffset: Int?

    public init(pattern: String, options: UInt32 = 0, noMatch: Bool = false, minimumOffset: Int = 0, maximumOffset: Int? = nil) {
        self.pattern = pattern
        self.options = options
        self.noMatch = noMatch
        self.minimumOffset = minimumOffset
        self.maximumOffset = maximumOffset
    }
}
