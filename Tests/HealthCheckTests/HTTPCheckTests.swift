import Addressing
import HealthCheck
import Testing

/// keepalived 2.2.7's HTTP_GET schedule, step by step on a virtual clock.
@Suite struct HTTPCheckMachineTests {
    static let timing = TCPCheckConfig(delayLoop: 10 * s, connectTimeout: 2 * s, retry: 2, delayBeforeRetry: 3 * s, warmup: 0, bootstrapDelay: 0)

    /// Runs one fetch with `success` and returns the actions and the next deadline.
    static func step(_ m: inout HTTPCheckMachine, _ success: Bool, at now: Int64) -> ([HTTPCheckMachine.Action], Int64?) {
        let actions = m.fetchFinished(success: success, at: now)
        return (actions, m.nextDeadline)
    }

    @Test func oneURLPerRunAndTheFirstResultIsAVerdict() {
        var m = HTTPCheckMachine(config: Self.timing, urlCount: 2)
        #expect(m.start(at: 0, randomWarmup: 0) == [.fetch(url: 0, timeout: 2 * s)])
        #expect(Self.step(&m, true, at: 1 * s) == ([], 11 * s), "the second URL waits a delay_loop")
        #expect(m.timerFired(at: 11 * s) == [.fetch(url: 1, timeout: 2 * s)])
        #expect(Self.step(&m, true, at: 12 * s) == ([.reportUp], 22 * s), "after the last URL: the first verdict")
        #expect(m.timerFired(at: 22 * s) == [.fetch(url: 0, timeout: 2 * s)])
    }

    @Test func atStartOneFailureTakesTheServerDown() {
        var m = HTTPCheckMachine(config: Self.timing, urlCount: 1)
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(Self.step(&m, false, at: 1 * s) == ([.reportDown], 11 * s), "retry_it starts at retry; then max(delay_loop, delay_before_retry)")
        #expect(m.failedURL == 0 && !m.isUp)
    }

    @Test func anUpServerRetriesTheFailingURLThenRecoversAfterAFullPass() {
        var m = HTTPCheckMachine(config: Self.timing, urlCount: 2)
        _ = m.start(at: 0, randomWarmup: 0)
        _ = Self.step(&m, true, at: 0)
        _ = m.timerFired(at: 10 * s)
        _ = Self.step(&m, true, at: 10 * s)                    // up after both
        _ = m.timerFired(at: 20 * s)
        #expect(Self.step(&m, true, at: 20 * s) == ([], 30 * s))
        #expect(m.timerFired(at: 30 * s) == [.fetch(url: 1, timeout: 2 * s)])
        #expect(Self.step(&m, false, at: 30 * s) == ([], 33 * s), "retry 1 of 2 after delay_before_retry")
        #expect(m.timerFired(at: 33 * s) == [.fetch(url: 1, timeout: 2 * s)], "the same URL again")
        #expect(Self.step(&m, false, at: 33 * s) == ([], 36 * s))
        _ = m.timerFired(at: 36 * s)
        #expect(Self.step(&m, false, at: 36 * s) == ([.reportDown], 46 * s), "down after 1 + retry failures")
        _ = m.timerFired(at: 46 * s)
        #expect(Self.step(&m, false, at: 46 * s) == ([], 56 * s), "a down server: no retries, every max(delay_loop, dbr)")
        #expect(m.timerFired(at: 56 * s) == [.fetch(url: 1, timeout: 2 * s)], "only the failed URL is tried")
        #expect(Self.step(&m, true, at: 56 * s) == ([], 66 * s), "it answers: every URL again from the first, not up yet")
        #expect(m.timerFired(at: 66 * s) == [.fetch(url: 0, timeout: 2 * s)])
        #expect(Self.step(&m, true, at: 66 * s) == ([], 76 * s))
        _ = m.timerFired(at: 76 * s)
        #expect(Self.step(&m, true, at: 76 * s) == ([.reportUp], 86 * s))
    }

    @Test func fastRecoveryRunsTheRecoveryPassAtOnce() {
        var m = HTTPCheckMachine(config: Self.timing, urlCount: 1, fastRecovery: true)
        #expect(m.start(at: 0, randomWarmup: 0) == [.fetch(url: 0, timeout: 2 * s)])
        #expect(Self.step(&m, false, at: 1 * s) == ([.reportDown], 11 * s))
        _ = m.timerFired(at: 11 * s)
        #expect(Self.step(&m, true, at: 11 * s) == ([], 11 * s), "down and no failed URL any more: no delay")
        #expect(m.timerFired(at: 11 * s) == [.fetch(url: 0, timeout: 2 * s)])
        #expect(Self.step(&m, true, at: 12 * s) == ([.reportUp], 22 * s))
    }

