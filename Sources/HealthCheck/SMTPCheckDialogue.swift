/// What a conversational check (SMTP_CHECK) wants next after bytes from the server.
public enum DialogueStep: Sendable, Hashable {
    case wait
    case send([UInt8])
    case pass
    /// In keepalived's words, without the server: "Bad greeting banner from server".
    case fail(String)
}

/// A check that converses over one TCP connection: fed what the server sends, it says what to
/// send back and when the verdict is in. Pure, so the conversation is tested with values.
public protocol StreamDialogue: Sendable {
    mutating func received(_ bytes: UnsafeRawBufferPointer) -> DialogueStep
}

/// keepalived's SMTP_CHECK (check_smtp.c): wait for the 220 banner, send `HELO name`, want a
/// 250, send `QUIT`, and any answer to QUIT passes.
///
/// Where it does better than keepalived, on purpose: keepalived looks only at the first line
/// it reads and wants exactly "NNN" followed by a space or the line's end, so a multi-line
/// greeting ("220-mail.example.com ESMTP" then "220 ready", which RFC 5321 allows and several
/// MTAs send) and a bare "220\r" both read as a bad banner and mark a healthy server down.
/// Here a reply is read to its last line (the one with a space, or nothing, after the code)
/// and a trailing CR is allowed. A line longer than RFC 5321's 512 octets fails the check
/// (keepalived silently wraps its 512-byte buffer).
public struct SMTPCheckDialogue: StreamDialogue {
    public static let defaultHelo = "smtpchecker.keepalived.org"
    static let maximumLine = 512

    enum Stage: Sendable { case banner, helo, quit }

    public let heloName: String
    private var stage = Stage.banner
    private var line: [UInt8] = []

    public init(heloName: String = SMTPCheckDialogue.defaultHelo) { self.heloName = heloName }

    public mutating func received(_ bytes: UnsafeRawBufferPointer) -> DialogueStep {
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                if line.count > Self.maximumLine { return .fail("Reply line longer than \(Self.maximumLine) bytes from server") }
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            defer { line.removeAll(keepingCapacity: true) }
            // Whatever answers QUIT ends a good conversation, as in keepalived.
            if stage == .quit { return .pass }
            guard let reply = Self.reply(line) else { return .fail(stage == .banner ? "Bad greeting banner from server" : "Bad HELO response from server") }
            guard reply.isLast else { continue }
            // What else the server sent with this reply is not an answer to what comes next.
            switch stage {
            case .banner:
                guard reply.code == 220 else { return .fail("Bad greeting banner from server") }
                stage = .helo
                return .send(Array("HELO \(heloName)\r\n".utf8))
            case .helo:
                guard reply.code == 250 else { return .fail("Bad HELO response from server") }
                stage = .quit
                return .send(Array("QUIT\r\n".utf8))
            case .quit:
                return .pass
            }
        }
        return .wait
    }

    /// A reply line: its three-digit code and whether it ends the reply ("250-" goes on).
    static func reply(_ line: [UInt8]) -> (code: Int, isLast: Bool)? {
        guard line.count >= 3, line[0..<3].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let code = line[0..<3].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        if line.count == 3 { return (code, true) }
        switch line[3] {
        case UInt8(ascii: " "): return (code, true)
        case UInt8(ascii: "-"): return (code, false)
        default: return nil
        }
    }
}
