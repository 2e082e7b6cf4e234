import Foundation
import Testing
@testable import VigilConfig

/// Issue 10's promise on every keyword of the keepalived reference (Tests/testdata/
/// keepalived-keywords.txt): `vigil -t` knows it in its block, and one Vigil does not act
/// on gets a warning that names it and its line.
@Suite struct KeywordCoverageTests {
    static let entries: [(scope: String, keyword: String)] = {
        let path = #filePath.components(separatedBy: "/Tests/")[0] + "/Tests/testdata/keepalived-keywords.txt"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 2 ? (String(words[0]), String(words[1])) : nil
        }
    }()

    /// The keyword on line 2 of a file, in its block, with one made-up argument.
    static func config(_ scope: String, _ line: String) -> String {
        let instance = "    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n"
        switch scope {
        case "top": return "\(line)\n"
        case "global_defs": return "global_defs {\n    \(line)\n}\n"
        case "vrrp_script": return "vrrp_script chk {\n    \(line)\n}\n"
        case "vrrp_instance": return "vrrp_instance VI_1 {\n    \(line)\n" + instance + "}\n"
        case "vrrp_sync_group": return "vrrp_sync_group G {\n    \(line)\n    group {\n        VI_1\n    }\n}\nvrrp_instance VI_1 {\n" + instance + "}\n"
        case "virtual_server": return "virtual_server 10.0.0.100 80 {\n    \(line)\n    protocol TCP\n    real_server 10.0.0.1 80 {\n    }\n}\n"
        case "real_server": return "virtual_server 10.0.0.100 80 {\n    protocol TCP\n    real_server 10.0.0.1 80 {\n        \(line)\n    }\n}\n"
        default: return "virtual_server 10.0.0.100 80 {\n    protocol TCP\n    real_server 10.0.0.1 80 {\n        \(scope) {\n            \(line)\n        }\n    }\n}\n"
        }
    }

    static func accepted(_ scope: String) -> Set<String> {
        switch scope {
        case "top": Set(Interpreter.topLevelAccepted)
        case "global_defs": Set(Interpreter.globalAccepted).union(NotActedOn.modelledGlobals)
        case "vrrp_instance": Set(Interpreter.instanceAccepted).union(NotActedOn.modelledInstance)
        case "vrrp_sync_group": Set(Interpreter.syncGroupAccepted)
        case "virtual_server": Set(Interpreter.virtualServerAccepted)
        case "real_server": Set(Interpreter.realServerAccepted)
        default: []
        }
    }

    @Test func theListIsThere() {
        #expect(Self.entries.count > 150, "\(Self.entries.count)")
    }

    @Test func eachIsKnownInItsBlockAndWarnedWhenNotActedOn() {
        for (scope, keyword) in Self.entries {
            let (_, diagnostics) = load(Self.config(scope, "\(keyword) 1"))
            let unknown = diagnostics.filter { $0.message.contains("unknown keyword '\(keyword)'") }
            #expect(unknown.isEmpty, "\(scope) \(keyword): \(unknown.map(\.message))")
            if Self.accepted(scope).contains(keyword) {
                let warned = diagnostics.contains { $0.location.line == 1 || $0.location.line == 2 || $0.location.line == 4 || $0.location.line == 5
                    ? $0.message.contains("'\(keyword)' is not acted on") : false }
                #expect(warned, "\(scope) \(keyword) is accepted, not acted on, and must say so: \(diagnostics.map(\.description))")
            }
        }
    }

    /// Keywords Vigil once accepted in a block where keepalived 2.2.7 does not know them
    /// (measured: `keepalived -t` says "Unknown keyword" and exits 5). Most are top-level
    /// keywords written inside global_defs or an instance; vrrp_ipsets and
    /// vrrp_delay_after_boot are not in Debian's build at all.
    static let unknownTo227: [(scope: String, keyword: String)] = [
        ("global_defs", "net_namespace"), ("global_defs", "net_namespace_ipvs"), ("global_defs", "namespace_with_ipsets"),
        ("global_defs", "instance"), ("global_defs", "use_pid_dir"), ("global_defs", "linkbeat_use_polling"),
        ("global_defs", "linkbeat_interfaces"), ("global_defs", "vrrp_track_process"), ("global_defs", "lvs_sync_daemon_interface"),
        ("global_defs", "vrrp_ipsets"), ("global_defs", "vrrp_delay_after_boot"),
        ("vrrp_instance", "interface_up_down_delays"), ("vrrp_instance", "garp_group"), ("vrrp_instance", "nftables_ipvs"),
        ("virtual_server", "nftables"),
    ]

    @Test func unknownWhereKeepalived227DoesNotKnowThem() {
        for (scope, keyword) in Self.unknownTo227 {
            let (_, diagnostics) = load(Self.config(scope, "\(keyword) 1"))
            #expect(diagnostics.contains { $0.severity == .error && $0.message.contains("unknown keyword '\(keyword)'") },
                    "\(scope) \(keyword): \(diagnostics.map(\.description))")
        }
        for keyword in ["net_namespace_ipvs", "instance", "use_pid_dir", "linkbeat_use_polling"] {
            let (_, diagnostics) = load(Self.config("top", "\(keyword) 1"))
            #expect(!diagnostics.contains { $0.message.contains("unknown keyword") }, "top level \(keyword) is keepalived's")
        }
    }
}
