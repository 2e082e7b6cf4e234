import Foundation
import Testing
@testable import VigilConfig

/// Every keyword Vigil accepts and does not act on is named, with its line, without -D; the
/// exit status stays keepalived's.
@Suite struct NotActedOnTests {
    static let config = """
    global_defs {
        vrrp_strict
        vrrp_garp_interval 0.001
        vrrp_mcast_group4 224.0.0.19
        enable_snmp_vrrp
    }
    static_routes {
        10.9.0.0/16 via 10.0.0.254
    }
    vrrp_instance VI_1 {
        interface eth0
        virtual_router_id 51
        priority 100
        use_vmac
        virtual_ipaddress {
            10.0.0.100/24
        }
        virtual_ipaddress_excluded {
            10.0.0.200/24
        }
        virtual_routes {
            10.8.0.0/16 via 10.0.0.254
        }
        track_file {
            state_file weight 10
        }
    }
    """

    @Test func eachIsWarnedByNameAndLine() {
        let (_, d) = load(Self.config)
        let gaps = d.filter { $0.message.contains("is not acted on by Vigil yet") }
        let named = gaps.map { "\($0.location.line):\($0.message.components(separatedBy: "'")[1])" }
        #expect(named == ["2:vrrp_strict", "3:vrrp_garp_interval", "5:enable_snmp_vrrp",
                          "7:static_routes", "14:use_vmac", "21:virtual_routes", "24:track_file"], "in the order of the file")
        #expect(gaps.allSatisfy { $0.severity == .warning && $0.klass == .note }, "printed without -D, exit status unchanged")
        #expect(gaps.contains { $0.message == "(VI_1) 'use_vmac' is not acted on by Vigil yet: no VMAC interface is made: adverts and gratuitous ARPs carry the interface's own MAC" })
        #expect(!gaps.contains { $0.message.contains("virtual_ipaddress_excluded") || $0.message.contains("vrrp_mcast_group4") }, "acted on")
    }

    @Test func theExitStatusIsUnchanged() {
        let (_, with) = load(Self.config)
        var sink = DiagnosticSink()
        sink.append(contentsOf: with)
        let gapsOnly = with.filter { !$0.message.contains("is not acted on") }
        var without = DiagnosticSink()
        without.append(contentsOf: gapsOnly)
        #expect(sink.exitStatus == without.exitStatus)
    }

    @Test func settingsThatChangeNothingAreNotWarned() {
        let (_, d) = load("""
        global_defs {
            vrrp_mcast_group4 224.0.0.18
            vrrp_strict off
            vrrp_startup_delay 0
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            strict_mode off
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        """)
        #expect(!d.contains { $0.message.contains("is not acted on") }, "\(d.map(\.description))")
    }

    /// keepalived moves what an advert cannot hold to the excluded list: 255 IPv4 addresses,
    /// 89 IPv6 ones on a 1,500-byte link.
    @Test(arguments: [(false, 300, 255), (true, 100, 89)])
    func vipsBeyondAnAdvertAreExcluded(ipv6: Bool, count: Int, capacity: Int) {
        let vips = (0..<count).map { ipv6 ? "fd00::\(String($0 + 1, radix: 16))/64" : "10.0.\($0 / 250).\($0 % 250 + 1)/16" }
        let (config, d) = load("""
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress {
                \(vips.joined(separator: "\n        "))
            }
            virtual_ipaddress_excluded {
                \(ipv6 ? "fd01::1/64" : "10.9.0.1/16")
            }
        }
        """)
        let i = config.instances[0]
        #expect(i.virtualAddresses.count == capacity)
        #expect(i.excludedAddresses.count == count - capacity + 1)
        #expect(i.excludedAddresses.first?.address.description == (ipv6 ? "fd01::1" : "10.9.0.1"), "configured ones first, the excess after")
        #expect(problems(d).contains { $0.message == "(VI_1) Number of VIPs (\(count)) exceeds maximum/space available in packet (max \(capacity) addresses) - excess moved to eVIPs" })
    }

    /// README's list is the one users read: every keyword that gets the warning is in it.
    @Test func readmeListsEveryKeywordNotActedOn() throws {
        let readme = try String(contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/README.md", encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Keywords Vigil does not act on yet").dropFirst().first)
            .components(separatedBy: "\n## ")[0]
        let all = Set(Interpreter.globalAccepted + Interpreter.topLevelAccepted + Interpreter.instanceAccepted
                      + Interpreter.syncGroupAccepted + Interpreter.virtualServerAccepted)
            .union(NotActedOn.modelledGlobals).union(NotActedOn.modelledInstance)
            .union(["static_ipaddress", "static_routes", "static_rules", "ha_suspend"])
        let missing = all.filter { !section.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "not in README: \(missing)")
    }
}
