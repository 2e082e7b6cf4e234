/// The one entry point from a file name to a checked configuration: preprocess, parse, interpret,
/// cross-check, and (when a host is given) check the environment. Every stage reports into one
/// sink, so `vigil -t` lists every problem in one run.
public enum ConfigLoader {
    /// `progress` runs every 256 lines: a daemon reloading a large file in its one thread
    /// uses it to send the adverts that fall due meanwhile. `namespace` (keepalived's `-s`)
    /// overrides the file's net_namespace. With `entersNamespace` (`-t`, the daemon's start)
    /// this process moves into that namespace before the host is checked, as keepalived's
    /// set_namespaces does, so interfaces are looked for where they will be used; a reload
    /// stays where the start went.
    public static func load(path: String, configID: String?,
                            fileSystem: any ConfigFileSystem = LocalFileSystem(),
                            host: (any HostProbe)? = LocalHost(),
                            namespace override: String? = nil, entersNamespace: Bool = false,
                            progress: (() -> Void)? = nil) -> (Configuration, DiagnosticSink) {
        var diagnostics = DiagnosticSink()
        var preprocessor = Preprocessor(fileSystem: fileSystem, configID: configID)
        // Preprocess, parse and interpret line by line and block by block, so a big file never
        // exists as one list of lines or one token tree.
        struct Pipeline: LineConsumer {
            var parser = SyntaxParser()
            var interpreter = Interpreter()
            var diagnostics = DiagnosticSink()
            var files = [String]()
            var lastFileID: Int32 = -1
            var lines = 0
            var progress: (() -> Void)?

            mutating func consume(_ line: LogicalLine) {
                lines += 1
                if lines & 255 == 0, let progress { progress() }
                if line.fileID != lastFileID {
                    lastFileID = line.fileID
                    let name = line.file
                    if !files.contains(name) { files.append(name) }
                }
                let complete = parser.feed(line, diagnostics: &diagnostics)
                if !complete.isEmpty { interpreter.interpret(complete) }
            }
        }
        var pipeline = Pipeline()
        pipeline.files = [path]
        if let host { pipeline.interpreter.routingNames = RoutingNames(files: host.iproute2File) }
        pipeline.progress = progress
        preprocessor.stream(mainFile: path, diagnostics: &diagnostics, into: &pipeline)
        pipeline.interpreter.interpret(pipeline.parser.finish(diagnostics: &pipeline.diagnostics))
        diagnostics.append(contentsOf: pipeline.diagnostics.all)
        var config = pipeline.interpreter.config
        config.files = pipeline.files
        diagnostics.append(contentsOf: pipeline.interpreter.reader.diagnostics.all)
        CrossReferences.check(&config, &diagnostics)
        HostChecks.resolveSMTPServer(&config, host: host, &diagnostics)
        HostChecks.checkCPUAffinity(&config, host: host, &diagnostics)
        NotActedOn.report(config, &diagnostics)
        if let override { config.netNamespace = override }
        var hostToCheck = host
        if entersNamespace, let host, let name = config.netNamespace, let failure = host.enterNetworkNamespace(name) {
            // keepalived -t exits 0 here, having checked nothing (a trap); the daemon exits.
            let location = override == nil ? config.netNamespaceLocation : nil
            diagnostics.error(location ?? SourceLocation(file: path, line: 1, column: 1),
                              "net_namespace \(name): cannot enter it (\(failure)); the interfaces were not checked", klass: .fatal)
            hostToCheck = nil
        }
        if let host = hostToCheck {
            HostChecks.check(config, host: host, &diagnostics)
            HostChecks.dropLoopbackInterfaces(&config, host: host, &diagnostics)
        }
        AdvertCapacity.fit(&config, mtu: { hostToCheck?.interfaceMTU($0) }, &diagnostics)
        return (config, diagnostics)
    }

    /// The same, for text already in memory (tests, fuzzing).
    public static func load(text: String, name: String = "keepalived.conf", configID: String? = nil,
                            host: (any HostProbe)? = nil) -> (Configuration, DiagnosticSink) {
        load(path: name, configID: configID, fileSystem: InMemoryFileSystem([name: text]), host: host)
    }
}

/// Files held in memory, for tests and fuzzing; glob supports exact names and a trailing `*`.
public struct InMemoryFileSystem: ConfigFileSystem {
    public var files: [String: [UInt8]]
    public init(_ files: [String: String]) { self.files = files.mapValues { Array($0.utf8) } }
    public init(bytes: [String: [UInt8]]) { self.files = bytes }
    public func read(_ path: String) -> [UInt8]? { files[normalize(path)] }
    public func glob(_ pattern: String) -> [String] {
        let p = normalize(pattern)
        if let star = p.firstIndex(of: "*") {
            let prefix = p[..<star], suffix = p[p.index(after: star)...]
            return files.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && $0.count >= p.count - 1 }.sorted()
        }
        return files[p] != nil ? [p] : []
    }
    public func canonical(_ path: String) -> String { normalize(path) }
    private func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { if !parts.isEmpty { parts.removeLast() } } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }
}
