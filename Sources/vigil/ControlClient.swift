@preconcurrency import Glibc
import VigilStatus

/// `vigil status` and `vigil reload`: one request to the daemon's control socket, its answer
/// printed. Exit status: 0 ok, 1 the daemon refused (a reload of a broken file), 2 the answer
/// was an error, 3 no daemon answers on the socket.
enum ControlClient {
    static func ask(_ request: String, socket path: String, timeoutSeconds: Int = 60) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return fail("socket: \(String(cString: strerror(errno)))", 3) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return fail("control socket path too long: \(path)", 3) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)) }
        }
        guard connected == 0 else {
            let why = errno == ENOENT || errno == ECONNREFUSED ? "Vigil is not running (nothing answers on \(path))" : "cannot reach Vigil on \(path): \(String(cString: strerror(errno)))"
            return fail(why, 3)
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((request + "\n").utf8)
        guard line.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == line.count else {
            return fail("cannot send the request to \(path): \(String(cString: strerror(errno)))", 3)
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { answer += buffer.prefix(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return fail("no complete answer from Vigil within \(timeoutSeconds) s", 3) }
            break
        }
        guard let (outcome, body) = ControlProtocol.parseAnswer(answer) else { return fail("the daemon's answer is not one: \(answer.count) bytes", 2) }
        switch outcome {
        case .ok:
            print(body, terminator: "")
            return 0
        case .refused:
            fputs(body, stderr)
            return 1
        case .error:
            fputs(body, stderr)
            return 2
        }
    }

    private static func fail(_ message: String, _ status: Int32) -> Int32 {
        fputs("vigil: \(message)\n", stderr)
        return status
    }
}
