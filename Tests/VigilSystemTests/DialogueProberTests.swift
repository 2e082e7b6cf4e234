@preconcurrency import Glibc
import Addressing
import HealthCheck
import Testing
import TCPProbe

/// SMTP_CHECK conversations against real servers in a namespace of our own: Python's smtpd
/// (a real SMTP implementation), and scripted servers for the failures keepalived names.
@Suite(.serialized) struct DialogueProberTests {
    static func run(_ prober: DialogueProber<Int>, _ request: DialogueRequest) -> ExchangeOutcome? {
        runExchange(descriptor: prober.descriptor, start: { prober.start(id: 1, request, now: $0) }, ready: prober.ready)
    }

    /// A TCP server on 172.16.10.2:PORT that says `greeting` on every connection, then answers
    /// each line it reads with the next of `answers` (and closes when they run out).
    static func scripted(_ lab: NetnsLab, port: Int, greeting: String?, answers: [String], log: String) throws -> Int32 {
        let program = """
            import socket, threading
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('172.16.10.2', \(port))); s.listen(16)
            def serve(c):
                f = c.makefile('rb')
                \(greeting.map { "c.sendall(\(pythonBytes($0)))" } ?? "pass")
                for answer in [\(answers.map(pythonBytes).joined(separator: ", "))]:
                    line = f.readline()
                    if not line: break
                    print(line, flush=True)
                    c.sendall(answer)
                f.read()
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        return try Shell.background(["ip", "netns", "exec", lab.b, "python3", "-u", "-c", program], output: log)
    }

    static func pythonBytes(_ text: String) -> String {
        // Scalars, not Characters: "\r\n" is one Character.
        "b'" + text.unicodeScalars.map { $0 == "\r" ? "\\r" : $0 == "\n" ? "\\n" : String($0) }.joined() + "'"
    }

    @Test func smtpCheckAgainstRealAndScriptedServers() throws {
        let lab = try NetnsLab("smtp")
        defer { lab.destroy() }
        let logs = (0..<5).map { "/tmp/vigil-smtp-\(getpid())-\($0).log" }
        defer { for log in logs { unlink(log) } }
        let smtpd = try Shell.background(["ip", "netns", "exec", lab.b, "python3", "-u", "-m", "smtpd", "-n", "-c", "DebuggingServer",
                                          "172.16.10.2:2525"], output: logs[0])
        defer { Shell.terminate(smtpd) }
        let multiLine = try Self.scripted(lab, port: 2526, greeting: "220-mail.lab ESMTP\r\n220 ready\r\n",
                                          answers: ["250-mail.lab\r\n250 HELP\r\n", "221 bye\r\n"], log: logs[1])
        defer { Shell.terminate(multiLine) }
        let refusing = try Self.scripted(lab, port: 2527, greeting: "554 no service here\r\n", answers: [], log: logs[2])
        defer { Shell.terminate(refusing) }
        let badHelo = try Self.scripted(lab, port: 2528, greeting: "220 ok\r\n", answers: ["501 who are you\r\n"], log: logs[3])
        defer { Shell.terminate(badHelo) }
        let silent = try Self.scripted(lab, port: 2529, greeting: nil, answers: [], log: logs[4])
        defer { Shell.terminate(silent) }
        usleep(800_000)

        let prober = try #require(try lab.inside(lab.a) { DialogueProber<Int>() })
        func check(_ port: UInt16, helo: String = SMTPCheckDialogue.defaultHelo, timeout: Int64 = 2_000_000) throws -> ExchangeOutcome? {
            let request = DialogueRequest(target: SocketAddress("172.16.10.2", port: port)!, dialogue: SMTPCheckDialogue(heloName: helo), timeout: timeout)
            return try lab.inside(lab.a) { Self.run(prober, request) }
        }
        #expect(try check(2525, helo: "lvs01.lab") == .passed, "Python's smtpd: banner, HELO, QUIT")
        #expect(try check(2526) == .passed, "a multi-line banner and HELO reply (keepalived fails these)")
        #expect(Shell.readFile(logs[1]).contains("HELO smtpchecker.keepalived.org\\r\\n"), "keepalived's default HELO name: \(Shell.readFile(logs[1]))")
        #expect(Shell.readFile(logs[1]).contains("QUIT\\r\\n"))
        #expect(try check(2527) == .failed("Bad greeting banner from server"))
        #expect(try check(2528) == .failed("Bad HELO response from server"))
        #expect(try check(2529, timeout: 300_000) == .failed("Read timeout from server"), "connected, but no banner")
        if case .failed(let why)? = try check(2530) { #expect(why.hasPrefix("Error connecting to server"), "\(why)") }
        else { Issue.record("nothing listens on 2530: the connect is refused") }
        #expect(prober.count == 0)
    }
}
