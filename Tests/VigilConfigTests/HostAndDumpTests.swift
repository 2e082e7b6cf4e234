import Testing
@testable import VigilConfig

/// A host described in memory: which interfaces, users and files exist.
struct FakeHost: HostProbe {
    var interfaces: Set<String> = ["eth0"]
    var users: Set<String> = ["root", "nobody"]
    var groups: Set<String> = ["root", "nogroup"]
    var files: [String: FileStatus] = [
        "/": .init(isRegular: false, isDirectory: true, mode: 0o755, ownerUID: 0, ownerGID: 0),
        "/etc": .init(isRegular: false, isDirectory: true, mode: 0o755, ownerUID: 0, ownerGID: 0),
        "/etc/keepalived": .init(isRegular: false, isDirectory: true, mode: 0o755, ownerUID: 0, ownerGID: 0),
        "/etc/keepalived/ok.sh": .init(isRegular: true, isDirectory: false, mode: 0o755, ownerUID: 0, ownerGID: 0),
        "/etc/keepalived/noexec.sh": .init(isRegular: true, isDirectory: false, mode: 0o644, ownerUID: 0, ownerGID: 0),
        "/etc/keepalived/open.sh": .init(isRegular: true, isDirectory: false, mode: 0o777, ownerUID: 0, ownerGID: 0),
        "/bin/sh": .init(isRegular: true, isDirectory: false, mode: 0o755, ownerUID: 0, ownerGID: 0),
    ]
    func interfaceExists(_ name: String) -> Bool { interfaces.contains(name) }
    func userExists(_ name: String) -> Bool { users.contains(name) }
    func groupExists(_ name: String) -> Bool { groups.contains(name) }
    func fileStatus(_ path: String) -> FileStatus? { files[path] }
    var searchPath: [String] { ["/bin"] }
    var cpus: Int?
    var onlineCPUs: Int? { cpus }
    var loopbacks: Set<String> = ["lo"]
    func isLoopback(_ name: String) -> Bool { loopbacks.contains(name) }
}

/// keepalived refuses a loopback interface for VRRP (exit 5) and drops it, so the instance has
/// none: its daemon does not start (the spec builder then finds no interface). -t said nothing
/// before, and the daemon ran the instance on lo.
@Test func aLoopbackInterfaceIsRefused() {
    var host = FakeHost()
    host.interfaces.insert("lo")
    let (config, d) = load("vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 1\n    priority 100\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n", host: host)
    #expect(d.contains { $0.severity == .error && $0.message == "(VI_1) cannot use a loopback interface (lo) for vrrp - ignoring" })
    #expect(d.contains { $0.severity == .error && $0.message == "(VI_1) Unknown interface!" })
    #expect(config.instances.first?.interface == nil)
    let (_, fine) = load("vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    priority 100\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n", host: host)
    #expect(!fine.contains { $0.message.contains("loopback") })
}

@Suite struct HostCheckTests {
    static func config(security: Bool, user: String? = "root", script: String, extra: String = "") -> String {
        """
        global_defs {
            \(security ? "enable_script_security" : "")
            \(user.map { "script_user \($0)" } ?? "")
        }
        vrrp_script chk { script "\(script)" }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 1
            virtual_ipaddress { 10.0.0.1 }
            track_script { chk }
            \(extra)
        }
        """
    }

    func status(_ text: String, host: FakeHost = FakeHost()) -> (Int32, [Diagnostic]) {
        let (_, d) = load(text, host: host)
        var sink = DiagnosticSink()
        sink.append(contentsOf: d)
        return (sink.exitStatus, d)
    }

    @Test func cleanConfigExitsZero() {
        #expect(status(Self.config(security: true, script: "/etc/keepalived/ok.sh")).0 == 0)
    }

    @Test func scriptsWithoutSecurityAreExitSix() {
        #expect(status(Self.config(security: false, script: "/etc/keepalived/ok.sh")).0 == 6)
    }

    @Test func missingInterfaceIsExitFourWithItsLocation() {
        let (code, d) = status(Self.config(security: true, script: "/etc/keepalived/ok.sh", extra: "track_interface { eth9 }"))
        #expect(code == 4)
        #expect(d.contains { $0.message.contains("'eth9'") && $0.location.line == 11 })
    }

    @Test func missingNotExecutableAndInsecureScripts() {
        #expect(status(Self.config(security: true, script: "/etc/keepalived/none.sh")).1.contains { $0.message.contains("not found") && $0.klass == .general })
        #expect(status(Self.config(security: true, script: "/etc/keepalived/noexec.sh")).1.contains { $0.message.contains("not executable") })
        #expect(status(Self.config(security: true, script: "/etc/keepalived/open.sh")).1.contains { $0.message.contains("writable by a non-root user") })
        // Run as nobody, an open script is not a root escalation.
        #expect(status(Self.config(security: true, user: "nobody", script: "/etc/keepalived/open.sh")).0 == 0)
    }

    @Test func unknownScriptUserAndMissingDefaultUser() {
        #expect(status(Self.config(security: true, user: "ghost", script: "/etc/keepalived/ok.sh")).1.contains { $0.message.contains("script_user 'ghost' does not exist") })
        #expect(status(Self.config(security: true, user: nil, script: "/etc/keepalived/ok.sh")).1.contains { $0.message.contains("keepalived_script") })
    }

    @Test func shellSyntaxRunsThroughTheShell() {
        #expect(status(Self.config(security: true, script: "</dev/tcp/127.0.0.1/80")).0 == 0)
    }

    @Test func missingNotifyScriptIsLoudButKeepsKeepalivedsVerdict() {
        let (code, d) = status(Self.config(security: true, script: "/etc/keepalived/ok.sh", extra: "notify_master /etc/keepalived/gone.sh"))
        #expect(code == 0)
        #expect(d.contains { $0.severity == .warning && $0.message.contains("gone.sh") })
    }
}

@Suite struct DumpTests {
    /// `--dump-conf` output must parse back to the same dump: nothing lost, nothing invented.
    @Test(arguments: [InstanceTests.lvs01, VirtualServerTests.dr])
    func dumpRoundTrips(_ text: String) {
        let (config, _) = load(text)
        let first = ConfigDumper.dump(config)
        let (again, d) = load(first)
        #expect(ConfigDumper.dump(again) == first)
        #expect(!d.contains { $0.message.contains("unknown") })
    }

    @Test func dumpShowsDerivedDefaults() {
        let (config, _) = load("vrrp_instance A {\n interface eth0\n state MASTER\n virtual_router_id 1\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        let dump = ConfigDumper.dump(config)
        #expect(dump.contains("priority 255"))
        #expect(dump.contains("garp_master_repeat 5"))
        #expect(dump.contains("1.1.1.1/32"))
    }
}
