@preconcurrency import Glibc
import Addressing
import HealthCheck
import Testing
import TCPProbe
import VigilSystem
import BodyRegex

/// HTTP_GET and SSL_GET fetches against real servers in a namespace of our own: Python's
/// http.server, and `openssl s_server` with a generated certificate that requires a client
/// certificate.
@Suite(.serialized) struct HTTPProberTests {
    /// Runs the prober until the fetch is over (at most 10 s).
    static func fetch(_ prober: HTTPProber<Int>, _ request: HTTPFetchRequest) -> HTTPFetchOutcome? {
        if let now = prober.start(id: 1, request, now: ProbeClock.now()) { return now.outcome }
        let until = ProbeClock.now() + 10_000_000
        while ProbeClock.now() < until {
            var entry = pollfd(fd: prober.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 50)
            if let result = prober.ready(now: ProbeClock.now()).first { return result.outcome }
        }
        return nil
    }

    static func request(_ path: String, port: UInt16, tls: TLSClientContext? = nil, timeout: Int64 = 2_000_000) -> HTTPFetchRequest {
        let text = HTTPRequest.get(path: path, version: .http10, virtualhost: nil, address: IPAddress("172.16.10.2")!, port: port)
        return HTTPFetchRequest(target: SocketAddress("172.16.10.2", port: port)!, request: Array(text.utf8),
                                tls: tls.map { context in { fd in context.session(fd: fd, serverName: "web.example") } },
                                digest: { MD5Digest() }, timeout: timeout)
    }

    /// Python's http.server in the lab's second namespace, serving `page` as /index.html from
    /// `directory` (made here, removed by `stop`).
    struct WebServer {
        let process: pid_t
        let directory: String
        func stop() {
            Shell.terminate(process)
            _ = try? Shell.run(["rm", "-rf", directory, directory + ".log"])
        }
    }

    static func webServer(in lab: NetnsLab, directory: String, page: String) throws -> WebServer {
        try Shell.run(["mkdir", "-p", directory])
        try Shell.run(["sh", "-c", "printf '\(page)\\n' > \(directory)/index.html"])
        let process = try Shell.background(["ip", "netns", "exec", lab.b, "python3", "-m", "http.server", "8080", "--bind", "172.16.10.2",
                                            "--directory", directory], output: directory + ".log")
        waitForListener(lab.b, port: 8080)
        return WebServer(process: process, directory: directory)
    }

    /// A server that accepts every connection and never answers.
    static func silentServer(in lab: NetnsLab, port: UInt16) throws -> pid_t {
        let process = try Shell.background(["ip", "netns", "exec", lab.b, "python3", "-c",
                                            "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('172.16.10.2',\(port)));s.listen(64)\nc=[]\nwhile True: c.append(s.accept())"],
                                           output: "/dev/null")
        waitForListener(lab.b, port: port)
        return process
    }

    static func waitForListener(_ ns: String, port: UInt16) {
        for _ in 0..<100 {
            if (try? Shell.run(["ip", "netns", "exec", ns, "ss", "-ltn", "sport", "= :\(port)"]).output.contains("LISTEN")) == true { return }
            usleep(50_000)
        }
    }

    @Test func plainHTTPStatusAndDigest() throws {
        let lab = try NetnsLab("http")
        defer { lab.destroy() }
        let directory = "/tmp/vigil-http-\(getpid())"
        let server = try Self.webServer(in: lab, directory: directory, page: "hello from web02")
        defer { server.stop() }
        let prober = try #require(try lab.inside(lab.a) { HTTPProber<Int>() })
        let outcome = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/index.html", port: 8080)) }
        guard case .response(let response, let digest, _)? = outcome else { Issue.record("no response: \(String(describing: outcome))"); return }
        #expect(response.statusCode == 200 && response.contentLength == 17 && response.digestedBytes == 17)
        #expect(digest.map(MD5Digest.hex) == (try Shell.md5sum("\(directory)/index.html")), "the digest md5sum gives")
        #expect(HTTPExpectation().failure(of: response, bodyDigest: digest) == nil)
        let missing = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/nothing", port: 8080)) }
        guard case .response(let notFound, let d404, _)? = missing else { Issue.record("no response: \(String(describing: missing))"); return }
        #expect(notFound.statusCode == 404)
        #expect(HTTPExpectation().failure(of: notFound, bodyDigest: d404) == "HTTP status code error to")
        #expect(HTTPExpectation(statusCodes: [404...404]).failure(of: notFound, bodyDigest: d404) == nil, "status_code 404 makes it a pass")
        // The url's regex, matched by PCRE2 as the page streams in (a page of 40 KiB: several reads).
        try Shell.run(["sh", "-c", "{ head -c 40000 /dev/zero | tr '\\0' x; printf 'status: OK\\n'; } > \(directory)/big.html"])
        func regexFetch(_ pattern: String, options: UInt32 = 0) throws -> Bool? {
            var request = Self.request("/big.html", port: 8080)
            let regex = try CompiledRegex(pattern: pattern, options: options)
            request.matcher = { StreamingRegexMatch(regex) }
            let outcome = try lab.inside(lab.a) { Self.fetch(prober, request) }
            guard case .response(_, _, let matched)? = outcome else { return nil }
            return matched
        }
        #expect(try regexFetch("status: (OK|DEGRADED)$", options: RegexOptions.bits["multiline"]!) == true)
        #expect(try regexFetch("status: ok") == false)
        #expect(try regexFetch("status: ok", options: RegexOptions.bits["caseless"]!) == true)
        let refused = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/", port: 8081)) }
        guard case .failed(let reason, _)? = refused else { Issue.record("\(String(describing: refused))"); return }
        #expect(reason == "Error connecting")
        #expect(prober.count == 0, "nothing left in flight")
    }

