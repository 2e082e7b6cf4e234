#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// What the preprocessor needs from the file system, so tests can feed it files from memory.
public protocol ConfigFileSystem {
    /// The file's bytes, or nil when it cannot be read (missing, a directory, no permission).
    func read(_ path: String) -> [UInt8]?
    /// Paths matching a shell glob (with brace expansion), sorted; empty when none match.
    func glob(_ pattern: String) -> [String]
    /// A canonical path to recognise the same file reached by two names (include loops).
    func canonical(_ path: String) -> String
}

/// The real file system, through glibc.
public struct LocalFileSystem: ConfigFileSystem {
    public init() {}

    public func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    public func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, GLOB_BRACE | GLOB_NOSORT, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for i in 0..<Int(result.gl_pathc) {
            if let p = result.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        return paths.sorted()
    }

    public func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Receives the preprocessor's lines one by one.
public protocol LineConsumer {
    mutating func consume(_ line: LogicalLine)
}

/// A line after includes, conditionals and parameter substitution, with where it came from.
/// It holds a slice of the file's bytes, not a String of its own: large configurations have
/// tens of thousands of lines, and one allocation per line showed in the profile.
public struct LogicalLine: Sendable {
    public var bytes: ArraySlice<UInt8>
    public var fileID: Int32
    public var line: Int
    public var file: String { SourceFiles.name(of: fileID) }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// Expands the line-level parts of the language before tokens exist, as keepalived's
/// `read_line`/`check_include` do: `include` (globs, relative to the including file),
/// `@ID`/`@^ID` conditional lines, `$NAME=value` definitions (continued with a trailing `\`)
/// and `$NAME`/`${NAME}` substitution.
///
/// Unlike keepalived, a missing main file or a missing include that names one file (no wildcard)
/// is an error: a config test that silently skips half the configuration is a trap.
public struct Preprocessor {
    public var fileSystem: any ConfigFileSystem
    /// Matches `@ID` lines; keepalived defaults it to the first label of the host name.
    public var configID: String?
    public static let maxIncludeDepth = 32

    private var definitions: [String: String] = [:]
    private var includeStack: [String] = []
    /// `${_RANDOM}`'s generator: seeded by a `random_seed N` line from that line on (so a
    /// file's random values repeat), else from the system's randomness.
    private var randomSeed: UInt64?

    public init(fileSystem: any ConfigFileSystem = LocalFileSystem(), configID: String?) {
        self.fileSystem = fileSystem
        self.configID = configID
    }

    /// Hands each line to `consumer` as soon as it is ready, so the parser can run alongside
    /// and no list of every line of a big configuration is built. Generic and `inout` rather
    /// than a closure: a closure's captured state is boxed and every access checked at run time.
    public mutating func stream<Consumer: LineConsumer>(mainFile: String, diagnostics: inout DiagnosticSink,
                                                         into consumer: inout Consumer) {
        definitions = [:]
        includeStack = []
        randomSeed = nil
        guard let bytes = fileSystem.read(mainFile) else {
            diagnostics.error(.unknown(mainFile), "configuration file not found or not readable", klass: .fatal)
            return
        }
        process(file: mainFile, bytes: bytes, diagnostics: &diagnostics, into: &consumer)
    }

