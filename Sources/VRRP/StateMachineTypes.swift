import Addressing
// Inputs, outputs and configuration of the pure VRRP state machine.

/// A point on a monotonic clock, in microseconds. The machine never reads a clock: the
/// driver passes `now` with every event, which is what makes virtual-time tests exact.
/// Microseconds because keepalived's timers are microsecond `timeval`s, and its formulas
/// (integer division included) are reproduced on that grid.
public struct VRRPInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public static let zero = VRRPInstant(microseconds: 0)

    public static func + (lhs: VRRPInstant, rhs: Int64) -> VRRPInstant { VRRPInstant(microseconds: lhs.microseconds + rhs) }
    public static func - (lhs: VRRPInstant, rhs: VRRPInstant) -> Int64 { lhs.microseconds - rhs.microseconds }
    public static func < (lhs: VRRPInstant, rhs: VRRPInstant) -> Bool { lhs.microseconds < rhs.microseconds }

    public var description: String {
        let sign = microseconds < 0 ? "-" : ""
        let magnitude = microseconds.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(sign)\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)s"
    }
}

/// keepalived's timer formulas (include/vrrp.h). Public so drivers, status output and tests
/// use the very same arithmetic as the machine.
public enum VRRPTimers {
    /// `VRRP_TIMER_SKEW_CALC`: v2 ignores the interval (p/256 s); v3 scales the master's
    /// interval, truncated to centiseconds first exactly as keepalived does.
    public static func skewCalc(_ p: Int64, version: VRRPVersion, masterAdvertInterval: Int64) -> Int64 {
        switch version {
        case .v2: p * 1_000_000 / 256
        case .v3: p * (masterAdvertInterval / 10_000) * 625 / 16
        }
    }

    /// Skew_Time for a priority. Callers pass 255 for an address owner whatever its trackers
    /// say, matching `VRRP_TIMER_SKEW` (base 255 ⇒ 255).
    public static func skew(priority: UInt8, version: VRRPVersion, masterAdvertInterval: Int64) -> Int64 {
        skewCalc(256 - Int64(priority), version: version, masterAdvertInterval: masterAdvertInterval)
    }

    /// Master_Down_Interval = down_timer_adverts × Master_Adver_Interval + Skew_Time.
    public static func masterDown(
        priority: UInt8, version: VRRPVersion, masterAdvertInterval: Int64, downTimerAdverts: Int = 3
    ) -> Int64 {
        Int64(downTimerAdverts) * masterAdvertInterval
            + skew(priority: priority, version: version, masterAdvertInterval: masterAdvertInterval)
    }
}

/// Instance states. `initialize` is keepalived's INIT (before `start`), `stopped` is STOP.
public enum VRRPState: String, Hashable, Sendable, CaseIterable {
    case initialize = "INIT"
    case backup = "BACKUP"
    case master = "MASTER"
    case fault = "FAULT"
    case stopped = "STOP"
}

/// The configured `state` keyword: only a wish (see keepalived §3.2).
public enum VRRPInitialState: String, Hashable, Sendable {
    case master = "MASTER"
    case backup = "BACKUP"
}

/// v2 authentication as configured.
public enum VRRPAuthentication: Hashable, Sendable {
    case none
    case password(String)
    /// keepalived's IPsec AH (IPv4 VRRPv2): the advert says type 2 with zero auth data; the
    /// ICV and sequence number are the host's (`IPsecAH`, `AHSequence`).
    case ah(String)

    public var authType: VRRPAuthType {
        switch self {
        case .none: .none
        case .password: .simplePassword
        case .ah: .ipsecAH
        }
    }

    /// The 8 bytes that go on the wire and are compared on receive.
    public var authData: [UInt8] {
        switch self {
        case .none, .ah: Array(repeating: 0, count: 8)
        case .password(let password): VRRPAdvert.passwordAuthData(password)
        }
    }
}

