import Addressing
import Testing
import VRRP
import VigilConfig
import VigilSystem
import VRRPSpecs
@testable import VigilDaemon

/// keepalived's use_vmac through the whole daemon: a private macvlan with the virtual MAC
/// carries the VIPs, the adverts and the gratuitous ARPs; the parent's settings are made and
/// put back; a reload or a stop takes the VMAC away; a crashed run's VMAC is taken over.
@Suite struct VMACTests {
    static let vmacMAC: [UInt8] = [0, 0, 0x5e, 0, 1, 77]

    @Test func thePairRunsOnItsVMACs() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(
            sim, lvs01: Configs.pair(priority: 100, instanceExtra: "use_vmac"), lvs02: Configs.pair(priority: 95, instanceExtra: "use_vmac"))
        for director in [lvs01, lvs02] {
            let vmac = try #require(director.node.interfaces["vrrp.77"], "\(director.name) made vrrp.77")
            #expect(vmac.mac == Self.vmacMAC && vmac.isUp && vmac.macvlan?.parent == director.node.interfaces["eth0"]!.index)
            #expect(director.node.openChannels.map(\.interface) == ["vrrp.77"], "adverts go out and are heard on the VMAC")
            #expect(director.node.sysctls["net/ipv4/conf/eth0/arp_ignore"] == 1 && director.node.sysctls["net/ipv4/conf/eth0/arp_filter"] == 1)
            #expect(director.node.sysctls["net/ipv4/conf/vrrp.77/accept_local"] == 1 && director.node.sysctls["net/ipv4/conf/vrrp.77/rp_filter"] == 0)
        }
        #expect(lvs01.node.addresses(on: "vrrp.77") == [IPAddress("10.0.0.100")!] && !lvs01.holds("10.0.0.100"), "the VIP is on the VMAC")
        #expect(lvs02.node.addresses(on: "vrrp.77").isEmpty)
        #expect(!lvs01.node.announcements.isEmpty && lvs01.node.announcements.allSatisfy { $0.interface == "vrrp.77" && $0.mac == Self.vmacMAC })
        let adverts = sim.wire(since: 0).compactMap { $0.node == "lvs01" ? $0.advert : nil }
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.priority == 100 }, "lvs02 hears lvs01 through its own VMAC")
        #expect(lvs01.ask("status json", in: sim).contains(#""vmac_ifname": "vrrp.77""#))

        lvs01.stop(in: sim)
        sim.run(5)
        #expect(lvs01.node.interfaces["vrrp.77"] == nil, "the VMAC goes at stop")
        #expect(lvs01.node.sysctls["net/ipv4/conf/eth0/arp_ignore"] == 0 && lvs01.node.sysctls["net/ipv4/conf/eth0/arp_filter"] == 0,
                "the parent's ARP settings come back (keepalived 2.2.7 leaves them)")
        #expect(lvs02.state("VI_1") == .master && lvs02.node.addresses(on: "vrrp.77") == [IPAddress("10.0.0.100")!])
    }

    /// keepalived's promote_secondaries: on while Vigil runs, back to off at stop; left alone
    /// when it was already on. With use_vmac it is ignored (the VMAC has it anyway).
    @Test func promoteSecondariesIsSetAndPutBack() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "promote_secondaries"))
        sim.run(1)
        #expect(lvs01.node.sysctls["net/ipv4/conf/eth0/promote_secondaries"] == 1)
        lvs01.stop(in: sim)
        sim.run(2)
        #expect(lvs01.node.sysctls["net/ipv4/conf/eth0/promote_secondaries"] == 0, "put back at stop")

        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        lvs02.node.sysctls["net/ipv4/conf/eth0/promote_secondaries"] = 1
        try lvs02.start(Configs.pair(priority: 100, instanceExtra: "promote_secondaries"))
        sim.run(1)
        lvs02.stop(in: sim)
        sim.run(2)
        #expect(lvs02.node.sysctls["net/ipv4/conf/eth0/promote_secondaries"] == 1, "already on: left on")

        let (_, diagnostics) = ConfigLoader.load(text: Configs.pair(priority: 100, instanceExtra: "use_vmac\n    promote_secondaries"))
        #expect(diagnostics.all.contains { $0.message == "(VI_1) promote_secondaries is automatically set for vmacs - ignoring" })
    }

    /// keepalived's disable_local_igmp: igmp_link_local_mcast_reports 0 while running, back
    /// to 1 at stop; a reload cannot change it (keepalived's words).
    @Test func localIGMPReportsAreOffWhileRunning() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.node.sysctls["net/ipv4/igmp_link_local_mcast_reports"] = 1
        try lvs01.start(Configs.pair(priority: 100, globals: "disable_local_igmp"))
        sim.run(1)
        #expect(lvs01.node.sysctls["net/ipv4/igmp_link_local_mcast_reports"] == 0)
        lvs01.hangUp(with: Configs.pair(priority: 100))
        sim.run(1)
        #expect(lvs01.log.contains("Cannot change disable_local_igmp at a reload - please restart Vigil"))
        #expect(lvs01.node.sysctls["net/ipv4/igmp_link_local_mcast_reports"] == 0)
        lvs01.stop(in: sim)
        sim.run(2)
        #expect(lvs01.node.sysctls["net/ipv4/igmp_link_local_mcast_reports"] == 1, "put back at stop")
    }

    @Test func rpFilterIsClearedAndRestored() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.node.sysctls["net/ipv4/conf/all/rp_filter"] = 2
        lvs01.node.sysctls["net/ipv4/conf/default/rp_filter"] = 0
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "use_vmac"))
        sim.run(4)
        #expect(lvs01.node.sysctls["net/ipv4/conf/all/rp_filter"] == 0 && lvs01.node.sysctls["net/ipv4/conf/eth0/rp_filter"] == 2
                && lvs01.node.sysctls["net/ipv4/conf/default/rp_filter"] == 2 && lvs01.node.sysctls["net/ipv4/conf/vrrp.77/rp_filter"] == 0)
        #expect(lvs01.log.contains("NOTICE: setting sysctl net.ipv4.conf.all.rp_filter from 2 to 0"))
        lvs01.stop(in: sim)
        #expect(lvs01.node.sysctls["net/ipv4/conf/all/rp_filter"] == 2 && lvs01.node.sysctls["net/ipv4/conf/eth0/rp_filter"] == 0
                && lvs01.node.sysctls["net/ipv4/conf/default/rp_filter"] == 0)
    }

    @Test func aReloadMovesTheInstanceOffItsVMAC() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim, lvs01: Configs.pair(priority: 100, instanceExtra: "use_vmac"))
        #expect(lvs01.node.addresses(on: "vrrp.77") == [IPAddress("10.0.0.100")!])
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100)
        _ = lvs01.ask("reload", in: sim)
        sim.run(5)
        #expect(lvs01.node.interfaces["vrrp.77"] == nil && lvs01.node.openChannels.map(\.interface) == ["eth0"])
        #expect(lvs01.state("VI_1") == .master && lvs01.holds("10.0.0.100"))
    }

    @Test func aCrashedRunsVMACIsTakenOverAndAForeignLinkIsNotTouched() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.node.createMacvlan(name: "vrrp.77", parent: lvs01.node.interfaces["eth0"]!.index, mac: Self.vmacMAC)
        let leftover = lvs01.node.interfaces["vrrp.77"]!.index
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "use_vmac"))
        sim.run(5)
        #expect(lvs01.node.interfaces["vrrp.77"]?.index == leftover && lvs01.log.contains("(VI_1) Found matching interface vrrp.77"))
        #expect(lvs01.state("VI_1") == .master)

        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        lvs02.node.addInterface("vrrp.77", segment: "other", ipv4: nil)
        #expect(throws: DaemonError.self) { try lvs02.start(Configs.pair(priority: 95, instanceExtra: "use_vmac")) }
        #expect(lvs02.node.interfaces["vrrp.77"]?.segment == "other", "not deleted")
    }
}

