import Addressing
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
        use_ipvlan
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
        #expect(named == ["5:enable_snmp_vrrp",
                          "14:use_ipvlan"], "in the order of the file")
        #expect(gaps.allSatisfy { $0.severity == .warning && $0.klass == .note }, "printed without -D, exit status unchanged")
        #expect(gaps.contains { $0.message == "(VI_1) 'use_ipvlan' is not acted on by Vigil yet: no ipvlan interface is made: use use_vmac" })
        for acted in ["use_vmac", "vmac_xmit_base", "vmac_prefix", "virtual_ipaddress_excluded", "vrrp_mcast_group4", "virtual_routes", "static_routes", "track_file", "vrrp_garp_interval", "vrrp_strict"] {
            #expect(!gaps.contains { $0.message.contains("'\(acted)'") }, "\(acted) is acted on")
        }
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
                      + Interpreter.syncGroupAccepted + Interpreter.virtualServerAccepted + Interpreter.realServerAccepted)
            .union(NotActedOn.modelledGlobals).union(NotActedOn.modelledInstance)
            .union(["ha_suspend"])
        let missing = all.filter { !section.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "not in README: \(missing)")
        // And nothing Vigil acts on is still listed there: the first column's keywords.
        let listed = section.split(separator: "\n").filter { $0.hasPrefix("| `") }.flatMap { row in
            // The backquoted words of the first column.
            row.split(separator: "|")[0].split(separator: "`", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        #expect(!listed.isEmpty && listed.allSatisfy(all.contains), "acted on, yet listed: \(listed.filter { !all.contains($0) })")
    }
}

/// Route and rule lines as the kernel will get them, and the options Vigil does not act on.
@Suite struct RouteDefinitionTests {
    func route(_ line: String) -> (RouteDefinition?, [String]) {
        let (config, d) = load("static_routes {\n    \(line)\n}\n")
        return (config.staticRoutes.first?.route, d.filter { $0.message.contains("not acted on") }.map(\.message))
    }

    @Test func keepalivedsDefaultsAndOptions() {
        let (plain, _) = route("10.9.0.0/16 via 10.0.0.254 dev eth0")
        #expect(plain?.destination == IPAddress("10.9.0.0") && plain?.prefixLength == 16 && plain?.gateway == IPAddress("10.0.0.254"))
        #expect(plain?.table == 254 && plain?.protocolNumber == 18 && plain?.effectiveScope == 0)
        let (full, _) = route("src 10.0.0.1 to 10.8.0.0/16 via 10.0.0.254 dev eth0 table 100 metric 5 scope link mtu lock 1400 onlink")
        #expect(full?.source == IPAddress("10.0.0.1") && full?.table == 100 && full?.metric == 5 && full?.effectiveScope == 253)
        #expect(full?.mtu == 1400 && full?.onlink == true)
        let (hole, _) = route("blackhole 192.0.2.0/24 table main")
        #expect(hole?.type == 6 && hole?.table == 254)
        let (host, _) = route("10.7.0.1 dev eth0")
        #expect(host?.prefixLength == 32 && host?.effectiveScope == 0, "scope global unless given, as keepalived")
        let (six, _) = route("default via fd00::1 dev eth0")
        #expect(six?.family == .ipv6 && six?.destination == nil)
    }

    @Test func optionsVigilDoesNotActOnAreNamed() {
        let (withAdvmss, advmss) = route("10.9.0.0/16 via 10.0.0.254 dev eth0 advmss 1200")
        #expect(withAdvmss != nil && advmss == ["route option 'advmss' is not acted on by Vigil yet: the route is added without it"])
        let (multipath, nexthop) = route("10.9.0.0/16 nexthop via 10.0.0.1 dev eth0 nexthop via 10.0.0.2 dev eth0")
        #expect(multipath == nil && nexthop.first?.contains("'nexthop'") == true)
        let (named, table) = route("10.9.0.0/16 via 10.0.0.254 dev eth0 table isp2")
        #expect(named == nil && table.first?.contains("route table 'isp2'") == true)
        let (config, d) = load("static_rules {\n    from 10.0.0.1 table 100 priority 10 ipproto tcp\n}\n")
        #expect(config.staticRules.first?.rule == nil)
        #expect(d.contains { $0.message == "rule option 'ipproto' is not acted on by Vigil yet: the rule is not added" })
    }

