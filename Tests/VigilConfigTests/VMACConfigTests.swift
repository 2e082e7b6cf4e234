import Testing
import Addressing
@testable import VigilConfig

/// keepalived's `use_vmac [NAME] [MAC]`, `vmac_xmit_base` and `vmac_prefix`, with its words
/// for what it ignores (vrrp_parser.c's vrrp_vmac_handler, vrrp_complete_instance).
@Suite struct VMACConfigTests {
    static func instance(_ lines: String, second: String = "", globals: String = "") -> (VRRPInstance?, [String]) {
        let (config, d) = load("""
        global_defs {
            \(globals)
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            \(lines)
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        \(second)
        """)
        return (config.instances.first, d.map(\.message))
    }

    @Test func nameAndMACInEitherOrder() {
        let (a, da) = Self.instance("use_vmac vmac1 02:11:22:33:44:55")
        #expect(a?.vmac == VMACSettings(name: "vmac1", mac: [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]), "\(da)")
        let (b, _) = Self.instance("use_vmac 2:11:22:33:44:5 vmac1")
        #expect(b?.vmac == VMACSettings(name: "vmac1", mac: [0x02, 0x11, 0x22, 0x33, 0x44, 0x05]))
        let (bare, _) = Self.instance("use_vmac")
        #expect(bare?.vmac == VMACSettings())
    }

    @Test func fiveOctetsTakeTheVRID() {
        for text in ["02:11:22:33:44", "02:11:22:33:44:"] {
            let (i, _) = Self.instance("use_vmac \(text)")
            #expect(i?.vmac?.macTakesVRID == true && i?.vmac?.mac?.prefix(5) == [0x02, 0x11, 0x22, 0x33, 0x44], "\(text)")
        }
    }

    @Test func whatKeepalivedIgnoresIsSaid() {
        let cases: [(String, String)] = [
            ("use_vmac 01:11:22:33:44:55", "VMAC MAC address is multicast 01:11:22:33:44:55 - ignoring"),
            ("use_vmac 00:00:5e:00:01:10", "VMAC MAC address not allowed to be RFC5798 address (00:00:5e:00:01:10) - ignoring"),
            ("use_vmac 02:11:22:33:44:55:66", "VMAC invalid MAC address 02:11:22:33:44:55:66 - ignored"),
            ("use_vmac 02:11:zz:33:44:55", "VMAC invalid MAC address 02:11:zz:33:44:55"),
            ("use_vmac a_name_far_too_long", "VMAC interface name 'a_name_far_too_long' too long or invalid characters - ignoring"),
            ("use_vmac a b", "VMAC interface name already specified"),
            ("use_vmac 02:00:00:00:00:01 02:00:00:00:00:02", "VMAC interface address already specified"),
        ]
        for (line, message) in cases {
            let (i, d) = Self.instance(line)
            #expect(d.contains(message), "\(line): \(d)")
            #expect(i?.vmac != nil, "use_vmac itself still holds")
        }
    }

    @Test func aNameTakenByAnEarlierInstanceIsIgnored() {
        let (config, d) = load("""
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            use_vmac vmac1
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            use_vmac vmac1
            virtual_ipaddress {
                10.0.0.101/24
            }
        }
        """)
        #expect(d.contains { $0.message == "(VI_2) VRRP instance VI_1 is already using vmac1 - ignoring name" })
        #expect(config.instances.map { $0.vmac?.name } == ["vmac1", nil])
    }

    @Test func transmitOnTheParent() {
        let (plain, _) = Self.instance("use_vmac\n vmac_xmit_base")
        #expect(plain?.vmacTransmitOnParent == true)
        let (alone, d) = Self.instance("vmac_xmit_base")
        #expect(alone?.vmacTransmitOnParent == false && d.contains("(VI_1) vmac_xmit_base is only valid with a vmac"))
        let (unicast, du) = Self.instance("use_vmac\n unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.2\n }")
        #expect(unicast?.vmacTransmitOnParent == true && du.contains("(VI_1) unicast with use_vmac requires vmac_xmit_base - setting"))
    }

