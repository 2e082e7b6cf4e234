@preconcurrency import Glibc
import Addressing
import Testing
import VigilSystem

/// Routes and rules through libnl-route, read back with iproute2 in a namespace of our own.
@Suite(.serialized) struct RouteManagerTests {
    @Test func routesOfEachKindAreAddedAndRemovedAsIpShowsThem() throws {
        let lab = try NetnsLab("route")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try RouteManager() }
        var viaGateway = RouteDefinition(family: .ipv4, destination: IPAddress("10.9.0.0"), prefixLength: 16)
        viaGateway.gateway = IPAddress("172.16.10.2")
        viaGateway.device = "va"
        viaGateway.table = 100
        viaGateway.metric = 7
        viaGateway.source = IPAddress("172.16.10.1")
        var blackhole = RouteDefinition(family: .ipv4, destination: IPAddress("192.0.2.0"), prefixLength: 24)
        blackhole.type = 6
        blackhole.table = 100
        var onLink = RouteDefinition(family: .ipv4, destination: nil, prefixLength: 0)
        onLink.device = "va"
        onLink.table = 100
        var v6 = RouteDefinition(family: .ipv6, destination: IPAddress("fd99::"), prefixLength: 64)
        v6.gateway = IPAddress("fd00:10::2")
        v6.device = "va"
        v6.table = 100
        v6.mtu = 1400
        for route in [viaGateway, blackhole, onLink, v6] { try lab.inside(lab.a) { try manager.add(route) } }
        let four = try Shell.run(["ip", "-n", lab.a, "-4", "route", "show", "table", "100"]).output
        #expect(four.contains("10.9.0.0/16 via 172.16.10.2 dev va proto keepalived src 172.16.10.1 metric 7"), "\(four)")
        #expect(four.contains("blackhole 192.0.2.0/24 proto keepalived"), "\(four)")
        #expect(four.contains("default dev va proto keepalived \n") || four.hasSuffix("default dev va proto keepalived"), "scope global, as keepalived: \(four)")
        let six = try Shell.run(["ip", "-n", lab.a, "-6", "route", "show", "table", "100"]).output
        #expect(six.contains("fd99::/64 via fd00:10::2 dev va proto keepalived") && six.contains("mtu 1400"), "\(six)")
        #expect(throws: RouteError.exists) { try lab.inside(lab.a) { try manager.add(viaGateway) } }
        for route in [viaGateway, blackhole, onLink, v6] { try lab.inside(lab.a) { try manager.remove(route) } }
        #expect(try Shell.run(["ip", "-n", lab.a, "route", "show", "table", "100"]).output.isEmpty)
        #expect(throws: RouteError.notFound) { try lab.inside(lab.a) { try manager.remove(blackhole) } }
        var missing = viaGateway
        missing.device = "nosuch0"
        #expect(throws: RouteError.noDevice("nosuch0")) { try lab.inside(lab.a) { try manager.add(missing) } }
    }

    /// Multipath, metrics with their locks, tos, realms and an IPv6 source prefix, each as
    /// iproute2 reads it back. This kernel has no VRF module: a `vrf` naming a link that is not
    /// a VRF is refused by name.
    @Test func everyRouteOptionVigilSetsReachesTheKernel() throws {
        let lab = try NetnsLab("routeopts")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try RouteManager() }
        var multipath = RouteDefinition(family: .ipv4, destination: IPAddress("10.9.0.0"), prefixLength: 16)
        multipath.table = 100
        var first = Nexthop(gateway: IPAddress("172.16.10.2"), device: "va")
        first.weight = 3
        var second = Nexthop(gateway: IPAddress("172.16.10.3"), device: "va")
        second.realms = 7
        multipath.nexthops = [first, second]
        var tuned = RouteDefinition(family: .ipv4, destination: IPAddress("10.8.0.0"), prefixLength: 16)
        tuned.table = 100
        tuned.gateway = IPAddress("172.16.10.2")
        tuned.device = "va"
        tuned.metrics = [1: 1 << 8, 8: 1200, 4: 2400, 3: 65535, 11: 12, 10: 9, 12: 1, 15: 1]
        tuned.tos = 0x10
        tuned.realms = 3 << 16 | 4
        var sourced = RouteDefinition(family: .ipv6, destination: IPAddress("fd99::"), prefixLength: 64)
        sourced.table = 100
        sourced.device = "va"
        sourced.sourcePrefix = IPAddress("fd00:1::")
        sourced.sourcePrefixLength = 64
        for route in [multipath, tuned, sourced] { try lab.inside(lab.a) { try manager.add(route) } }
        let four = try Shell.run(["ip", "-n", lab.a, "-4", "route", "show", "table", "100"]).output
        #expect(four.contains("10.9.0.0/16 proto keepalived \n\tnexthop via 172.16.10.2 dev va weight 3 \n\tnexthop via 172.16.10.3 realm 7 dev va weight 1"), "\(four)")
        #expect(four.contains("10.8.0.0/16 tos 0x10 via 172.16.10.2 dev va proto keepalived realms 3/4 window 65535 rtt 300ms advmss lock 1200 hoplimit 9 initcwnd 12 features ecn quickack 1"), "\(four)")
        let six = try Shell.run(["ip", "-n", lab.a, "-6", "route", "show", "table", "100"]).output
        #expect(six.contains("fd99::/64 from fd00:1::/64 dev va proto keepalived"), "\(six)")
        for route in [multipath, tuned, sourced] { try lab.inside(lab.a) { try manager.remove(route) } }
        #expect(try Shell.run(["ip", "-n", lab.a, "route", "show", "table", "100"]).output.isEmpty)
        var noVRF = RouteDefinition(family: .ipv4, destination: IPAddress("10.7.0.0"), prefixLength: 16)
        noVRF.type = 6
        noVRF.vrf = "va"
        #expect(throws: RouteError.noVRF("va")) { try lab.inside(lab.a) { try manager.add(noVRF) } }
    }

    /// What vigil_announce installs (`PREFIX dev lo table T proto P`) and how it finds them
    /// again after a restart: only that table and protocol, both families.
    @Test func announcedRoutesAreListedByTableAndProtocol() throws {
        let lab = try NetnsLab("routelist")
        defer { lab.destroy() }
        _ = try Shell.run(["ip", "-n", lab.a, "link", "set", "lo", "up"])
        let manager = try lab.inside(lab.a) { try RouteManager() }
        func announced(_ text: String, _ length: UInt8) -> RouteDefinition {
            var route = RouteDefinition(family: IPAddress(text)!.family, destination: IPAddress(text), prefixLength: length)
            route.device = "lo"
            route.table = 198
            route.tracked = false
            return route
        }
        let wanted = [announced("10.95.0.1", 32), announced("192.0.2.0", 24), announced("fd95::1", 128)]
        for route in wanted { try lab.inside(lab.a) { try manager.add(route) } }
        var otherProtocol = announced("10.95.0.2", 32)
        otherProtocol.protocolNumber = 4
        var otherTable = announced("10.95.0.3", 32)
        otherTable.table = 199
        for route in [otherProtocol, otherTable] { try lab.inside(lab.a) { try manager.add(route) } }
        let four = try Shell.run(["ip", "-n", lab.a, "route", "show", "table", "198"]).output
        #expect(four.contains("10.95.0.1 dev lo proto keepalived"), "\(four)")
        let listed = try lab.inside(lab.a) { try manager.routes(table: 198, protocolNumber: 18) }
        #expect(Set(listed.map { "\($0.destination!)/\($0.prefixLength)" }) == ["10.95.0.1/32", "192.0.2.0/24", "fd95::1/128"])
        for route in wanted { try lab.inside(lab.a) { try manager.remove(route) } }
        #expect(try lab.inside(lab.a) { try manager.routes(table: 198, protocolNumber: 18) }.isEmpty)
    }

    @Test func ruleSelectorsAndActionsReachTheKernel() throws {
        let lab = try NetnsLab("ruleopts")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try RouteManager() }
        var ports = RuleDefinition(family: .ipv4)
        ports.from = (IPAddress("10.0.0.0")!, 24)
        ports.ipProtocol = 6
        ports.sourcePorts = 1000...2000
        ports.destinationPorts = 80...80
        ports.tos = 0x10
        ports.table = 100
        ports.priority = 110
        var jump = RuleDefinition(family: .ipv4)
        jump.from = (IPAddress("10.0.1.0")!, 24)
        jump.action = 2
        jump.gotoTarget = 150
        jump.priority = 120
        var vrf = RuleDefinition(family: .ipv4)
        vrf.l3mdev = true
        vrf.priority = 130
        var realm = RuleDefinition(family: .ipv4)
        realm.realms = 5
        realm.table = 100
        realm.priority = 140
        for rule in [ports, jump, vrf, realm] { try lab.inside(lab.a) { try manager.add(rule) } }
        let rules = try Shell.run(["ip", "-n", lab.a, "-4", "rule", "show"]).output
        #expect(rules.contains("110:\tfrom 10.0.0.0/24 tos 0x10 ipproto tcp sport 1000-2000 dport 80 lookup 100 proto keepalived"), "\(rules)")
        #expect(rules.contains("120:\tfrom 10.0.1.0/24 goto 150 [unresolved] proto keepalived"), "\(rules)")
        #expect(rules.contains("130:\tfrom all lookup [l3mdev-table] proto keepalived"), "\(rules)")
        #expect(rules.contains("140:\tfrom all lookup 100 realms 5 proto keepalived"), "\(rules)")
        for rule in [ports, jump, vrf, realm] { try lab.inside(lab.a) { try manager.remove(rule) } }
        #expect(!(try Shell.run(["ip", "-n", lab.a, "rule", "show"]).output.contains("proto keepalived")))
    }

    @Test func rulesAreAddedAndRemovedAsIpShowsThem() throws {
        let lab = try NetnsLab("rule")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try RouteManager() }
        var rule = RuleDefinition(family: .ipv4)
        rule.from = (IPAddress("172.16.10.40")!, 32)
        rule.table = 100
        rule.priority = 100
        var marked = RuleDefinition(family: .ipv6)
        marked.fwmark = 3
        marked.fwmask = 0xff
        marked.inputInterface = "va"
        marked.table = 101
        marked.priority = 101
        try manager.add(rule)
        try manager.add(marked)
        #expect(throws: RouteError.exists, "one rule, not a second identical one") { try manager.add(rule) }
        let four = try Shell.run(["ip", "-n", lab.a, "-4", "rule", "show"]).output
        #expect(four.contains("100:\tfrom 172.16.10.40 lookup 100 proto keepalived"), "\(four)")
        let six = try Shell.run(["ip", "-n", lab.a, "-6", "rule", "show"]).output
        #expect(six.contains("101:\tfrom all fwmark 0x3/0xff iif va lookup 101 proto keepalived"), "\(six)")
        try manager.remove(rule)
        try manager.remove(marked)
        #expect(!(try Shell.run(["ip", "-n", lab.a, "rule", "show"]).output.contains("lookup 100")))
    }
}

