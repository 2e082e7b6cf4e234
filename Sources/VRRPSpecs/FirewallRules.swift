import Addressing

/// keepalived's nftables rules (vrrp_nftables.c), as the text `nft` reads. Vigil owns the
/// table outright: each script replaces it in one transaction (create, delete, create), so
/// the kernel never holds half a rule set, and an empty one removes it.
///
/// Two things go in it:
/// - a VMAC's IGMP and MLD reports leave by the parent, not the VMAC (a backup's report from
///   the virtual MAC would teach the switches to send the VIP's traffic to the backup), and
///   an IPv6 VMAC sends no router solicitations. keepalived adds these whenever a VMAC
///   exists; so does Vigil.
/// - traffic to and from the addresses of a no_accept master that is not their owner is
///   dropped (RFC 5798 §6.4.3). keepalived adds these on its own, its users' most reported
///   vrrp_strict trap; Vigil only when `nftables` is given in global_defs.
public enum FirewallRules {
    public struct VMAC: Hashable, Sendable {
        public var name: String
        public var parent: String
        public var family: AddressFamily

        public init(name: String, parent: String, family: AddressFamily) {
            self.name = name
            self.parent = parent
            self.family = family
        }
    }

    public static func script(table: String, priority: Int, vmacs: [VMAC], dropped: [IPAddress]) -> String {
        var text = ""
        for family in [AddressFamily.ipv4, .ipv6] {
            let nftFamily = family == .ipv4 ? "ip" : "ip6"
            let ip = family == .ipv4 ? "ip" : "ip6"
            text += "table \(nftFamily) \(table) {}\ndelete table \(nftFamily) \(table)\n"
            let addresses = Array(Set(dropped.filter { $0.family == family })).sorted { $0.description < $1.description }
            let ownVMACs = vmacs.filter { $0.family == family }.sorted { $0.name < $1.name }
            guard !addresses.isEmpty || !ownVMACs.isEmpty else { continue }
            var input: [String] = []
            var output: [String] = []
            if !addresses.isEmpty {
                if family == .ipv6 {
                    // Neighbour discovery for the addresses must still work.
                    input.append("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept")
                    output.append("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept")
                }
                input.append("\(ip) daddr @vips drop")
                output.append("\(ip) saddr @vips drop")
            }
            for vmac in ownVMACs {
                let device = "oifname \(quoted(vmac.name))"
                if family == .ipv4 {
                    output.append("\(device) ip protocol igmp dup to ip daddr device \(quoted(vmac.parent)) drop")
                } else {
                    output.append("\(device) icmpv6 type mld2-listener-report dup to ip6 daddr device \(quoted(vmac.parent)) drop")
                    output.append("\(device) icmpv6 type nd-router-solicit drop")
                }
            }
            text += "table \(nftFamily) \(table) {\n"
            if !addresses.isEmpty {
                text += "    set vips { type \(family == .ipv4 ? "ipv4_addr" : "ipv6_addr"); elements = { \(addresses.map(\.description).joined(separator: ", ")) } }\n"
                text += chain("in", hook: "input", priority: priority, input)
            }
            text += chain("out", hook: "output", priority: priority, output)
            text += "}\n"
        }
        return text
    }

    /// What removes the tables: the script with nothing in them.
    public static func removal(table: String) -> String { script(table: table, priority: -1, vmacs: [], dropped: []) }

    private static func chain(_ name: String, hook: String, priority: Int, _ rules: [String]) -> String {
        "    chain \(name) { type filter hook \(hook) priority \(priority); policy accept;\n"
            + rules.map { "        \($0)\n" }.joined() + "    }\n"
    }

    /// nft's string syntax; interface and table names cannot hold a double quote.
    private static func quoted(_ name: String) -> String { "\"\(name.filter { $0 != "\"" })\"" }
}

extension InstanceSpec {
    /// This instance's VMAC as the firewall rules name it.
    public var firewallVMAC: FirewallRules.VMAC? {
        vmac.map { FirewallRules.VMAC(name: $0.name, parent: $0.parent, family: family) }
    }
}