    @Test func rules() {
        let (config, _) = load("static_rules {\n    from 10.0.0.0/24 to 192.0.2.1 fwmark 0x10/0xff iif eth0 table 100 priority 10\n    to fd00::/64 blackhole preference 11\n}\n")
        let first = config.staticRules.first?.rule
        #expect(first?.from?.address == IPAddress("10.0.0.0") && first?.from?.prefixLength == 24 && first?.to?.prefixLength == 32)
        #expect(first?.fwmark == 16 && first?.fwmask == 255 && first?.inputInterface == "eth0" && first?.table == 100 && first?.priority == 10)
        let second = config.staticRules.last?.rule
        #expect(second?.family == .ipv6 && second?.action == 6 && second?.priority == 11)
    }
}

@Suite struct TrackFileConfigTests {
    @Test func blocksAndReferences() {
        let (config, d) = load("""
        track_file maint {
            file "/run/maint"
            weight -5 reverse
            init_file 3 overwrite
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress {
                10.0.0.100/24
            }
            track_file {
                maint
                missing weight 2
            }
        }
        """)
        let file = config.trackFiles.first
        #expect(file?.path == "/run/maint" && file?.weight == -5 && file?.reverse == true && file?.initValue == 3 && file?.initOverwrite == true)
        #expect(config.instances[0].trackFiles.map(\.name) == ["maint"])
        #expect(problems(d).map(\.message) == ["(VI_1) track file missing not found, ignoring..."])
    }
}

/// vrrp_strict / strict_mode as keepalived 2.2.7 applies them (its messages, checked against
/// keepalived -t on the same file).
@Suite struct StrictModeTests {
    @Test func theForbiddenSettingsAreResetWithKeepalivedsWords() throws {
        let (config, d) = load("""
        global_defs {
            vrrp_strict
        }
        vrrp_instance VI_1 {
            state MASTER
            interface eth0
            virtual_router_id 51
            priority 100
            preempt_delay 5
            down_timer_adverts 5
            higher_prio_send_advert true
            authentication {
                auth_type PASS
                auth_pass 1111
            }
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            unicast_src_ip 10.0.0.1
            unicast_peer {
                10.0.0.2
            }
            virtual_ipaddress {
                10.0.0.101/24
            }
        }
        vrrp_instance VI_3 {
            interface eth0
            virtual_router_id 53
        }
        """)
        #expect(problems(d).map(\.message) == [
            "(VI_1) State MASTER must match being address owner",
            "(VI_1) Strict mode does not support authentication. Ignoring.",
            "(VI_1) preempt_delay is incompatible with strict mode - resetting",
            "(VI_1) down_timer_adverts is incompatible with strict mode - resetting",
            "(VI_1) strict mode requires higher_prio_send_advert to be clear. resetting",
            "(VI_2) Unicast peers are not supported in strict mode",
            "(VI_3) No VIP specified; at least one is required",
        ])
        #expect(config.instances.map(\.name) == ["VI_1"], "keepalived drops the other two")
        let i = try #require(config.instances.first)
        #expect(i.state == .backup && i.authType == nil && i.preemptDelay == 0 && i.downTimerAdverts == 3)
        #expect(i.lowerPrioNoAdvert == true && i.higherPrioSendAdvert == false && i.garp.lowerPrioRepeat == 0)
        #expect(d.contains { $0.klass == .note && $0.message.hasPrefix("(VI_1) no_accept: Vigil adds no firewall rules") })
    }

    @Test func offChangesNothing() {
        let (config, d) = load("""
        vrrp_instance VI_1 {
            state MASTER
            interface eth0
            virtual_router_id 51
            priority 100
            strict_mode off
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        """)
        #expect(problems(d).isEmpty && config.instances.first?.state == .master)
    }
}

/// Rule values that would otherwise match all traffic, or trap.
@Suite struct RuleValueTests {
    @Test(arguments: ["fwmark /", "fwmark 0x1g", "fwmark 1/zz", "fwmark 1/2/3", "priority many"])
    func invalidValuesAreErrorsAndTheRuleIsNotAdded(option: String) {
        let (config, d) = load("static_rules {\n    from 10.0.0.1 table 100 \(option)\n}\n")
        #expect(config.staticRules.first?.rule == nil)
        #expect(problems(d).contains { $0.message.hasPrefix("invalid rule \(option.split(separator: " ")[0])") }, "\(d.map(\.message))")
    }
}

