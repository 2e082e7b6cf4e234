import Addressing
import Testing
import VRRP
import VigilConfig
import VRRPSpecs
import VigilSystem
@testable import VigilDaemon

/// Tracked links are looked at when rtnetlink reports a link change, as keepalived's netlink
/// monitor does: FAULT follows a link going down in the same turn, and an idle master wakes
/// for its adverts alone. Without a monitor (the kernel refused the socket) they are polled
/// once a second.
@Suite struct LinkEventTests {
    private func master(monitor: Bool) throws -> (Simulation, Director) {
        try Simulation.loneMaster(Configs.pair(priority: 100, nopreempt: false)) { $0.node.offersNetlinkMonitor = monitor }
    }

    @Test func aReportedLinkDownIsAFaultInTheSameTurn() throws {
        let (sim, lvs01) = try master(monitor: true)
        let down = sim.now + 300_000
        sim.at(down) { lvs01.node.setLink("eth0", up: false) }
        sim.run(0.3)
        #expect(lvs01.state("VI_1") == .fault)
        #expect(!lvs01.holds("10.0.0.100"))
        #expect(lvs01.log.contains("Netlink reports eth0 down"))
        sim.at(sim.now + 100_000) { lvs01.node.setLink("eth0", up: true) }
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
    }

    @Test func withoutAMonitorTheLinkIsPolledOnceASecond() throws {
        let (sim, lvs01) = try master(monitor: false)
        sim.after(0.1) { lvs01.node.setLink("eth0", up: false) }
        sim.run(0.5)
        #expect(lvs01.state("VI_1") == .master, "not looked at yet")
        sim.run(1)
        #expect(lvs01.state("VI_1") == .fault)
    }

