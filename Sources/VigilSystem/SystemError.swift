@preconcurrency import Glibc

/// A failed system call, kept with errno so callers can branch on it (ENODEV means the
/// interface vanished, EPERM means missing CAP_NET_RAW/CAP_NET_ADMIN) and with the interface
/// name so a log line says which link broke.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Int32
    /// The call or option that failed, e.g. `setsockopt(SO_BINDTODEVICE)`.
    public let operation: String
    public let interface: String?

    public init(errno: Int32, operation: String, interface: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.interface = interface
    }

    public var description: String {
        let place = interface.map { " on \($0)" } ?? ""
        return "\(operation)\(place): \(SystemError.describe(errno)) (errno \(errno))"
    }

    /// strerror is not thread-safe; the XSI strerror_r is what Glibc exposes without _GNU_SOURCE.
    public static func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if strerror_r(code, &buffer, buffer.count) != 0 { return "error \(code)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func last(_ operation: String, _ interface: String?) -> SystemError {
        SystemError(errno: Glibc.errno, operation: operation, interface: interface)
    }
}
