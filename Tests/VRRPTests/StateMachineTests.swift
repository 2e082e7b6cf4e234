import Testing
import Addressing
@testable import VRRP

private let vip = ip("10.0.0.100")
private let masterDown100 = seconds(3.609375)

/// A harness whose machine has just become MASTER at t = 0 (priority 255 start), then has
/// its priority lowered through a reload so that elections are interesting.
private func masterHarness(priority: UInt8 = 100, host: UInt8 = 5, configure: (inout VRRPInstanceConfig) -> Void = { _ in }) -> Harness {
    var config = VRRPInstanceConfig.test(host: host, priority: priority)
    configure(&config)
    var harness = Harness(config)
    harness.send(.start)
    harness.advance(to: VRRPInstant.zero + harness.machine.masterDownInterval)
    #expect(harness.machine.state == .master)
    harness.log.removeAll()
    return harness
}

@Suite struct StartupTests {
    @Test func ownerBecomesMasterImmediatelyAdvertFirst() {
        var harness = Harness(.test(priority: 255))
        let actions = harness.send(.start)
        let advert = harness.machine.advert(priority: 255)
        #expect(actions == [
            .removeVIPs([vip]),
            .sendAdvert(advert),
            .stateChanged(from: .initialize, to: .master, reason: .ownerStartup),
            .addVIPs([vip]),
            .sendGARP([vip], rounds: 5),
            .runNotify(.master, priority: 255),
        ])
        #expect(harness.machine.nextDeadline == VRRPInstant.zero + 1_000_000)
    }

    @Test func backupStartAnnouncesAndArmsMasterDown() {
        var harness = Harness(.test())
        #expect(harness.send(.start) == [
            .removeVIPs([vip]),
            .stateChanged(from: .initialize, to: .backup, reason: .startup),
            .runNotify(.backup, priority: 100),
        ])
        #expect(harness.machine.nextDeadline == VRRPInstant.zero + masterDown100)
    }

    @Test func ownerWithExplicitBackupStateWaits() {
        var harness = Harness(.test(priority: 255, initialState: .backup))
        harness.send(.start)
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + 3_003_906])
    }

    @Test func stateMasterBelow255IsOnlyAWish() {
        var harness = Harness(.test(priority: 200, initialState: .master))
        harness.send(.start)
        #expect(harness.machine.state == .backup)
        harness.advance(to: VRRPInstant.zero + seconds(3))
        #expect(harness.machine.state == .backup)
        // It still yields to an equal or higher priority master heard in time.
        harness.send(peerAdvert(harness.machine.config, priority: 200, from: 2))
        harness.advance(by: seconds(3.2))
        #expect(harness.machine.state == .backup)
    }

    @Test func faultedAtStartEntersFault() {
        var harness = Harness(.test(), trackers: [VRRPTracker(name: "eth0", weight: 0, isUp: false)])
        #expect(harness.send(.start) == [
            .removeVIPs([vip]),
            .stateChanged(from: .initialize, to: .fault, reason: .faultDetected),
            .runNotify(.fault, priority: 100),
        ])
        #expect(harness.machine.nextDeadline == nil)
    }

    @Test func configIsNormalizedLikeKeepalived() {
        var config = VRRPInstanceConfig.test(priority: 255)
        config.nopreempt = true
        #expect(VRRPStateMachine(config: config).config.nopreempt == false)
        config = .test(initialState: .master)
        config.nopreempt = true
        config.preemptDelay = 5_000_000
        let normalized = config.normalized()
        #expect(!normalized.nopreempt && normalized.preemptDelay == 0)
        config = .test(version: .v3, interval: 123_456)
        config.authentication = .password("x")
        #expect(config.normalized().advertInterval == 120_000)
        #expect(config.normalized().authentication == .none)
        #expect(VRRPInstanceConfig.test(interval: 2_600_000).normalized().advertInterval == 3_000_000)
        #expect(VRRPInstanceConfig.test(version: .v3, interval: 50_000_000).normalized().advertInterval == 40_950_000)
    }
}

