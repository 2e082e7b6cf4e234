import Foundation
import Testing

/// `vigil genhash` against Debian's `genhash` on the same URLs, served in a namespace of our own
/// (Python's http.server and `openssl s_server -WWW`).
@Suite(.serialized) struct GenhashTests {
    @Test func theSameDigestAsKeepalivedsGenhash() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run: \(reason)") }
            return
        }
        let ns = try Namespace("genhash", interfaces: [])
        #expect(ns.exec(["ip", "link", "set", "lo", "up"]).status == 0)
        let directory = NSTemporaryDirectory() + "vigil-genhash-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "hello from a real server\n".write(toFile: directory + "/index.html", atomically: true, encoding: .utf8)
        try String(repeating: "a larger page, read in several pieces\n", count: 3000).write(toFile: directory + "/big.html", atomically: true, encoding: .utf8)
        #expect(run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=web", "-days", "1",
                     "-keyout", directory + "/k.pem", "-out", directory + "/c.pem"]).status == 0)
        let script = """
        cd '\(directory)' && python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 & echo $! > '\(directory)/http.pid'
        cd '\(directory)' && openssl s_server -accept 127.0.0.1:8443 -cert c.pem -key k.pem -WWW -quiet >/dev/null 2>&1 & echo $! > '\(directory)/tls.pid'
        """
        #expect(ns.exec(["sh", "-c", script]).status == 0)
        defer {
            for name in ["http.pid", "tls.pid"] {
                if let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGKILL)
                }
            }
        }
        for _ in 0..<50 where !ns.exec(["ss", "-ltn"]).output.contains("127.0.0.1:8443") || !ns.exec(["ss", "-ltn"]).output.contains("127.0.0.1:8080") {
            usleep(100_000)
        }
        for (tls, port, path) in [(false, "8080", "/index.html"), (false, "8080", "/big.html"), (true, "8443", "/index.html")] {
            let flags = tls ? ["-S"] : []
            let theirs = ns.exec(["genhash"] + flags + ["-s", "127.0.0.1", "-p", port, "-u", path])
            let ours = ns.exec([vigilBinary, "genhash"] + flags + ["-s", "127.0.0.1", "-p", port, "-u", path])
            let md5sum = run(["md5sum", directory + path]).output.prefix(32)
            print("genhash \(tls ? "-S " : "")\(path): keepalived \(theirs.output.prefix(32)), vigil \(ours.output.prefix(32)), md5sum \(md5sum)")
            #expect(ours.status == 0 && theirs.output.count >= 32 && ours.output == theirs.output, "\(ours) \(theirs)")
            #expect(ours.output.hasPrefix(md5sum))
        }
        // keepalived's -T spelling, and what genhash leaves unsaid: a 404 and a refused port
        // exit 1 with the reason.
        let keepalivedStyle = ns.exec([vigilBinary, "-T", "-s", "127.0.0.1", "-p", "8080", "-u", "/index.html"])
        #expect(keepalivedStyle.status == 0 && keepalivedStyle.output.count == 33)
        let missing = ns.exec([vigilBinary, "genhash", "-s", "127.0.0.1", "-p", "8080", "-u", "/nothing"])
        #expect(missing.status == 1 && missing.output.contains("HTTP status 404 is outside 200-299"))
        let refused = ns.exec([vigilBinary, "genhash", "-s", "127.0.0.1", "-p", "8081", "-u", "/"])
        #expect(refused.status == 1 && refused.output.contains("Connection refused"), "\(refused)")
        #expect(ns.exec(["genhash", "-s", "127.0.0.1", "-p", "8081", "-u", "/"]).status == 0, "genhash itself exits 0 on a refused connection")
    }
}