    @Test func alphaStartsDownAndAFirstFailureSaysNothing() {
        var timing = Self.timing
        timing.alpha = true
        var m = HTTPCheckMachine(config: timing, urlCount: 1)
        #expect(!m.isUp)
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(Self.step(&m, false, at: 1 * s).0 == [])
        _ = m.timerFired(at: 11 * s)
        #expect(Self.step(&m, true, at: 11 * s).0 == [], "the failed URL answers: a full pass first")
        _ = m.timerFired(at: 21 * s)
        #expect(Self.step(&m, true, at: 21 * s).0 == [.reportUp])
    }

    @Test func anAbortedFetchHasNoVerdict() {
        var m = HTTPCheckMachine(config: Self.timing, urlCount: 1)
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(m.fetchAborted(at: 1 * s) == [] && m.nextDeadline == 11 * s && m.isUp && !m.hasRun)
    }
}

@Suite struct HTTPResponseReaderTests {
    static func read(_ chunks: [String]) throws -> (HTTPResponseReader, [UInt8]) {
        var reader = HTTPResponseReader()
        var body: [UInt8] = []
        for chunk in chunks { try reader.consume(Array(chunk.utf8)[...]) { body += $0 } }
        return (reader, body)
    }

    @Test func statusHeaderAndBodyAcrossReads() throws {
        let (r, body) = try Self.read(["HTTP/1.0 200 OK\r\nServer: x\r", "\ncontent-length: 5\r\n\r", "\nhel", "lo and more"])
        #expect(r.statusCode == 200 && r.contentLength == 5 && r.headerComplete)
        #expect(String(decoding: body, as: UTF8.self) == "hello" && r.bodyBytes == 14, "digested up to Content-Length")
    }

    @Test func statusLines() {
        for (line, code) in [("HTTP/1.1 404 Not Found", 404), ("HTTP/1.1 200", 200), ("HTTP/1.1 20 OK", 0), ("HTTP/1.1 2000 OK", 0),
                             ("garbage", 0), ("HTTP/1.1 abc OK", 0), ("", 0)] {
            #expect(HTTPResponseReader.statusCode(inStatusLine: Array(line.utf8)[...]) == code, "\(line)")
        }
    }

    @Test func anOverlongHeaderIsAnErrorNotASilentEmptyPage() {
        var reader = HTTPResponseReader()
        let line = Array("X-Filler: \(String(repeating: "a", count: 1000))\r\n".utf8)
        #expect(throws: HTTPResponseReader.Failure.headerTooLong(HTTPResponseReader.headerLimit)) {
            try reader.consume(Array("HTTP/1.0 200 OK\r\n".utf8)[...]) { _ in }
            for _ in 0..<20 { try reader.consume(line[...]) { _ in } }
        }
    }

    @Test func expectations() throws {
        let (ok, _) = try Self.read(["HTTP/1.0 204 No Content\r\n\r\n"])
        #expect(HTTPExpectation().failure(of: ok, bodyDigest: nil) == nil)
        #expect(HTTPExpectation(statusCodes: [300...399]).failure(of: ok, bodyDigest: nil) == "HTTP status code error to")
        #expect(HTTPExpectation(digest: [UInt8](repeating: 1, count: 16)).failure(of: ok, bodyDigest: [UInt8](repeating: 2, count: 16)) == "MD5 digest error to")
        let (partial, _) = try Self.read(["HTTP/1.0 200 OK\r\n"])
        #expect(HTTPExpectation().failure(of: partial, bodyDigest: nil) == "Read, no data received from")
    }

    @Test func theRequestKeepalivedSends() {
        #expect(HTTPRequest.get(path: "/health", version: .http10, virtualhost: nil, address: IPAddress("10.0.0.5")!, port: 80)
                == "GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.5:80\r\n\r\n")
        #expect(HTTPRequest.get(path: "/", version: .http11, virtualhost: "www.example.com", address: IPAddress("fd00::5")!, port: 8080)
                == "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n")
        #expect(HTTPRequest.get(path: "/", version: .http10Close, virtualhost: nil, address: IPAddress("fd00::5")!, port: 8080)
                == "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [fd00::5]:8080\r\n\r\n")
    }

    /// Random bytes, cut anywhere, never trap the reader.
    @Test func randomInputOnlyThrows() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var reader = HTTPResponseReader()
            let bytes = (0..<Int.random(in: 0...600, using: &generator)).map { _ in
                [UInt8(13), 10, 32, 58, 48, 55].randomElement(using: &generator)! &+ (Bool.random(using: &generator) ? UInt8.random(in: 0...255, using: &generator) : 0)
            }
            var at = 0
            while at < bytes.count {
                let n = Int.random(in: 1...50, using: &generator)
                try? reader.consume(bytes[at..<min(bytes.count, at + n)]) { _ in }
                at += n
            }
        }
    }
}

