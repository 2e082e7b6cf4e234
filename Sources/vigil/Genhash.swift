@preconcurrency import Glibc
import Addressing
import ArgumentParser
import HealthCheck
import TCPProbe
import VigilConfig
import VigilSystem

/// keepalived's genhash (`vigil genhash`, or `vigil -T` as `keepalived -T`): the MD5 of a URL's
/// body for an HTTP_GET/SSL_GET `digest`, fetched exactly as the checker fetches it. Unlike
/// genhash, a failed fetch or a status outside 200–299 says so and exits 1 (genhash prints
/// "Connection failed" and exits 0, which scripts cannot tell from a digest).
struct Genhash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil genhash",
        abstract: "Print the MD5 digest of a URL, as HTTP_GET/SSL_GET compute it (keepalived's genhash).")

    @Flag(name: [.customShort("S"), .customLong("use-ssl")], help: "Use SSL connection to remote server.")
    var useSSL = false

    @Flag(name: [.customShort("I"), .customLong("use-sni")], help: "Use SNI during SSL handshake (uses virtualhost setting; see -V).")
    var useSNI = false

    @Option(name: [.customShort("s"), .customLong("server")], help: "Use the specified remote server address.")
    var server: String

    @Option(name: [.customShort("p"), .customLong("port")], help: "Use the specified remote server port.")
    var port: UInt16

    @Option(name: [.customShort("u"), .customLong("url")], help: "Use the specified remote server url.")
    var url: String

    @Option(name: [.customShort("V"), .customLong("use-virtualhost")], help: "Use the specified virtualhost in GET query.")
    var virtualhost: String?

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Use verbose mode output.")
    var verbose = false

    @Option(name: [.customShort("m"), .customLong("fwmark")], help: "Use the specified FW mark.")
    var fwmark: UInt32 = 0

    @Option(name: [.customShort("P"), .customLong("protocol")], help: "Use the specified HTTP protocol - '1.0', '1.0c', '1.1'. 1.0c means 1.0 with 'Connection: close'")
    var httpProtocol = "1.0"

    @Option(name: [.customShort("t"), .customLong("timeout")], help: "Timeout in seconds")
    var timeout: Double = 5

    func run() throws {
        guard let address = IPAddress(server) ?? LocalHost().resolveHost(server) else {
            throw ValidationError("cannot resolve server address \(server)")
        }
        let version: HTTPProtocolVersion
        switch httpProtocol.lowercased() {
        case "1.0": version = .http10
        case "1.0c": version = .http10Close
        case "1.1": version = .http11
        default: throw ValidationError("invalid protocol \(httpProtocol): expected 1.0, 1.0c or 1.1")
        }
        guard timeout > 0 else { throw ValidationError("invalid timeout \(timeout)") }
        var tls: ((Int32) -> (any TLSSession)?)?
        if useSSL {
            let context = try TLSClientContext()
            let name = useSNI ? virtualhost : nil
            tls = { fd in context.session(fd: fd, serverName: name) }
        }
        let text = HTTPRequest.get(path: url, version: version, virtualhost: virtualhost, address: address, port: port)
        var request = HTTPFetchRequest(target: SocketAddress(address, port: port), options: ProbeOptions(fwmark: fwmark),
                                       request: Array(text.utf8), tls: tls, digest: { MD5Digest() },
                                       timeout: Int64(timeout * 1_000_000))
        request.keepsBody = verbose
        guard let prober = HTTPProber<Int>() else { throw ValidationError("no epoll descriptor") }
        let began = ProbeClock.now()
        var outcome = prober.start(id: 0, request, now: began)?.outcome
        while outcome == nil {
            var entry = pollfd(fd: prober.descriptor, events: Int16(POLLIN), revents: 0)
            let wait = prober.nextDeadline.map { max(0, ($0 - ProbeClock.now() + 999) / 1000) } ?? 100
            _ = poll(&entry, 1, Int32(clamping: wait))
            outcome = prober.ready(now: ProbeClock.now()).first?.outcome
        }
        switch outcome! {
        case .response(let response, let digest, _):
            guard response.headerComplete, let digest else {
                printError("no data received from remote webserver")
                throw ExitCode(1)
            }
            if verbose {
                dump(response, digest: digest)
                print("\nGlobal response time for [\(url)] = \(ProbeClock.now() - began) usecs")
            } else {
                print(MD5Digest.hex(digest))
            }
            guard (200...299).contains(response.statusCode) else {
                printError("HTTP status \(response.statusCode) is outside 200-299: a url block needs 'status_code \(response.statusCode)' for this digest")
                throw ExitCode(1)
            }
        case .failed(let reason, let detail):
            printError(reason + (detail.map { ": \($0)" } ?? "") + " \(address):\(port)")
            throw ExitCode(1)
        case .notRun(let e):
            printError("cannot connect to \(address):\(port): \(String(cString: strerror(e)))")
            throw ExitCode(1)
        }
    }

    /// genhash -v's header, body and hash dumps.
    private func dump(_ response: HTTPResponseReader, digest: [UInt8]) {
        print("-----------------------[    HTTP Header Buffer    ]-----------------------")
        print(hexDump(response.header + [13, 10, 13, 10]), terminator: "")
        print("-----------------------[ HTTP Header Ascii Buffer ]-----------------------")
        print(String(decoding: response.header, as: UTF8.self) + "\r\n\r\n")
        print("-----------------------[        HTML Buffer        ]-----------------------")
        print(hexDump(response.body), terminator: "")
        print("\n-----------------------[    HTML hash resulting    ]-----------------------")
        print(hexDump(digest), terminator: "")
        print("-----------------------[ HTML hash final resulting ]-----------------------")
        print(MD5Digest.hex(digest))
    }
}

/// keepalived's dump_buffer: offset, 8 bytes, " - ", 8 bytes, then the printable characters.
func hexDump(_ bytes: [UInt8]) -> String {
    var out = ""
    var offset = 0
    while offset < bytes.count {
        let line = bytes[offset..<min(offset + 16, bytes.count)]
        var hex = ""
        for (i, byte) in line.enumerated() {
            if i == 8 { hex += "- " }
            let digits = String(byte, radix: 16)
            hex += (digits.count == 1 ? "0" : "") + digits + " "
        }
        let width = 16 * 3 + 2
        hex += String(repeating: " ", count: max(0, width - hex.count))
        let text = String(line.map { $0 >= 32 && $0 < 127 ? Character(UnicodeScalar($0)) : "." })
            + String(repeating: " ", count: 16 - line.count)
        let number = String(offset)
        out += String(repeating: "0", count: max(0, 4 - number.count)) + number + "  " + hex + "  " + text + "\n"
        offset += 16
    }
    return out
}