/// Gratuitous ARP / unsolicited NA pacing (keepalived `garp_*`). Durations in µs.
public struct VRRPGARPConfig: Hashable, Sendable {
    /// Second burst this long after becoming master; 0 = none.
    public var masterDelay: Int64 = 5_000_000
    /// Rounds per burst (one GARP per VIP per round).
    public var masterRepeat: Int = 5
    /// Periodic refresh while master; 0 = off.
    public var masterRefresh: Int64 = 0
    public var masterRefreshRepeat: Int = 1
    /// After a lower-priority advert; nil = same as the master values (keepalived's default).
    public var lowerPrioDelay: Int64? = nil
    public var lowerPrioRepeat: Int? = nil

    public init(
        masterDelay: Int64 = 5_000_000, masterRepeat: Int = 5, masterRefresh: Int64 = 0, masterRefreshRepeat: Int = 1,
        lowerPrioDelay: Int64? = nil, lowerPrioRepeat: Int? = nil
    ) {
        self.masterDelay = masterDelay
        self.masterRepeat = masterRepeat
        self.masterRefresh = masterRefresh
        self.masterRefreshRepeat = masterRefreshRepeat
        self.lowerPrioDelay = lowerPrioDelay
        self.lowerPrioRepeat = lowerPrioRepeat
    }

    public var effectiveLowerPrioDelay: Int64 { lowerPrioDelay ?? masterDelay }
    public var effectiveLowerPrioRepeat: Int { lowerPrioRepeat ?? masterRepeat }
}

/// What the machine needs to know about one `vrrp_instance`. Durations are µs.
public struct VRRPInstanceConfig: Hashable, Sendable {
    public var name: String
    public var vrid: UInt8
    public var version: VRRPVersion
    /// Base priority 1...255; 255 makes the instance the address owner.
    public var priority: UInt8
    public var advertInterval: Int64
    /// The `state` keyword; nil when omitted, which keepalived reads as MASTER for an owner
    /// and BACKUP otherwise. An owner configured `state BACKUP` waits like any backup.
    public var initialState: VRRPInitialState?
    public var nopreempt: Bool
    public var preemptDelay: Int64
    public var authentication: VRRPAuthentication
    /// VIPs in configuration order (the order adverts list them).
    public var virtualAddresses: [IPAddress]
    /// keepalived's eVIPs (`virtual_ipaddress_excluded`, and VIPs beyond what an advert holds):
    /// added, removed and announced with the VIPs, never listed in adverts nor checked in them.
    public var excludedAddresses: [IPAddress] = []
    /// Our advert source (mcast_src_ip/unicast_src_ip or the interface's primary address):
    /// also the local side of the equal-priority tie-break.
    public var sourceAddress: IPAddress
    /// Non-empty switches to unicast: no TTL check, and multicast arrivals are rejected.
    public var unicastPeers: [IPAddress]
    public var downTimerAdverts: Int
    public var lowerPrioNoAdvert: Bool
    public var higherPrioSendAdvert: Bool
    /// Owner drops every received advert (keepalived `owner_ignore_adverts`).
    public var ownerIgnoreAdverts: Bool
    /// keepalived's `check_unicast_src`: a unicast advert must come from a unicast peer, with a
    /// TTL in that peer's `min_ttl`...`max_ttl` when one is set.
    public var checkUnicastSource = false
    public var peerTTLRanges: [IPAddress: ClosedRange<UInt8>] = [:]
    /// Skip the VIP list check for adverts from the current master.
    public var skipCheckAdvAddr: Bool
    /// Carried for the driver's codec calls; the machine itself never computes checksums.
    public var v3ChecksumAsV2: Bool
    public var garp: VRRPGARPConfig

