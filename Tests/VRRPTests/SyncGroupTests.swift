import Testing
import Addressing
@testable import VRRP

/// Drives a sync group in virtual time.
private struct GroupHarness {
    var group: VRRPSyncGroup
    var now: VRRPInstant = .zero
    var log: [(at: VRRPInstant, output: VRRPSyncGroup.Output)] = []

    init(_ configs: [VRRPInstanceConfig]) {
        group = VRRPSyncGroup(name: "G1", members: configs.map { VRRPStateMachine(config: $0) })
    }

    mutating func record(_ outputs: [VRRPSyncGroup.Output]) { log += outputs.map { (now, $0) } }

    mutating func start() { record(group.start(at: now)) }

    mutating func send(_ event: VRRPEvent, to member: Int) { record(group.handle(event, member: member, at: now)) }

    mutating func advance(to instant: VRRPInstant) {
        while let deadline = group.nextDeadline, deadline <= instant {
            now = max(now, deadline)
            record(group.fireTimers(at: now))
        }
        now = instant
    }

    var states: [VRRPState] { group.members.map(\.state) }
}

private func member(_ vrid: UInt8, priority: UInt8 = 100) -> VRRPInstanceConfig {
    var config = VRRPInstanceConfig.test(priority: priority, vips: [ip("10.0.\(vrid).100")])
    config.name = "VI_\(vrid)"
    config.vrid = vrid
    return config
}

@Suite struct SyncGroupTests {
    @Test func membersBecomeMasterTogether() {
        var harness = GroupHarness([member(1), member(2, priority: 150)])
        harness.start()
        #expect(harness.states == [.backup, .backup])
        // Member 1 (priority 150) times out first but member 0 does not want MASTER yet,
        // so it is held; when member 0 times out the whole group goes up at once.
        harness.advance(to: VRRPInstant.zero + seconds(3.5))
        #expect(harness.states == [.backup, .backup])
        #expect(harness.group.members[1].wantState == .master)
        harness.advance(to: VRRPInstant.zero + seconds(3.609375))
        #expect(harness.states == [.master, .master])
        #expect(harness.group.state == .master)
        #expect(harness.log.contains { $0.output == .member(1, .stateChanged(from: .backup, to: .master, reason: .syncGroup)) })
        #expect(harness.log.contains { $0.output == .groupStateChanged(from: .backup, to: .master) })
    }

    @Test func oneMemberYieldingPullsTheOthersDown() {
        var harness = GroupHarness([member(1), member(2)])
        harness.start()
        harness.advance(to: VRRPInstant.zero + seconds(5))
        #expect(harness.states == [.master, .master])
        let config = harness.group.members[0].config
        harness.send(peerAdvert(config, priority: 200), to: 0)
        #expect(harness.states == [.backup, .backup])
        #expect(harness.log.contains { $0.output == .member(1, .removeVIPs([ip("10.0.2.100")])) })
        #expect(harness.group.state == .backup)
    }

    @Test func anyFaultFaultsTheGroupUntilAllAreClear() {
        var harness = GroupHarness([member(1), member(2), member(3)])
        harness.start()
        harness.advance(to: VRRPInstant.zero + seconds(5))
        #expect(harness.states == [.master, .master, .master])
        harness.send(.trackersChanged([VRRPTracker(name: "eth1", isUp: false)]), to: 1)
        #expect(harness.states == [.fault, .fault, .fault])
        #expect(harness.log.contains { $0.output == .member(0, .sendAdvert(harness.group.members[0].advert(priority: 0))) })
        harness.send(.trackersChanged([VRRPTracker(name: "eth2", isUp: false)]), to: 2)
        harness.send(.trackersChanged([]), to: 1)
        #expect(harness.states == [.fault, .fault, .fault])
        harness.send(.trackersChanged([]), to: 2)
        #expect(harness.states == [.backup, .backup, .backup])
        let cleared = harness.now
        harness.advance(to: cleared + seconds(4))
        #expect(harness.states == [.master, .master, .master])
    }
}