/// keepalived's nftables rules through the daemon: a VMAC's IGMP reports are moved to its
/// parent before its socket exists; no_accept's drop rules only with `nftables`, while MASTER.
@Suite struct FirewallRulesTests {
    static let igmpRule = #"oifname "vrrp.77" ip protocol igmp dup to ip daddr device "eth0" drop"#

    @Test func aVMACsReportsLeaveByTheParentFromTheStart() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "use_vmac"))
        #expect(lvs01.nftRunsNow.count == 1 && lvs01.nftRunsNow[0].rules.contains(Self.igmpRule), "waited for at start: \(lvs01.nftRunsNow)")
        #expect(!lvs01.nftRunsNow[0].rules.contains("@vips"), "no drop rules without nftables")
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        lvs01.stop(in: sim)
        let last = try #require(lvs01.nftRuleSets.last)
        #expect(last == FirewallRules.removal(table: "keepalived"), "the tables go at stop: \(last)")
    }

    @Test func noAcceptDropsOnlyWhenAskedAndOnlyWhileMaster() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "no_accept"))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master && lvs01.nftRuleSets.isEmpty, "no firewall without nftables: \(lvs01.nftRuleSets)")

        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try lvs02.start(Configs.pair(priority: 95, instanceExtra: "no_accept", globals: "nftables vigil_test"))
        sim.run(5)
        #expect(lvs02.state("VI_1") == .backup && lvs02.nftRuleSets.isEmpty, "a backup drops nothing")
        lvs01.stop(in: sim)
        sim.run(5)
        #expect(lvs02.state("VI_1") == .master)
        let rules = try #require(lvs02.nftRuleSets.last)
        #expect(rules.contains("table ip vigil_test {") && rules.contains("elements = { 10.0.0.100 }") && rules.contains("ip daddr @vips drop")
                && rules.contains("ip saddr @vips drop") && rules.contains("priority -1;"), "\(rules)")
        #expect(lvs02.log.contains("(VI_1) setting firewall drop rule"))
        // Back to BACKUP: the drop goes with the VIP.
        lvs02.files.files[lvs02.path] = Configs.pair(priority: 95, instanceExtra: "no_accept", globals: "nftables vigil_test")
        let lvs03 = Director("lvs03", simulation: sim, ipv4: "10.0.0.43")
        try lvs03.start(Configs.pair(priority: 120, nopreempt: false))
        sim.run(6)
        #expect(lvs03.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
        #expect(lvs02.nftRuleSets.last == FirewallRules.removal(table: "vigil_test"), "\(lvs02.nftRuleSets.last ?? "")")
    }

    @Test func anOwnerOrAnAcceptingInstanceDropsNothing() throws {
        let sim = Simulation()
        let owner = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try owner.start(Configs.pair(priority: 255, instanceExtra: "no_accept", globals: "nftables"))
        sim.run(5)
        #expect(owner.state("VI_1") == .master && owner.nftRuleSets.isEmpty)
    }

    @Test func theRuleSetsAsNftReadsThem() {
        let vmacs = [FirewallRules.VMAC(name: "vrrp.77", parent: "eth0", family: .ipv4),
                     FirewallRules.VMAC(name: "vrrp6.77", parent: "eth0", family: .ipv6)]
        let text = FirewallRules.script(table: "keepalived", priority: -1, vmacs: vmacs, dropped: [IPAddress("fd00::1")!])
        #expect(text.hasPrefix("table ip keepalived {}\ndelete table ip keepalived\ntable ip keepalived {\n"))
        #expect(text.contains(Self.igmpRule))
        #expect(text.contains(#"oifname "vrrp6.77" icmpv6 type mld2-listener-report dup to ip6 daddr device "eth0" drop"#))
        #expect(text.contains(#"oifname "vrrp6.77" icmpv6 type nd-router-solicit drop"#))
        #expect(text.contains("set vips { type ipv6_addr; elements = { fd00::1 } }") && text.contains("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"))
        #expect(!text.contains("type ipv4_addr"), "no IPv4 set without IPv4 addresses")
        #expect(FirewallRules.removal(table: "keepalived") == "table ip keepalived {}\ndelete table ip keepalived\ntable ip6 keepalived {}\ndelete table ip6 keepalived\n")
    }
}