@Suite struct BackupTests {
    @Test func higherPriorityMasterKeepsBackupSilentUntilItStops() {
        var harness = Harness(.test())
        harness.send(.start)
        for second in 0..<20 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            harness.send(peerAdvert(harness.machine.config, priority: 200))
        }
        #expect(harness.machine.state == .backup)
        #expect(harness.adverts().isEmpty)
        #expect(harness.machine.masterAddress == ip("10.0.0.2") && harness.machine.masterPriority == 200)
        harness.advance(by: seconds(10))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + seconds(19) + masterDown100])
        #expect(harness.log.contains { $0.action == .stateChanged(from: .backup, to: .master, reason: .masterNoResponse) })
    }

    @Test func equalPriorityIsAcceptedWithoutTieBreak() {
        // Our address is higher, but a BACKUP never tie-breaks: it just follows the master.
        var harness = Harness(.test(host: 9))
        harness.send(.start)
        for second in 0..<10 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            harness.send(peerAdvert(harness.machine.config, priority: 100, from: 2))
        }
        #expect(harness.transitions(to: .master).isEmpty)
    }

    @Test func lowerPriorityAdvertsAreIgnoredAndDoNotRestartTheTimer() {
        var harness = Harness(.test())
        harness.send(.start)
        harness.send(peerAdvert(harness.machine.config, priority: 200))
        for tenth in 1...40 {
            harness.advance(to: VRRPInstant.zero + Int64(tenth) * 100_000)
            if harness.machine.state == .backup {
                #expect(harness.send(peerAdvert(harness.machine.config, priority: 50)).isEmpty)
            }
        }
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + masterDown100])
        #expect(harness.log.contains { $0.action == .stateChanged(from: .backup, to: .master, reason: .preempted) })
    }

    @Test func nopreemptFollowsALowerPriorityMaster() {
        var config = VRRPInstanceConfig.test()
        config.nopreempt = true
        var harness = Harness(config)
        harness.send(.start)
        for second in 0..<30 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            harness.send(peerAdvert(harness.machine.config, priority: 50))
        }
        #expect(harness.machine.state == .backup)
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + seconds(29) + masterDown100])
    }

    @Test func preemptDelayStartsAtFirstLowerAdvert() {
        var config = VRRPInstanceConfig.test()
        config.preemptDelay = 5_000_000
        var harness = Harness(config)
        harness.send(.start)
        for second in 0..<10 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            if harness.machine.state == .backup { harness.send(peerAdvert(harness.machine.config, priority: 50)) }
        }
        // Accepted while the preempt timer (0 s + 5 s) runs: the last accepted is at 4 s,
        // so the takeover comes one master-down later.
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + seconds(4) + masterDown100])
    }

    @Test func higherPriorityAdvertCancelsPreemptDelay() {
        var config = VRRPInstanceConfig.test()
        config.preemptDelay = 5_000_000
        var harness = Harness(config)
        harness.send(.start)
        for second in 0..<4 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            harness.send(peerAdvert(harness.machine.config, priority: 50))
        }
        harness.advance(to: VRRPInstant.zero + seconds(4))
        harness.send(peerAdvert(harness.machine.config, priority: 200))
        // The preempt timer restarts at the next lower advert (5 s, expiring at 10 s).
        for second in 5..<20 {
            harness.advance(to: VRRPInstant.zero + Int64(second) * 1_000_000)
            if harness.machine.state == .backup { harness.send(peerAdvert(harness.machine.config, priority: 50)) }
        }
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + seconds(9) + masterDown100])
    }

    @Test func priorityZeroMeansTakeoverAfterSkew() {
        var harness = Harness(.test())
        harness.send(.start)
        harness.send(peerAdvert(harness.machine.config, priority: 200))
        harness.advance(to: VRRPInstant.zero + 500_000)
        harness.send(peerAdvert(harness.machine.config, priority: 0))
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + 500_000 + 609_375])
        #expect(harness.log.contains { $0.action == .stateChanged(from: .backup, to: .master, reason: .masterResigned) })
    }

    @Test func v3BackupLearnsTheMasterInterval() {
        var harness = Harness(.test(version: .v3))
        harness.send(.start)
        harness.send(peerAdvert(harness.machine.config, priority: 200, interval: 500_000))
        #expect(harness.machine.masterAdvertInterval == 500_000)
        // 3 × 0.5 s + 156/256 × 0.5 s.
        let expected: Int64 = 1_500_000 + 156 * 500_000 / 256
        #expect(harness.machine.masterDownInterval == expected)
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + expected])
        // As master it advertises at its own interval again.
        #expect(harness.machine.masterAdvertInterval == 1_000_000)
        let firstTwo = Array(harness.adverts().map(\.at).prefix(2))
        let became = VRRPInstant.zero + expected
        #expect(firstTwo == [became, became + 1_000_000])
    }
}

