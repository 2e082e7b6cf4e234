import Synchronization

/// Where something was written: the file as the user named it (or as an include expanded it),
/// 1-based line and column. Every diagnostic and every model element carries one, so that
/// `vigil -t` can point at the exact place like a compiler does.
///
/// The file is stored as a small number into `SourceFiles`, not as a String: every token
/// carries a location, and a reference-counted name per token cost a sixth of `-t` time on
/// large configurations (retain, release, and destroying them).
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var fileID: Int32
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.init(fileID: SourceFiles.id(for: file), line: line, column: column)
    }

    public init(fileID: Int32, line: Int, column: Int) {
        self.fileID = fileID
        self.line = line
        self.column = column
    }

    public var file: String { SourceFiles.name(of: fileID) }

    /// For problems that belong to no particular place (a missing main file, the command line).
    public static func unknown(_ file: String) -> SourceLocation { .init(file: file, line: 0, column: 0) }

    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }
}

/// The names behind `SourceLocation.fileID`: a process-wide table that only grows (a config
/// names a handful of files).
public enum SourceFiles {
    private static let table = Mutex<(names: [String], ids: [String: Int32])>(([], [:]))

    public static func id(for name: String) -> Int32 {
        table.withLock { table in
            if let id = table.ids[name] { return id }
            let id = Int32(table.names.count)
            table.names.append(name)
            table.ids[name] = id
            return id
        }
    }

    public static func name(of id: Int32) -> String {
        table.withLock { table in id >= 0 && Int(id) < table.names.count ? table.names[Int(id)] : "?" }
    }
}

/// keepalived's error classes, reduced to what decides the `-t` exit status. keepalived keeps the
/// numerically largest class seen (`lib/parser.c`), so the ordering here is that ranking.
public enum DiagnosticClass: Int, Comparable, Sendable {
    /// Informational only: never changes the exit status.
    case note = 0
    /// Missing file, missing interface, or a fatal problem: `-t` exit 4.
    case fatal = 4
    /// Every other error or warning: `-t` exit 5.
    case general = 5
    /// Scripts configured without `enable_script_security`: `-t` exit 6.
    case security = 6

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

public enum Severity: String, Sendable {
    case error, warning, note
}

public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    public var severity: Severity
    public var klass: DiagnosticClass
    public var location: SourceLocation
    public var message: String
    /// A fix the user probably meant ("did you mean 'priority'?").
    public var suggestion: String?

    public init(_ severity: Severity, _ klass: DiagnosticClass, _ location: SourceLocation,
                _ message: String, suggestion: String? = nil) {
        self.severity = severity
        self.klass = klass
        self.location = location
        self.message = message
        self.suggestion = suggestion
    }

    /// Compiler style, one line: `FILE:LINE:COL: error: message (did you mean 'x'?)`.
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        if let suggestion { text += "; did you mean '\(suggestion)'?" }
        return text
    }
}

/// Collects diagnostics in source order and answers the questions `-t` needs.
public struct DiagnosticSink: Sendable {
    public private(set) var all: [Diagnostic] = []

    public init() {}

    public mutating func error(_ at: SourceLocation, _ message: String, suggestion: String? = nil,
                               klass: DiagnosticClass = .general) {
        all.append(Diagnostic(.error, klass, at, message, suggestion: suggestion))
    }

    public mutating func warning(_ at: SourceLocation, _ message: String, suggestion: String? = nil,
                                 klass: DiagnosticClass = .general) {
        all.append(Diagnostic(.warning, klass, at, message, suggestion: suggestion))
    }

    public mutating func note(_ at: SourceLocation, _ message: String) {
        all.append(Diagnostic(.note, .note, at, message))
    }

    public mutating func append(contentsOf other: [Diagnostic]) { all.append(contentsOf: other) }

    public var hasProblems: Bool { all.contains { $0.klass != .note } }