/// keepalived's auth_type AH through the daemon: adverts on IP protocol 51 with an ICV that
/// the peer checks, a wrong password or a replayed advert is an authentication failure.
@Suite struct AHAuthenticationTests {
    static func config(priority: Int, password: String = "secret1") -> String {
        Configs.pair(priority: priority).replacingOccurrences(of: "auth_type PASS\n        auth_pass 11111", with: "auth_type AH\n        auth_pass \(password)")
    }

    @Test func aPairAgreesAndAWrongPasswordIsRefused() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim, lvs01: Self.config(priority: 100), lvs02: Self.config(priority: 95))
        #expect(lvs01.node.openChannels.allSatisfy { $0.ipProtocol == 51 })
        let adverts = sim.wire(since: 0).compactMap(\.advert)
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.authType == .ipsecAH && $0.authData == [UInt8](repeating: 0, count: 8) })
        #expect(lvs02.instance("VI_1")!.ahSequence.counter == lvs01.instance("VI_1")!.ahSequence.counter, "the backup follows the master's numbers")

        let lvs03 = Director("lvs03", simulation: sim, ipv4: "10.0.0.43")
        try lvs03.start(Self.config(priority: 90, password: "other"))
        sim.run(5)
        #expect(lvs03.state("VI_1") == .master, "it cannot verify lvs01's adverts")
        #expect(lvs03.instance("VI_1")!.stats.authFailures > 0)
        #expect(lvs03.log.contains("(VI_1) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !"))
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup, "lvs03's adverts are refused in turn")
    }

    @Test func theNewMasterContinuesAboveTheOldNumbers() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim, lvs01: Self.config(priority: 100), lvs02: Self.config(priority: 95))
        let heard = lvs02.instance("VI_1")!.ahSequence.counter
        #expect(heard > 5)
        lvs01.stop(in: sim)
        sim.run(5)
        #expect(lvs02.state("VI_1") == .master && lvs02.instance("VI_1")!.ahSequence.counter > heard + 1)
        #expect(lvs02.instance("VI_1")!.stats.authFailures == 0)
    }
}

