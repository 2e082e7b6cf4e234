import Testing
import VRRP
@testable import VigilDaemon

/// keepalived's dump signals on the simulated pair: the files keepalived's scripts and
/// exporters read, at keepalived's paths, and the stats clear.
@Suite struct DumpSignalTests {
    @Test func eachSignalWritesItsFile() throws {
        let sim = Simulation()
        let (lvs01, lvs02) = try VRRPReloadTests.settledPair(sim)
        for signal in [KeepalivedSignal.data, .stats, .json] { lvs02.signals.pending.append(signal.number) }
        sim.run(0.1)
        let data = try #require(lvs02.files.files["/tmp/keepalived.data"])
        #expect(data.contains(" VRRP Instance = VI_1\n") && data.contains("   State = BACKUP\n") && data.contains("   Virtual Router ID = 77\n"))
        let stats = try #require(lvs02.files.files["/tmp/keepalived.stats"])
        let received = lvs02.instance("VI_1")!.stats.advertsReceived
        #expect(received > 5 && stats.contains("VRRP Instance: VI_1\n  Advertisements:\n    Received: \(received)\n"))
        let json = try #require(lvs02.files.files["/tmp/keepalived.json"])
        #expect(json.hasPrefix(#"[{"data":{"iname":"VI_1""#) && json.contains(#""state":1"#))
        #expect(json.contains(#""auth_data":"********""#) && !json.contains("11111"), "the password is masked")
        #expect(lvs01.files.files["/tmp/keepalived.json"] == nil, "only the signalled daemon writes")
    }

    @Test func statsClearWritesThenStartsFromZero() throws {
        let sim = Simulation()
        let (_, lvs02) = try VRRPReloadTests.settledPair(sim)
        let before = lvs02.instance("VI_1")!.stats.advertsReceived
        lvs02.signals.pending.append(KeepalivedSignal.statsClear.number)
        sim.run(0.001)
        #expect(lvs02.files.files["/tmp/keepalived.stats"]?.contains("Received: \(before)\n") == true)
        #expect(lvs02.instance("VI_1")!.stats.advertsReceived == 0)
        sim.run(2.5)
        let after = lvs02.instance("VI_1")!.stats.advertsReceived
        #expect((2...3).contains(after), "one advert a second since the clear")
        #expect(lvs02.metric(#"keepalived_advertisements_received_total{iname="VI_1",intf="eth0",vrid="77"}"#, in: sim) == Double(after))
    }

    @Test func aFullTmpIsLoggedAndChangesNothing() throws {
        let sim = Simulation()
        let (lvs01, _) = try VRRPReloadTests.settledPair(sim)
        lvs01.files.unwritable = ["/tmp/keepalived.json"]
        let since = sim.now
        lvs01.signals.pending.append(KeepalivedSignal.json.number)
        sim.run(3)
        #expect(lvs01.log.contains("Cannot write /tmp/keepalived.json for signal JSON"))
        #expect(lvs01.state("VI_1") == .master)
        #expect(VRRPReloadTests.onlyRegularAdverts(sim.wire(since: since), from: "lvs01"))
    }

    @Test(arguments: [(nil as String?, "/tmp"), ("relative/dir", "/tmp"), ("/var/tmp/", "/var/tmp"), ("/run/vigil", "/run/vigil"), ("/", "/")])
    func dumpsGoWhereKeepalivedPutsThem(tmpdir: String?, directory: String) {
        #expect(Daemon.dumpDirectory(environment: tmpdir) == directory)
    }

    @Test func signumNumbersAreKeepalivedsOnGlibc() {
        #expect(KeepalivedSignal.allCases.map(\.number) == [1, 15, 10, 12, 63, 36])
    }
}
