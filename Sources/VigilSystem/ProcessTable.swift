@preconcurrency import Glibc

/// One running process as vrrp_track_process sees it.
public struct RunningProcess: Sendable, Equatable {
    /// /proc/PID/comm: at most 15 bytes.
    public var comm: String
    /// /proc/PID/cmdline split at its NULs; nil when not asked for or unreadable.
    public var commandLine: [String]?
    public init(comm: String, commandLine: [String]? = nil) {
        self.comm = comm
        self.commandLine = commandLine
    }
}

/// The process table from /proc: one directory read and one small file per process (two with
/// command lines). Zombies are left out, as keepalived leaves them out.
public enum ProcFS {
    public static func processes(commandLines: Bool, root: String = "/proc") -> [RunningProcess] {
        guard let directory = opendir(root) else { return [] }
        defer { closedir(directory) }
        var found: [RunningProcess] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let first = name.utf8.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"),
                  name.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { continue }
            guard let stat = read("\(root)/\(name)/stat"), let (comm, state) = parseStat(stat), state != UInt8(ascii: "Z") else { continue }
            var process = RunningProcess(comm: comm)
            if commandLines, let raw = read("\(root)/\(name)/cmdline") {
                var words = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                if words.last == "" { words.removeLast() }
                process.commandLine = words
            }
            found.append(process)
        }
        return found
    }

    /// `PID (comm) S ...`: the name may hold spaces and parentheses, so it ends at the last ')'.
    static func parseStat(_ bytes: [UInt8]) -> (comm: String, state: UInt8)? {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")), let close = bytes.lastIndex(of: UInt8(ascii: ")")),
              close > open, close + 2 < bytes.count else { return nil }
        return (String(decoding: bytes[(open + 1)..<close], as: UTF8.self), bytes[close + 2])
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65_536 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            bytes += buffer.prefix(n)
        }
        return bytes
    }
}