    private mutating func process<Consumer: LineConsumer>(file: String, bytes: [UInt8], diagnostics: inout DiagnosticSink,
                                                           into consumer: inout Consumer) {
        let fileID = SourceFiles.id(for: file)
        includeStack.append(fileSystem.canonical(file))
        defer { includeStack.removeLast() }
        if bytes.contains(0) {
            diagnostics.error(.init(file: file, line: 1, column: 1),
                              "file contains NUL bytes: this is not a text configuration file")
            return
        }
        var lineNumber = 0
        var pendingDefinition: (name: String, value: String)?
        // Everything per line works on bytes and makes at most one String: configs reach tens
        // of thousands of lines and String's Character operations dominated the run time.
        var lineStart = bytes.startIndex
        while lineStart <= bytes.endIndex {
            let lineEnd = bytes[lineStart...].firstIndex(of: 0x0A) ?? bytes.endIndex
            var line = bytes[lineStart..<lineEnd]
            lineStart = lineEnd + 1
            if lineEnd == bytes.endIndex && line.isEmpty && lineNumber > 0 { break }
            lineNumber += 1
            if line.last == 0x0D { line = line.dropLast() }

            // A definition continued from the previous line.
            if var definition = pendingDefinition {
                let continues = line.last == UInt8(ascii: "\\")
                definition.value += "\n" + String(decoding: continues ? line.dropLast() : line, as: UTF8.self)
                if continues { pendingDefinition = definition } else {
                    definitions[definition.name] = definition.value
                    pendingDefinition = nil
                }
                continue
            }

            var start = line.startIndex
            while start < line.endIndex, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
            if start < line.endIndex, line[start] == UInt8(ascii: "@") {
                guard let kept = applyConditional(line[start...]) else { continue }
                line = kept
                start = line.startIndex
                while start < line.endIndex, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
            }

            // `$NAME=value` defines a parameter; nothing else starts with `$NAME=`.
            if start < line.endIndex, line[start] == UInt8(ascii: "$"), let equals = line[start...].firstIndex(of: UInt8(ascii: "=")) {
                let name = line[(start + 1)..<equals]
                if !name.isEmpty, name.allSatisfy({ isNameByte($0) }) {
                    var value = line[(equals + 1)...]
                    let continues = value.last == UInt8(ascii: "\\")
                    if continues { value = value.dropLast() }
                    let nameText = String(decoding: name, as: UTF8.self)
                    if continues {
                        pendingDefinition = (nameText, String(decoding: value, as: UTF8.self))
                    } else {
                        definitions[nameText] = String(decoding: value, as: UTF8.self)
                    }
                    continue
                }
            }

            noteRandomSeed(line[start...])
            if line.contains(UInt8(ascii: "$")) {
                let substituted = substitute(String(decoding: line, as: UTF8.self), file: file)
                for expanded in Array(substituted.utf8).split(separator: 0x0A, omittingEmptySubsequences: false) {
                    handle(expanded, file: file, fileID: fileID, line: lineNumber, diagnostics: &diagnostics, into: &consumer)
                }
            } else {
                handle(line, file: file, fileID: fileID, line: lineNumber, diagnostics: &diagnostics, into: &consumer)
            }
        }
        if let definition = pendingDefinition {
            definitions[definition.name] = definition.value
        }
    }

    private static let includeKeywords: Set<String> = ["include", "includer", "includem", "includew", "includeb", "includea", "includet"]

    /// Handles an `include` line or passes the line on.
    private mutating func handle<Consumer: LineConsumer>(_ line: ArraySlice<UInt8>, file: String, fileID: Int32, line lineNumber: Int,
                                                          diagnostics: inout DiagnosticSink, into consumer: inout Consumer) {
        var start = line.startIndex
        while start < line.endIndex, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        // Cheap test first: only lines starting with "include" need a closer look.
        guard line.count - (start - line.startIndex) >= 7, line[start] == UInt8(ascii: "i"), line[start + 1] == UInt8(ascii: "n"),
              line[start + 2] == UInt8(ascii: "c") else {
            consumer.consume(LogicalLine(bytes: line, fileID: fileID, line: lineNumber))
            return
        }
        let words = line[start...].split(whereSeparator: { $0 == 0x20 || $0 == 0x09 }).map { String(decoding: $0, as: UTF8.self) }
        guard let first = words.first, Self.includeKeywords.contains(first) else {
            consumer.consume(LogicalLine(bytes: line, fileID: fileID, line: lineNumber))
            return
        }
        let location = SourceLocation(file: file, line: lineNumber, column: start - line.startIndex + 1)
        guard words.count >= 2 else {
            diagnostics.error(location, "'\(first)' is missing the file to include")
            return
        }
        var pattern = words[1]
        if pattern.count >= 2, let q = pattern.first, q == "\"" || q == "'", pattern.last == q {
            pattern = String(pattern.dropFirst().dropLast())
        }
        if !pattern.hasPrefix("/") {
            pattern = directory(of: file) + "/" + pattern
        }
        let isWildcard = pattern.contains { "*?[{".contains($0) }
        let matches = fileSystem.glob(pattern)
        if matches.isEmpty {
            if isWildcard {
                diagnostics.note(location, "include pattern '\(words[1])' matches no file")
            } else {
                diagnostics.error(location, "included file '\(words[1])' not found (looked for \(pattern))", klass: .fatal)
            }
            return
        }
        for path in matches {
            let canonical = fileSystem.canonical(path)
            if includeStack.contains(canonical) {
                diagnostics.error(location, "include loop: '\(path)' is already being read")
                continue
            }
            if includeStack.count >= Self.maxIncludeDepth {
                diagnostics.error(location, "includes nested more than \(Self.maxIncludeDepth) deep")
                return
            }
            guard let bytes = fileSystem.read(path) else {
                diagnostics.error(location, "included file '\(path)' cannot be read", klass: .fatal)
                continue
            }
            process(file: path, bytes: bytes, diagnostics: &diagnostics, into: &consumer)
        }
    }