@Suite struct MasterTests {
    @Test func advertisesEveryIntervalWithGARPBursts() {
        var config = VRRPInstanceConfig.test()
        config.garp = VRRPGARPConfig(masterDelay: 5_000_000, masterRepeat: 3, masterRefresh: 10_000_000, masterRefreshRepeat: 2)
        var harness = Harness(config)
        harness.send(.start)
        let t0 = VRRPInstant.zero + masterDown100
        harness.advance(to: t0 + seconds(25))
        let garps = harness.log.compactMap { entry -> (VRRPInstant, Int)? in
            if case .sendGARP(_, let rounds) = entry.action { return (entry.at, rounds) }
            return nil
        }
        // Burst on becoming master, again after garp_master_delay, then refreshes on the first
        // advert strictly after each refresh period.
        #expect(garps.map(\.0) == [t0, t0 + seconds(5), t0 + seconds(11), t0 + seconds(22)])
        #expect(garps.map(\.1) == [3, 3, 2, 2])
    }

    @Test func answersPriorityZeroImmediately() {
        var harness = masterHarness()
        harness.advance(by: 300_000)
        let actions = harness.send(peerAdvert(harness.machine.config, priority: 0))
        #expect(actions == [.sendAdvert(harness.machine.advert(priority: 100))])
        #expect(harness.machine.state == .master)
        #expect(harness.machine.nextDeadline == harness.now + 1_000_000)
    }

