import Testing
@testable import VigilConfig

/// Loads text with no host checks and returns the model plus diagnostics as strings.
func load(_ text: String, files extra: [String: String] = [:], configID: String? = nil,
          host: (any HostProbe)? = nil) -> (Configuration, [Diagnostic]) {
    var files = extra
    files["etc/keepalived.conf"] = text
    let (config, sink) = ConfigLoader.load(path: "etc/keepalived.conf", configID: configID,
                                           fileSystem: InMemoryFileSystem(files), host: host)
    return (config, sink.all)
}

func problems(_ d: [Diagnostic]) -> [Diagnostic] { d.filter { $0.klass != .note } }

@Suite struct LexerTests {
    @Test func splitsWordsBracesAndComments() {
        var sink = DiagnosticSink()
        let tokens = Lexer.tokenize("vrrp_instance VI_1{ state MASTER } # trailing", file: "f", line: 3, diagnostics: &sink)
        #expect(tokens.map(\.text) == ["vrrp_instance", "VI_1", "{", "state", "MASTER", "}"])
        #expect(tokens.map(\.location.column) == [1, 15, 19, 21, 27, 34])
        #expect(tokens.allSatisfy { $0.location.line == 3 })
        #expect(sink.all.isEmpty)
    }

    @Test func bangCommentAndHashInsideWord() {
        var sink = DiagnosticSink()
        #expect(Lexer.tokenize("! comment", file: "f", line: 1, diagnostics: &sink).isEmpty)
        let tokens = Lexer.tokenize("auth_pass ab#cd ! rest", file: "f", line: 1, diagnostics: &sink)
        #expect(tokens.map(\.text) == ["auth_pass", "ab#cd"])
    }

