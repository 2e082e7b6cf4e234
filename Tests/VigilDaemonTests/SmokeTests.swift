import Addressing
import Testing
import VRRP
@testable import VigilDaemon

@Suite struct StartupTests {
    @Test func aPairElectsTheHigherPriorityAndTheVIPLandsThere() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try lvs01.start(Configs.pair(priority: 100))
        sim.run(0.5)
        try lvs02.start(Configs.pair(priority: 95))
        sim.run(10)
        #expect(lvs01.state("VI_1") == .master)
        #expect(lvs02.state("VI_1") == .backup)
        #expect(lvs01.holds("10.0.0.100") && !lvs02.holds("10.0.0.100"))
        #expect(lvs01.processes.notifications.contains("/etc/keepalived/notify.sh INSTANCE VI_1 MASTER 100"))
        let adverts = sim.lan.capture.compactMap(\.advert)
        #expect(adverts.allSatisfy { $0.priority == 100 })
    }
}