    @Test func lowerPriorityAdvertIsAnsweredWithAdvertAndGARPs() {
        var harness = masterHarness { $0.garp = VRRPGARPConfig(masterDelay: 5_000_000, masterRepeat: 5, lowerPrioDelay: 2_000_000, lowerPrioRepeat: 2) }
        let actions = harness.send(peerAdvert(harness.machine.config, priority: 50, from: 2))
        #expect(actions == [
            .sendAdvert(harness.machine.advert(priority: 100)),
            .sendGARP([vip], rounds: 2),
            .masterReceivedLowerPriority(source: ip("10.0.0.2"), priority: 50),
        ])
        let t = harness.now
        harness.advance(by: seconds(2.5))
        #expect(harness.log.contains { $0.at == t + 2_000_000 && $0.action == .sendGARP([vip], rounds: 2) })
        #expect(harness.machine.state == .master)
    }

    @Test func lowerPrioNoAdvertSuppressesTheAnswer() {
        var harness = masterHarness {
            $0.lowerPrioNoAdvert = true
            $0.garp.lowerPrioRepeat = 0
        }
        #expect(harness.send(peerAdvert(harness.machine.config, priority: 50)) == [
            .masterReceivedLowerPriority(source: ip("10.0.0.2"), priority: 50),
        ])
    }

    @Test func equalPriorityTieBreakByAddress() {
        // Lower address (10.0.0.2 < 10.0.0.5): we stay master and force a new election.
        var harness = masterHarness(host: 5)
        let lower = harness.send(peerAdvert(harness.machine.config, priority: 100, from: 2))
        #expect(harness.machine.state == .master)
        #expect(lower.contains(.masterReceivedLowerPriority(source: ip("10.0.0.2"), priority: 100)))
        // Higher address: we yield.
        let higher = harness.send(peerAdvert(harness.machine.config, priority: 100, from: 9))
        #expect(higher == [
            .stateChanged(from: .master, to: .backup, reason: .equalPriorityHigherAddress),
            .removeVIPs([vip]),
            .runNotify(.backup, priority: 100),
        ])
        #expect(harness.machine.nextDeadline == harness.now + masterDown100)
    }

    @Test func higherPriorityAdvertMakesMasterYield() {
        var harness = masterHarness { $0.higherPrioSendAdvert = true }
        let actions = harness.send(peerAdvert(harness.machine.config, priority: 150, from: 2))
        #expect(actions == [
            .sendAdvert(harness.machine.advert(priority: 100)),
            .stateChanged(from: .master, to: .backup, reason: .higherPriorityAdvert),
            .removeVIPs([vip]),
            .runNotify(.backup, priority: 100),
        ])
        #expect(harness.machine.state == .backup && harness.machine.masterPriority == 150)
    }

    @Test func ofTwoOwnersOnlyTheLowerAddressYieldsAndTakes255BackWhenTheOtherLeaves() {
        var lower = Harness(.test(host: 5, priority: 255))
        lower.send(.start)
        lower.send(peerAdvert(lower.machine.config, priority: 255, from: 9))
        #expect(lower.machine.state == .backup && lower.machine.effectivePriority == 254)
        var higher = Harness(.test(host: 9, priority: 255))
        higher.send(.start)
        higher.send(peerAdvert(higher.machine.config, priority: 255, from: 5))
        #expect(higher.machine.state == .master && higher.machine.effectivePriority == 255, "the higher address stays the owner")
        // The other owner resigns: the demoted one takes over as the owner again.
        lower.send(peerAdvert(lower.machine.config, priority: 0, from: 9))
        _ = lower.advance(to: lower.machine.nextDeadline!)
        #expect(lower.machine.state == .master && lower.machine.effectivePriority == 255)
    }

    @Test func shutdownFromMasterSendsPriorityZero() {
        var harness = masterHarness()
        #expect(harness.send(.shutdown) == [
            .sendAdvert(harness.machine.advert(priority: 0)),
            .removeVIPs([vip]),
            .stateChanged(from: .master, to: .stopped, reason: .shutdown),
            .runNotify(.stop, priority: 100),
        ])
        #expect(harness.machine.nextDeadline == nil)
        #expect(harness.send(.timerFired).isEmpty && harness.send(.start).isEmpty)
        #expect(harness.send(peerAdvert(harness.machine.config, priority: 200)).isEmpty)
    }

    @Test func shutdownFromBackupOnlyNotifies() {
        var harness = Harness(.test())
        harness.send(.start)
        #expect(harness.send(.shutdown) == [
            .stateChanged(from: .backup, to: .stopped, reason: .shutdown),
            .runNotify(.stop, priority: 100),
        ])
    }
}

@Suite struct ValidationTests {
    /// Each rejection is counted under its reason, changes nothing, and leaves a BACKUP's
    /// down timer where it was.
    @Test func rejectedAdvertsAreCountedAndIgnored() {
        var config = VRRPInstanceConfig.test()
        config.authentication = .password("secret")
        let base = VRRPStateMachine(config: config)
        let good = base.advert(priority: 200)
        func received(_ change: (inout VRRPAdvert) -> Void, ttl: UInt8? = 255, multicast: Bool = true) -> VRRPEvent {
            var advert = good
            change(&advert)
            return .packetReceived(VRRPReceivedAdvert(advert: advert, source: ip("10.0.0.2"), ttl: ttl, isMulticast: multicast))
        }
        let cases: [(VRRPEvent, VRRPReceiveError)] = [
            (received({ $0.vrid = 52 }), .vridMismatch),
            (received({ _ in }, ttl: 254), .ttlInvalid),
            (received({ $0.version = .v3 }), .versionMismatch),
            (received({ $0.authType = .none }), .authTypeMismatch),
            (received({ $0.authData = VRRPAdvert.passwordAuthData("secreT") }), .authFailure),
            (received({ $0.advertIntervalSeconds = 2 }), .intervalMismatch),
            (received({ $0.type = 2 }), .malformed(.badType)),
            (received({ _ in }, multicast: false), .deliveryMismatch),
        ]
        for (event, reason) in cases {
            var harness = Harness(config)
            harness.send(.start)
            harness.advance(to: VRRPInstant.zero + seconds(2))
            let before = harness.machine.nextDeadline
            #expect(harness.send(event) == [.countReceiveError(reason)], "\(reason)")
            #expect(harness.machine.nextDeadline == before)
            #expect(harness.machine.masterAddress == nil)
            harness.advance(by: seconds(2))
            #expect(harness.transitions(to: .master) == [VRRPInstant.zero + masterDown100], "\(reason)")
        }
        #expect(Set(cases.map(\.1.counterName)).count == cases.count)
    }