    /// `@ID rest` keeps `rest` only when ID is the config id; `@^ID rest` only when it is not.
    private func applyConditional(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var rest = line.dropFirst()
        let negated = rest.first == UInt8(ascii: "^")
        if negated { rest = rest.dropFirst() }
        let id = rest.prefix { $0 != 0x20 && $0 != 0x09 }
        let body = rest[id.endIndex...]
        let matches = configID.map { Array($0.utf8) == Array(id) } ?? false
        return matches != negated ? body : nil
    }

    /// Replaces `${NAME}` and `$NAME` with their definitions; unknown names stay as written,
    /// as in keepalived (scripts legitimately contain shell `$VARS`).
    private mutating func substitute(_ line: String, file: String) -> String {
        guard line.contains("$") else { return line }
        let chars = Array(line)
        var result = ""
        var i = 0
        while i < chars.count {
            guard chars[i] == "$", i + 1 < chars.count else { result.append(chars[i]); i += 1; continue }
            var name = ""
            var end = i + 1
            if chars[end] == "{" {
                guard let close = chars[(end + 1)...].firstIndex(of: "}") else { result.append(chars[i]); i += 1; continue }
                name = String(chars[(end + 1)..<close])
                end = close + 1
            } else {
                while end < chars.count, chars[end].isLetter || chars[end].isNumber || chars[end] == "_" {
                    name.append(chars[end]); end += 1
                }
            }
            if let value = builtin(name, file: file) ?? definitions[name] {
                result += value
                i = end
            } else {
                result.append(chars[i]); i += 1
            }
        }
        return result
    }

    private mutating func builtin(_ name: String, file: String) -> String? {
        switch name {
        case "_PWD": return directory(of: file)
        case "_INSTANCE": return configID
        case "_HASH": return "#"
        case "_BANG": return "!"
        default:
            // keepalived's ${_RANDOM [MIN [MAX]]}: MIN 0 and MAX 32767 by default.
            let words = name.split(separator: " ")
            guard words.first == "_RANDOM", words.count <= 3 else { return nil }
            let low = words.count > 1 ? UInt64(words[1]) : 0
            let high = words.count > 2 ? UInt64(words[2]) : 32767
            guard let low, let high, low <= high else { return nil }
            return String(low + nextRandom() % (high - low + 1))
        }
    }

    /// `random_seed N` (keepalived seeds `${_RANDOM}` with it); its value is checked by the
    /// interpreter, here only read. `line` starts at its first word (the caller skipped the
    /// indentation).
    private mutating func noteRandomSeed(_ line: ArraySlice<UInt8>) {
        // Every line passes here: only one that starts with an 'r' is split into words.
        guard line.first == UInt8(ascii: "r") else { return }
        let words = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
        guard words.count >= 2, words[0].elementsEqual("random_seed".utf8),
              let seed = UInt64(String(decoding: words[1], as: UTF8.self)) else { return }
        randomSeed = seed
    }

    /// SplitMix64 from the seed, or the system's generator without one.
    private mutating func nextRandom() -> UInt64 {
        guard var state = randomSeed else { return UInt64.random(in: 0...UInt64.max) }
        state &+= 0x9E37_79B9_7F4A_7C15
        randomSeed = state
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func isNameByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
    }

    private func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }
}
