import Testing
import Addressing
@testable import VRRP

/// keepalived's timer arithmetic (§3.1), checked against hand-computed values and then
/// observed in virtual time: a lone BACKUP must become MASTER exactly Master_Down_Interval
/// after start, and then advertise every interval.
@Suite struct TimerTests {
    @Test func documentedExamples() {
        // prio 100, 1 s: 3 s + 156/256 s, identical for v2 and v3.
        #expect(VRRPTimers.masterDown(priority: 100, version: .v2, masterAdvertInterval: 1_000_000) == 3_609_375)
        #expect(VRRPTimers.masterDown(priority: 100, version: .v3, masterAdvertInterval: 1_000_000) == 3_609_375)
        // v3 with 0.1 s: 0.3 s + 15.6/256 s, truncated to the µs like keepalived.
        #expect(VRRPTimers.masterDown(priority: 100, version: .v3, masterAdvertInterval: 100_000) == 360_937)
        // v2's skew ignores the interval.
        #expect(VRRPTimers.skew(priority: 100, version: .v2, masterAdvertInterval: 3_000_000) == 609_375)
        #expect(VRRPTimers.skew(priority: 1, version: .v2, masterAdvertInterval: 1_000_000) == 996_093)
        #expect(VRRPTimers.skew(priority: 254, version: .v2, masterAdvertInterval: 1_000_000) == 7_812)
        #expect(VRRPTimers.skew(priority: 255, version: .v2, masterAdvertInterval: 1_000_000) == 3_906)
        #expect(VRRPTimers.skew(priority: 1, version: .v3, masterAdvertInterval: 100_000) == 99_609)
        #expect(VRRPTimers.skew(priority: 254, version: .v3, masterAdvertInterval: 100_000) == 781)
        #expect(VRRPTimers.skew(priority: 255, version: .v3, masterAdvertInterval: 100_000) == 390)
        #expect(VRRPTimers.masterDown(priority: 100, version: .v3, masterAdvertInterval: 3_000_000) == 10_828_125)
        #expect(VRRPTimers.masterDown(priority: 100, version: .v2, masterAdvertInterval: 1_000_000, downTimerAdverts: 5) == 5_609_375)
    }

    static let matrix: [(VRRPVersion, UInt8, Int64)] = {
        var cases: [(VRRPVersion, UInt8, Int64)] = []
        for version in VRRPVersion.allCases {
            for priority: UInt8 in [1, 100, 254, 255] {
                for interval: Int64 in [100_000, 1_000_000, 3_000_000] { cases.append((version, priority, interval)) }
            }
        }
        return cases
    }()

    @Test(arguments: matrix)
    func loneRouterTimeline(version: VRRPVersion, priority: UInt8, configuredInterval: Int64) {
        var harness = Harness(.test(priority: priority, version: version, interval: configuredInterval))
        // keepalived rounds a v2 interval to whole seconds (0.1 s becomes 1 s).
        let interval = version == .v2 ? max(1_000_000, configuredInterval / 1_000_000 * 1_000_000) : configuredInterval
        #expect(harness.machine.config.advertInterval == interval)
        // Skew from first principles: (256 - p)/256 s for v2, (256 - p)/256 of the interval for v3.
        let skew = version == .v2 ? (256 - Int64(priority)) * 1_000_000 / 256 : (256 - Int64(priority)) * interval / 256
        let masterDown = 3 * interval + skew
        #expect(harness.machine.skew == skew)
        #expect(harness.machine.masterDownInterval == masterDown)
        harness.send(.start)
        // An owner goes straight to MASTER; everyone else waits out Master_Down_Interval.
        let becameMaster = priority == 255 ? VRRPInstant.zero : VRRPInstant.zero + masterDown
        if priority != 255 { #expect(harness.machine.nextDeadline == becameMaster) }
        harness.advance(to: becameMaster + 10 * interval)
        #expect(harness.transitions(to: .master) == [becameMaster])
        let advertTimes = harness.adverts().map(\.at)
        #expect(advertTimes == (0...10).map { becameMaster + Int64($0) * interval })
        #expect(harness.adverts().allSatisfy { $0.advert.priority == priority && $0.advert.advertInterval == interval })
    }
}
