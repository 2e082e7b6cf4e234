import Testing
import VigilTestSupport
import Addressing
@testable import VigilConfig

@Suite struct GlobalDefsTests {
    /// The suggestion's distance against a plain Levenshtein table, and the suggestion itself,
    /// for case, lengths and non-ASCII candidates (the rows are reused between candidates).
    @Test func suggestionsFollowTheEditDistance() {
        func plain(_ a: [Character], _ b: [Character]) -> Int {
            var d = (0...b.count).map { $0 }
            for i in 1...max(1, a.count) where !a.isEmpty {
                var row = [i] + [Int](repeating: 0, count: b.count)
                for j in stride(from: 1, through: b.count, by: 1) {
                    row[j] = min(d[j] + 1, row[j - 1] + 1, d[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                d = row
            }
            return d[b.count]
        }
        for (a, b) in [("kitten", "sitting"), ("", "abc"), ("abc", ""), ("router_id", "routr_id"), ("a", "a"), ("advert_int", "priority")] {
            #expect(editDistance(a, b) == plain(Array(a), Array(b)), "\(a) / \(b)")
        }
        #expect(editDistance("advert_int", "priority", cutoff: 2) == 3)
        // The band against the whole table, for every cutoff, on words of all lengths.
        var rng = SeededRandom(seed: 11)
        for _ in 0..<300 {
            let a = (0..<Int(rng.next() % 9)).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 3))) }
            let b = (0..<Int(rng.next() % 9)).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 3))) }
            let exact = plain(a, b)
            for cutoff in 0...9 {
                #expect(editDistance(String(a), String(b), cutoff: cutoff) == (exact <= cutoff ? exact : cutoff + 1), "\(String(a)) / \(String(b)) cutoff \(cutoff)")
            }
        }
        #expect(nearest("ROUTR_ID", in: ["vrrp_strict", "router_id", "notification_email"]) == "router_id")
        #expect(nearest("Größe", in: ["kitten", "GRÖSSE"]) == "GRÖSSE")
        #expect(nearest("zzzzzzzz", in: ["router_id"]) == nil)
        #expect(nearest("router_id", in: ["router_id"]) == nil)
    }

    /// keepalived's notify FIFOs: each kind once, its script with it; keepalived's messages.
    @Test func notifyFIFOs() {
        let (config, d) = load("""
        global_defs {
            notify_fifo /run/k.fifo
            notify_fifo_script "/etc/keepalived/fifo.sh" nobody nogroup
            vrrp_notify_fifo /run/v.fifo nobody
            vrrp_notify_fifo /run/v2.fifo
            lvs_notify_fifo_script /etc/keepalived/lvs.sh
            lvs_notify_fifo
            fifo_write_vrrp_states_on_reload
            vrrp_notify_priority_changes
        }
        vrrp_sync_group G1 {
            group {
                VI_1
            }
            notify_priority_changes false
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 1
            priority 100
            notify_priority_changes
            virtual_ipaddress {
                10.0.0.100
            }
        }
        """)
        let g = config.globals
        #expect(g.notifyFIFOs[.all]?.path == "/run/k.fifo")
        #expect(g.notifyFIFOs[.all]?.script?.command == "/etc/keepalived/fifo.sh")
        #expect(g.notifyFIFOs[.all]?.script?.user?.user == "nobody")
        #expect(g.notifyFIFOs[.vrrp]?.path == "/run/v.fifo" && g.notifyFIFOs[.vrrp]?.owner?.user == "nobody")
        // A script without its FIFO is not run, as in keepalived, and said.
        #expect(g.notifyFIFOs[.lvs] == nil)
        #expect(g.fifoWriteStatesOnReload && g.notifyPriorityChanges)
        #expect(config.syncGroups.first?.notifyPriorityChanges == false)
        #expect(config.instances.first?.notifyPriorityChanges == true)
        let messages = d.map(\.description)
        #expect(messages.contains { $0.hasSuffix(":5:5: error: vrrp_notify_fifo already specified - ignoring /run/v2.fifo") })
        #expect(messages.contains { $0.hasSuffix(":7:5: error: No lvs_notify_fifo name specified") })
        #expect(messages.contains { $0.hasSuffix(":6:5: warning: lvs_notify_fifo_script without lvs_notify_fifo: the script is not run (keepalived starts it only with its FIFO)") })
        // None of them is warned about as not acted on, and the dump reads back the same.
        #expect(!messages.contains { $0.contains("not acted on") })
        let dumped = ConfigDumper.dump(config)
        #expect(dumped.contains("notify_fifo \"/run/k.fifo\"\n"))
        #expect(dumped.contains("notify_fifo_script \"/etc/keepalived/fifo.sh\" nobody nogroup\n"))
        let (again, _) = load(dumped)
        #expect(ConfigDumper.dump(again) == dumped)
    }

    /// keepalived's `umask`: numbers as strtol reads them, bits joined by `|`, its messages.
    @Test func fileCreationMask() {
        for (text, mask) in [("0022", 0o022), ("0x12", 0o022), ("18", 0o022), ("IWGRP|IWOTH", 0o022), ("IWGRP | IWOTH", 0o022), ("00", 0)] {
            let (config, d) = load("global_defs {\n    umask \(text)\n}\n")
            #expect(config.globals.umask == UInt32(mask), "\(text)")
            #expect(problems(d).isEmpty, "\(text): \(d)")
        }
        for (text, message) in [("0999", "invalid umask value 0999"), ("01000", "invalid umask value 01000"),
                                ("022 7", "Extra parameter(s) to umask option"), ("IWGRP IWOTH", "Invalid umask syntax IWOTH"),
                                ("IWGRP|", "umask missing bit value"), ("IWXYZ", "Unknown umask bit IWXYZ")] {
            let (config, d) = load("global_defs {\n    umask \(text)\n}\n")
            #expect(config.globals.umask == nil, "\(text)")
            #expect(d.contains { $0.severity == .error && $0.message == message }, "\(text): \(d.map(\.message))")
        }
    }

    /// startup_script / shutdown_script: once each, timeouts 1...1000 s, keepalived's messages.
    @Test func startupAndShutdownScripts() {
        let (config, d) = load("""
        global_defs {
            startup_script "/etc/keepalived/up.sh" nobody
            startup_script /etc/keepalived/other.sh
            startup_script_timeout 30
            shutdown_script /etc/keepalived/down.sh
            shutdown_script_timeout 0
            shutdown_script_timeout
        }
        """)
        #expect(config.globals.startupScript?.command == "/etc/keepalived/up.sh")
        #expect(config.globals.startupScript?.user?.user == "nobody")
        #expect(config.globals.startupScriptTimeout == 30_000_000)
        #expect(config.globals.shutdownScript?.command == "/etc/keepalived/down.sh")
        #expect(config.globals.shutdownScriptTimeout == 10_000_000)
        let messages = d.map(\.message)
        #expect(messages.contains("startup script already specified"))
        #expect(messages.contains("shutdown_script_timeout '0' must be in [1, 1000] - ignoring"))
        #expect(messages.contains("shutdown_script_timeout requires value"))
        #expect(!messages.contains { $0.contains("not acted on") })
    }

    /// mcast_dst_ip and the unicast keywords without peers, with keepalived's messages.
    @Test func multicastDestinationAndUnicastWithoutPeers() {
        func instance(_ extra: String, vip: String = "10.0.0.100") -> (VRRPInstance?, [String]) {
            let (config, d) = load("""
            vrrp_instance VI_1 {
                interface eth0
                virtual_router_id 1
                priority 100
                \(extra)
                virtual_ipaddress {
                    \(vip)
                }
            }
            """)
            return (config.instances.first, d.map(\.message))
        }
        #expect(instance("mcast_dst_ip 224.0.0.19").0?.multicastDestination == IPAddress("224.0.0.19"))
        #expect(instance("mcast_dst_ip ff02::13", vip: "fe80::100").0?.multicastDestination == IPAddress("ff02::13"))
        #expect(instance("mcast_dst_ip 10.0.0.1").1.contains("(VI_1) mcast_dst_ip 10.0.0.1 not multicast. Skipping..."))
        #expect(instance("mcast_dst_ip ff05::12", vip: "fe80::100").1.contains("(VI_1) mcast_dst_ip ff05::12 not link-local multicast. Skipping..."))
        #expect(instance("mcast_dst_ip 224.0.0.x").1.contains("(VI_1) malformed mcast dest address 224.0.0.x. Skipping..."))
        #expect(instance("mcast_dst_ip ff02::13").1.contains("(VI_1) mcast dest address ff02::13 MUST match VRRP instance family. Skipping..."))
        let (unicast, messages) = instance("mcast_dst_ip 224.0.0.19\n    unicast_peer {\n        10.0.0.2\n    }")
        #expect(unicast?.multicastDestination == nil && messages.contains("(VI_1) multicast destination specified with unicast - ignoring"))
        let deprecated = "(VI_1) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."
        #expect(instance("unicast_src_ip 10.0.0.1").1.contains(deprecated))
        #expect(instance("old_unicast_checksum").0?.oldUnicastChecksum == .always)
        #expect(instance("old_unicast_checksum never").0?.oldUnicastChecksum == .never)
        #expect(instance("old_unicast_checksum sometimes").1.contains("(VI_1) Unknown old_unicast_chksum mode sometimes - ignoring"))
        let (faulting, quiet) = instance("unicast_src_ip 10.0.0.1\n    unicast_fault_no_peer")
        #expect(faulting?.unicastFaultNoPeer == true && !quiet.contains(deprecated) && !quiet.contains { $0.contains("not acted on") })
    }

    @Test func keywordsAndDefaults() {
        let (config, d) = load("""
        global_defs {
            router_id lvs01
            notification_email {
                ops@example.com
            }
            enable_script_security
            script_user nobody nogroup
            vrrp_garp_master_delay 2
            vrrp_garp_master_repeat 3
            vrrp_version 3
            vrrp_mcast_group4 224.0.0.19
        }
        """)
        #expect(problems(d).isEmpty)
        let g = config.globals
        #expect(g.routerID == "lvs01")
        #expect(g.notificationEmail == ["ops@example.com"])
        #expect(g.enableScriptSecurity)
        #expect(g.scriptUser?.user == "nobody" && g.scriptUser?.group == "nogroup")
        #expect(g.garp.masterDelay == 2_000_000 && g.garp.masterRepeat == 3)
        #expect(g.vrrpVersion == 3)
        #expect(g.vrrpMcastGroup4.description == "224.0.0.19")
        let (defaults, _) = load("global_defs {\n}\n")
        #expect(defaults.globals.garp.masterDelay == 5_000_000 && defaults.globals.garp.masterRepeat == 5)
        #expect(defaults.globals.vrrpVersion == 2)
    }

    @Test func garpIntervalZeroIsRejectedAsKeepalivedDoes() {
        let (_, d) = load("global_defs {\n vrrp_garp_interval 0\n}\n")
        #expect(d.contains { $0.message.contains("out of range") && $0.location.line == 2 && $0.location.column == 21 })
    }

    @Test func unknownKeywordSuggestsTheNearest() {
        let (_, d) = load("global_defs {\n  routr_id x\n}\n")
        let error = d.first { $0.severity == .error }
        #expect(error?.suggestion == "router_id")
        #expect(error?.description == "etc/keepalived.conf:2:3: error: unknown keyword 'routr_id' in global_defs; did you mean 'router_id'?")
    }

    /// A keyword far longer than any candidate is not compared with each (the fuzzer's 200 KB
    /// word cost 38 s of edit distances); nearby typos still find their keyword.
    @Test func aHugeUnknownWordGetsNoSuggestionAndTyposStillDo() {
        let (_, d) = load("global_defs {\n  \(String(repeating: "x", count: 200_000)) 1\n  router_idd x\n  vrrp_garp_intreval 5\n}\n")
        let errors = d.filter { $0.severity == .error }
        #expect(errors.count == 3 && errors[0].suggestion == nil)
        #expect(errors[1].suggestion == "router_id" && errors[2].suggestion == "vrrp_garp_interval")
    }
}