    @Test func aMissedReportIsCaughtByTheSafetyNet() throws {
        let (sim, lvs01) = try master(monitor: true)
        // The kernel's report lost without ENOBUFS (it never is, but the look is cheap).
        sim.after(0.1) {
            lvs01.node.interfaces["eth0"]!.isUp = false
        }
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master, "nothing reported, not polled every second")
        sim.run(TrackerHost.linkSafetyInterval.seconds)
        #expect(lvs01.state("VI_1") == .fault)
    }

    /// `ip link del eth0`, then the link made again (a new index, as a re-made veth or VLAN
    /// has): keepalived 2.2.7 goes FAULT, then BACKUP and MASTER on the new link, with its
    /// VIP and adverts there (measured in a namespace). Vigil did too, but kept the socket
    /// and VIP specs of the old index: a MASTER that sent nothing and held no VIP.
    @Test(arguments: [true, false]) func aLinkCreatedAgainIsFollowed(monitor: Bool) throws {
        let (sim, lvs01) = try master(monitor: monitor)
        let oldIndex = lvs01.node.interfaces["eth0"]!.index
        sim.after(0.2) { lvs01.node.deleteInterface("eth0") }
        sim.run(1.5)
        #expect(lvs01.state("VI_1") == .fault)
        sim.after(0.1) {
            lvs01.node.addInterface("eth0", ipv4: "10.0.0.41")
            lvs01.node.pendingNetlinkEvents.linkChanged = true
        }
        sim.run(1.5)
        let recreated = sim.now
        #expect(lvs01.node.interfaces["eth0"]!.index != oldIndex)
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs01.holds("10.0.0.100"), "the VIP is on the new link")
        let adverts = sim.wire(since: recreated).filter { $0.node == "lvs01" && $0.advert != nil }
        #expect(adverts.count >= 3, "adverts leave by the new link: \(adverts.count)")
        #expect(lvs01.log.contains("eth0 was created again"))
        #expect(lvs01.node.openChannels.count == 1, "the old socket is closed")
        let failedSends = lvs01.log.lines.filter { $0.text.contains("cannot send advert") && $0.time >= recreated }
        #expect(failedSends.isEmpty, "none once the link is back: \(failedSends.map(\.text))")
    }

    /// keepalived's dynamic_interfaces: an instance on a link that does not exist yet starts in
    /// FAULT ("will use if created") instead of stopping the daemon, and runs once the link is
    /// created and has its address (keepalived 2.2.7, measured: FAULT, BACKUP, MASTER).
    @Test(arguments: [true, false]) func dynamicInterfacesWaitForTheLink(monitor: Bool) throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs01.node.offersNetlinkMonitor = monitor
        let config = """
            global_defs {
                dynamic_interfaces
            }
            vrrp_instance VI_1 {
                state BACKUP
                interface eth1
                virtual_router_id 51
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.1.0.100/24
                }
            }

            """
        try lvs01.start(config)
        sim.run(5)
        #expect(lvs01.state("VI_1") == .fault)
        #expect(lvs01.log.contains("Configuration specifies interface eth1 which doesn't currently exist - will use if created"))
        // The link first, its address a moment later, as `ip link add` and `ip addr add` come.
        sim.after(0.1) {
            lvs01.node.addInterface("eth1", segment: "lan-eth1", ipv4: nil)
            lvs01.node.pendingNetlinkEvents.linkChanged = true
        }
        sim.run(5)
        #expect(lvs01.state("VI_1") == .fault, "up, but no address to send from: keepalived stays FAULT too")
        sim.after(0.1) {
            let index = lvs01.node.interfaces["eth1"]!.index
            lvs01.node.interfaces["eth1"]!.addresses.append(InterfaceAddress(ifindex: index, address: IPAddress("10.1.0.41")!, prefixLength: 24))
            lvs01.node.pendingNetlinkEvents.addressAdded = true
        }
        sim.run(1)
        #expect(lvs01.log.matching("waiting for it in FAULT state").count == 1, "\(lvs01.log.matching("waiting"))")
        let created = sim.now
        sim.run(7)
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs01.node.addresses(on: "eth1").contains(IPAddress("10.1.0.100")!))
        let adverts = sim.wire(since: created).filter { $0.node == "lvs01" && $0.advert != nil }
        #expect(adverts.count >= 3 && adverts.allSatisfy { $0.source == IPAddress("10.1.0.41")! }, "\(adverts)")
    }

    /// keepalived's interface_up_down_delays: a link down for less than its down delay is no
    /// transition ("Delay timer for eth0 cancelled"); one that stays down is a FAULT when the
    /// delay ends, and the way back waits for the up delay.
    @Test func upDownDelaysDebounceALink() throws {
        let config = "interface_up_down_delays {\n    eth0 1.5 1\n}\n" + Configs.pair(priority: 100, nopreempt: false)
        let (sim, lvs01) = try Simulation.loneMaster(config) { $0.node.offersNetlinkMonitor = true }
        sim.after(0.2) { lvs01.node.setLink("eth0", up: false) }
        sim.after(1.2) { lvs01.node.setLink("eth0", up: true) }
        sim.run(3)
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs01.log.contains("eth0: down change delayed by 1.5 s (interface_up_down_delays)"))
        #expect(lvs01.log.contains("Delay timer for eth0 cancelled"))
        #expect(!lvs01.log.contains("Netlink reports eth0 down"))

        sim.after(0.1) { lvs01.node.setLink("eth0", up: false) }
        sim.run(1.5)
        #expect(lvs01.state("VI_1") == .master, "1.4 s down: not yet")
        sim.run(0.2)
        #expect(lvs01.state("VI_1") == .fault)
        #expect(!lvs01.holds("10.0.0.100"))
        sim.after(0.1) { lvs01.node.setLink("eth0", up: true) }
        sim.run(1)
        #expect(lvs01.state("VI_1") == .fault, "0.9 s up: not yet")
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
    }

    @Test func upDownDelaysEndBeforeTheMasterDownTimer() {
        let (config, diagnostics) = ConfigLoader.load(text: "interface_up_down_delays {\n    eth0 5 1\n}\n" + Configs.pair(priority: 100, nopreempt: false))
        // advert_int 1, down_timer_adverts 3: under 2 s, as keepalived cuts them.
        #expect(config.interfaceDelays.first?.down == 2_000_000 - 1_000_000 / 256 && config.interfaceDelays.first?.up == 1_000_000)
        #expect(diagnostics.all.contains { $0.message == "VI_1: interface eth0 debounce timer(s) not less that 2 * advert_int - resetting" })
    }

    /// keepalived's linkbeat: a polled link is looked at every second, so a driver that never
    /// reports its carrier is still seen (here: no report at all, as in the safety-net test).
    @Test(arguments: ["linkbeat_interfaces {\n    eth0\n}\n", "linkbeat_use_polling\n"])
    func aPolledLinkIsSeenWithoutAReport(polling: String) throws {
        let (sim, lvs01) = try Simulation.loneMaster(polling + Configs.pair(priority: 100, nopreempt: false)) { $0.node.offersNetlinkMonitor = true }
        sim.after(0.1) { lvs01.node.interfaces["eth0"]!.isUp = false }
        sim.run(1.2)
        #expect(lvs01.state("VI_1") == .fault)
    }

    @Test func linkbeatKeywordsAsKeepalivedReadsThem() {
        let inInstance = ConfigLoader.load(text: Configs.pair(priority: 100, nopreempt: false).replacingOccurrences(of: "interface eth0", with: "interface eth0\n    linkbeat_use_polling"))
        #expect(inInstance.1.all.contains { $0.severity == .error && $0.message == "(VI_1) 'linkbeat_use_polling' in vrrp instance deprecated - use linkbeat_interfaces block" })
        #expect(VRRPSetupBuilder.build(inInstance.0).setup.polledLinks == ["eth0"])
        let typed = ConfigLoader.load(text: "linkbeat_interfaces {\n    eth0 ETHTOOL\n    eth1 FAST\n}\n")
        #expect(typed.0.linkbeatInterfaces.map(\.interface) == ["eth0", "eth1"])
        #expect(typed.1.all.filter { $0.severity == .error }.map(\.message) == ["extra characters FAST in linkbeat interface"])
        #expect(!typed.1.all.contains { $0.message.contains("not acted on") })
    }

    @Test func anIdleMasterWakesForItsAdvertsAlone() throws {
        let (sim, _) = try master(monitor: true)
        let before = sim.turns
        sim.run(60)
        let withMonitor = sim.turns - before
        // 60 adverts at advert_int 1, and two looks of the 30 s safety net.
        #expect(withMonitor <= 62, "\(withMonitor) turns in 60 s")
        let (polled, _) = try master(monitor: false)
        let start = polled.turns
        polled.run(60)
        #expect(polled.turns - start >= 110, "\(polled.turns - start) turns in 60 s: the adverts and a link look each second")
    }
}

private extension Int64 {
    var seconds: Double { Double(self) / 1e6 }
}