/// keepalived 2.2.7's MISC_CHECK reading of a script's end.
@Suite struct MiscCheckMachineTests {
    static let timing = TCPCheckConfig(delayLoop: 10 * s, retry: 1, delayBeforeRetry: 2 * s, warmup: 0, bootstrapDelay: 0)

    @Test func exitZeroIsUpAndOneIsDownAfterTheRetries() {
        var m = MiscCheckMachine(config: Self.timing, timeout: 3 * s, dynamic: false)
        #expect(m.start(at: 0, randomWarmup: 0) == [.run(timeout: 3 * s)])
        #expect(m.runFinished(.exited(0), at: 1 * s) == [.reportUp] && m.nextDeadline == 10 * s, "the next run a delay_loop after this one started")
        _ = m.timerFired(at: 10 * s)
        #expect(m.runFinished(.exited(1), at: 11 * s) == [] && m.nextDeadline == 12 * s, "one retry, delay_before_retry after the start")
        _ = m.timerFired(at: 12 * s)
        #expect(m.runFinished(.timedOut, at: 15 * s) == [.reportDown] && m.nextDeadline == 22 * s)
        _ = m.timerFired(at: 22 * s)
        #expect(m.runFinished(.exited(1), at: 22 * s) == [], "a down server: no retry, no report")
        _ = m.timerFired(at: 32 * s)
        #expect(m.runFinished(.exited(0), at: 32 * s) == [.reportUp], "one success brings it back")
    }

    @Test func miscDynamicSetsTheWeightFromTheExitStatus() {
        var m = MiscCheckMachine(config: Self.timing, timeout: 3 * s, dynamic: true)
        _ = m.start(at: 0, randomWarmup: 0)
        #expect(m.runFinished(.exited(7), at: 0) == [.setWeight(5), .reportUp], "weight status - 2")
        _ = m.timerFired(at: 10 * s)
        #expect(m.runFinished(.exited(7), at: 10 * s) == [], "the same status: nothing to change")
        _ = m.timerFired(at: 20 * s)
        #expect(m.runFinished(.exited(0), at: 20 * s) == [.setWeight(nil)], "0: the configured weight")
        _ = m.timerFired(at: 30 * s)
        #expect(m.runFinished(.exited(1), at: 30 * s) == [])
        _ = m.timerFired(at: 32 * s)
        #expect(m.runFinished(.exited(1), at: 32 * s) == [.reportDown, .setWeight(nil)])
        var plain = MiscCheckMachine(config: Self.timing, timeout: 3 * s, dynamic: false)
        _ = plain.start(at: 0, randomWarmup: 0)
        #expect(plain.runFinished(.exited(7), at: 0) == [.reportDown], "without misc_dynamic 7 is a failure, and at load the first is a verdict")
    }
}

