import Addressing
import Testing
import VRRP
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