    public init(
        name: String, vrid: UInt8, version: VRRPVersion = .v2, priority: UInt8 = 100,
        advertInterval: Int64 = 1_000_000, initialState: VRRPInitialState? = nil, nopreempt: Bool = false,
        preemptDelay: Int64 = 0, authentication: VRRPAuthentication = .none, virtualAddresses: [IPAddress] = [],
        sourceAddress: IPAddress, unicastPeers: [IPAddress] = [], downTimerAdverts: Int = 3,
        lowerPrioNoAdvert: Bool = false, higherPrioSendAdvert: Bool = false, ownerIgnoreAdverts: Bool = false,
        skipCheckAdvAddr: Bool = false, v3ChecksumAsV2: Bool = false, garp: VRRPGARPConfig = VRRPGARPConfig()
    ) {
        self.name = name
        self.vrid = vrid
        self.version = version
        self.priority = priority
        self.advertInterval = advertInterval
        self.initialState = initialState
        self.nopreempt = nopreempt
        self.preemptDelay = preemptDelay
        self.authentication = authentication
        self.virtualAddresses = virtualAddresses
        self.sourceAddress = sourceAddress
        self.unicastPeers = unicastPeers
        self.downTimerAdverts = downTimerAdverts
        self.lowerPrioNoAdvert = lowerPrioNoAdvert
        self.higherPrioSendAdvert = higherPrioSendAdvert
        self.ownerIgnoreAdverts = ownerIgnoreAdverts
        self.skipCheckAdvAddr = skipCheckAdvAddr
        self.v3ChecksumAsV2 = v3ChecksumAsV2
        self.garp = garp
    }

    public var family: AddressFamily { sourceAddress.family }
    public var isUnicast: Bool { !unicastPeers.isEmpty }
    /// Every address a MASTER holds: the VIPs, then the excluded ones.
    public var heldAddresses: [IPAddress] { virtualAddresses + excludedAddresses }
    public var isOwner: Bool { priority == 255 }

    /// The fix-ups keepalived applies in `vrrp_complete_instance`, so that behaviour matches
    /// even when the parser passes values keepalived would have corrected: intervals rounded
    /// to the version's unit (v2 whole seconds < 256, v3 centiseconds < 40.96 s, 0 ⇒ one unit),
    /// an omitted `state` derived from the priority, nopreempt and preempt_delay cleared for
    /// an owner or `state MASTER`, auth dropped for v3
    /// or an empty password, priority 0 ⇒ 100, down_timer_adverts clamped to 1...100.
    public func normalized() -> VRRPInstanceConfig {
        var c = self
        // An advert's address count is one byte: the rest are held, not advertised (keepalived).
        if c.virtualAddresses.count > 255 {
            c.excludedAddresses += c.virtualAddresses[255...]
            c.virtualAddresses.removeLast(c.virtualAddresses.count - 255)
        }
        if c.priority == 0 { c.priority = 100 }
        if c.advertInterval <= 0 { c.advertInterval = 1_000_000 }
        switch c.version {
        case .v2:
            if c.advertInterval >= 256 * 1_000_000 {
                c.advertInterval = 255 * 1_000_000
            } else if c.advertInterval % 1_000_000 != 0 {
                c.advertInterval += 500_000
                c.advertInterval -= c.advertInterval % 1_000_000
                if c.advertInterval == 0 { c.advertInterval = 1_000_000 }
            }
        case .v3:
            if c.advertInterval >= 4096 * 10_000 {
                c.advertInterval = 4095 * 10_000
            } else if c.advertInterval % 10_000 != 0 {
                c.advertInterval += 5_000
                c.advertInterval -= c.advertInterval % 10_000
                if c.advertInterval == 0 { c.advertInterval = 10_000 }
            }
            c.authentication = .none
        }
        if case .password(let password) = c.authentication, password.isEmpty { c.authentication = .none }
        if c.initialState == nil { c.initialState = c.priority == 255 ? .master : .backup }
        if c.priority == 255 { c.nopreempt = false }
        if c.initialState == .master {
            c.nopreempt = false
            c.preemptDelay = 0
        }
        if c.nopreempt { c.preemptDelay = 0 }
        c.preemptDelay = min(max(c.preemptDelay, 0), 1000 * 1_000_000)
        c.downTimerAdverts = min(max(c.downTimerAdverts, 1), 100)
        c.garp.masterRepeat = max(c.garp.masterRepeat, 0)
        return c
    }
}