/// The process table vrrp_track_process reads.
@Suite struct ProcFSTests {
    @Test func findsThisTestProcessWithItsCommandLine() {
        let all = ProcFS.processes(commandLines: true)
        #expect(all.count > 1)
        #expect(all.contains { $0.commandLine?.first?.hasSuffix("VigilPackageTests.xctest") == true && "VigilPackageTests.xctest".hasPrefix($0.comm) })
        #expect(ProcFS.processes(commandLines: false).allSatisfy { $0.commandLine == nil })
    }
}

/// The netlink monitor against the kernel: a deletion (IPv4 or IPv6) is reported, an addition
/// is not; a link going down or up is; and the header walk stops at a malformed length instead
/// of reading past the data.
@Suite(.serialized) struct NetlinkMonitorTests {
    @Test func aDeletedAddressIsReportedAndAnAddedOneIsNot() throws {
        let lab = try NetnsLab("addrmon")
        defer { lab.destroy() }
        let fd = try #require(try lab.inside(lab.a) { NetlinkMonitor.open() })
        defer { close(fd) }
        #expect(!NetlinkMonitor.drain(fd).addressDeleted, "nothing happened yet")
        try Shell.run(["ip", "-n", lab.a, "addr", "add", "172.16.10.100/24", "dev", "va"])
        try Shell.run(["ip", "-n", lab.a, "addr", "add", "fd00:10::100/64", "dev", "va", "nodad"])
        #expect(!NetlinkMonitor.drain(fd).addressDeleted, "additions are not deletions")
        try Shell.run(["ip", "-n", lab.a, "addr", "del", "172.16.10.100/24", "dev", "va"])
        #expect(NetlinkMonitor.drain(fd).addressDeleted, "an IPv4 deletion")
        #expect(!NetlinkMonitor.drain(fd).addressDeleted, "read once")
        try Shell.run(["ip", "-n", lab.a, "addr", "del", "fd00:10::100/64", "dev", "va"])
        #expect(NetlinkMonitor.drain(fd).addressDeleted, "an IPv6 deletion")
    }