    @Test func vipMismatchesAreCountedButAccepted() {
        var harness = Harness(.test(vips: [ip("10.0.0.100"), ip("10.0.0.101")]))
        harness.send(.start)
        harness.advance(to: VRRPInstant.zero + seconds(2))
        var advert = harness.machine.advert(priority: 200)
        advert.addresses = [ip("10.0.0.100"), ip("10.0.0.102"), ip("10.0.0.103")]
        let actions = harness.send(.packetReceived(VRRPReceivedAdvert(advert: advert, source: ip("10.0.0.2"))))
        #expect(actions == [.countReceiveError(.vipCountMismatch), .countReceiveError(.vipListMismatch)])
        #expect(harness.machine.nextDeadline == harness.now + masterDown100)
        #expect(VRRPReceiveError.vipListMismatch.packetStillAccepted && !VRRPReceiveError.ttlInvalid.packetStillAccepted)
    }

    @Test func unicastInstancesSkipTheTTLCheck() {
        var config = VRRPInstanceConfig.test()
        config.unicastPeers = [ip("10.0.0.2")]
        var harness = Harness(config)
        harness.send(.start)
        #expect(harness.send(peerAdvert(config, priority: 200, ttl: 64, multicast: false)).isEmpty)
        #expect(harness.machine.masterPriority == 200)
        #expect(harness.send(peerAdvert(config, priority: 200, multicast: true)) == [.countReceiveError(.deliveryMismatch)])
    }

    /// keepalived's check_unicast_src: only the unicast peers are heard, each within its
    /// min_ttl...max_ttl; without it any unicast source is heard (as keepalived).
    @Test func checkUnicastSourceHearsOnlyPeersWithinTheirTTL() {
        var config = VRRPInstanceConfig.test()
        config.unicastPeers = [ip("10.0.0.2")]
        var open = Harness(config)
        open.send(.start)
        #expect(open.send(peerAdvert(config, priority: 200, from: 9, ttl: 64, multicast: false)).isEmpty)
        config.checkUnicastSource = true
        config.peerTTLRanges = [ip("10.0.0.2"): 250...255]
        var harness = Harness(config)
        harness.send(.start)
        #expect(harness.send(peerAdvert(config, priority: 200, from: 9, multicast: false)) == [.countReceiveError(.unicastSourceNotPeer)])
        #expect(harness.send(peerAdvert(config, priority: 200, from: 2, ttl: 64, multicast: false)) == [.countReceiveError(.ttlInvalid)])
        #expect(harness.machine.masterPriority != 200)
        #expect(harness.send(peerAdvert(config, priority: 200, from: 2, ttl: 254, multicast: false)).isEmpty)
        #expect(harness.machine.masterPriority == 200)
    }

    @Test func ownerCanIgnoreAdverts() {
        var config = VRRPInstanceConfig.test(priority: 255)
        config.ownerIgnoreAdverts = true
        var harness = Harness(config)
        harness.send(.start)
        #expect(harness.send(peerAdvert(config, priority: 255, from: 9)) == [.countReceiveError(.ownerIgnoresAdverts)])
        #expect(harness.machine.state == .master)
    }

    @Test func faultedInstancesDropPacketsSilently() {
        var harness = Harness(.test(), trackers: [VRRPTracker(name: "eth0", isUp: false)])
        harness.send(.start)
        #expect(harness.send(peerAdvert(harness.machine.config, priority: 0, ttl: 1)).isEmpty)
        var notStarted = Harness(.test())
        #expect(notStarted.send(peerAdvert(.test(), priority: 200)).isEmpty)
    }

