@preconcurrency import Glibc
import CNetlink // the release (whole-module, static) build resolves SOCK_* only with it, as in the module's other socket files

/// systemd's notification socket ($NOTIFY_SOCKET), spoken directly (no libsystemd): one
/// datagram of `KEY=value` lines per message. A path that starts with '@' is in the abstract
/// namespace. Sends never block: a service manager that does not read must not stop the loop.
public final class SystemdNotifySocket {
    public let path: String
    private let fd: Int32
    private var address = sockaddr_un()
    private let addressLength: socklen_t

    public init(path: String) throws(SystemError) {
        self.path = path
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemError(errno: ENAMETOOLONG, operation: "NOTIFY_SOCKET '\(path)'")
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket(AF_UNIX, SOCK_DGRAM)", nil) }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if bytes[0] == UInt8(ascii: "@") { raw[0] = 0 } // abstract: no terminating NUL, length says where it ends
        }
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == UInt8(ascii: "@") ? 0 : 1))
    }

    deinit { close(fd) }

    public func send(_ message: String) throws(SystemError) {
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), target, addressLength) }
            }
        }
        guard sent == bytes.count else { throw SystemError.last("sendto(NOTIFY_SOCKET \(path))", nil) }
    }

    /// What systemd put in the environment for this process, read once and removed so that
    /// scripts Vigil runs do not inherit it (sd_notify's unset_environment).
    public static func fromEnvironment() -> (socket: String?, watchdogMicroseconds: Int64?) {
        func take(_ name: String) -> String? {
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            unsetenv(name)
            return text
        }
        let socket = take("NOTIFY_SOCKET")
        let usec = take("WATCHDOG_USEC").flatMap { Int64($0) }
        let pid = take("WATCHDOG_PID").flatMap { Int32($0) }
        // WATCHDOG_PID names the process the watchdog is for; another process's is not ours.
        let watchdog = (pid == nil || pid == getpid()) ? usec.flatMap { $0 > 0 ? $0 : nil } : nil
        return (socket.flatMap { $0.isEmpty ? nil : $0 }, watchdog)
    }
}