    @Test func aLinkGoingDownOrUpIsReported() throws {
        let lab = try NetnsLab("linkmon")
        defer { lab.destroy() }
        let fd = try #require(try lab.inside(lab.a) { NetlinkMonitor.open() })
        defer { close(fd) }
        // The lab's own set-up may still be reported (the kernel's linkwatch reports a carrier
        // up to a second late): settle, then start from nothing.
        usleep(1_500_000)
        _ = NetlinkMonitor.drain(fd)
        try Shell.run(["ip", "-n", lab.a, "link", "set", "va", "down"])
        #expect(Self.nextEvents(fd).linkChanged, "down")
        try Shell.run(["ip", "-n", lab.a, "link", "set", "va", "up"])
        #expect(Self.nextEvents(fd).linkChanged, "up")
        usleep(1_500_000)
        _ = NetlinkMonitor.drain(fd)
        // The peer's end going down takes the carrier (RUNNING) away: reported too.
        try Shell.run(["ip", "-n", lab.b, "link", "set", "vb", "down"])
        #expect(Self.nextEvents(fd).linkChanged, "carrier lost")
    }

    /// What arrives within 3 s (the kernel's linkwatch reports carrier changes late).
    static func nextEvents(_ fd: Int32) -> NetlinkEvents {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 3_000) > 0 else { return NetlinkEvents() }
        usleep(50_000)
        return NetlinkMonitor.drain(fd)
    }

    @Test func aMalformedLengthEndsTheWalk() {
        // RTM_NEWADDR (20) claiming 4 GiB, then RTM_DELADDR (21) that must not be reached.
        var bytes: [UInt8] = [0xff, 0xff, 0xff, 0xff, 20, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        bytes += [16, 0, 0, 0, 21, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        #expect(NetlinkMonitor.events(in: bytes[...]) == NetlinkEvents())
        // A zero length would loop forever: it ends the walk too.
        #expect(NetlinkMonitor.events(in: ([0, 0, 0, 0, 20, 0, 0, 0] + [UInt8](repeating: 0, count: 8))[...]) == NetlinkEvents())
        #expect(NetlinkMonitor.events(in: ([16, 0, 0, 0, 20, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [16, 0, 0, 0, 21, 0, 0, 0] + [UInt8](repeating: 0, count: 8))[...])
                == NetlinkEvents(addressAdded: true, addressDeleted: true))
        // RTM_NEWLINK (16) then RTM_DELLINK (17): links, no address.
        #expect(NetlinkMonitor.events(in: ([16, 0, 0, 0, 16, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [16, 0, 0, 0, 17, 0, 0, 0] + [UInt8](repeating: 0, count: 8))[...])
                == NetlinkEvents(linkChanged: true))
    }
}