    @Test func passwordCompareUsesEightBytes() {
        #expect(constantTimeEqual(Array("secret".utf8), VRRPAdvert.passwordAuthData("secret")))
        #expect(!constantTimeEqual(Array("secret".utf8), Array("secreT".utf8)))
        #expect(constantTimeEqual(Array("averylongpw".utf8), Array("averylon".utf8)))
    }
}

@Suite struct TrackerTests {
    @Test func effectivePriorityIsClampedSumOfWeights() {
        let up = VRRPTracker(name: "a", weight: 20, isUp: true)
        let down = VRRPTracker(name: "b", weight: -30, isUp: false)
        #expect(VRRPStateMachine(config: .test(priority: 100), trackers: [up, down]).effectivePriority == 90)
        #expect(VRRPStateMachine(config: .test(priority: 250), trackers: [up]).effectivePriority == 254)
        #expect(VRRPStateMachine(config: .test(priority: 10), trackers: [down, down]).effectivePriority == 1)
        // Trackers never move an owner.
        #expect(VRRPStateMachine(config: .test(priority: 255), trackers: [down]).effectivePriority == 255)
        // reverse: a positive weight subtracts while up, a negative one adds while down.
        #expect(VRRPTracker(name: "r", weight: 10, reverse: true, isUp: true).priorityContribution == -10)
        #expect(VRRPTracker(name: "r", weight: -10, reverse: true, isUp: false).priorityContribution == 10)
        #expect(VRRPTracker(name: "r", weight: 0, reverse: true, isUp: true).causesFault)
        #expect(!VRRPTracker(name: "r", weight: 5, isUp: false).causesFault)
    }

    @Test func priorityChangeInBackupShiftsThePendingExpiry() {
        var harness = Harness(.test())
        harness.send(.start)
        harness.advance(to: VRRPInstant.zero + seconds(1))
        harness.send(.trackersChanged([VRRPTracker(name: "chk", weight: 50, isUp: true)]))
        #expect(harness.machine.effectivePriority == 150)
        let newMasterDown: Int64 = 3_000_000 + 106 * 1_000_000 / 256
        #expect(harness.machine.nextDeadline == VRRPInstant.zero + newMasterDown)
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [VRRPInstant.zero + newMasterDown])
        #expect(harness.adverts().first?.advert.priority == 150)
    }

    @Test func masterAdvertisesTheNewPriorityNextInterval() {
        var harness = masterHarness()
        harness.send(.trackersChanged([VRRPTracker(name: "chk", weight: -40, isUp: false)]))
        harness.advance(by: 1_000_000)
        #expect(harness.adverts().last?.advert.priority == 60)
    }

    @Test func weightZeroFailureFaultsAMasterAndRecoveryReelects() {
        var harness = masterHarness()
        let down = harness.send(.trackersChanged([VRRPTracker(name: "eth0", isUp: false)]))
        #expect(down == [
            .stateChanged(from: .master, to: .fault, reason: .faultDetected),
            .sendAdvert(harness.machine.advert(priority: 0)),
            .removeVIPs([vip]),
            .runNotify(.fault, priority: 100),
        ])
        #expect(harness.machine.nextDeadline == nil)
        harness.advance(by: seconds(10))
        #expect(harness.adverts().count == 1)
        let up = harness.send(.trackersChanged([VRRPTracker(name: "eth0", isUp: true)]))
        #expect(up == [.stateChanged(from: .fault, to: .backup, reason: .faultCleared), .runNotify(.backup, priority: 100)])
        let recovered = harness.now
        harness.advance(by: seconds(5))
        #expect(harness.transitions(to: .master) == [recovered + masterDown100])
    }

    @Test func backupFaultAndOwnerRecovery() {
        var harness = Harness(.test(priority: 255))
        harness.send(.start)
        harness.send(.trackersChanged([VRRPTracker(name: "eth0", isUp: false)]))
        #expect(harness.machine.state == .fault)
        harness.advance(to: VRRPInstant.zero + seconds(3))
        harness.send(.trackersChanged([VRRPTracker(name: "eth0", isUp: true)]))
        #expect(harness.machine.state == .backup)
        harness.advance(by: seconds(3))
        // An owner leaving FAULT waits one interval plus its skew, not a full master-down.
        #expect(harness.transitions(to: .master).last == VRRPInstant.zero + seconds(3) + 1_000_000 + 3_906)
    }

    @Test func unicastFaultExitRefreshesOurOwnARPEntry() {
        var config = VRRPInstanceConfig.test()
        config.unicastPeers = [ip("10.0.0.2")]
        var harness = Harness(config, trackers: [VRRPTracker(name: "eth0", isUp: false)])
        harness.send(.start)
        let actions = harness.send(.trackersChanged([]))
        #expect(actions.last == .sendGARP([ip("10.0.0.1")], rounds: 1))
    }
}

