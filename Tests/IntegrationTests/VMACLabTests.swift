import Foundation
import Testing

/// keepalived's use_vmac on the wire against keepalived 2.2.7 in both roles: each director
/// makes vrrp.77 (a private macvlan with 00:00:5e:00:01:4d), the adverts and gratuitous ARPs
/// carry the virtual MAC, each hears the other through its own VMAC, and the client's ARP
/// entry for the VIP never changes across the takeover. Vigil's stop takes the VMAC away and
/// puts the parent's ARP settings back.
@Suite(.serialized) struct VMACLabTests {
    static let vmac = "00:00:5e:00:01:4d"

    func onVMAC(_ node: String) -> Bool {
        run(["ip", "-n", "vlab-\(node)", "-4", "addr", "show", "dev", "vrrp.77"]).output.contains("172.16.10.40/")
    }

    func vmacHolders() -> [String] { ["lvs01", "lvs02"].filter(onVMAC) }

    func sysctl(_ node: String, _ key: String) -> String {
        run(["ip", "netns", "exec", "vlab-\(node)", "cat", "/proc/sys/net/ipv4/conf/\(key)"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What the client learnt of the VIP from the gratuitous ARPs alone (it accepts them, as
    /// routers are usually set to; a ping would add the director's own ARP requests, which
    /// come from the parent's MAC in keepalived as in Vigil).
    func clientSeesTheVirtualMAC() -> (ok: Bool, neighbour: String) {
        let neighbour = run(["ip", "-n", "vlab-client", "neigh", "show", "172.16.10.40"]).output
        return (neighbour.contains(Self.vmac), neighbour)
    }

    @Test(arguments: [("keepalived", "vigil"), ("vigil", "keepalived")])
    func aMixedPairOnVMACs(first: String, second: String) throws {
        try withVariantLab("vmac", { $0.replacingOccurrences(of: "    track_script {", with: "    use_vmac\n    track_script {") }) { lab in
            _ = run(["ip", "netns", "exec", "vlab-client", "sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"])
            _ = run(["ip", "-n", "vlab-client", "neigh", "flush", "all"])
            lab.lab(["capture", "start"])
            try lab.start("lvs01", first)
            #expect(lab.wait(8) { vmacHolders() == ["lvs01"] }, "\(first) on lvs01 holds the VIP on vrrp.77")
            let link = run(["ip", "-n", "vlab-lvs01", "-d", "link", "show", "vrrp.77"]).output
            #expect(link.contains("vrrp.77@eth0") && link.contains(Self.vmac) && link.contains("macvlan mode private"), "\(first): \(link)")
            #expect(sysctl("lvs01", "eth0/arp_ignore") == "1" && sysctl("lvs01", "eth0/arp_filter") == "1")
            // Both move the VMAC's IGMP reports to eth0 with an nftables rule in table keepalived.
            let rules = run(["ip", "netns", "exec", "vlab-lvs01", "nft", "list", "table", "ip", "keepalived"]).output
            #expect(rules.contains(#"ip protocol igmp"#) && rules.contains(#"dup to ip daddr device"#), "\(first): \(rules)")
            try lab.start("lvs02", second)
            usleep(3_500_000)
            #expect(vmacHolders() == ["lvs01"], "\(second) hears \(first) through its own VMAC: \(vmacHolders())")
            #expect(run(["ip", "-n", "vlab-lvs02", "link", "show", "vrrp.77"]).output.contains(Self.vmac), "\(second) made its VMAC too")
            let before = clientSeesTheVirtualMAC()
            #expect(before.ok, "the client knows the VIP by the virtual MAC: \(before.neighbour)")
            lab.lab(["stop", "lvs01"])
            #expect(lab.wait(6) { vmacHolders() == ["lvs02"] }, "\(second) takes over on its VMAC")
            usleep(500_000)
            let after = clientSeesTheVirtualMAC()
            #expect(after.ok, "the same MAC after the takeover: \(after.neighbour)")
            #expect(run(["ip", "netns", "exec", "vlab-client", "ping", "-c", "1", "-W", "2", "172.16.10.40"]).status == 0, "the VIP answers")
            usleep(1_000_000)
            lab.lab(["capture", "stop"])
            let adverts = lab.capture().filter(\.isAdvert)
            #expect(adverts.contains { $0.source == "172.16.10.41" } && adverts.contains { $0.source == "172.16.10.42" })
            #expect(adverts.allSatisfy { $0.link.contains(" \(Self.vmac) > 01:00:5e:00:00:12") },
                    "every advert leaves from the virtual MAC: \(adverts.map(\.link).prefix(2))")
            let garps = lab.capture().filter(\.isGARP)
            #expect(!garps.isEmpty && garps.allSatisfy { $0.raw.contains("\(Self.vmac) > ff:ff:ff:ff:ff:ff") }, "\(garps.map(\.raw).prefix(2))")
            // After its stop (SIGTERM), lvs01 has no VMAC; Vigil also restores the parent's settings.
            #expect(!run(["ip", "-n", "vlab-lvs01", "link", "show"]).output.contains("vrrp.77"), "\(first) removes its VMAC at stop")
            if first == "vigil" {
                #expect(sysctl("lvs01", "eth0/arp_ignore") == "0" && sysctl("lvs01", "eth0/arp_filter") == "0", "Vigil puts arp_ignore/arp_filter back")
                #expect(run(["ip", "netns", "exec", "vlab-lvs01", "nft", "list", "ruleset"]).output.isEmpty, "and removes its table")
            }
        }
    }

    /// no_accept with `nftables`: while Vigil is master the VIP takes no traffic (keepalived's
    /// drop rules, RFC 5798's Accept_Mode off); the director's own address still answers.
    @Test func noAcceptDropsTrafficToTheVIPOnlyWhenAsked() throws {
        try withVariantLab("noaccept", { text in
            text.replacingOccurrences(of: "    script_user nobody\n", with: "    script_user nobody\n    nftables\n")
                .replacingOccurrences(of: "    track_script {", with: "    no_accept\n    track_script {")
        }) { lab in
            try lab.start("lvs01", "vigil")
            #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
            usleep(500_000)
            let ping = { (address: String) in run(["ip", "netns", "exec", "vlab-client", "ping", "-c", "1", "-W", "1", address]).status == 0 }
            #expect(!ping("172.16.10.40"), "the no_accept master drops traffic to the VIP")
            #expect(ping("172.16.10.41"), "its own address answers")
            let rules = run(["ip", "netns", "exec", "vlab-lvs01", "nft", "list", "table", "ip", "keepalived"]).output
            #expect(rules.contains("elements = { 172.16.10.40 }") && rules.contains("ip daddr @vips drop"), "\(rules)")
            lab.lab(["stop", "lvs01"])
            usleep(1_500_000)
            #expect(run(["ip", "netns", "exec", "vlab-lvs01", "nft", "list", "ruleset"]).output.isEmpty, "the table goes at stop")
        }
    }
}