    @Test func thePrefixAndTheDumpRoundTrip() {
        let (config, d) = load("""
        global_defs {
            vmac_prefix vm
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            use_vmac vmac1 02:11:22:33:44
            vmac_xmit_base
            virtual_ipaddress {
                10.0.0.100/24
            }
        }
        """)
        #expect(config.globals.vmacPrefix == "vm", "\(d.map(\.message))")
        let dumped = ConfigDumper.dump(config)
        #expect(dumped.contains("vmac_prefix vm") && dumped.contains("use_vmac vmac1 02:11:22:33:44") && dumped.contains("vmac_xmit_base"), "\(dumped)")
        let (again, _) = load(dumped)
        #expect(again.instances.first?.vmac == config.instances.first?.vmac && again.globals.vmacPrefix == "vm")
    }
}

/// `nftables [TABLE]` and `nftables_priority`: what asks for keepalived's no_accept drops.
@Suite struct NftablesConfigTests {
    @Test func theTableAndPriority() {
        let (plain, _) = load("global_defs {\n    nftables\n}\n")
        #expect(plain.globals.nftablesTable == "keepalived" && plain.globals.nftablesPriority == -1)
        let (named, d) = load("global_defs {\n    nftables lb_fw\n    nftables_priority -10\n    nftables other\n}\n")
        #expect(named.globals.nftablesTable == "lb_fw" && named.globals.nftablesPriority == -10)
        #expect(d.contains { $0.message == "nftables already specified - ignoring" })
        let (bad, db) = load("global_defs {\n    nftables \"a;b\"\n}\n")
        #expect(bad.globals.nftablesTable == nil && db.contains { $0.message.contains("not a plain name") })
        let dumped = ConfigDumper.dump(named)
        #expect(dumped.contains("nftables lb_fw") && dumped.contains("nftables_priority -10"))
    }

    @Test func noAcceptIsNotedOnlyWithoutNftables() {
        let instance = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n no_accept\n virtual_ipaddress {\n 10.0.0.100/24\n }\n}\n"
        let (_, without) = load(instance)
        #expect(without.contains { $0.message.hasPrefix("(VI_1) no_accept: Vigil adds no firewall rules unless global_defs says nftables") })
        let (_, with) = load("global_defs {\n nftables\n}\n" + instance)
        #expect(!with.contains { $0.message.contains("no_accept") || $0.message.contains("not acted on") }, "\(with.map(\.message))")
    }
}

extension NftablesConfigTests {
    @Test func aTableNameNftCannotReadIsRefused() {
        for name in ["1abc", "_x", "tablé"] {
            let (config, d) = load("global_defs {\n    nftables \(name)\n}\n")
            #expect(config.globals.nftablesTable == nil && d.contains { $0.message.contains("not a plain name") }, "\(name)")
        }
    }
}

/// keepalived's smtp_server NAME: resolved when the file is read (as keepalived's parser does);
/// a name that does not resolve is its "Invalid smtp server NAME PORT", a configuration problem.
@Suite struct SMTPServerNameTests {
    struct Resolving: HostProbe {
        func interfaceExists(_ name: String) -> Bool { true }
        func userExists(_ name: String) -> Bool { true }
        func groupExists(_ name: String) -> Bool { true }
        func fileStatus(_ path: String) -> FileStatus? { nil }
        var searchPath: [String] { [] }
        func resolveHost(_ name: String) -> IPAddress? { name == "mail.example.com" ? IPAddress("192.0.2.25") : nil }
    }

    static func load(server: String) -> (Configuration, [Diagnostic]) {
        let text = "global_defs {\n    smtp_server \(server)\n    notification_email {\n        a@example.com\n    }\n}\n"
        let (config, sink) = ConfigLoader.load(path: "k.conf", configID: nil, fileSystem: InMemoryFileSystem(["k.conf": text]), host: Resolving())
        return (config, sink.all)
    }

    @Test func aNameResolvesAndOneThatDoesNotIsAProblem() {
        let (named, d) = Self.load(server: "mail.example.com")
        #expect(named.globals.smtpServerAddress == IPAddress("192.0.2.25") && !d.contains { $0.message.contains("smtp") }, "\(d.map(\.message))")
        let (bad, db) = Self.load(server: "mail.invalid 2525")
        #expect(bad.globals.smtpServerAddress == nil)
        #expect(db.contains { $0.message == "Invalid smtp server mail.invalid 2525" && $0.klass == .general && $0.location.line == 2 })
        let (literal, _) = Self.load(server: "10.0.0.25")
        #expect(literal.globals.smtpServerAddress == IPAddress("10.0.0.25"))
    }

    @Test func theMachinesResolverFindsLocalhost() {
        let address = LocalHost().resolveHost("localhost")
        #expect(address == IPAddress("127.0.0.1") || address == IPAddress("::1"), "\(String(describing: address))")
    }
}