    /// The `-t` exit status: 0 when clean, otherwise keepalived's code for the worst class seen.
    public var exitStatus: Int32 {
        let worst = all.map(\.klass).max() ?? .note
        return Int32(worst.rawValue)
    }
}

/// Levenshtein distance, used to suggest the keyword a user probably meant.
/// `cutoff`: once every cell of a row exceeds it the result does, so the rest is not computed
/// and `cutoff + 1` is returned (most keyword candidates are rejected after a few rows).
func editDistance(_ a: String, _ b: String, cutoff: Int = .max) -> Int {
    var rows: [Int] = []
    return editDistance(Array(a.utf8), Array(b.utf8), cutoff: cutoff, rows: &rows)
}

/// The same over bytes, with the two rows of the table in `rows` (grown as needed and kept by
/// the caller): `nearest` measures one word against a few hundred keywords, and allocating
/// per candidate was most of the cost of a file full of unknown words. Only the band of cells
/// within `cutoff` of the diagonal is computed (a cell outside it is more than `cutoff` anyway),
/// so a comparison costs about length × (2 × cutoff + 1), not length².
func editDistance(_ a: [UInt8], _ b: [UInt8], cutoff: Int, rows: inout [Int]) -> Int {
    let band = min(max(cutoff, 0), max(a.count, b.count))
    if abs(a.count - b.count) > band { return cutoff + 1 }
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    let beyond = band + 1
    let width = b.count + 1
    if rows.count < 2 * width { rows = [Int](repeating: 0, count: 2 * width) }
    let distance = rows.withUnsafeMutableBufferPointer { table -> Int in
        var previous = 0, current = width
        for j in 0...b.count { table[j] = j <= band ? j : beyond }
        for i in 1...a.count {
            let low = max(1, i - band), high = min(b.count, i + band)
            table[current + low - 1] = low == 1 && i <= band ? i : beyond
            var rowMinimum = table[current + low - 1]
            let byte = a[i - 1]
            var j = low
            while j <= high {
                let cost = byte == b[j - 1] ? 0 : 1
                let cell = min(table[previous + j] + 1, table[current + j - 1] + 1, table[previous + j - 1] + cost, beyond)
                table[current + j] = cell
                rowMinimum = min(rowMinimum, cell)
                j += 1
            }
            if high < b.count { table[current + high + 1] = beyond }
            if rowMinimum > band { return beyond }
            swap(&previous, &current)
        }
        return table[previous + b.count]
    }
    return distance > band ? cutoff + 1 : distance
}

/// The closest candidate, if it is close enough to be a plausible typo (about a third of the word).
///
/// Candidates whose length alone puts them beyond the limit are not compared: the distance is
/// at least the difference in length. Without that, one 200 KB word in a file cost `vigil -t`
/// (and a reload, on the daemon's loop) 38 s of edit distances against every keyword; found by
/// fuzzing the configuration language.
func nearest(_ word: String, in candidates: some Sequence<String>) -> String? {
    let lowered = Array(word.lowercased().utf8)
    let length = lowered.count
    let limit = max(2, word.count / 3)
    var best: (String, Int)?
    var rows: [Int] = [], other: [UInt8] = []
    for candidate in candidates where abs(candidate.utf8.count - length) <= limit {
        lowercasedBytes(of: candidate, into: &other)
        // Only a candidate closer than the best so far (and within the limit) matters.
        let distance = editDistance(lowered, other, cutoff: min(limit, (best?.1 ?? limit + 1) - 1), rows: &rows)
        if distance <= limit, best == nil || distance < best!.1 { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    return distance <= limit && distance > 0 ? candidate : nil
}

/// `text.lowercased()` as bytes, without a String per call for the ASCII keywords it sees.
private func lowercasedBytes(of text: String, into bytes: inout [UInt8]) {
    bytes.removeAll(keepingCapacity: true)
    for byte in text.utf8 {
        guard byte < 0x80 else {
            bytes.removeAll(keepingCapacity: true)
            bytes.append(contentsOf: text.lowercased().utf8)
            return
        }
        bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte)
    }
}
