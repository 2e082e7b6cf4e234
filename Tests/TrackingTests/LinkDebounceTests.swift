import Testing
@testable import Tracking

/// keepalived's update_interface_flags with interface_up_down_delays, as values.
@Suite struct LinkDebounceTests {
    private let delays = ["eth0": LinkDebounce.Delays(down: 2_000_000, up: 3_000_000)]

    @Test func aFlapShorterThanTheDelayIsNoTransition() {
        var debounce = LinkDebounce(delays: delays)
        #expect(debounce.observe("eth0", up: true, shown: true, at: 0) == .unchanged)
        #expect(debounce.observe("eth0", up: false, shown: true, at: 1_000_000) == .delayed(until: 3_000_000))
        #expect(debounce.nextDeadline == 3_000_000)
        #expect(debounce.observe("eth0", up: false, shown: true, at: 1_500_000) == .unchanged, "still pending")
        #expect(debounce.observe("eth0", up: true, shown: true, at: 2_000_000) == .cancelled)
        #expect(debounce.nextDeadline == nil)
        #expect(debounce.due(at: 10_000_000).isEmpty)
    }

    @Test func aChangeThatLastsIsShownWhenItsDelayEnds() {
        var debounce = LinkDebounce(delays: delays)
        #expect(debounce.observe("eth0", up: false, shown: true, at: 0) == .delayed(until: 2_000_000))
        #expect(debounce.due(at: 1_999_999).isEmpty)
        #expect(debounce.due(at: 2_000_000).map(\.up) == [false])
        // Back up: the up delay.
        #expect(debounce.observe("eth0", up: true, shown: false, at: 2_500_000) == .delayed(until: 5_500_000))
        #expect(debounce.due(at: 5_500_000).map(\.up) == [true])
    }

    @Test func aLinkNeverSeenUpComesUpAtOnceAndOthersHaveNoDelay() {
        var debounce = LinkDebounce(delays: delays)
        #expect(debounce.observe("eth0", up: true, shown: false, at: 0) == .now)
        #expect(debounce.observe("eth0", up: false, shown: true, at: 1) == .delayed(until: 2_000_001), "seen up now")
        #expect(debounce.observe("eth1", up: false, shown: true, at: 0) == .now)
        var zero = LinkDebounce(delays: ["eth0": .init(down: 0, up: 0)])
        #expect(zero.observe("eth0", up: false, shown: true, at: 0) == .now)
    }

    @Test func aReloadForgetsLinksNoLongerTracked() {
        var debounce = LinkDebounce(delays: delays)
        _ = debounce.observe("eth0", up: false, shown: true, at: 0)
        debounce.keep(only: [], delays: [:])
        #expect(debounce.nextDeadline == nil)
    }
}
