import Foundation
import Testing

/// Links that change under the daemons, against keepalived 2.2.7 on the same files: a link
/// deleted and made again, one that does not exist at start (dynamic_interfaces), one that
/// flaps (interface_up_down_delays).
@Suite(.serialized) struct LinkLabTests {
    /// A link deleted and created again (`ip link del`, then the veth made anew: a new index),
    /// as a re-made VLAN or veth is: keepalived goes FAULT, then BACKUP and MASTER on the new
    /// link with its VIP and adverts there. Vigil once stayed MASTER on the old index, sending
    /// nothing and holding no VIP.
    @Test func bothDaemonsFollowTheNewLink() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("relink")
        func makeLink() throws { try pair.veth("vrelink", "vrelinkp", address: "10.62.0.1/24") }
        try makeLink()
        let path = "\(pair.directory)/relink.conf"
        try """
            vrrp_instance VI_RELINK {
                state MASTER
                interface vrelink
                virtual_router_id 62
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.62.0.100/24
                }
            }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        for program in ["keepalived", "vigil"] {
            let (launched, text) = pair.launch(program, path)
            defer { if launched > 0 { kill(launched, SIGKILL) } }
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, "10.62.0.100/24") }, "\(program): no VIP at start\n\(text())")

            try pair.must(["ip", "-n", pair.b, "link", "del", "vrelink"])
            Thread.sleep(forTimeInterval: 1.5)
            try makeLink()
            let back = ExtrasPair.wait(10) { pair.holds(pair.b, "10.62.0.100/24") }
            #expect(back, "\(program): no VIP on the new link\n\(text())")
            // Its adverts leave by the new link.
            let heard = run(["ip", "netns", "exec", pair.b, "timeout", "5", "tcpdump", "-c", "2", "-ni", "vrelinkp", "vrrp"])
            #expect(heard.output.contains("2 packets captured"), "\(program): no adverts on the new link\n\(heard.output)\n\(text())")
            kill(launched, SIGTERM)
            #expect(ExtrasPair.wait(5) { kill(launched, 0) != 0 }, "\(program): still running after SIGTERM")
            if program == "vigil" { #expect(text().contains("vrelink was created again"), "\(text())") }
        }
    }

    /// keepalived's dynamic_interfaces: the instance's link does not exist at start. Both
    /// daemons start (in FAULT), hold no VIP while the link is up without an address, and take
    /// over once it has one.
    @Test func dynamicInterfacesWaitForTheLink() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("dynif")
        let path = "\(pair.directory)/dynif.conf"
        try """
            global_defs {
                dynamic_interfaces
            }
            vrrp_instance VI_DYN {
                state BACKUP
                interface vdynif
                virtual_router_id 63
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.63.0.100/24
                }
            }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        for program in ["keepalived", "vigil"] {
            let test = pair.configTest(program, path)
            #expect(test.status == 0, "\(program) -t: \(test.status)\n\(test.output)")
            let (launched, text) = pair.launch(program, path)
            defer {
                if launched > 0 { kill(launched, SIGKILL) }
                _ = run(["ip", "-n", pair.b, "link", "del", "vdynif"])
            }
            Thread.sleep(forTimeInterval: 2)
            #expect(kill(launched, 0) == 0, "\(program) stopped: the link is missing\n\(text())")
            try pair.veth("vdynif", "vdynifp", address: nil)
            Thread.sleep(forTimeInterval: 5)
            #expect(!pair.holds(pair.b, "10.63.0.100/24"), "\(program): MASTER on a link with no address to send from\n\(text())")
            try pair.must(["ip", "-n", pair.b, "addr", "add", "10.63.0.1/24", "dev", "vdynif"])
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, "10.63.0.100/24") }, "\(program): no VIP once the link has its address\n\(text())")
            let heard = run(["ip", "netns", "exec", pair.b, "timeout", "5", "tcpdump", "-c", "2", "-ni", "vdynifp", "vrrp"])
            #expect(heard.output.contains("2 packets captured"), "\(program): no adverts\n\(heard.output)")
            kill(launched, SIGTERM)
            #expect(ExtrasPair.wait(5) { kill(launched, 0) != 0 }, "\(program): still running after SIGTERM")
            if program == "vigil" { #expect(text().contains("which doesn't currently exist - will use if created"), "\(text())") }
        }
    }

    /// interface_up_down_delays: the link's carrier goes for 0.5 s (under the 1.5 s down
    /// delay): no transition, the VIP stays; for 2.5 s: FAULT, VIP gone; back: the VIP returns
    /// after the up delay and the master down timer.
    @Test func upDownDelaysDebounceAFlap() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("debounce")
        try pair.veth("vdeb", "vdebp", address: "10.64.0.1/24")
        let path = "\(pair.directory)/debounce.conf"
        try """
            interface_up_down_delays {
                vdeb 1.5 1
            }
            vrrp_instance VI_DEB {
                state MASTER
                interface vdeb
                virtual_router_id 64
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.64.0.100/24
                }
            }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let vip = "10.64.0.100/24"
        for program in ["keepalived", "vigil"] {
            let test = pair.configTest(program, path)
            #expect(test.status == 0, "\(program) -t: \(test.status)\n\(test.output)")
            let (launched, text) = pair.launch(program, path)
            defer { if launched > 0 { kill(launched, SIGKILL) } }
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, vip) }, "\(program): no VIP at start\n\(text())")
            try pair.must(["ip", "-n", pair.b, "link", "set", "vdebp", "down"])
            Thread.sleep(forTimeInterval: 0.5)
            try pair.must(["ip", "-n", pair.b, "link", "set", "vdebp", "up"])
            Thread.sleep(forTimeInterval: 2)
            #expect(pair.holds(pair.b, vip), "\(program): a 0.5 s flap was a transition\n\(text())")
            #expect(!text().contains("Netlink reports vdeb down"), "\(program): \(text())")
            try pair.must(["ip", "-n", pair.b, "link", "set", "vdebp", "down"])
            #expect(ExtrasPair.wait(4) { !pair.holds(pair.b, vip) }, "\(program): still holds the VIP 4 s after the carrier went\n\(text())")
            try pair.must(["ip", "-n", pair.b, "link", "set", "vdebp", "up"])
            Thread.sleep(forTimeInterval: 0.5)
            #expect(!pair.holds(pair.b, vip), "\(program): back before the up delay and the master down timer")
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, vip) }, "\(program): no VIP after the link came back\n\(text())")
            kill(launched, SIGTERM)
            #expect(ExtrasPair.wait(5) { kill(launched, 0) != 0 }, "\(program): still running after SIGTERM")
        }
    }

    /// A VIP written with another device is announced on that device: keepalived sends its
    /// gratuitous ARPs on the VIP's own link, where the hosts that must learn the MAC are.
    @Test func aVIPOnAnotherLinkIsAnnouncedThere() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("garpdev")
        for (link, peer, address) in [("vgda", "vgdap", "10.65.0.1/24"), ("vgdb", "vgdbp", "10.66.0.1/24")] { try pair.veth(link, peer, address: address) }
        let path = "\(pair.directory)/garpdev.conf"
        try """
            vrrp_instance VI_GD {
                state MASTER
                interface vgda
                virtual_router_id 65
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.65.0.100/24
                    10.66.0.100/24 dev vgdb
                }
            }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        for program in ["keepalived", "vigil"] {
            let capture = "\(pair.directory)/\(program).arp"
            // The ARPs that leave by vgdb, seen on its peer, for the whole start.
            let tcpdump = run(["ip", "netns", "exec", pair.b, "sh", "-c",
                               "timeout 12 tcpdump -l -n -i vgdbp arp > '\(capture)' 2>/dev/null & echo $!"])
            let dumper = Int32(tcpdump.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            Thread.sleep(forTimeInterval: 1)
            let (launched, text) = pair.launch(program, path)
            defer {
                if launched > 0 { kill(launched, SIGKILL) }
                if dumper > 0 { kill(dumper, SIGTERM) }
            }
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, "10.66.0.100/24") }, "\(program): no VIP on vgdb\n\(text())")
            let heard = ExtrasPair.wait(5) { ((try? String(contentsOfFile: capture, encoding: .utf8)) ?? "").contains("10.66.0.100") }
            #expect(heard, "\(program): no gratuitous ARP for 10.66.0.100 on vgdb\n\((try? String(contentsOfFile: capture, encoding: .utf8)) ?? "")\n\(text())")
            kill(launched, SIGTERM)
            #expect(ExtrasPair.wait(5) { kill(launched, 0) != 0 }, "\(program): still running after SIGTERM")
        }
    }

    /// garp_extra_if all 2: after the start's bursts, a MASTER keeps sending a gratuitous ARP
    /// for the VIP on the other link every 2 s (keepalived's vrrp_send_vmac_update).
    @Test func extraInterfaceAnnouncementsKeepComing() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("garpextra")
        for (link, peer, address) in [("vgea", "vgeap", "10.67.0.1/24"), ("vgeb", "vgebp", "10.68.0.1/24")] { try pair.veth(link, peer, address: address) }
        let path = "\(pair.directory)/garpextra.conf"
        try """
            vrrp_instance VI_GE {
                state MASTER
                interface vgea
                virtual_router_id 67
                priority 150
                advert_int 1
                garp_extra_if all 2
                virtual_ipaddress {
                    10.67.0.100/24
                    10.68.0.100/24 dev vgeb
                }
            }

            """.write(toFile: path, atomically: true, encoding: .utf8)
        for program in ["keepalived", "vigil"] {
            let test = pair.configTest(program, path)
            #expect(test.status == 0, "\(program) -t: \(test.status)\n\(test.output)")
            let (launched, text) = pair.launch(program, path)
            defer { if launched > 0 { kill(launched, SIGKILL) } }
            #expect(ExtrasPair.wait(8) { pair.holds(pair.b, "10.68.0.100/24") }, "\(program): no VIP on vgeb\n\(text())")
            // Past the second burst (5 s after becoming MASTER): what comes now is the extra one.
            Thread.sleep(forTimeInterval: 6.5)
            let heard = run(["ip", "netns", "exec", pair.b, "timeout", "6", "tcpdump", "-l", "-n", "-i", "vgebp", "arp"])
            let arps = heard.output.split(separator: "\n").filter { $0.contains("10.68.0.100") }.count
            #expect(arps >= 2 && arps <= 4, "\(program): \(arps) gratuitous ARPs on vgeb in 6 s, every 2 s expected\n\(heard.output)\n\(text())")
            kill(launched, SIGTERM)
            #expect(ExtrasPair.wait(5) { kill(launched, 0) != 0 }, "\(program): still running after SIGTERM")
        }
    }
}

