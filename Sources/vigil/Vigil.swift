@preconcurrency import Glibc
import ArgumentParser
import VigilConfig
import VigilDaemon
import VigilMetrics
import VigilStatus

/// The `vigil` command line: keepalived's options with keepalived's meanings, so that existing
/// unit files, scripts and muscle memory keep working.
struct Vigil: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "A keepalived-compatible VRRP and IPVS daemon.",
        discussion: """
            Reads keepalived.conf unchanged. `vigil -t` checks a configuration and exits 0 when it is \
            clean, 4 for a missing file or interface, 5 for any other error or warning, and 6 when \
            scripts are configured without enable_script_security, as `keepalived -t` does.
            """
    )

    @Option(name: [.customShort("f"), .customLong("use-file")], help: "Use the specified configuration file.")
    var useFile = "/etc/keepalived/keepalived.conf"

    @Flag(name: [.customShort("t"), .customLong("config-test")], help: "Check the configuration and exit (status 0, 4, 5 or 6).")
    var configTest = false

    @Option(name: .customLong("config-test-log"), help: ArgumentHelp("Write -t diagnostics to this file (keepalived's --config-test=FILE).", visibility: .hidden))
    var configTestLog: String?

    @Flag(name: .customLong("json"), help: "With -t: print the diagnostics as JSON on standard output.")
    var json = false

    @Flag(name: [.customShort("d"), .customLong("dump-conf")], help: "Print the effective configuration, defaults filled in, in keepalived syntax.")
    var dumpConf = false

    @Flag(name: [.customShort("n"), .customLong("dont-fork")], help: "Don't fork the daemon process.")
    var dontFork = false

    @Flag(name: [.customShort("l"), .customLong("log-console")], help: "Log messages to the console.")
    var logConsole = false

    @Flag(name: [.customShort("D"), .customLong("log-detail")], help: "Detailed log messages (with -t: also list accepted keywords Vigil does not act on).")
    var logDetail = false

    @Flag(name: [.customShort("P"), .customLong("vrrp")], help: "Only run the VRRP subsystem.")
    var vrrpOnly = false

    @Flag(name: [.customShort("C"), .customLong("check")], help: "Only run the health-checker (IPVS) subsystem.")
    var checkOnly = false

    @Option(name: [.customShort("p"), .customLong("pid")], help: "Use the specified pid file.")
    var pidFile: String?

    @Option(name: [.customShort("r"), .customLong("vrrp_pid")], help: "Accepted for compatibility: Vigil is a single process.")
    var vrrpPidFile: String?

    @Option(name: [.customShort("c"), .customLong("checkers_pid")], help: "Accepted for compatibility: Vigil is a single process.")
    var checkersPidFile: String?

    @Flag(name: [.customShort("V"), .customLong("dont-release-vrrp")], help: "Don't remove VRRP VIPs on daemon stop.")
    var dontReleaseVRRP = false

    @Flag(name: [.customShort("I"), .customLong("dont-release-ipvs")], help: "Don't remove IPVS topology on daemon stop.")
    var dontReleaseIPVS = false

    @Option(name: [.customShort("i"), .customLong("config-id")], help: "Use lines beginning @ID (and skip @^ID); default: the host name's first label.")
    var configID: String?

    @Flag(name: [.customShort("v"), .customLong("version")], help: "Display the version number.")
    var showVersion = false

    @Argument(help: ArgumentHelp("'status' (add --json for the JSON document) or 'reload': ask the running daemon through its control socket.", valueName: "command"))
    var command: String?

    @Option(name: [.customShort("u"), .customLong("umask")], help: ArgumentHelp("The file-creation mask (0177, 0x7f, 127), over global_defs' umask.", valueName: "MASK"))
    var umask: String?

    @Option(name: .customLong("control"), help: "The control socket (default \(ControlProtocol.defaultSocket), /run/vigil/NAMESPACE/vigil.sock under net_namespace, vigil_INSTANCE.sock under instance; 'none': no socket).")
    var controlPath: String?

    @Option(name: [.customShort("s"), .customLong("namespace")], help: "Run in this network namespace, over the file's net_namespace (with status and reload: ask the daemon running in it).")
    var namespace: String?

    @Option(name: .customLong("metrics"), help: "Serve Prometheus metrics on ADDR:PORT (e.g. :9165, 127.0.0.1:9165, [::]:9165).")
    var metricsListen: String?

    @Option(name: .customLong("signum"), help: ArgumentHelp("Print the number of the signal for a keepalived signal function (RELOAD, STOP, DATA, STATS, STATS_CLEAR, JSON) and exit.", valueName: "NAME"))
    var signum: String?

    mutating func run() throws {
        if let signum {
            // keepalived --signum: the number alone, or "Unknown sigfunc" and status 1.
            guard let signal = KeepalivedSignal(rawValue: signum) else {
                fputs("Unknown sigfunc \(signum)\n", stderr)
                throw ExitCode(1)
            }
            print(signal.number)
            return
        }
        if let metricsListen, MetricsListenAddress.parse(metricsListen) == nil {
            throw ValidationError("--metrics \(metricsListen): expected ADDR:PORT, [IPv6]:PORT or :PORT")
        }
        if showVersion {
            print("Vigil v\(vigilVersion) (keepalived 2.2.7 compatible configuration)")
            return
        }
        if let command {
            let request: String
            switch command {
            case "status": request = json ? "status json" : "status"
            case "reload": request = "reload"
            default: throw ValidationError("unknown command '\(command)': expected 'status' or 'reload'")
            }
            throw ExitCode(ControlClient.ask(request, socket: controlPath ?? Daemon.controlSocket(namespace: namespace, instance: nil)))
        }
        let id = configID ?? Self.hostConfigID()
        if configTest || dumpConf {
            // Daemon mode does not load the file here: vigild loads (and reports on) it anyway,
            // and a second parse of a large config doubled the start-up time.
            let (config, diagnostics) = ConfigLoader.load(path: useFile, configID: id, namespace: namespace, entersNamespace: true)
            if configTest { throw ExitCode(report(diagnostics, for: config)) }
            print(ConfigDumper.dump(config), terminator: "")
            _ = report(diagnostics, for: config)
            return
        }
        var mask: UInt32?
        if let umask {
            // keepalived's --umask: strtol with base 0, permission bits only.
            guard let value = parseCInteger(umask), value & ~0o777 == 0 else { throw ValidationError("Invalid --umask option \(umask)") }
            mask = UInt32(value)
        }
        var options = DaemonOptions(configPath: useFile, configID: id, logConsole: logConsole || dontFork && isatty(2) == 1,
                                    logDetail: logDetail, foreground: dontFork, pidFile: pidFile ?? "/run/vigil.pid",
                                    releaseVIPsOnStop: !dontReleaseVRRP, releaseIPVSOnStop: !dontReleaseIPVS,
                                    runVRRP: !checkOnly || vrrpOnly, runChecker: !vrrpOnly || checkOnly,
                                    controlPath: controlPath == "none" ? nil : controlPath, metricsListen: metricsListen)
        options.umask = mask
        options.pidFileGiven = pidFile != nil
        options.controlPathGiven = controlPath != nil
        options.namespace = namespace
        DaemonLaunch.exec(options)
    }

    /// Prints diagnostics (compiler style on stderr, or JSON on stdout) and returns the exit status.
    func report(_ diagnostics: DiagnosticSink, for config: Configuration) -> Int32 {
        var seen: Set<Diagnostic> = []
        let fileOrder = Dictionary(config.files.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let listed = diagnostics.all
            .filter { logDetail || $0.severity != .note || $0.message.contains("include") }
            .filter { seen.insert($0).inserted }
            .enumerated()
            .sorted { a, b in
                let fa = fileOrder[a.element.location.file] ?? -1, fb = fileOrder[b.element.location.file] ?? -1
                if fa != fb { return fa < fb }
                if a.element.location.line != b.element.location.line { return a.element.location.line < b.element.location.line }
                if a.element.location.column != b.element.location.column { return a.element.location.column < b.element.location.column }
                return a.offset < b.offset
            }
            .map(\.element)
        let notes = listed
        let status = diagnostics.exitStatus
        if json {
            print(JSONReport.render(notes, status: status, file: useFile))
        } else {
            var text = notes.map(\.description).joined(separator: "\n")
            let errors = notes.filter { $0.severity == .error }.count
            let warnings = notes.filter { $0.severity == .warning }.count
            if errors + warnings > 0 {
                text += "\n\(useFile): \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")"
            }
            if !text.isEmpty {
                if let path = configTestLog, let file = fopen(path, "w") {
                    fputs(text + "\n", file)
                    fclose(file)
                } else {
                    printError(text)
                }
            }
        }
        return status
    }

    /// keepalived's default config id: the node name up to the first dot.
    static func hostConfigID() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return String(name.split(separator: ".").first ?? Substring(name))
    }
}

func printError(_ text: String) {
    fputs(text + "\n", stderr)
}

/// keepalived takes `--config-test=FILE` (an optional, attached argument), which
/// ArgumentParser cannot express: rewrite it before parsing.
func normalizedArguments(_ arguments: [String]) -> [String] {
    arguments.flatMap { argument -> [String] in
        if argument.hasPrefix("--config-test=") {
            return ["--config-test", "--config-test-log", String(argument.dropFirst("--config-test=".count))]
        }
        return [argument]
    }
}

@main
enum Entry {
    static func main() {
        UserDatabase.useFilesOnlyIfStatic()
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `vigil genhash ...`, or keepalived's `-T`/`--genhash` as the first option: genhash's
        // own options (-s, -p, -t, -V, ... mean other things to the daemon).
        if let first = arguments.first, ["genhash", "-T", "--genhash"].contains(first) {
            Genhash.main(Array(arguments.dropFirst()))
            return
        }
        Vigil.main(normalizedArguments(arguments))
    }
}
