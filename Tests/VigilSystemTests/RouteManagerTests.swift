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