    /// A server that accepts and never answers: the read phase times out in keepalived's words.
    @Test func aSilentServerTimesOutInTheReadPhase() throws {
        let lab = try NetnsLab("httpsilent")
        defer { lab.destroy() }
        let silent = try Self.silentServer(in: lab, port: 8080)
        defer { Shell.terminate(silent) }
        let prober = try #require(try lab.inside(lab.a) { HTTPProber<Int>() })
        let began = ProbeClock.now()
        let outcome = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/", port: 8080, timeout: 500_000)) }
        let took = ProbeClock.now() - began
        guard case .failed(let reason, _)? = outcome else { Issue.record("\(String(describing: outcome))"); return }
        #expect(reason == "Timeout WEB read")
        #expect(took >= 500_000 && took < 1_500_000, "one phase's timeout: \(took) µs")
    }

    @Test func tlsWithAClientCertificateTheServerRequires() throws {
        let lab = try NetnsLab("https")
        defer { lab.destroy() }
        let directory = "/tmp/vigil-https-\(getpid())"
        try Shell.run(["mkdir", "-p", directory])
        defer { _ = try? Shell.run(["rm", "-rf", directory, directory + ".log"]) }
        for name in ["server", "client"] {
            try Shell.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-days", "1",
                           "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt"])
        }
        try Shell.run(["sh", "-c", "printf 'secure page\\n' > \(directory)/index.html"])
        let server = try Shell.background(["sh", "-c", "cd \(directory) && exec ip netns exec \(lab.b) openssl s_server -accept 172.16.10.2:8443 -cert server.crt -key server.key -Verify 1 -CAfile client.crt -WWW -quiet"],
                                          output: directory + ".log")
        defer { Shell.terminate(server) }
        Self.waitForListener(lab.b, port: 8443)
        let withCertificate = try TLSClientContext(certificate: "\(directory)/client.crt", key: "\(directory)/client.key")
        let prober = try #require(try lab.inside(lab.a) { HTTPProber<Int>() })
        let outcome = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/index.html", port: 8443, tls: withCertificate)) }
        guard case .response(let response, let digest, _)? = outcome else { Issue.record("no response: \(String(describing: outcome)) \(Shell.readFile(directory + ".log"))"); return }
        #expect(response.statusCode == 200)
        #expect(digest.map(MD5Digest.hex) == (try Shell.md5sum("\(directory)/index.html")))
        let anonymous = try TLSClientContext()
        let refused = try lab.inside(lab.a) { Self.fetch(prober, Self.request("/index.html", port: 8443, tls: anonymous)) }
        switch refused {
        case .failed(let reason, _)?: #expect(reason == "SSL handshake/communication error connecting to" || reason == "Read error with")
        case .response(let r, _, _)?: #expect(!r.headerComplete, "no page without a client certificate")
        default: Issue.record("\(String(describing: refused))")
        }
    }
}

extension HTTPProberTests {
    /// SSL_GET resumes the previous check's session with the same server (a full handshake
    /// first); a server that no longer knows the session gets a full handshake again.
    @Test func theNextCheckResumesTheSessionOfTheLast() throws {
        let lab = try NetnsLab("tlsresume")
        defer { lab.destroy() }
        let directory = "/tmp/vigil-tlsresume-\(getpid())"
        try Shell.run(["mkdir", "-p", directory])
        defer { _ = try? Shell.run(["rm", "-rf", directory, directory + ".log"]) }
        try Shell.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=server",
                       "-days", "1", "-keyout", "\(directory)/server.key", "-out", "\(directory)/server.crt"])
        try Shell.run(["sh", "-c", "printf 'page\\n' > \(directory)/index.html"])
        func serve() throws -> Int32 {
            let server = try Shell.background(["sh", "-c", "cd \(directory) && exec ip netns exec \(lab.b) openssl s_server -accept 172.16.10.2:8443 -cert server.crt -key server.key -WWW -quiet"],
                                              output: directory + ".log")
            Self.waitForListener(lab.b, port: 8443)
            return server
        }
        var server = try serve()
        let context = try TLSClientContext()
        var sessions: [any TLSSession] = []
        var request = Self.request("/index.html", port: 8443)
        request.tls = { fd in
            let made = context.session(fd: fd, serverName: "web.example")
            if let made { sessions.append(made) }
            return made
        }
        let prober = try #require(try lab.inside(lab.a) { HTTPProber<Int>() })
        for _ in 0..<3 {
            let outcome = try lab.inside(lab.a) { Self.fetch(prober, request) }
            guard case .response(let response, _, _)? = outcome else { Issue.record("no response: \(String(describing: outcome))"); return }
            #expect(response.statusCode == 200)
        }
        #expect(sessions.map(\.resumed) == [false, true, true], "a full handshake, then resumed ones")
        // A restarted server has new ticket keys: a full handshake, and resumption again after it.
        Shell.terminate(server)
        server = try serve()
        defer { Shell.terminate(server) }
        for _ in 0..<2 {
            let outcome = try lab.inside(lab.a) { Self.fetch(prober, request) }
            guard case .response(let response, _, _)? = outcome else { Issue.record("no response after the restart: \(String(describing: outcome))"); return }
            #expect(response.statusCode == 200)
        }
        #expect(sessions.map(\.resumed) == [false, true, true, false, true], "\(sessions.map(\.resumed))")
    }
}

extension Shell {
    /// coreutils' md5sum, the independent reader of a digest.
    static func md5sum(_ path: String) throws -> String {
        String(try run(["md5sum", path]).output.prefix(32))
    }
}

extension StreamingRegexMatch: BodyMatcher {}
