import Addressing

/// The little HTTP/1.x that `/metrics` needs: one GET (or HEAD) per connection, answered and
/// closed. Parsing is pure and bounded like the control protocol's, so any bytes give an
/// answer: a scraper gets its exposition, anything else a precise status line.
public enum MetricsHTTP {
    public enum Request: Equatable, Sendable {
        /// No blank line yet.
        case incomplete
        case metrics(head: Bool)
        /// An answer that needs no daemon state (an error, the index page).
        case answer([UInt8])
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func parse(_ bytes: [UInt8]) -> Request {
        guard let end = headerEnd(bytes) else { return .incomplete }
        let lineEnd = bytes[..<end].firstIndex(of: UInt8(ascii: "\n")) ?? end
        var line = bytes[..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 3, words[2].starts(with: Array("HTTP/1.".utf8)),
              line.allSatisfy({ $0 > 0x20 && $0 < 0x7F || $0 == 0x20 }) else {
            return .answer(response(status: "400 Bad Request", body: "not an HTTP/1 request\n"))
        }
        let method = String(decoding: words[0], as: UTF8.self)
        let target = String(decoding: words[1], as: UTF8.self)
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        guard method == "GET" || method == "HEAD" else {
            return .answer(response(status: "405 Method Not Allowed", extraHeaders: "Allow: GET, HEAD\r\n",
                                    body: "only GET and HEAD are served\n"))
        }
        switch path {
        case "/metrics": return .metrics(head: method == "HEAD")
        case "/": return .answer(response(status: "200 OK", body: "Vigil: metrics are at /metrics\n", head: method == "HEAD"))
        default: return .answer(response(status: "404 Not Found", body: "no such path: metrics are at /metrics\n", head: method == "HEAD"))
        }
    }

    /// A complete response with a Content-Length, closing the connection.
    public static func response(status: String, contentType: String = "text/plain; charset=utf-8", extraHeaders: String = "",
                                body: String, head: Bool = false) -> [UInt8] {
        response(status: status, contentType: contentType, extraHeaders: extraHeaders, body: Array(body.utf8), head: head)
    }

    public static func response(status: String, contentType: String = "text/plain; charset=utf-8", extraHeaders: String = "",
                                body: [UInt8], head: Bool = false) -> [UInt8] {
        let header = header(status: status, contentType: contentType, extraHeaders: extraHeaders, length: body.count)
        return head ? header : header + body
    }

    /// The status line and headers of a response whose body is `length` bytes.
    public static func header(status: String, contentType: String, extraHeaders: String = "", length: Int) -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(length)\r\n\(extraHeaders)Connection: close\r\n\r\n".utf8)
    }

    /// The exposition as an answer.
    public static func metrics(_ body: [UInt8], head: Bool) -> [UInt8] {
        response(status: "200 OK", contentType: contentType, body: body, head: head)
    }

    /// Where the header block ends (the index of its blank line), if it has arrived.
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") {
                if bytes[i + 1] == UInt8(ascii: "\n") { return i }
                if bytes[i + 1] == UInt8(ascii: "\r"), i + 2 < bytes.count, bytes[i + 2] == UInt8(ascii: "\n") { return i }
            }
            i += 1
        }
        return nil
    }
}

/// `--metrics`'s value: `ADDR:PORT`, `[IPv6]:PORT`, or `:PORT` / `PORT` for every IPv4 address.
public enum MetricsListenAddress {
    public static func parse(_ text: String) -> (address: IPAddress, port: UInt16)? {
        var host = Substring("0.0.0.0")
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = text[..<colon] }
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil } // a bare IPv6 address needs brackets
        }
        guard let port = UInt16(portText), port != 0, let address = IPAddress(host) else { return nil }
        return (address, port)
    }
}
