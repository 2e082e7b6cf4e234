@preconcurrency import Glibc
import Addressing
import TCPProbe
import CNetlink // the release (whole-module, static) build resolves SOCK_* only with it, as in the module's other socket files

/// What a non-blocking read gave.
public enum StreamReadResult: Sendable, Equatable {
    case data([UInt8])
    /// Nothing to read now.
    case wouldBlock
    /// The peer closed, or the connection failed.
    case closed
}

/// One accepted stream connection, non-blocking.
public final class StreamSocket {
    public let fd: Int32
    private var open = true

    init(fd: Int32) { self.fd = fd }
    deinit { close() }

    public func read(max: Int) -> StreamReadResult {
        guard open else { return .closed }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { return .data(Array(buffer.prefix(n))) }
        if n == 0 { return .closed }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .wouldBlock : .closed
    }

    /// How many bytes went out (0 when the socket's buffer is full); nil when it failed.
    public func write(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard open else { return nil }
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : nil
    }

    /// Input the client sent that was never read (a request refused before it was read, the
    /// rest of an oversized one) is drained first, up to 64 KiB: closing over unread input makes
    /// the kernel reset the connection, and the client would lose the answer already sent.
    public func close() {
        guard open else { return }
        open = false
        shutdown(fd, Int32(SHUT_WR))
        var scratch = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        while drained < 65_536 {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0 else { break }
            drained += n
        }
        Glibc.close(fd)
    }
}

extension StreamSocket {
    /// A non-blocking TCP connection on its way to `address:port` (an SMTP server): its
    /// readiness tells how the connect ended, a failed one reads as closed.
    public static func connect(to address: IPAddress, port: UInt16) throws(SystemError) -> StreamSocket {
        let fd = socket(address.isV6 ? AF_INET6 : AF_INET,
                        Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket(TCP)", nil) }
        let rc = SocketAddress(address, port: port).withSockAddr { Glibc.connect(fd, $0, $1) }
        guard rc == 0 || errno == EINPROGRESS else {
            let error = SystemError.last("connect(\(address):\(port))", nil)
            Glibc.close(fd)
            throw error
        }
        return StreamSocket(fd: fd)
    }
}

/// A listening socket whose `accept` never blocks.
public final class StreamListenerSocket {
    public let fd: Int32
    /// The Unix socket's path, removed when the listener closes.
    let path: String?
    private var open = true

    init(fd: Int32, path: String?) {
        self.fd = fd
        self.path = path
    }
    deinit { close() }

    public func accept() -> StreamSocket? {
        guard open else { return nil }
        // accept4 is not in Swift's Glibc module; the flags follow at once, in one thread.
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { return nil }
        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        return StreamSocket(fd: client)
    }

    public func close() {
        guard open else { return }
        open = false
        Glibc.close(fd)
        if let path { unlink(path) }
    }

    /// A Unix stream socket at `path`, mode 0600 (root only): its directory is created (0755)
    /// if missing; a socket left by a crashed run (nobody accepts on it) is replaced, one a
    /// running daemon still serves is not.
    public static func unix(path: String, backlog: Int32 = 16) throws(SystemError) -> StreamListenerSocket {
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let directory = String(path[..<slash])
            if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw SystemError.last("mkdir(\(directory))", nil) }
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemError(errno: ENAMETOOLONG, operation: "control socket path \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        func withAddress<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
            withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw SystemError(errno: EEXIST, operation: "control socket \(path): a file that is not a socket is there")
            }
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let inUse = probe >= 0 && withAddress { connect(probe, $0, length) } == 0
            if probe >= 0 { Glibc.close(probe) }
            if inUse { throw SystemError(errno: EADDRINUSE, operation: "control socket \(path): another daemon serves it") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket(AF_UNIX)", nil) }
        let saved = umask(0o177)
        let bound = withAddress { bind(fd, $0, length) }
        umask(saved)
        guard bound == 0 else {
            let error = SystemError.last("bind(\(path))", nil)
            Glibc.close(fd)
            throw error
        }
        chmod(path, 0o600)
        guard listen(fd, backlog) == 0 else {
            let error = SystemError.last("listen(\(path))", nil)
            Glibc.close(fd)
            unlink(path)
            throw error
        }
        return StreamListenerSocket(fd: fd, path: path)
    }

    /// A TCP socket on `address:port` (IPv6 sockets also take IPv4 when the address is `::`).
    public static func tcp(address: IPAddress, port: UInt16, backlog: Int32 = 16) throws(SystemError) -> StreamListenerSocket {
        let family = address.isV6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket(TCP)", nil) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.isV6 {
            var zero: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = SocketAddress(address, port: port).withSockAddr { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let error = SystemError.last("bind/listen(\(address.isV6 ? "[\(address)]" : "\(address)"):\(port))", nil)
            Glibc.close(fd)
            throw error
        }
        return StreamListenerSocket(fd: fd, path: nil)
    }
}
