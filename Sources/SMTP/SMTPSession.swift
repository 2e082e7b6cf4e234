/// keepalived's state-change mail (smtp.c), as a pure client: one message per connection,
/// HELO (not EHLO), one RCPT per address, keepalived's headers. The daemon feeds it what the
/// server sends and writes what it returns; a reply with an unexpected code ends the session
/// with QUIT, as keepalived does.
public struct SMTPMessage: Sendable, Equatable {
    public var helo: String
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String
    /// RFC 822 date, "Tue, 01 Dec 2026 12:00:00 +0000".
    public var date: String

    public init(helo: String, from: String, to: [String], subject: String, body: String, date: String) {
        self.helo = helo
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
    }

    /// The DATA part: keepalived's headers (with Vigil as the mailer), the body, the end mark.
    public var data: String {
        "Date: \(date)\r\nFrom: \(from)\r\nSubject: \(subject)\r\nX-Mailer: Vigil\r\nTo: \(to.joined(separator: ", "))\r\n\r\n\(body)\r\n\r\n.\r\n"
    }
}

public struct SMTPSession: Sendable {
    public enum Outcome: Sendable, Equatable {
        case sent
        /// What went wrong, for the log: "RCPT TO answered 550 ...".
        case failed(String)
    }

    public enum Action: Sendable, Equatable {
        case send([UInt8])
        /// The session is over: close the connection.
        case finish(Outcome)
    }

    enum Stage: Equatable { case banner, helo, mail, rcpt(Int), data, body, quit, done }

    public let message: SMTPMessage
    private var stage = Stage.banner
    private var pending: [UInt8] = []
    /// Where the next CRLF search in `pending` resumes, so that a server sending a reply a byte
    /// at a time (or continuation lines without end) costs linear time, not quadratic.
    private var lineStart = 0
    private var searchedTo = 0
    private var failure: String?
    /// A reply longer than this without its end is a broken server.
    static let maximumReply = 4096

    public init(message: SMTPMessage) { self.message = message }

    public var isDone: Bool { stage == .done }

    /// Bytes from the server; the actions to carry out, in order.
    public mutating func received(_ bytes: [UInt8]) -> [Action] {
        pending += bytes
        var actions: [Action] = []
        while stage != .done, let reply = nextReply() {
            actions += handle(reply)
        }
        if stage != .done && pending.count > Self.maximumReply {
            stage = .done
            actions.append(.finish(.failed("a reply of more than \(Self.maximumReply) bytes")))
        }
        return actions
    }

    /// The server closed the connection.
    public mutating func closed() -> [Action] {
        guard stage != .done else { return [] }
        let during = name(of: stage)
        let sentAll = stage == .quit
        stage = .done
        return [.finish(sentAll && failure == nil ? .sent : .failed(failure ?? "the server closed the connection during \(during)"))]
    }

    /// One complete reply: its code, with continuation lines ("250-...") consumed.
    private mutating func nextReply() -> (code: Int, text: String)? {
        while let end = indexOfCRLF(from: max(lineStart, searchedTo)) {
            let line = Array(pending[lineStart..<end])
            lineStart = end + 2
            guard line.count >= 3, let code = Int(String(decoding: line.prefix(3), as: UTF8.self)) else {
                consumeReply()
                return (0, String(decoding: line, as: UTF8.self))
            }
            if line.count > 3 && line[3] == UInt8(ascii: "-") { continue }
            consumeReply()
            return (code, String(decoding: line, as: UTF8.self))
        }
        searchedTo = max(lineStart, pending.count - 1)
        return nil
    }

    private mutating func consumeReply() {
        pending.removeFirst(lineStart)
        lineStart = 0
        searchedTo = 0
    }

    private func indexOfCRLF(from start: Int) -> Int? {
        var i = start
        while i + 1 < pending.count {
            if pending[i] == 13 && pending[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    private func name(of stage: Stage) -> String {
        switch stage {
        case .banner: "the greeting"
        case .helo: "HELO"
        case .mail: "MAIL FROM"
        case .rcpt: "RCPT TO"
        case .data: "DATA"
        case .body: "the message"
        case .quit: "QUIT"
        case .done: "the end"
        }
    }

    private func expected(_ stage: Stage) -> Int {
        switch stage {
        case .banner: 220
        case .helo, .mail, .rcpt, .body: 250
        case .data: 354
        case .quit: 221
        case .done: 0
        }
    }

    private mutating func handle(_ reply: (code: Int, text: String)) -> [Action] {
        if stage == .quit {
            stage = .done
            return [.finish(failure.map(Outcome.failed) ?? .sent)]
        }
        guard reply.code == expected(stage) else {
            failure = "\(name(of: stage)) answered '\(reply.text)'"
            stage = .quit
            return [.send(Array("QUIT\r\n".utf8))]
        }
        switch stage {
        case .banner:
            stage = .helo
            return [.send(Array("HELO \(message.helo)\r\n".utf8))]
        case .helo:
            stage = .mail
            return [.send(Array("MAIL FROM:<\(message.from)>\r\n".utf8))]
        case .mail, .rcpt:
            let next = stage == .mail ? 0 : { if case .rcpt(let i) = stage { i + 1 } else { 0 } }()
            guard next < message.to.count else {
                stage = .data
                return [.send(Array("DATA\r\n".utf8))]
            }
            stage = .rcpt(next)
            return [.send(Array("RCPT TO:<\(message.to[next])>\r\n".utf8))]
        case .data:
            stage = .body
            return [.send(Array(message.data.utf8))]
        case .body:
            stage = .quit
            return [.send(Array("QUIT\r\n".utf8))]
        case .quit, .done:
            return []
        }
    }
}