@Suite struct InstanceTests {
    static let lvs01 = """
    vrrp_script chk_haproxy {
        script "/etc/keepalived/check_haproxy.sh"
        interval 1
        weight -10
        fall 2
        rise 2
    }
    vrrp_instance VI_1 {
        state BACKUP
        interface eth0
        virtual_router_id 77
        priority 100
        nopreempt
        advert_int 1
        authentication {
            auth_type PASS
            auth_pass 11111
        }
        virtual_ipaddress {
            172.16.10.40/24 dev eth0 label eth0:1 scope global brd 172.16.10.255
            fe80::1
        }
        unicast_src_ip 172.16.10.41
        unicast_peer {
            172.16.10.42 min_ttl 250
        }
        track_script {
            chk_haproxy weight -20
        }
        track_interface {
            eth1 weight 5 reverse
        }
        notify "/usr/local/bin/notify.sh" root
    }
    """

    @Test func everyKeywordLandsInTheModel() {
        let (config, d) = load(Self.lvs01)
        let i = config.instances[0]
        #expect(i.state == .backup && i.interface == "eth0" && i.virtualRouterID == 77 && i.priority == 100)
        #expect(i.nopreempt && i.advertInterval == 1_000_000)
        #expect(i.authType == .pass && i.authPass == "11111")
        #expect(i.virtualAddresses[0].prefixLength == 24 && i.virtualAddresses[0].label == "eth0:1")
        #expect(i.virtualAddresses[0].broadcast == "172.16.10.255" && i.virtualAddresses[0].scope == "global")
        #expect(i.unicastPeers == [UnicastPeer(address: IPAddress("172.16.10.42")!, minTTL: 250, maxTTL: nil)])
        #expect(i.trackScripts.map(\.name) == ["chk_haproxy"] && i.trackScripts[0].weight == -20)
        #expect(i.trackInterfaces[0].weight == 5 && i.trackInterfaces[0].reverse)
        #expect(i.notify.generic?.user?.user == "root")
        #expect(config.scripts[0].weight == -10 && config.scripts[0].fall == 2 && config.scripts[0].timeout == nil)
        // fe80::1 mixes families with the IPv4 VIP.
        #expect(problems(d).map(\.message).filter { $0.contains("mixes IPv4 and IPv6") }.count == 1)
    }

