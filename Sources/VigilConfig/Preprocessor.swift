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

/// A line after includes, conditionals and parameter substitution, with where it came from.
public struct LogicalLine: Sendable {
    public var text: String
    public var file: String
    public var line: Int
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
    private var output: [LogicalLine] = []

    public init(fileSystem: any ConfigFileSystem = LocalFileSystem(), configID: String?) {
        self.fileSystem = fileSystem
        self.configID = configID
    }

    public mutating func run(mainFile: String, diagnostics: inout DiagnosticSink) -> [LogicalLine] {
        output = []
        definitions = [:]
        includeStack = []
        guard let bytes = fileSystem.read(mainFile) else {
            diagnostics.error(.unknown(mainFile), "configuration file not found or not readable", klass: .fatal)
            return []
        }
        process(file: mainFile, bytes: bytes, diagnostics: &diagnostics)
        return output
    }

    private mutating func process(file: String, bytes: [UInt8], diagnostics: inout DiagnosticSink) {
        includeStack.append(fileSystem.canonical(file))
        defer { includeStack.removeLast() }
        if bytes.contains(0) {
            diagnostics.error(.init(file: file, line: 1, column: 1),
                              "file contains NUL bytes: this is not a text configuration file")
            return
        }
        var lineNumber = 0
        var pendingDefinition: (name: String, value: String)?
        // Split on bytes: String.split works on grapheme clusters, far too slow for big files.
        for rawLine in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(String(decoding: rawLine, as: UTF8.self))
            if line.last == "\r" { line = line.dropLast() }

            // A definition continued from the previous line.
            if var definition = pendingDefinition {
                let continues = line.last == "\\"
                definition.value += "\n" + (continues ? String(line.dropLast()) : String(line))
                if continues { pendingDefinition = definition } else {
                    definitions[definition.name] = definition.value
                    pendingDefinition = nil
                }
                continue
            }

            guard let kept = applyConditional(line) else { continue }
            line = kept
            let trimmed = line.drop { $0 == " " || $0 == "\t" }

            // `$NAME=value` defines a parameter; nothing else starts with `$NAME=`.
            if trimmed.first == "$", let equals = trimmed.firstIndex(of: "=") {
                let name = trimmed[trimmed.index(after: trimmed.startIndex)..<equals]
                if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                    var value = String(trimmed[trimmed.index(after: equals)...])
                    if value.last == "\\" {
                        value.removeLast()
                        pendingDefinition = (String(name), value)
                    } else {
                        definitions[String(name)] = value
                    }
                    continue
                }
            }

            let substituted = substitute(String(line), file: file)
            for expanded in substituted.split(separator: "\n", omittingEmptySubsequences: false) {
                handle(String(expanded), file: file, line: lineNumber, diagnostics: &diagnostics)
            }
        }
        if let definition = pendingDefinition {
            definitions[definition.name] = definition.value
        }
    }

    /// Handles an `include` line or passes the line on.
    private mutating func handle(_ line: String, file: String, line lineNumber: Int,
                                 diagnostics: inout DiagnosticSink) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        let words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let includeKeywords: Set<Substring> = ["include", "includer", "includem", "includew", "includeb", "includea", "includet"]
        guard let first = words.first, includeKeywords.contains(first) else {
            output.append(LogicalLine(text: line, file: file, line: lineNumber))
            return
        }
        let column = line.count - trimmed.count + 1
        let location = SourceLocation(file: file, line: lineNumber, column: column)
        guard words.count >= 2 else {
            diagnostics.error(location, "'\(first)' is missing the file to include")
            return
        }
        var pattern = String(words[1])
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
            process(file: path, bytes: bytes, diagnostics: &diagnostics)
        }
    }

    /// `@ID rest` keeps `rest` only when ID is the config id; `@^ID rest` only when it is not.
    private func applyConditional(_ line: Substring) -> Substring? {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard trimmed.first == "@" else { return line }
        var rest = trimmed.dropFirst()
        let negated = rest.first == "^"
        if negated { rest = rest.dropFirst() }
        let id = rest.prefix { $0 != " " && $0 != "\t" }
        let body = rest.dropFirst(id.count)
        let matches = configID.map { $0 == String(id) } ?? false
        return matches != negated ? body : nil
    }

    /// Replaces `${NAME}` and `$NAME` with their definitions; unknown names stay as written,
    /// as in keepalived (scripts legitimately contain shell `$VARS`).
    private func substitute(_ line: String, file: String) -> String {
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

    private func builtin(_ name: String, file: String) -> String? {
        switch name {
        case "_PWD": return directory(of: file)
        case "_INSTANCE": return configID
        default: return nil
        }
    }

    private func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }
}
