import Testing
@testable import VigilDaemon

/// The resident code pages go after the start, after a reload, and a second after the
/// transitions that follow settle, at most once every 30 s for the transitions' sake.
@Suite struct CodePageReleaseTests {
    @Test func aBurstOfTransitionsIsOneReleaseASecondAfterItsLast() {
        let host = CodePageRelease()
        var releases: [Int64] = []
        host.release = { releases.append(0) }
        host.transitioned(at: 10_000_000)
        host.transitioned(at: 10_500_000)
        #expect(host.nextDeadline == 11_500_000)
        host.runDueWork(at: 11_000_000)
        #expect(releases.isEmpty, "not before its deadline")
        host.runDueWork(at: 11_500_000)
        #expect(releases.count == 1 && host.nextDeadline == nil)
        host.transitioned(at: 20_000_000)
        #expect(host.nextDeadline == 41_500_000, "30 s after the last release of its own")
        host.released()
        #expect(host.nextDeadline == nil, "a start or reload release covers what was pending")
    }

    @Test func aLoneMasterReleasesAtStartAndOnceItIsMaster() throws {
        let (sim, lvs01) = try Simulation.loneMaster(Configs.pair(priority: 100))
        #expect(lvs01.codePageReleases.count == 2, "\(lvs01.codePageReleases)")
        if lvs01.codePageReleases.count == 2 {
            let becameMaster = try #require(lvs01.log.lines.last { $0.text.contains("Entering MASTER STATE") }?.time)
            #expect(lvs01.codePageReleases[1] == becameMaster + 1_000_000)
        }
        lvs01.hangUp(with: Configs.pair(priority: 100, vips: ["10.0.0.100/24", "10.0.0.101/24"]))
        sim.run(40)
        #expect(lvs01.codePageReleases.count == 3, "the reload's, and no transition since: \(lvs01.codePageReleases)")
    }
}