    @Test func quotedStringsWithEscapes() {
        var sink = DiagnosticSink()
        let tokens = Lexer.tokenize(#"script "/bin/echo 'a b' \"q\" \x41\n" tail"#, file: "f", line: 1, diagnostics: &sink)
        #expect(tokens.count == 3)
        #expect(tokens[1].kind == .quoted)
        #expect(tokens[1].text == "/bin/echo 'a b' \"q\" A\n")
        #expect(tokens[2].text == "tail")
    }

    @Test func unmatchedQuoteIsReportedAtItsColumn() {
        var sink = DiagnosticSink()
        _ = Lexer.tokenize(#"script "/bin/true"#, file: "f", line: 7, diagnostics: &sink)
        #expect(sink.all.count == 1)
        #expect(sink.all[0].location == SourceLocation(file: "f", line: 7, column: 8))
        #expect(sink.all[0].message.contains("unmatched quote"))
    }
}

@Suite struct PreprocessorTests {
    @Test func includeIsRelativeToTheIncludingFile() {
        let (config, d) = load("include conf.d/*.conf\nvrrp_script b { script /bin/true }",
                               files: ["etc/conf.d/a.conf": "vrrp_script a { script /bin/true }"])
        #expect(problems(d).isEmpty)
        #expect(config.scripts.map(\.name) == ["a", "b"])
        #expect(config.files == ["etc/keepalived.conf", "etc/conf.d/a.conf"])
    }

    @Test func missingNamedIncludeFailsButEmptyGlobDoesNot() {
        let (_, d) = load("include missing.conf\ninclude none/*.conf\n")
        let errors = d.filter { $0.severity == .error }
        #expect(errors.count == 1)
        #expect(errors[0].location == SourceLocation(file: "etc/keepalived.conf", line: 1, column: 1))
        #expect(errors[0].klass == .fatal)
        #expect(d.contains { $0.severity == .note && $0.message.contains("matches no file") })
    }

    @Test func includeLoopIsAnErrorNotAHang() {
        let (_, d) = load("include a.conf", files: ["etc/a.conf": "include b.conf", "etc/b.conf": "include a.conf"])
        #expect(d.contains { $0.message.contains("include loop") && $0.location.file == "etc/b.conf" })
    }

    @Test func missingMainFileIsFatal() {
        let (_, sink) = ConfigLoader.load(path: "/nonexistent/keepalived.conf", configID: nil,
                                          fileSystem: InMemoryFileSystem([:]), host: nil)
        #expect(sink.exitStatus == 4)
    }

    @Test func conditionalLinesFollowTheConfigID() {
        let text = """
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 1
        @high    priority 170
        @low     priority 85
        @^high   advert_int 3
            virtual_ipaddress { 10.0.0.1 }
        }
        """
        let (high, _) = load(text, configID: "high")
        #expect(high.instances[0].priority == 170)
        #expect(high.instances[0].advertInterval == 1_000_000)
        let (low, _) = load(text, configID: "low")
        #expect(low.instances[0].priority == 85)
        #expect(low.instances[0].advertInterval == 3_000_000)
        let (none, _) = load(text, configID: nil)
        #expect(none.instances[0].priority == nil)
    }

    @Test func parameterDefinitionsAndSubstitution() {
        let text = """
        $IF=eth1
        $VIPS=10.0.0.1 \\
        10.0.0.2
        vrrp_instance VI_1 {
            interface $IF
            virtual_router_id $ID
            virtual_ipaddress {
                $VIPS
            }
            notify "/bin/echo $HOME"
        }
        """
        let (config, d) = load(text)
        let i = config.instances[0]
        #expect(i.interface == "eth1")
        #expect(i.virtualAddresses.map(\.address.description) == ["10.0.0.1", "10.0.0.2"])
        #expect(i.notify.generic?.command == "/bin/echo $HOME")
        // $ID is undefined: it stays as written and is then an invalid number.
        #expect(d.contains { $0.message.contains("invalid number '$ID'") })
    }

    @Test func nulBytesAreRejectedAsBinary() {
        let fs = InMemoryFileSystem(bytes: ["k.conf": [0x76, 0x00, 0xFF, 0x7B]])
        let (_, sink) = ConfigLoader.load(path: "k.conf", configID: nil, fileSystem: fs, host: nil)
        #expect(sink.all.contains { $0.message.contains("NUL bytes") })
        #expect(sink.exitStatus == 5)
    }
}

@Suite struct SyntaxTests {
    @Test func braceOnItsOwnLineOpensThePreviousStatementsBlock() {
        let (config, d) = load("vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 9\n virtual_ipaddress\n {\n 1.2.3.4\n }\n}\n")
        #expect(problems(d).isEmpty)
        #expect(config.instances.first?.virtualRouterID == 9)
        #expect(config.instances.first?.virtualAddresses.count == 1)
    }

    @Test func missingCloseBraceNamesTheOpener() {
        let (_, d) = load("global_defs {\n router_id x\n")
        #expect(d.contains { $0.message.contains("missing '}'") && $0.message.contains("global_defs") && $0.location.line == 1 && $0.location.column == 13 })
    }

    @Test func extraCloseBrace() {
        let (_, d) = load("global_defs {\n}\n}\n")
        #expect(d.contains { $0.message.contains("unexpected '}'") && $0.location.line == 3 })
    }

    @Test func deepNestingIsBoundedNotARecursionCrash() {
        let text = String(repeating: "a {\n", count: 5000) + String(repeating: "}\n", count: 5000)
        let (_, d) = load(text)
        #expect(d.contains { $0.message.contains("nested more than") })
    }
}

/// keepalived's built-in definitions beside _PWD and _INSTANCE: $_HASH, $_BANG, ${_RANDOM}.
@Suite struct BuiltinDefinitionTests {
    static func config(seed: String) -> String {
        """
        global_defs {
            \(seed)
            router_id r${_RANDOM 5 9}
            notification_email_from a$_HASH$_BANG@example.com
            smtp_helo_name h$_RANDOM
        }
        """
    }

    @Test func randomHashAndBang() {
        for _ in 0..<20 {
            let (config, d) = load(Self.config(seed: ""))
            #expect(problems(d).isEmpty, "\(d)")
            let id = config.globals.routerID ?? ""
            #expect(["r5", "r6", "r7", "r8", "r9"].contains(id), "\(id)")
            #expect(config.globals.notificationEmailFrom == "a#!@example.com")
            #expect(Int(config.globals.smtpHeloName?.dropFirst() ?? "").map { (0...32767).contains($0) } == true)
        }
    }

    /// random_seed makes the values after it repeat from one load (a reload) to the next.
    @Test func aSeedRepeatsTheValues() {
        let first = load(Self.config(seed: "random_seed 42")).0.globals
        for _ in 0..<5 {
            let again = load(Self.config(seed: "random_seed 42")).0.globals
            #expect(again.routerID == first.routerID && again.smtpHeloName == first.smtpHeloName)
        }
        let (_, d) = load("global_defs {\n    random_seed x\n}\n")
        #expect(d.contains { $0.severity == .error && $0.message == "random_seed x invalid" })
        #expect(!d.contains { $0.message.contains("not acted on") })
    }
}
