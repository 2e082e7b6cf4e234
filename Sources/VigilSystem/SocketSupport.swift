@preconcurrency import Glibc
import CNetlink

/// Owns one descriptor so every early `throw` during socket set-up closes it.
final class FileDescriptor: Sendable {
    let raw: Int32
    init(_ raw: Int32) { self.raw = raw }
    deinit { close(raw) }
}

enum Sock {
    static func open(_ domain: Int32, _ type: Int32, _ proto: Int32, _ ifname: String?) throws(SystemError) -> FileDescriptor {
        let fd = socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        if fd < 0 { throw SystemError.last("socket", ifname) }
        return FileDescriptor(fd)
    }

    static func set<T>(_ fd: FileDescriptor, _ level: Int32, _ option: Int32, _ value: T,
                                        _ name: String, _ ifname: String?) throws(SystemError) {
        let rc = withUnsafeBytes(of: value) { setsockopt(fd.raw, level, option, $0.baseAddress, socklen_t($0.count)) }
        if rc < 0 {
            throw SystemError.last("setsockopt(\(name))", ifname)
        }
    }

    static func bindToDevice(_ fd: FileDescriptor, _ ifname: String) throws(SystemError) {
        let bytes = Array(ifname.utf8) + [0]
        if setsockopt(fd.raw, SOL_SOCKET, SO_BINDTODEVICE, bytes, socklen_t(bytes.count)) < 0 {
            throw SystemError.last("setsockopt(SO_BINDTODEVICE)", ifname)
        }
    }

    /// A send-only raw socket still gets a copy of every matching inbound packet; keepalived
    /// attaches a "drop all" BPF program so those copies never queue up.
    static func dropAllInput(_ fd: FileDescriptor, _ ifname: String?) throws(SystemError) {
        var insn = sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0)
        let rc = withUnsafeMutablePointer(to: &insn) { ptr in
            var prog = sock_fprog(len: 1, filter: ptr)
            return setsockopt(fd.raw, SOL_SOCKET, SO_ATTACH_FILTER, &prog, socklen_t(MemoryLayout<sock_fprog>.size))
        }
        if rc < 0 { throw SystemError.last("setsockopt(SO_ATTACH_FILTER)", ifname) }
    }

    static func nonBlocking(_ fd: FileDescriptor, _ ifname: String?) throws(SystemError) {
        let flags = fcntl(fd.raw, F_GETFL)
        if flags < 0 || fcntl(fd.raw, F_SETFL, flags | O_NONBLOCK) < 0 {
            throw SystemError.last("fcntl(O_NONBLOCK)", ifname)
        }
    }

    static func ifindex(_ ifname: String) throws(SystemError) -> Int32 {
        let index = if_nametoindex(ifname)
        if index == 0 { throw SystemError.last("if_nametoindex", ifname) }
        return Int32(index)
    }

    static func withSockaddr<S, R>(_ value: S, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: value) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<S>.size)) }
        }
    }
}