/// One tracked object (interface, script, file, process, BFD) as its weight sees it.
public struct VRRPTracker: Hashable, Sendable {
    public var name: String
    /// -253...253; 0 means "failure ⇒ FAULT" rather than a priority change.
    public var weight: Int
    /// keepalived `reverse`: the adjustment applies in the opposite state.
    public var reverse: Bool
    public var isUp: Bool
    /// A tracker whose contribution is a number rather than up or down (keepalived's
    /// track_file: the file's value times the weight). Below -253 it faults the instance.
    public var fixedContribution: Int?

    public init(name: String, weight: Int = 0, reverse: Bool = false, isUp: Bool = true) {
        self.name = name
        self.weight = weight
        self.reverse = reverse
        self.isUp = isUp
    }

    /// A weighted track file reading `value`: keepalived's status, value × weight (negated by
    /// reverse), clamped to -254 (FAULT) ... 253 (its weight_range).
    public static func file(_ name: String, value: Int, weight: Int, reverse: Bool) -> VRRPTracker {
        var tracker = VRRPTracker(name: name, weight: weight, reverse: reverse, isUp: true)
        let product = value.multipliedReportingOverflow(by: weight * (reverse ? -1 : 1))
        let negative = (value < 0) != (weight * (reverse ? -1 : 1) < 0)
        tracker.fixedContribution = product.overflow ? (negative ? -254 : 253) : min(max(product.partialValue, -254), 253)
        tracker.isUp = tracker.fixedContribution! > -254
        return tracker
    }

    /// A positive weight adds while up, a negative one subtracts while down; `reverse`
    /// flips the sign and the state in which it applies (vrrp_track.c weight_multiplier).
    public var priorityContribution: Int {
        if let fixedContribution { return fixedContribution <= -254 ? 0 : fixedContribution }
        let multiplier = reverse ? -1 : 1
        if weight > 0 { return isUp ? weight * multiplier : 0 }
        if weight < 0 { return isUp ? 0 : weight * multiplier }
        return 0
    }

    /// Weight 0 faults the instance when down (or, reversed, when up).
    public var causesFault: Bool {
        if let fixedContribution { return fixedContribution <= -254 }
        return weight == 0 && (reverse ? isUp : !isUp)
    }
}

/// A received advert plus the facts about its delivery the receive checks need.
public struct VRRPReceivedAdvert: Hashable, Sendable {
    public var advert: VRRPAdvert
    public var source: IPAddress
    /// IPv4 TTL or IPv6 hop limit; nil when the socket did not report it (then unchecked).
    public var ttl: UInt8?
    /// Whether it was sent to the multicast group rather than to us.
    public var isMulticast: Bool

    public init(advert: VRRPAdvert, source: IPAddress, ttl: UInt8? = 255, isMulticast: Bool = true) {
        self.advert = advert
        self.source = source
        self.ttl = ttl
        self.isMulticast = isMulticast
    }
}

/// Commands a sync group (see `VRRPSyncGroup`) gives its members.
public enum VRRPSyncCommand: Hashable, Sendable {
    /// Whether this member may go MASTER on its own when its down timer expires; when not,
    /// it stays BACKUP wanting MASTER until the whole group wants it.
    case permitMaster(Bool)
    /// Every member wants MASTER (or one got there): follow it.
    case forceMaster
    /// A member dropped to BACKUP: leave MASTER too.
    case forceBackup
    /// Some member is faulted (true) or none is any more (false).
    case groupFault(Bool)
}

public enum VRRPEvent: Hashable, Sendable {
    case start
    /// The driver calls this at or after `nextDeadline`; early calls do nothing.
    case timerFired
    case packetReceived(VRRPReceivedAdvert)
    /// The full current set of trackers (not a delta), so a lost update cannot skew sums.
    case trackersChanged([VRRPTracker])
    case shutdown
    /// A reload: the new configuration applies while the state is kept.
    case configChanged(VRRPInstanceConfig)
    case sync(VRRPSyncCommand)
}

