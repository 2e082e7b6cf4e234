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

    @Test func optionsVigilCannotSetAreNamed() {
        let (withPref, pref) = route("fd99::/64 via fd00::1 dev eth0 pref high")
        #expect(withPref != nil && pref == ["route option 'pref' is not acted on by Vigil yet: the route is added without it"])
        let (encapsulated, encap) = route("10.9.0.0/16 encap mpls 200 via 10.0.0.1 dev eth0")
        #expect(encapsulated == nil && encap.first?.contains("'encap'") == true && encap.first?.contains("not added") == true)
        let (config, d) = load("static_rules {\n    from 10.0.0.1 table 100 priority 10 uidrange 100-200\n}\n")
        #expect(config.staticRules.first?.rule == nil)
        #expect(d.contains { $0.message == "rule option 'uidrange' is not acted on by Vigil yet: the rule is not added" })
    }

    @Test func metricsTosRealmsAndSourcePrefixAsKeepalivedSendsThem() {
        let (r, notes) = route("10.9.0.0/16 via 10.0.0.254 dev eth0 advmss lock 1200 rtt 300ms rttvar 0.5s rto_min 100 window 65535 cwnd 10 ssthresh lock 20 reordering 5 hoplimit 9 initcwnd 12 initrwnd 14 quickack 1 fastopen_no_cookie 1 features ecn tos 0x10 realms 3/4 ttl-propagate disabled")
        #expect(notes.isEmpty, "\(notes)")
        #expect(r?.metrics == [1: 1 << 8 | 1 << 6, 8: 1200, 4: 2400, 5: 2000, 13: 200, 3: 65535, 7: 10, 6: 20, 9: 5, 10: 9,
                               11: 12, 14: 14, 15: 1, 17: 1, 12: 1], "rtt in 1/8 ms, rttvar 1/4 ms; a raw rto_min below 200 ms held at 200")
        #expect(r?.tos == 16 && r?.realms == 3 << 16 | 4 && r?.ttlPropagate == false)
        let (six, _) = route("fd99::/64 from fd00:1::/64 dev eth0")
        #expect(six?.sourcePrefix == IPAddress("fd00:1::") && six?.sourcePrefixLength == 64)
        let (v4from, _) = load("static_routes {\n    10.9.0.0/16 from 10.0.0.0/8 dev eth0\n}\n")
        #expect(v4from.staticRoutes.first?.route == nil, "from is IPv6 only, as keepalived says")
        let (slow, _) = route("10.9.0.0/16 dev eth0 rtt 200s")
        #expect(slow?.metrics[4].map(Int.init) == 960_000, "held at the kernel's 120 s")
        let (bad, d) = load("static_routes {\n    10.9.0.0/16 dev eth0 hoplimit 300\n}\n")
        #expect(bad.staticRoutes.first?.route == nil && d.contains { $0.message.contains("invalid route hoplimit '300'") })
    }

    @Test func multipathRoutes() throws {
        let (r, _) = route("10.9.0.0/16 nexthop via 10.0.0.1 dev eth0 weight 2 nexthop via 10.0.0.2 dev eth1 onlink realms 7")
        let hops = try #require(r?.nexthops)
        #expect(hops.count == 2 && hops[0].gateway == IPAddress("10.0.0.1") && hops[0].device == "eth0" && hops[0].weight == 2)
        #expect(hops[1].gateway == IPAddress("10.0.0.2") && hops[1].device == "eth1" && hops[1].onlink && hops[1].realms == 7)
        let (old, d) = load("static_routes {\n    10.9.0.0/16 via 10.0.0.1 or 10.0.0.2 dev eth0\n}\n")
        let legacy = try #require(old.staticRoutes.first?.route)
        #expect(legacy.nexthops.map(\.gateway) == [IPAddress("10.0.0.1"), IPAddress("10.0.0.2")] && legacy.gateway == nil)
        #expect(d.contains { $0.message == "'or' in routes is deprecated: use 'nexthop'" })
        let (weightless, w) = load("static_routes {\n    10.9.0.0/16 nexthop via 10.0.0.1 dev eth0 weight 0\n}\n")
        #expect(weightless.staticRoutes.first?.route == nil && w.contains { $0.message.contains("Invalid weight 0") })
        let (trailing, t) = load("static_routes {\n    10.9.0.0/16 nexthop via 10.0.0.1 dev eth0 metric 5\n}\n")
        #expect(trailing.staticRoutes.first?.route == nil && t.contains { $0.message.contains("trailing nonsense after nexthops - metric") })
        #expect(!t.contains { $0.message.contains("unknown route option") }, "the hops are read once: \(t.map(\.message))")
    }

    @Test func namesFromIproute2AsKeepalivedReadsThem() {
        struct Host: HostProbe {
            func interfaceExists(_ name: String) -> Bool { true }
            func userExists(_ name: String) -> Bool { true }
            func groupExists(_ name: String) -> Bool { true }
            func fileStatus(_ path: String) -> FileStatus? { nil }
            var searchPath: [String] { [] }
            func iproute2File(_ name: String) -> String? {
                ["rt_tables": "255 local\n254 main\n0x64 isp2 # comment\nbad line here\n300\n 7 seven\n",
                 "rt_protos": "99 vigiltest\n", "rt_realms": "5 cust\n", "rt_dsfield": "0x28 AF11\n"][name]
            }
        }
        let text = "static_routes {\n    10.9.0.0/16 dev eth0 table isp2 tos AF11 realms cust/6 protocol vigiltest no_track\n    10.8.0.0/16 dev eth0 table seven\n    10.7.0.0/16 dev eth0 table nosuch\n}\nstatic_rules {\n    from 10.0.0.1 lookup isp2 priority 5\n}\n"
        let (config, d) = load(text, host: Host())
        let r = config.staticRoutes.map(\.route)
        #expect(r[0]?.table == 100 && r[0]?.tos == 0x28 && r[0]?.realms == 5 << 16 | 6 && r[0]?.protocolNumber == 99)
        #expect(r[1]?.table == 7 && r[2] == nil)
        #expect(d.contains { $0.message == "Routing table nosuch not found for route: the route is not added" && $0.location.line == 4 })
        #expect(config.staticRules.first?.rule?.table == 100)
        let (tracked, t) = load("static_routes {\n    10.9.0.0/16 dev eth0 protocol static\n}\n")
        #expect(tracked.staticRoutes.first?.route?.protocolNumber == 18)
        #expect(t.contains { $0.message == "Route cannot be tracked if protocol is not RTPROT_KEEPALIVED(18), resetting protocol" })
        let (unnamed, _) = load("static_routes {\n    10.9.0.0/16 dev eth0 table isp2\n}\n")
        #expect(unnamed.staticRoutes.first?.route == nil, "no host: only keepalived's built-in names")
    }

    @Test func ruleSelectorsAndActions() throws {
        let (config, d) = load("""
        static_rules {
            from 10.0.0.0/24 ipproto tcp sport 1000-2000 dport 80 tos 0x10 table 100 priority 10
            from 10.0.1.0/24 goto 50 priority 20
            iif eth0 l3mdev priority 30
            from 10.0.2.0/24 nop priority 40
            from 10.0.3.0/24 goto 5 priority 60
            from 10.0.4.0/24 priority 70
            from 10.0.5.0/24 table 100 blackhole priority 80
        }
        """)
        let rules = config.staticRules.map(\.rule)
        #expect(rules[0]?.ipProtocol == 6 && rules[0]?.sourcePorts == 1000...2000 && rules[0]?.destinationPorts == 80...80 && rules[0]?.tos == 16)
        #expect(rules[1]?.action == 2 && rules[1]?.gotoTarget == 50)
        #expect(rules[2]?.l3mdev == true && rules[3]?.action == 3)
        #expect(rules[4] == nil && d.contains { $0.message.contains("preference 60 >= goto target 5") })
        #expect(rules[5] == nil && d.contains { $0.message == "No action specified for rule - ignoring" })
        #expect(rules[6] == nil && d.contains { $0.message.hasPrefix("Cannot specify more than one of table/nop/goto") })
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