    @Test func masterWithoutPriorityBecomesOwner() {
        let (config, _) = load("vrrp_instance A {\n interface eth0\n state MASTER\n virtual_router_id 1\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        #expect(config.instances[0].effectivePriority == 255)
        let (backup, _) = load("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 255\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        #expect(backup.instances[0].effectiveState == .master)
    }

    @Test func keepalivedCompletionRules() {
        let (config, d) = load("""
        vrrp_instance A {
            interface eth0
            state MASTER
            priority 100
            nopreempt
            advert_int 1.5
            virtual_router_id 300
            authentication {
                auth_type PASS
                auth_pass 1234567890
            }
        }
        """)
        let i = config.instances[0]
        #expect(!i.nopreempt)
        #expect(i.advertInterval == 2_000_000)
        #expect(i.authPass == "12345678")
        let messages = problems(d).map(\.message)
        #expect(messages.contains { $0.contains("nopreempt will not work with initial state MASTER") })
        #expect(messages.contains { $0.contains("must be a whole number of seconds") })
        #expect(messages.contains { $0.contains("'virtual_router_id' 300 is out of range") })
        #expect(messages.contains { $0.contains("virtual_router_id is not set") })
        #expect(messages.contains { $0.contains("only its first 8 are used") })
        #expect(!messages.contains { $0.contains("12345678") }, "the password is never echoed")
        #expect(messages.contains { $0.contains("no virtual_ipaddress") })
    }

    @Test func version3DropsAuthenticationAndKeepsCentiseconds() {
        let (config, d) = load("vrrp_instance A {\n interface eth0\n version 3\n virtual_router_id 1\n advert_int 0.123\n authentication {\n auth_type PASS\n auth_pass x\n }\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        #expect(config.instances[0].authType == nil)
        #expect(config.instances[0].advertInterval == 120_000)
        #expect(d.contains { $0.message.contains("does not support authentication") })
    }

    @Test func missingParameterIsAnOrdinaryErrorAndTheRestIsStillChecked() {
        let (_, d) = load("vrrp_instance A {\n interface eth0\n virtual_router_id\n prority 3\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        let errors = d.filter { $0.severity == .error }
        #expect(errors.count == 3)
        #expect(errors[0].message == "'virtual_router_id' is missing its parameter: expected an integer in 1...255")
        #expect(errors[0].location.line == 3 && errors[0].location.column == 19)
        #expect(errors[1].suggestion == "priority")
    }

    @Test func stateTypoSuggestsTheState() {
        let (_, d) = load("vrrp_instance A {\n interface eth0\n state MASTR\n virtual_router_id 1\n virtual_ipaddress { 1.1.1.1 }\n}\n")
        #expect(d.contains { $0.suggestion == "MASTER" && $0.location.column == 8 })
    }

    @Test func badAddressOptions() {
        let (_, d) = load("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 1.1.1.1/33 lable x\n 1.1.1.\n }\n}\n")
        let messages = problems(d).map(\.description)
        #expect(messages.contains { $0.hasPrefix("etc/keepalived.conf:5:2: error: invalid prefix length") })
        #expect(messages.contains { $0.hasPrefix("etc/keepalived.conf:5:13: error: unknown option 'lable'") && $0.hasSuffix("did you mean 'label'?") })
        #expect(messages.contains { $0.hasPrefix("etc/keepalived.conf:6:2: error: invalid IP address '1.1.1.'") })
    }
}

@Suite struct CrossReferenceTests {
    @Test func unknownTrackScriptDuplicateVRIDAndSyncGroups() {
        let (config, d) = load("""
        vrrp_script chk { script /bin/true }
        vrrp_instance A { interface eth0
          virtual_router_id 7
          virtual_ipaddress { 1.1.1.1 }
          track_script { chkk }
        }
        vrrp_instance B { interface eth0
          virtual_router_id 7
          virtual_ipaddress { 1.1.1.2 }
        }
        vrrp_sync_group G { group { A C } }
        vrrp_sync_group H { group { A B } }
        """)
        let messages = problems(d).map(\.message)
        #expect(config.instances[0].trackScripts.isEmpty)
        #expect(d.contains { $0.message.contains("track_script 'chkk'") && $0.suggestion == "chk" })
        #expect(messages.contains { $0.contains("virtual_router_id 7 is already used on eth0 by vrrp_instance A") })
        #expect(messages.contains { $0.contains("'C' is not a vrrp_instance") })
        #expect(messages.contains { $0.contains("A is already in sync group G") })
        #expect(messages.contains { $0.contains("has only one member") })
    }
}

@Suite struct VirtualServerTests {
    static let dr = """
    virtual_server 192.168.0.14 80 {
        delay_loop 6
        lb_algo wlc
        lb_kind DR
        persistence_timeout 360
        protocol TCP
        real_server 192.168.0.21 80 {
            weight 2
            TCP_CHECK {
                connect_timeout 3
                retry 2
            }
        }
        real_server 192.168.0.22 80 {
            inhibit_on_failure
            TCP_CHECK {
                connect_port 8080
            }
        }
    }
    virtual_server fwmark 1 {
        lb_algo rr
        lb_kind DR
        real_server 192.168.0.21 0 { TCP_CHECK { connect_port 443 } }
    }
    """

    @Test func modelAndInheritance() {
        let (config, d) = load(Self.dr)
        #expect(problems(d).isEmpty)
        let vs = config.virtualServers[0]
        #expect(vs.key == .address(IPAddress("192.168.0.14")!, port: 80))
        #expect(vs.scheduler == "wlc" && vs.method == .dr && vs.persistenceTimeout == 360 && vs.proto == .tcp)
        #expect(vs.realServers[0].weight == 2 && vs.realServers[0].checkers[0].connectTimeout == 3_000_000)
        #expect(vs.realServers[1].inhibitOnFailure == true && vs.realServers[1].checkers[0].connectPort == 8080)
        #expect(config.virtualServers[1].key == .fwmark(1))
        let dump = ConfigDumper.dump(config)
        #expect(dump.contains("connect_timeout 5\n"))  // inherited default for the second RS
        #expect(dump.contains("delay_before_retry 1\n"))
        #expect(dump.contains("warmup 6\n"))
    }

    @Test func keepalivedDefaultsAreWarnedAbout() {
        let (config, d) = load("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 { TCP_CHECK { } }\n}\nvirtual_server 10.0.0.1 81 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n}\n")
        let messages = problems(d).map(\.message)
        #expect(config.virtualServers.count == 1)
        #expect(config.virtualServers[0].proto == .udp)
        #expect(messages.contains { $0.contains("defaulting to UDP") })
        #expect(messages.contains { $0.contains("no lb_algo set") })
        #expect(messages.contains { $0.contains("no lb_kind set") })
        #expect(messages.contains { $0.contains("has no real_server") })
    }

    @Test func nbGetRetryIsOnlyForHTTPAndCheckerBlocksAreValidated() {
        let (_, d) = load("""
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_algo rrr
            lb_kind DR
            quorum 5
            real_server 10.0.0.2 80 {
                TCP_CHECK { nb_get_retry 3 }
                HTTP_GET {
                    url {
                        path /
                        digest xyz
                    }
                    nb_get_retry 2
                }
            }
        }
        """)
        let messages = problems(d)
        #expect(messages.contains { $0.suggestion == "rr" })
        #expect(messages.contains { $0.message.contains("accepted only in HTTP_GET/SSL_GET") })
        #expect(messages.contains { $0.message.contains("deprecated") && $0.severity == .warning })
        #expect(messages.contains { $0.message.contains("digest 'xyz' is not a 32-digit MD5") })
        #expect(messages.contains { $0.message.contains("quorum 5 is more than the total weight 1") })
    }
}