/// UDP_CHECK, DNS_CHECK and PING_CHECK as values: what is sent and how answers read.
@Suite struct DatagramCheckTests {
    @Test func dnsQueryAndAnswers() {
        let query = DNSQuery(name: "www.example.com", type: DNSQuery.types["AAAA"]!)
        #expect(query.message(id: 0xBEEF) == [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                             3] + Array("www".utf8) + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0, 0, 28, 0, 1])
        #expect(DNSQuery().message(id: 1).suffix(5) == [0, 0, 1, 0, 1], "keepalived's default: the root, type A")
        let answer: [UInt8] = [0xBE, 0xEF, 0x81, 0x80] + [UInt8](repeating: 0, count: 8)
        #expect(DNSQuery.judge(answer[...], id: 0xBEEF) == .pass)
        #expect(DNSQuery.judge(answer[...], id: 0xBEEE) == .notOurs, "another id")
        #expect(DNSQuery.judge(([0xBE, 0xEF, 0x01, 0x00] + [UInt8](repeating: 0, count: 8))[...], id: 0xBEEF) == .notOurs, "a query, not an answer")
        #expect(DNSQuery.judge(([0xBE, 0xEF, 0x81, 0x83] + [UInt8](repeating: 0, count: 8))[...], id: 0xBEEF) == .fail("read error occurred. (rcode = 3)"))
        #expect(DNSQuery.judge([0xBE][...], id: 0xBEEF) == .notOurs, "too short")
    }

    @Test func udpReplies() {
        let plain = UDPCheckSpec(payload: [1, 2])
        #expect(plain.timeoutPasses && plain.judge([9][...]) == .pass)
        let strict = UDPCheckSpec(requireReply: true, replyData: [0x41, 0x42], replyMask: [0x00, 0xFF], minReplyLength: 2, maxReplyLength: 4)
        #expect(!strict.timeoutPasses)
        #expect(strict.judge([0x41, 0x99][...]) == .pass, "masked bits are not compared")
        #expect(strict.judge([0x40, 0x42][...]) == .fail("reply data mismatch"))
        #expect(strict.judge([0x41][...]) == .fail("reply of 1 bytes outside 2...4"))
        #expect(hexBytes("68 65 6c") == [0x68, 0x65, 0x6C] && hexBytes("6") == nil && hexBytes("zz") == nil && hexBytes("") == nil)
    }

    @Test func icmpEcho() {
        let request = ICMPEcho.request(ipv6: false, id: 0x1234, sequence: 9)
        #expect(request[0] == 8 && InternetChecksum.of(request) == 0, "a valid ICMP checksum")
        var reply = request
        reply[0] = 0
        let ip: [UInt8] = [0x45] + [UInt8](repeating: 0, count: 19)
        #expect(ICMPEcho.judge((ip + reply)[...], ipv6: false, id: 0x1234, sequence: 9) == .pass)
        #expect(ICMPEcho.judge((ip + reply)[...], ipv6: false, id: 0x1234, sequence: 8) == .notOurs)
        #expect(ICMPEcho.judge((ip + request)[...], ipv6: false, id: 0x1234, sequence: 9) == .notOurs, "our own request is not a reply")
        let six = ICMPEcho.request(ipv6: true, id: 7, sequence: 1)
        #expect(six[0] == 128)
        #expect(ICMPEcho.judge(([129, 0, 0, 0, 0, 7, 0, 1])[...], ipv6: true, id: 7, sequence: 1) == .pass)
        #expect(ICMPEcho.judge(([136, 0, 0, 0, 0, 7, 0, 1])[...], ipv6: true, id: 7, sequence: 1) == .notOurs, "a neighbour advertisement")
    }
}

/// SMTP_CHECK's conversation, fed as a server would send it.
@Suite struct SMTPCheckDialogueTests {
    static func feed(_ dialogue: inout SMTPCheckDialogue, _ text: String) -> DialogueStep {
        Array(text.utf8).withUnsafeBytes { dialogue.received($0) }
    }

    @Test func bannerHeloQuit() {
        var d = SMTPCheckDialogue(heloName: "lvs01")
        #expect(Self.feed(&d, "220 mail.example.com ESMTP") == .wait, "no line end yet")
        #expect(Self.feed(&d, "\r\n") == .send(Array("HELO lvs01\r\n".utf8)))
        #expect(Self.feed(&d, "250 mail.example.com\r\n") == .send(Array("QUIT\r\n".utf8)))
        #expect(Self.feed(&d, "221 2.0.0 Bye\r\n") == .pass)
    }

    @Test func multiLineRepliesAndBareCodes() {
        var d = SMTPCheckDialogue()
        #expect(Self.feed(&d, "220-first\r\n220-second\r\n") == .wait, "a reply goes on while its lines say '-'")
        #expect(Self.feed(&d, "220\r\n") == .send(Array("HELO smtpchecker.keepalived.org\r\n".utf8)), "a bare code ends it (keepalived refuses \"220\\r\")")
        #expect(Self.feed(&d, "250-mail\n250-PIPELINING\n250 HELP\n") == .send(Array("QUIT\r\n".utf8)), "LF-only lines are read too")
        #expect(Self.feed(&d, "whatever\n") == .pass, "any answer to QUIT passes, as in keepalived")
    }

