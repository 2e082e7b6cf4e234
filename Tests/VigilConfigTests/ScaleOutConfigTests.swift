import Addressing
import Testing
@testable import VigilConfig

/// The keywords of active-active directors: keepalived's `lvs_sync_daemon` (its messages and
/// leniency), its mh flags (read against the scheduler already set), and Vigil's own
/// `vigil_announce`, `vigil_announce_table`, `vigil_announce_protocol`.
@Suite struct ScaleOutConfigTests {
    static let instance = """
    vrrp_instance VI_1 {
        interface eth0
        virtual_router_id 51
        priority 100
        virtual_ipaddress {
            10.0.0.100
        }
    }

    """

    static func service(_ lines: String, key: String = "10.0.0.100 80") -> String {
        """
        virtual_server \(key) {
            lb_algo mh
            lb_kind DR
            protocol TCP
            \(lines)
            real_server 10.0.1.1 80 {
            }
        }

        """
    }

    static func messages(_ d: [Diagnostic]) -> [String] { d.map(\.message) }

    @Test func syncDaemonWithEveryOption() {
        let (config, d) = load("global_defs {\n  lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 8850 ttl 2 group 239.1.2.3\n}\n" + Self.instance)
        #expect(problems(d).isEmpty, "\(d)")
        let sync = config.globals.lvsSyncDaemon
        #expect(sync?.interface == "eth1")
        #expect(sync?.instance == "VI_1")
        #expect(sync?.syncID == 7)
        #expect(sync?.maxLength == 1400)
        #expect(sync?.port == 8850)
        #expect(sync?.ttl == 2)
        #expect(sync?.group == IPAddress("239.1.2.3"))
    }

    @Test func syncDaemonBadOptionsAreReportedAndTheRestKept() {
        let (config, d) = load("global_defs {\n  lvs_sync_daemon eth1 id 300 ttl 0 group 10.0.0.1 port 9000 bogus\n}\n")
        let text = Self.messages(d)
        #expect(text.contains("Invalid syncid (300) - defaulting to vrid"))
        #expect(text.contains("Invalid lvs_sync_daemon ttl (0): expected 1...255 - ignoring"))
        #expect(text.contains("lvs_sync_daemon group address 10.0.0.1 is not multicast - ignoring"))
        #expect(text.contains("Unknown option bogus specified for lvs_sync_daemon"))
        #expect(config.globals.lvsSyncDaemon?.port == 9000)
        #expect(config.globals.lvsSyncDaemon?.syncID == nil)
    }

    @Test func syncDaemonOldFormAndUnknownInstance() {
        let (old, d1) = load("global_defs {\n  lvs_sync_daemon eth1 VI_1 5\n}\n" + Self.instance)
        #expect(old.globals.lvsSyncDaemon?.instance == "VI_1")
        #expect(old.globals.lvsSyncDaemon?.syncID == 5)
        #expect(Self.messages(d1).contains("Please use keyword \"id\" before lvs_sync_daemon SYNCID"))
        let (unknown, d2) = load("global_defs {\n  lvs_sync_daemon eth1 inst VI_9\n}\n" + Self.instance)
        #expect(unknown.globals.lvsSyncDaemon == nil)
        #expect(Self.messages(d2).contains("Unable to find vrrp instance VI_9 for lvs_syncd - clearing lvs_syncd config"))
    }

    @Test func theDeprecatedInstanceFormNamesItsInstance() {
        let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  lvs_sync_daemon_interface eth2\n  virtual_ipaddress {\n    10.0.0.100\n  }\n}\n"
        let (config, d) = load(text)
        #expect(config.globals.lvsSyncDaemon?.interface == "eth2")
        #expect(config.globals.lvsSyncDaemon?.instance == "VI_1")
        #expect(d.contains { $0.message.contains("deprecated") })
    }

    @Test func mhFlagsAreReadAgainstTheSchedulerSetSoFar() {
        let (config, d) = load(Self.service("mh-port\nmh-fallback"))
        #expect(problems(d).isEmpty, "\(d)")
        #expect(config.virtualServers[0].flags == ["mh-port", "mh-fallback"])
        // sh-port under mh: keepalived drops it silently; Vigil notes it and sets nothing.
        let (cross, d2) = load(Self.service("sh-port"))
        #expect(cross.virtualServers[0].flags.isEmpty)
        #expect(d2.contains { $0.klass == .note && $0.message.contains("did you mean 'mh-port'?") })
        // Before lvs_sched: keepalived's error, and the flag is not set.
        let early = "virtual_server 10.0.0.100 80 {\n  mh-port\n  lb_algo mh\n  lb_kind DR\n  protocol TCP\n  real_server 10.0.1.1 80 {\n  }\n}\n"
        let (before, d3) = load(early)
        #expect(before.virtualServers[0].flags.isEmpty)
        #expect(d3.contains { $0.severity == .error && $0.message.hasPrefix("mh-port only applies to sh scheduler - ignoring") })
    }

    @Test func announceDefaultsAndForms() {
        let (config, d) = load("global_defs {\n  vigil_announce_table 200\n  vigil_announce_protocol 99\n}\n" + Self.instance
                               + Self.service("vigil_announce\nvigil_announce 192.0.2.0/24 master VI_1"))
        #expect(problems(d).isEmpty, "\(d)")
        #expect(config.globals.announceTable == 200)
        #expect(config.globals.announceProtocol == 99)
        let lines = config.virtualServers[0].announcements
        #expect(lines.count == 2)
        #expect(lines[0].address == nil && lines[0].master == nil)
        #expect(lines[1].address == IPAddress("192.0.2.0") && lines[1].prefixLength == 24 && lines[1].master == "VI_1")
    }

    @Test func announceMistakesAreErrors() {
        let (_, d) = load("global_defs {\n  vigil_announce_table 254\n}\n" + Self.instance
                          + Self.service("vigil_announce master VI_2")
                          + Self.service("vigil_announce", key: "fwmark 3")
                          + Self.service("vigil_announce 10.0.0.300/32", key: "10.0.0.101 80"))
        let errors = d.filter { $0.severity == .error }.map(\.message)
        #expect(errors.contains { $0.contains("vigil_announce_table") && $0.contains("1...252") })
        #expect(errors.contains("vigil_announce: master 'VI_2' is neither a vrrp_instance nor a vrrp_sync_group: the route would never be announced"))
        #expect(errors.contains("vigil_announce in a fwmark virtual_server needs the address to announce"))
        #expect(errors.contains { $0.hasPrefix("invalid prefix '10.0.0.300/32' for vigil_announce") })
    }

    @Test func theDumpCarriesThemBack() {
        let text = "global_defs {\n  lvs_sync_daemon eth1 id 3\n  vigil_announce_table 200\n}\n" + Self.service("vigil_announce master VI_1") + Self.instance
        let (config, _) = load(text)
        let dumped = ConfigDumper.dump(config)
        let (again, d) = load(dumped)
        #expect(problems(d).isEmpty, "\(d)\n\(dumped)")
        #expect(again.globals.lvsSyncDaemon == config.globals.lvsSyncDaemon.map { var s = $0; s.location = again.globals.lvsSyncDaemon!.location; return s })
        #expect(again.globals.announceTable == 200)
        #expect(again.virtualServers[0].announcements.map(\.master) == ["VI_1"])
    }
}

