import Addressing
import IPVS
import Testing
import VigilConfig
@testable import LVS

/// keepalived's forwarding methods as IPVS gets them: TUN's encapsulation (`type ipip|gue port
/// N|gre`, `nocsum|csum|remcsum`) on the virtual server, inherited by its real servers, or a
/// server's own; and sorry_server_lvs_method for the sorry server.
@Suite struct ForwardingSpecTests {
    private func load(_ body: String) -> (VirtualServerSpec?, [Diagnostic]) {
        let text = "virtual_server 10.0.0.200 80 {\n    lb_algo rr\n    protocol TCP\n\(body)\n}\n"
        let (config, diagnostics) = ConfigLoader.load(text: text)
        return (LVSSpecBuilder.build(config).specs.first, diagnostics.all.filter { $0.severity == .error })
    }

    @Test func tunnelOptionsReachIPVS() throws {
        let (vs, errors) = load("""
                lb_kind TUN type gue port 6080 csum
                sorry_server 10.0.0.9 8080
                sorry_server_lvs_method NAT
                real_server 10.0.0.10 80 {
                }
                real_server 10.0.0.11 80 {
                    lvs_method TUN type gre
                }
                real_server 10.0.0.12 80 {
                    lvs_method DR
                }
            """)
        #expect(errors.isEmpty, "\(errors)")
        let spec = try #require(vs)
        #expect(spec.realServers.map(\.destination.forwarding) == [.tunnel(.gue(port: 6080, flags: 1)), .tunnel(.gre(flags: 0)), .directRoute], "each line says it all, as keepalived reads it")
        // NAT: the sorry server keeps its own port, as a NAT real server does.
        #expect(spec.sorryServer?.destination.forwarding == .masquerade)
        #expect(spec.sorryServer?.destination.key.port == 8080)
    }

    @Test func keepalivedsErrorsForForwarding() {
        let cases: [(String, String)] = [
            ("lb_kind dr", "PARSER : unknown [dr] routing method for virtual server."),
            ("lb_kind TUN type vxlan", "Unknown tunnel type vxlan for virtual server."),
            ("lb_kind TUN type gue", "gue tunnels require port, otherwise cannot have port."),
            ("lb_kind TUN type ipip csum", "ipip tunnels do not support checksum option."),
            ("lb_kind TUN type gre remcsum", "gre tunnels do not support remote checksum option."),
            ("lb_kind TUN type gue port 0", "Invalid gue tunnel port 0 for virtual server."),
            ("lb_kind DR fast", "Invalid tunnel option fast for virtual server."),
            ("sorry_server_lvs_method DR", "sorry_server forwarding used without sorry_server"),
        ]
        for (line, message) in cases {
            let (vs, errors) = load("    \(line)\n    real_server 10.0.0.10 80 {\n    }")
            #expect(errors.map(\.message) == [message], "\(line)")
            // A bad method changes nothing (NAT stays); a bad option keeps the method.
            if line == "lb_kind dr" { #expect(vs?.realServers.first?.destination.forwarding == .masquerade) }
            if line == "lb_kind TUN type vxlan" { #expect(vs?.realServers.first?.destination.forwarding == .tunnel(.ipip)) }
        }
    }
}