    @Test func keepalivedsFailures() {
        var banner = SMTPCheckDialogue()
        #expect(Self.feed(&banner, "554 5.3.2 not now\r\n") == .fail("Bad greeting banner from server"))
        var garbage = SMTPCheckDialogue()
        #expect(Self.feed(&garbage, "SSH-2.0-OpenSSH_9.2\r\n") == .fail("Bad greeting banner from server"))
        var helo = SMTPCheckDialogue()
        _ = Self.feed(&helo, "220 ok\r\n")
        #expect(Self.feed(&helo, "501 5.5.4 Syntax\r\n") == .fail("Bad HELO response from server"))
        var endless = SMTPCheckDialogue()
        #expect(Self.feed(&endless, String(repeating: "2", count: 600)) == .fail("Reply line longer than 512 bytes from server"))
    }
}

/// FILE_CHECK's verdicts and weights, as keepalived's track_file.c computes them.
@Suite struct FileCheckMachineTests {
    static let config = TCPCheckConfig(delayLoop: 1_000_000, connectTimeout: 1_000_000, retry: 0, delayBeforeRetry: 0, warmup: nil, alpha: false)

    @Test func weightZeroFailsOnAnyNonZeroNumber() {
        var m = FileCheckMachine(config: Self.config, weight: 0, reverse: false)
        #expect(m.isUp && m.hasRun && m.fileRead(0).isEmpty)
        #expect(m.fileRead(3) == [.reportDown])
        #expect(m.fileRead(5).isEmpty, "still FAULT")
        #expect(m.fileRead(0) == [.reportUp])
        var reversed = FileCheckMachine(config: Self.config, weight: 0, reverse: true)
        #expect(reversed.fileRead(0) == [.reportDown], "reverse: zero is the failure")
        #expect(reversed.fileRead(1) == [.reportUp])
    }

    @Test func aWeightAddsTheNumberTimesItAndGivesItBackOnFailure() {
        var m = FileCheckMachine(config: Self.config, weight: 10, reverse: false)
        #expect(m.fileRead(3) == [.addWeight(30)])
        #expect(m.fileRead(-2) == [.addWeight(-20)], "a negative part lowers the weight; IPVS clamps the sum at 0")
        #expect(m.fileRead(-2).isEmpty)
        var reverse = FileCheckMachine(config: Self.config, weight: 10, reverse: true)
        #expect(reverse.fileRead(3) == [.addWeight(-30)])
        var huge = FileCheckMachine(config: Self.config, weight: Int(Int32.max), reverse: false)
        #expect(huge.fileRead(4) == [.addWeight(Int(Int32.max))], "clamped, not wrapped")
        #expect(huge.fileRead(-4) == [.reportDown, .addWeight(0)], "at or below -2^31 is keepalived's FAULT")
        #expect(huge.fileRead(1) == [.addWeight(Int(Int32.max)), .reportUp])
    }
}

/// The url's regex verdict after status code and digest, as keepalived's http_handle_response.
@Suite struct HTTPRegexExpectationTests {
    static func response(_ status: Int) throws -> HTTPResponseReader {
        var reader = HTTPResponseReader()
        try reader.consume(Array("HTTP/1.0 \(status) X\r\n\r\nbody".utf8)[...]) { _ in }
        return reader
    }

    @Test func regexMatchAndNoMatch() throws {
        let must = HTTPExpectation(regex: HTTPRegexRule(pattern: "ok"))
        #expect(must.failure(of: try Self.response(200), bodyDigest: nil, regexMatched: true) == nil)
        #expect(must.failure(of: try Self.response(200), bodyDigest: nil, regexMatched: false) == "Regex match failed")
        #expect(must.failure(of: try Self.response(500), bodyDigest: nil, regexMatched: true) == "HTTP status code error to", "the status first")
        let mustNot = HTTPExpectation(regex: HTTPRegexRule(pattern: "maintenance", noMatch: true))
        #expect(mustNot.failure(of: try Self.response(200), bodyDigest: nil, regexMatched: false) == nil)
        #expect(mustNot.failure(of: try Self.response(200), bodyDigest: nil, regexMatched: true) == "Regex match failed")
    }
}
