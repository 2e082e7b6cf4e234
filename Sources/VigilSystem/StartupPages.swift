@preconcurrency import Glibc

/// Most of an idle daemon's resident memory is its own code: reading and checking the
/// configuration and the first apply touch code that never runs again, and the kernel maps
/// each touched page with its neighbours (fault-around, 64 kB). Those pages are the file's
/// own bytes in the page cache, so this process can let go of them and lose nothing: code that
/// runs again faults back in, a minor fault each, with no I/O. (Reclaim under memory pressure
/// drops the same pages at any time; this only does it at once.)
public enum StartupPages {
    /// A mapping whose resident pages may be dropped.
    public struct Mapping: Equatable, Sendable {
        public var start: UInt
        public var end: UInt
        public var residentKB: Int
        public init(start: UInt, end: UInt, residentKB: Int) {
            self.start = start
            self.end = end
            self.residentKB = residentKB
        }
    }

    /// The mappings of an smaps text that are backed by a file, not writable, and hold no
    /// anonymous page. The last rule keeps RELRO (.got, .data.rel.ro) out: its pages were
    /// written by relocation before being made read-only, and dropping them would bring back
    /// the file's unrelocated bytes.
    public static func droppable(smaps: String) -> [Mapping] {
        var found: [Mapping] = []
        var current: (mapping: Mapping, eligible: Bool, anonymousKB: Int)?
        func finish() {
            if let c = current, c.eligible, c.anonymousKB == 0, c.mapping.residentKB > 0 { found.append(c.mapping) }
            current = nil
        }
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard current != nil, fields.count >= 2, let kB = Int(fields[1]) else { continue }
                if first == "Rss:" { current?.mapping.residentKB = kB }
                if first == "Anonymous:" { current?.anonymousKB = kB }
                continue
            }
            let range = first.split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), fields.count >= 2 else { continue }
            finish()
            let permissions = fields[1]
            let path = fields.count >= 6 ? fields[5] : ""
            let eligible = permissions.hasPrefix("r") && !permissions.contains("w") && permissions.hasSuffix("p") && path.hasPrefix("/")
            current = (Mapping(start: start, end: end, residentKB: 0), eligible, 0)
        }
        finish()
        return found
    }

    /// Drops this process's resident pages of `droppable` mappings (madvise MADV_DONTNEED).
    /// Returns the kB that were resident in them.
    @discardableResult
    public static func release() -> Int {
        guard let text = readSmaps() else { return 0 }
        var released = 0
        for mapping in droppable(smaps: text) {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { released += mapping.residentKB }
        }
        return released
    }

    private static func readSmaps() -> String? {
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