/// --dump-conf carries the keywords acted on since, and parses back to the same dump.
@Suite struct KeywordDumpTests {
    @Test func theNewKeywordsRoundTrip() {
        let text = """
        global_defs {
            router_id lvs01
            notification_email {
                ops@example.com
            }
            smtp_server 10.0.0.25 2525
            smtp_helo_name lvs01.example.com
            smtp_alert
            no_email_faults
        }
        vrrp_track_process haproxy {
            process /usr/sbin/haproxy -f
            param_match partial
            weight -20 reverse
            quorum 2
            quorum_max 4
            fork_delay 1
            terminate_delay 2
        }
        track_file maint {
            file "/run/maint"
            weight -5
            init_file 1 overwrite
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            unicast_src_ip 10.0.0.1
            unicast_peer {
                10.0.0.2 min_ttl 250
            }
            check_unicast_src
            owner_ignore_adverts
            smtp_alert false
            virtual_ipaddress {
                10.0.0.100/24
            }
            track_process {
                haproxy weight 10
            }
            track_file {
                maint
            }
        }
        vrrp_sync_group G {
            group {
                VI_1
            }
            smtp_alert
        }
        """
        let (config, _) = load(text)
        let first = ConfigDumper.dump(config)
        let (again, d) = load(first)
        #expect(ConfigDumper.dump(again) == first, "\(first)")
        #expect(!d.contains { $0.message.contains("unknown") }, "\(d.map(\.message))")
        for expected in ["smtp_server 10.0.0.25 2525", "smtp_helo_name lvs01.example.com", "smtp_alert true", "no_email_faults",
                         "vrrp_track_process haproxy", "param_match partial", "quorum_max 4", "check_unicast_src",
                         "owner_ignore_adverts", "smtp_alert false", "track_process", "track_file maint", "init_file 1 overwrite"] {
            #expect(first.contains(expected), "\(expected) missing from\n\(first)")
        }
    }
}

/// keepalived does not let a sync group member (without sync_group_tracking_weight) or an
/// address owner float its priority: its words, checked against keepalived -t.
@Suite struct FixedPriorityTrackerTests {
    @Test func membersAndOwnersLoseTheirWeights() {
        let (config, d) = load("""
        vrrp_script chk {
            script "/bin/true"
            weight -10
        }
        track_file maint {
            file "/run/maint"
        }
        track_file heavy {
            file "/run/heavy"
            weight 5
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress {
                10.0.0.100/24
            }
            track_interface {
                eth1 weight 20
            }
            track_script {
                chk
            }
            track_file {
                maint
                heavy
            }
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            virtual_ipaddress {
                10.0.0.101/24
            }
        }
        vrrp_sync_group G {
            group {
                VI_1
                VI_2
            }
        }
        """)
        #expect(problems(d).map(\.message) == [
            "(VI_1) ignoring eth1 tracked interface weight due to SYNC group",
            "(VI_1) ignoring tracked script chk with weights due to SYNC group",
            "(VI_1) ignoring weight from tracked file maint due to SYNC group. specify weight 0",
            "(VI_1) ignoring tracked file heavy with weight 5 due to SYNC group",
        ])
        let i = config.instances[0]
        #expect(i.trackInterfaces.map(\.weight) == [0] && i.trackScripts.isEmpty && i.trackFiles.map(\.name) == ["maint"])
        #expect(i.trackFiles.first?.weight == 0)
    }
}

/// keepalived applies vrrp_strict and vrrp_version to every instance, even ones written before
/// the global_defs; Vigil completes instances as it reads them, so it says so, as a problem.
@Suite struct LateGlobalDefsTests {
    @Test func aLateStrictOrVersionIsAProblem() {
        let instance = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n"
        for setting in ["vrrp_strict", "vrrp_version 3"] {
            let (_, late) = load(instance + "global_defs {\n    \(setting)\n}\n")
            let keyword = setting.split(separator: " ")[0]
            #expect(late.contains { $0.klass == .general && $0.message.hasPrefix("\(keyword) comes after vrrp_instance VI_1") }, "\(late.map(\.message))")
            let (_, early) = load("global_defs {\n    \(setting)\n}\n" + instance)
            #expect(!early.contains { $0.message.contains("comes after vrrp_instance") })
        }
    }
}