extension ExtrasPair {
    /// keepalived (VRRP only) or Vigil (no control socket) started in namespace b on `path`,
    /// logging to the pair's directory: its pid and its log so far.
    func launch(_ program: String, _ path: String) -> (pid: Int32, log: () -> String) {
        let binary = Self.binary(program)
        let extra = program == "keepalived" ? " -P" : " --control none"
        let log = "\(directory)/\(program).log"
        let started = run(["ip", "netns", "exec", b, "sh", "-c",
                           "'\(binary)' -n -l -D\(extra) -f '\(path)' -p '\(directory)/\(program).pid' > '\(log)' 2>&1 < /dev/null & echo $!"])
        let pid = Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        return (pid, { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" })
    }

    /// `keepalived -t` or `vigil -t` on `path`, in namespace b.
    func configTest(_ program: String, _ path: String) -> (status: Int32, output: String) {
        run(["ip", "netns", "exec", b, Self.binary(program), "-t", "-f", path])
    }

    static func binary(_ program: String) -> String { program == "vigil" ? vigilBinary : "keepalived" }

    /// A veth pair in namespace b, both ends up, `address` (if any) on `link`.
    func veth(_ link: String, _ peer: String, address: String?) throws {
        try must(["ip", "-n", b, "link", "add", link, "type", "veth", "peer", "name", peer])
        for name in [link, peer] { try must(["ip", "-n", b, "link", "set", name, "up"]) }
        if let address { try must(["ip", "-n", b, "addr", "add", address, "dev", link]) }
    }
}