@Suite struct ReloadTests {
    @Test func masterReloadUpdatesVIPsAndAdvertisesAtOnce() {
        var config = VRRPInstanceConfig.test(vips: [ip("10.0.0.100"), ip("10.0.0.101")])
        var harness = Harness(config)
        harness.send(.start)
        harness.advance(to: VRRPInstant.zero + masterDown100)
        config.virtualAddresses = [ip("10.0.0.101"), ip("10.0.0.102")]
        let actions = harness.send(.configChanged(config))
        // The advert first, as when becoming master: peers see the new list before its GARPs.
        #expect(actions == [
            .sendAdvert(harness.machine.advert(priority: 100)),
            .removeVIPs([ip("10.0.0.100")]),
            .addVIPs([ip("10.0.0.102")]),
            .sendGARP([ip("10.0.0.102")], rounds: 5),
        ])
        #expect(harness.machine.state == .master)
        #expect(harness.machine.advert(priority: 100).addresses == [ip("10.0.0.101"), ip("10.0.0.102")])
    }

    /// A reload whose advert would be the same sends nothing and keeps the advert timer: a
    /// reload of an unchanged file is invisible on the wire.
    @Test func masterReloadWithTheSameAdvertSendsNothing() {
        var config = VRRPInstanceConfig.test(vips: [ip("10.0.0.100")])
        var harness = Harness(config)
        harness.send(.start)
        harness.advance(to: VRRPInstant.zero + masterDown100)
        let deadline = harness.machine.nextDeadline
        #expect(harness.send(.configChanged(config)).isEmpty)
        config.garp.masterRepeat = 2
        config.preemptDelay = 1_000_000
        #expect(harness.send(.configChanged(config)).isEmpty, "settings outside the advert change nothing on the wire")
        #expect(harness.machine.nextDeadline == deadline)
        config.priority = 120
        #expect(harness.send(.configChanged(config)) == [.sendAdvert(harness.machine.advert(priority: 120))])
    }

    /// An owner that met another owner demotes itself to 254; a reload that keeps it an owner
    /// keeps it demoted, a real priority change applies.
    @Test func aDemotedOwnerStaysDemotedAcrossAnUnchangedReload() {
        var config = VRRPInstanceConfig.test(priority: 255)
        var harness = Harness(config)
        harness.send(.start)
        #expect(harness.machine.state == .master)
        _ = harness.send(peerAdvert(config, priority: 255, from: 99))
        #expect(harness.machine.effectivePriority == 254)
        _ = harness.send(.configChanged(config))
        #expect(harness.machine.effectivePriority == 254)
        config.priority = 200
        _ = harness.send(.configChanged(config))
        #expect(harness.machine.effectivePriority == 200)
    }

    @Test func backupReloadKeepsElapsedTime() {
        var config = VRRPInstanceConfig.test()
        var harness = Harness(config)
        harness.send(.start)
        harness.advance(to: VRRPInstant.zero + seconds(1))
        config.priority = 150
        #expect(harness.send(.configChanged(config)).isEmpty)
        #expect(harness.machine.state == .backup)
        #expect(harness.machine.nextDeadline == VRRPInstant.zero + 3_000_000 + 106 * 1_000_000 / 256)
    }
}
