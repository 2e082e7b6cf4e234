@preconcurrency import Glibc

/// Writing a file that others read while it may change (keepalived's dumps in /tmp): the text
/// goes to a fresh temporary beside it (mkstemp: no name another user could have planted,
/// no symlink followed) and is renamed over the old one. No fsync: readers need the rename's
/// atomicity, not durability, and the loop must not wait on a disk.
public enum AtomicFile {
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        var template = Array((path + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SystemError.last("mkstemp(\(path).XXXXXX)", nil) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var failure: SystemError?
        var written = 0
        while written < bytes.count, failure == nil {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0, errno != EINTR { failure = SystemError.last("write(\(temporary))", nil) }
            if n > 0 { written += n }
        }
        if failure == nil, fchmod(fd, mode) != 0 { failure = SystemError.last("fchmod(\(temporary))", nil) }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = SystemError.last("rename(\(temporary), \(path))", nil) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }
}
