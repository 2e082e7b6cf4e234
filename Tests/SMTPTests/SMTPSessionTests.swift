import Testing
@testable import SMTP

@Suite struct SMTPSessionTests {
    let message = SMTPMessage(helo: "lvs01", from: "root@lvs01", to: ["ops@example.com", "noc@example.com"],
                              subject: "[lvs01] VRRP Instance VI_1 - Entering MASTER state",
                              body: "=> VRRP Instance is now owning VRRP VIPs <=", date: "Tue, 01 Dec 2026 12:00:00 +0000")

    func sent(_ actions: [SMTPSession.Action]) -> [String] {
        actions.compactMap { if case .send(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }
    }

    @Test func keepalivedsDialogue() {
        var session = SMTPSession(message: message)
        #expect(sent(session.received(Array("220-smtp.example.com ESMTP\r\n220 ready\r\n".utf8))) == ["HELO lvs01\r\n"])
        #expect(sent(session.received(Array("250 hello\r\n".utf8))) == ["MAIL FROM:<root@lvs01>\r\n"])
        #expect(sent(session.received(Array("250 ok\r\n".utf8))) == ["RCPT TO:<ops@example.com>\r\n"])
        #expect(sent(session.received(Array("250 ok\r\n".utf8))) == ["RCPT TO:<noc@example.com>\r\n"])
        #expect(sent(session.received(Array("250 ok\r\n".utf8))) == ["DATA\r\n"])
        let data = sent(session.received(Array("354 go ahead\r\n".utf8)))
        #expect(data == ["Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nFrom: root@lvs01\r\nSubject: [lvs01] VRRP Instance VI_1 - Entering MASTER state\r\nX-Mailer: Vigil\r\nTo: ops@example.com, noc@example.com\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\n"])
        #expect(sent(session.received(Array("250 queued\r\n".utf8))) == ["QUIT\r\n"])
        #expect(session.received(Array("221 bye\r\n".utf8)) == [.finish(.sent)])
        #expect(session.isDone)
    }

    @Test func aRefusalEndsWithQuitAndSaysWhere() {
        var session = SMTPSession(message: message)
        _ = session.received(Array("220 ready\r\n250 hello\r\n".utf8))
        #expect(sent(session.received(Array("550 no relay\r\n".utf8))) == ["QUIT\r\n"])
        #expect(session.received(Array("221 bye\r\n".utf8)) == [.finish(.failed("MAIL FROM answered '550 no relay'"))])
    }

    @Test func repliesArriveInPiecesAndBrokenServersEnd() {
        var session = SMTPSession(message: message)
        #expect(session.received(Array("22".utf8)).isEmpty)
        #expect(sent(session.received(Array("0 ready\r".utf8))).isEmpty)
        #expect(sent(session.received(Array("\n".utf8))) == ["HELO lvs01\r\n"])
        #expect(session.closed() == [.finish(.failed("the server closed the connection during HELO"))])
        var flood = SMTPSession(message: message)
        #expect(flood.received([UInt8](repeating: 0x41, count: 5000)) == [.finish(.failed("a reply of more than 4096 bytes"))])
        var garbage = SMTPSession(message: message)
        #expect(sent(garbage.received(Array("hello there\r\n".utf8))) == ["QUIT\r\n"])
    }

    /// A reply that comes a byte at a time, continuation lines included, reads as one reply; the
    /// session resumes its search where it stopped (the fuzzer found a 4 KiB reply cost 4,096
    /// rescans of the whole buffer).
    @Test func aReplyByteByByteWithContinuationLines() {
        var session = SMTPSession(message: message)
        var actions: [SMTPSession.Action] = []
        for byte in "220-smtp.example.com ESMTP\r\n220-more\r\n220 ready\r\n250-hello\r\n250 ok\r\n".utf8 {
            actions += session.received([byte])
        }
        #expect(sent(actions) == ["HELO lvs01\r\n", "MAIL FROM:<root@lvs01>\r\n"])
        var unended = SMTPSession(message: message)
        for _ in 0..<4096 { #expect(unended.received([0x41]).isEmpty) }
        #expect(unended.received([0x41]) == [.finish(.failed("a reply of more than 4096 bytes"))])
    }
}
