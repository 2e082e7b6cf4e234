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
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        var rowMinimum = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            rowMinimum = min(rowMinimum, current[j])
        }
        if rowMinimum > cutoff { return cutoff + 1 }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// The closest candidate, if it is close enough to be a plausible typo (about a third of the word).
///
/// Candidates whose length alone puts them beyond the limit are not compared: the distance is
/// at least the difference in length. Without that, one 200 KB word in a file cost `vigil -t`
/// (and a reload, on the daemon's loop) 38 s of edit distances against every keyword; found by
/// fuzzing the configuration language.
func nearest(_ word: String, in candidates: some Sequence<String>) -> String? {
    let lowered = word.lowercased()
    let length = lowered.utf8.count
    let limit = max(2, word.count / 3)
    var best: (String, Int)?
    for candidate in candidates where abs(candidate.utf8.count - length) <= limit {
        // Only a candidate closer than the best so far (and within the limit) matters.
        let distance = editDistance(lowered, candidate.lowercased(), cutoff: min(limit, (best?.1 ?? limit + 1) - 1))
        if distance <= limit, best == nil || distance < best!.1 { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    return distance <= limit && distance > 0 ? candidate : nil
}
