@preconcurrency import Glibc

/// keepalived's notify FIFOs on the file system: `mkfifo` when nothing is there (mode 0644,
/// chowned to the owner), opened O_RDWR | O_NONBLOCK so that writing never waits for a reader
/// and never fails for want of one, and removed at the end only when Vigil made it.
///
/// Unlike keepalived, whatever is at the path must be a FIFO: keepalived opens a regular file
/// there just the same and overwrites it from its start, line by line.
public enum NotifyFIFOFile {
    public static func open(_ path: String, owner: (user: String, group: String?)?) throws(SystemError) -> (fd: Int32, created: Bool) {
        var created = false
        if mkfifo(path, 0o644) == 0 {
            created = true
            if let owner, let ids = ids(of: owner), chown(path, ids.uid, ids.gid) != 0 {
                let error = errno
                unlink(path)
                throw SystemError(errno: error, operation: "chown \(path) to \(owner.user)")
            }
        } else if errno != EEXIST {
            throw SystemError(errno: errno, operation: "mkfifo \(path)")
        }
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard fd >= 0 else {
            let error = errno
            if created { unlink(path) }
            throw SystemError(errno: error, operation: "open \(path)")
        }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFIFO else {
            Glibc.close(fd)
            throw SystemError(errno: EINVAL, operation: "open \(path): not a FIFO")
        }
        return (fd, created)
    }

    /// One write: a FIFO writes up to PIPE_BUF bytes whole or not at all, so a reader never
    /// sees half a line; EAGAIN (the pipe full) leaves the line out.
    public static func write(_ fd: Int32, _ line: [UInt8]) -> Bool {
        line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == line.count
    }

    public static func close(_ fd: Int32, removing path: String?) {
        // The path first, as keepalived: a reader that reopens on EOF cannot find it again.
        if let path { unlink(path) }
        Glibc.close(fd)
    }

    /// The user's uid and gid, or the group's when one is named.
    private static func ids(of owner: (user: String, group: String?)) -> (uid: uid_t, gid: gid_t)? {
        guard let user = getpwnam(owner.user) else { return nil }
        var gid = user.pointee.pw_gid
        if let group = owner.group {
            guard let entry = getgrnam(group) else { return nil }
            gid = entry.pointee.gr_gid
        }
        return (user.pointee.pw_uid, gid)
    }
}