/// What a reading of the change found, each fixed.
@Suite struct FirewallAndVMACReviewTests {
    @Test func aReloadThatAddsAVIPDropsEveryHeldAddress() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let config = { (vips: [String]) in Configs.pair(priority: 100, vips: vips, instanceExtra: "no_accept", globals: "nftables") }
        try lvs01.start(config(["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        lvs01.files.files[lvs01.path] = config(["10.0.0.100/24", "10.0.0.101/24", "10.0.0.102/24"])
        _ = lvs01.ask("reload", in: sim)
        sim.run(1)
        let rules = try #require(lvs01.nftRuleSets.last)
        #expect(rules.contains("elements = { 10.0.0.100, 10.0.0.101, 10.0.0.102 }"), "\(rules)")
        lvs01.files.files[lvs01.path] = config(["10.0.0.100/24"])
        _ = lvs01.ask("reload", in: sim)
        sim.run(1)
        #expect(lvs01.nftRuleSets.last?.contains("elements = { 10.0.0.100 }") == true, "a removed VIP leaves the others dropped")
    }

    @Test func aVMACInUseIsNotRemadeByAReload() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41", extraInterfaces: ["eth1"])
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "use_vmac"))
        sim.run(5)
        let index = lvs01.node.interfaces["vrrp.77"]!.index
        lvs01.files.files[lvs01.path] = Configs.pair(priority: 100, instanceExtra: "use_vmac 02:11:22:33:44:55")
        let answer = lvs01.ask("reload", in: sim)
        #expect(answer.contains("VMAC vrrp.77 is in use on eth0 with 00:00:5e:00:01:4d"), "\(answer)")
        #expect(lvs01.node.interfaces["vrrp.77"]?.index == index && lvs01.state("VI_1") == .master && lvs01.node.addresses(on: "vrrp.77").count == 1)
    }

    @Test func aFailedStartTakesItsVMACsAndRulesAway() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        // The second instance's VMAC name is taken by a link of another kind.
        lvs01.node.addInterface("vrrp.78", segment: "other", ipv4: nil)
        let second = """
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 78
            priority 100
            use_vmac
            virtual_ipaddress {
                10.0.0.101/24
            }
        }
        """
        let text = Configs.pair(priority: 100, extra: second, instanceExtra: "use_vmac")
        #expect(throws: DaemonError.self) { try lvs01.start(text) }
        #expect(lvs01.node.interfaces["vrrp.77"] == nil)
        #expect(lvs01.node.sysctls["net/ipv4/conf/eth0/arp_ignore"] == 0)
        #expect(lvs01.nftRunsNow.last?.rules == FirewallRules.removal(table: "keepalived"))
    }
}

extension AHAuthenticationTests {
    /// A flood of forged and broken AH frames at an AH pair: no state moves, every frame is
    /// refused and counted, the master keeps its adverts.
    @Test func forgedAndBrokenFramesMoveNothing() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim, lvs01: Self.config(priority: 100), lvs02: Self.config(priority: 95))
        let before = lvs02.instance("VI_1")!.stats
        let payload = VRRPAdvert(version: .v2, vrid: 77, priority: 254, addresses: [IPAddress("10.0.0.100")!], authType: .ipsecAH,
                                 authData: [UInt8](repeating: 0, count: 8), advertIntervalSeconds: 1)
            .encode(endpoints: .ipv4(source: IPv4Address(10, 0, 0, 66), destination: .vrrpMulticastGroup))
        let forged = IPsecAH.encodeIPv4(advert: payload, source: IPv4Address(10, 0, 0, 66), destination: .vrrpMulticastGroup, ttl: 255,
                                        identification: 1, sequence: 1_000_000, hmac: { Digest.hmacMD5(key: IPsecAH.key("guess"), $0) })
        var frames: [[UInt8]] = [forged]
        for length in stride(from: 0, to: forged.count, by: 3) { frames.append(Array(forged.prefix(length))) }
        for i in 0..<200 { frames.append((0..<(i % 90)).map { _ in UInt8.random(in: 0...255) }) }
        for (i, frame) in frames.enumerated() {
            sim.after(Double(i) * 0.005) { sim.lan.inject(frame, source: .v4(IPv4Address(10, 0, 0, 66)), segment: "lan") }
        }
        let since = sim.now
        sim.run(3)
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup, "a forged priority 254 moved nothing")
        let after = lvs02.instance("VI_1")!.stats
        #expect(after.authFailures > before.authFailures, "the forged ICV is an authentication failure")
        let adverts = sim.wire(since: since).filter { $0.node == "lvs01" && $0.advert != nil }
        #expect(adverts.count >= 2, "the master kept advertising: \(adverts.count)")
    }
}