/// Why a state changed; the MASTER reasons follow RFC 6527's vrrpv3StatisticsMasterReason.
public enum VRRPTransitionReason: String, Hashable, Sendable {
    case startup
    case ownerStartup
    /// Master_Down_Timer expired with no (acceptable) master heard.
    case masterNoResponse
    /// It expired after we discarded a lower-priority master's adverts.
    case preempted
    /// It expired after the master resigned with priority 0.
    case masterResigned
    case higherPriorityAdvert
    case equalPriorityHigherAddress
    case faultDetected
    case faultCleared
    case syncGroup
    case shutdown
}

public enum VRRPNotifyState: String, Hashable, Sendable {
    case master = "MASTER"
    case backup = "BACKUP"
    case fault = "FAULT"
    case stop = "STOP"
}

/// Why a received advert was counted as bad. Everything except the two VIP mismatches also
/// means "ignored": no state change, and a BACKUP's down timer keeps running.
public enum VRRPReceiveError: Hashable, Sendable {
    /// A structural fault. The machine only raises `.badType` (for hand-built adverts); a
    /// driver can wrap its own decode failures here so all receive errors share one counter table.
    case malformed(VRRPDecodeError)
    case vridMismatch
    /// TTL/hop limit ≠ 255 on a multicast instance.
    case ttlInvalid
    case versionMismatch
    case authTypeMismatch
    /// PASS data differs.
    case authFailure
    /// v2 advert interval differs from ours (dropped so two configs cannot both be master).
    case intervalMismatch
    /// Multicast advert to a unicast instance or unicast advert to a multicast one.
    case deliveryMismatch
    /// An owner with `owner_ignore_adverts`.
    case ownerIgnoresAdverts
    /// `check_unicast_src`: the source is not one of the unicast peers.
    case unicastSourceNotPeer
    /// Counted but accepted: VIP count differs from ours.
    case vipCountMismatch
    /// Counted but accepted: one of our VIPs is missing from the advert.
    case vipListMismatch

    public var counterName: String {
        switch self {
        case .malformed(let error): error.counterName
        case .vridMismatch: "vrid_mismatch"
        case .ttlInvalid: "ip_ttl_error"
        case .versionMismatch: "version_mismatch"
        case .authTypeMismatch: "authtype_mismatch"
        case .authFailure: "auth_failure"
        case .intervalMismatch: "advert_interval_error"
        case .deliveryMismatch: "unicast_multicast_mismatch"
        case .ownerIgnoresAdverts: "owner_ignored"
        case .unicastSourceNotPeer: "unicast_source_not_peer"
        case .vipCountMismatch: "vip_count_mismatch"
        case .vipListMismatch: "vip_list_mismatch"
        }
    }

    /// True for the errors keepalived only logs and counts.
    public var packetStillAccepted: Bool { self == .vipCountMismatch || self == .vipListMismatch }
}

/// What the driver must do. Order within one `handle` result matters and follows keepalived
/// (for instance the advert goes out before the VIPs are added on becoming master).
public enum VRRPAction: Hashable, Sendable {
    /// Send this advert (multicast, or one copy per unicast peer).
    case sendAdvert(VRRPAdvert)
    /// One burst: `rounds` gratuitous ARPs / unsolicited NAs for each address.
    case sendGARP([IPAddress], rounds: Int)
    case addVIPs([IPAddress])
    case removeVIPs([IPAddress])
    case runNotify(VRRPNotifyState, priority: UInt8)
    case stateChanged(from: VRRPState, to: VRRPState, reason: VRRPTransitionReason)
    case countReceiveError(VRRPReceiveError)
    /// keepalived's `notify_master_rx_lower_pri` / FIFO `MASTER_RX_LOWER_PRI`.
    case masterReceivedLowerPriority(source: IPAddress, priority: UInt8)
}
