import Addressing
// The VRRP instance state machine, modelled on keepalived 2.2.x (vrrp.c, vrrp_scheduler.c,
// vrrp_track.c). One handler per event, each returning the actions the driver must perform,
// so the whole protocol can be replayed in virtual time without sockets or clocks.

public struct VRRPStateMachine: Sendable {
    /// The normalized configuration in force.
    public private(set) var config: VRRPInstanceConfig
    public private(set) var state: VRRPState = .initialize
    /// keepalived's `wantstate`: where the instance would be without its sync group. A sync
    /// group reads it to decide whether every member is ready for MASTER.
    public private(set) var wantState: VRRPState
    /// Base priority. Separate from `config.priority` because an owner that meets another
    /// owner demotes itself to 254, as keepalived does.
    public private(set) var basePriority: UInt8
    /// The priority we advertise: clamp(base + Σ tracker weights, 1, 254), or 255 for an owner.
    public private(set) var effectivePriority: UInt8
    /// Master_Adver_Interval (µs): ours, or in v3 the one learned from the master's adverts.
    public private(set) var masterAdvertInterval: Int64
    /// The current master as last heard by this BACKUP (also recorded for discarded adverts,
    /// as keepalived does for SNMP).
    public private(set) var masterAddress: IPAddress?
    public private(set) var masterPriority: UInt8?
    public private(set) var trackers: [VRRPTracker]
    /// Set by a sync group when another member is faulted.
    public private(set) var groupFault = false
    /// Set by a sync group: false holds a timed-out BACKUP until the group is ready.
    public private(set) var syncPermitsMaster = true

    /// keepalived's `sands`: the down-timer expiry in BACKUP, the next advert in MASTER.
    private var sands: VRRPInstant?
    /// keepalived's `ms_down_timer`, kept so a priority change can shift `sands` by the
    /// difference between the old and the new down timer.
    private var downTimer: Int64 = 0
    /// The armed down timer is the short Skew_Time after a priority-0 advert.
    private var downTimerIsSkew = false
    private var preemptTime: VRRPInstant?
    private var pendingGARPs: [PendingGARP] = []
    private var garpRefreshAt: VRRPInstant?
    private var nextMasterReason: VRRPTransitionReason = .masterNoResponse
    private var vipsSet = false
    /// Whether this instance has put its VIPs on the interface (keepalived's `vipset`).
    public var vipsAreSet: Bool { vipsSet }

    private struct PendingGARP: Hashable, Sendable {
        var at: VRRPInstant
        var rounds: Int
    }

    public init(config: VRRPInstanceConfig, trackers: [VRRPTracker] = []) {
        let config = config.normalized()
        self.config = config
        self.trackers = trackers
        wantState = config.initialState == .master ? .master : .backup
        basePriority = config.priority
        effectivePriority = config.priority
        masterAdvertInterval = config.advertInterval
        effectivePriority = computeEffectivePriority()
    }

    // MARK: Derived values

    public var isOwner: Bool { basePriority == 255 }
    /// A weight-0 tracker of this instance is failing.
    public var ownFault: Bool { trackers.contains { $0.causesFault } }
    public var isFaulted: Bool { ownFault || groupFault }

    /// When the driver must deliver `.timerFired` next; nil when nothing is armed.
    public var nextDeadline: VRRPInstant? {
        // Read at every loop turn: no array built for two values.
        guard let garp = pendingGARPs.first?.at else { return sands }
        guard let sands else { return garp }
        return min(sands, garp)
    }

    /// Skew_Time for our current priority and master interval (`VRRP_TIMER_SKEW`).
    public var skew: Int64 {
        VRRPTimers.skew(
            priority: isOwner ? 255 : effectivePriority, version: config.version,
            masterAdvertInterval: masterAdvertInterval)
    }

    public var masterDownInterval: Int64 { Int64(config.downTimerAdverts) * masterAdvertInterval + skew }

    /// The advert this instance sends with the given priority: VIPs in configuration order,
    /// PASS data for v2/IPv4, the interval in the version's unit.
    public func advert(priority: UInt8) -> VRRPAdvert {
        let v2 = config.version == .v2
        return VRRPAdvert(
            version: config.version, vrid: config.vrid, priority: priority, addresses: config.virtualAddresses,
            authType: v2 ? config.authentication.authType : .none,
            authData: v2 && config.family == .ipv4 ? config.authentication.authData : [],
            advertIntervalSeconds: v2 ? UInt8(clamping: config.advertInterval / 1_000_000) : 0,
            maxAdvertIntervalCentiseconds: v2 ? 0 : UInt16(clamping: config.advertInterval / 10_000))
    }

    private func computeEffectivePriority() -> UInt8 {
        // vrrp_set_effective_priority returns early for an owner: trackers never move it.
        if isOwner { return 255 }
        let total = Int(basePriority) + trackers.reduce(0) { $0 + $1.priorityContribution }
        return UInt8(min(max(total, 1), 254))
    }

    // MARK: Event dispatch

    public mutating func handle(_ event: VRRPEvent, at now: VRRPInstant) -> [VRRPAction] {
        if state == .stopped { return [] }
        switch event {
        case .start: return start(now)
        case .timerFired: return timerFired(now)
        case .packetReceived(let packet): return receive(packet, now)
        case .trackersChanged(let trackers): return updateTrackers(trackers, now)
        case .shutdown: return shutdown()
        case .configChanged(let config): return reload(config, now)
        case .sync(let command): return sync(command, now)
        }
    }

    // MARK: Startup (vrrp_init_state)

    private mutating func start(_ now: VRRPInstant) -> [VRRPAction] {
        guard state == .initialize else { return [] }
        var actions: [VRRPAction] = []
        // Leftover VIPs from a previous run are removed first (vrrp_restore_interface, force).
        if !config.heldAddresses.isEmpty { actions.append(.removeVIPs(config.heldAddresses)) }
        masterAdvertInterval = config.advertInterval
        if !isFaulted && isOwner && wantState == .master && syncPermitsMaster {
            // keepalived enters BACKUP with a 1 µs down timer "to become master the simplest
            // way"; that BACKUP is never announced, so going straight to MASTER is equivalent.
            state = .backup
            actions += goToMaster(now, reason: .ownerStartup, from: .initialize)
        } else if isFaulted {
            state = .fault
            sands = nil
            actions.append(.stateChanged(from: .initialize, to: .fault, reason: .faultDetected))
            if ownFault { actions.append(.runNotify(.fault, priority: effectivePriority)) }
        } else {
            state = .backup
            armDownTimer(now, skewOnly: false)
            actions.append(.stateChanged(from: .initialize, to: .backup, reason: .startup))
            actions.append(.runNotify(.backup, priority: effectivePriority))
        }
        return actions
    }

    // MARK: Timers (vrrp_dispatcher_read_timeout)

    private mutating func timerFired(_ now: VRRPInstant) -> [VRRPAction] {
        var actions: [VRRPAction] = []
        while let first = pendingGARPs.first, first.at <= now {
            pendingGARPs.removeFirst()
            if state == .master && vipsSet && !config.heldAddresses.isEmpty {
                actions.append(.sendGARP(config.heldAddresses, rounds: first.rounds))
            }
        }
        guard let due = sands, due <= now else { return actions }
        switch state {
        case .backup:
            if syncPermitsMaster {
                actions += goToMaster(now, reason: nextMasterReason, from: .backup)
            } else {
                // vrrp_sync_can_goto_master: stay BACKUP wanting MASTER and wait a full down
                // interval for the other members to become ready.
                wantState = .master
                armDownTimer(now, skewOnly: false)
            }
        case .master:
            actions += masterTransmit(now)
        default:
            sands = nil
        }
        return actions
    }

    /// vrrp_state_goto_master + vrrp_state_master_tx + vrrp_state_become_master. The advert
    /// goes first so that the old master can drop the VIPs before our GARPs arrive.
    private mutating func goToMaster(_ now: VRRPInstant, reason: VRRPTransitionReason, from previous: VRRPState) -> [VRRPAction] {
        if config.priority == 255 && basePriority == 254 && (reason == .masterNoResponse || reason == .masterResigned) {
            basePriority = 255
            effectivePriority = 255
        }
        state = .master
        wantState = .master
        masterAdvertInterval = config.advertInterval
        preemptTime = nil
        sands = now + config.advertInterval
        let vips = config.heldAddresses
        var actions: [VRRPAction] = [
            .sendAdvert(advert(priority: effectivePriority)),
            .stateChanged(from: previous, to: .master, reason: reason),
        ]
        if !vips.isEmpty {
            actions.append(.addVIPs(vips))
            if config.garp.masterRepeat > 0 { actions.append(.sendGARP(vips, rounds: config.garp.masterRepeat)) }
            if config.garp.masterDelay > 0 && config.garp.masterRepeat > 0 {
                schedulePendingGARP(at: now + config.garp.masterDelay, rounds: config.garp.masterRepeat)
            }
        }
        vipsSet = true
        garpRefreshAt = config.garp.masterRefresh > 0 ? now + config.garp.masterRefresh : nil
        actions.append(.runNotify(.master, priority: effectivePriority))
        return actions
    }

    /// A periodic advert, plus the GARP refresh, which keepalived only checks when it sends
    /// an advert (so refreshes land on the advert grid, strictly after the refresh time).
    private mutating func masterTransmit(_ now: VRRPInstant) -> [VRRPAction] {
        var actions: [VRRPAction] = [.sendAdvert(advert(priority: effectivePriority))]
        if let refreshAt = garpRefreshAt, now > refreshAt {
            if !config.heldAddresses.isEmpty && config.garp.masterRefreshRepeat > 0 {
                actions.append(.sendGARP(config.heldAddresses, rounds: config.garp.masterRefreshRepeat))
            }
            garpRefreshAt = now + config.garp.masterRefresh
        }
        // On the grid of the previous deadline, not "now + interval" as keepalived does: a
        // wake that comes late (the loop busy, the host loaded) delays this advert only, not
        // every one after it (keepalived's adverts drift by its wake latency each interval).
        // A wake later than a whole interval starts a new grid.
        if let due = sands, now - due < config.advertInterval { sands = due + config.advertInterval } else { sands = now + config.advertInterval }
        return actions
    }

    // MARK: Receive (vrrp_check_packet, vrrp_state_backup, vrrp_state_master_rx)

    private mutating func receive(_ packet: VRRPReceivedAdvert, _ now: VRRPInstant) -> [VRRPAction] {
        // The dispatcher drops packets in FAULT and INIT without counting them.
        guard state == .backup || state == .master else { return [] }
        let advert = packet.advert
        if let error = rejection(of: packet) { return [.countReceiveError(error)] }
        var actions: [VRRPAction] = []
        let vips = config.virtualAddresses
        if advert.addresses.count != vips.count { actions.append(.countReceiveError(.vipCountMismatch)) }
        let checkList = state == .master || !(config.skipCheckAdvAddr && masterAddress == packet.source)
        if checkList && vips.contains(where: { !advert.addresses.contains($0) }) {
            actions.append(.countReceiveError(.vipListMismatch))
        }
        if state == .backup {
            backupReceive(advert, from: packet.source, now)
        } else {
            actions += masterReceive(advert, from: packet.source, now)
        }
        return actions
    }

    /// The checks of keepalived's vrrp_check_packet that reject (KO or DROP), in its order.
    /// Structural ones (length, type, checksum) already happened in the decoder.
    private func rejection(of packet: VRRPReceivedAdvert) -> VRRPReceiveError? {
        let advert = packet.advert
        if advert.vrid != config.vrid { return .vridMismatch }
        // RFC: TTL must be 255. Unicast adverts may cross routers, so only multicast is checked.
        if !config.isUnicast, let ttl = packet.ttl, ttl != 255 { return .ttlInvalid }
        if advert.version != config.version { return .versionMismatch }
        if config.version == .v2 {
            if advert.authType != config.authentication.authType { return .authTypeMismatch }
            if advert.authType == .simplePassword
                && !constantTimeEqual(advert.authData, config.authentication.authData)
            {
                return .authFailure
            }
            // Two routers with different v2 intervals must not both end up master.
            if advert.advertInterval != config.advertInterval { return .intervalMismatch }
        }
        if advert.type != 1 { return .malformed(.badType) }
        if packet.isMulticast == config.isUnicast { return .deliveryMismatch }
        if isOwner && config.ownerIgnoreAdverts { return .ownerIgnoresAdverts }
        if config.isUnicast && config.checkUnicastSource {
            guard config.unicastPeers.contains(packet.source) else { return .unicastSourceNotPeer }
            if let ttl = packet.ttl, let range = config.peerTTLRanges[packet.source], !range.contains(ttl) { return .ttlInvalid }
        }
        return nil
    }

    private mutating func backupReceive(_ advert: VRRPAdvert, from source: IPAddress, _ now: VRRPInstant) {
        let priority = advert.priority
        if priority == 0 {
            // The master resigned: take over after Skew_Time only.
            nextMasterReason = .masterResigned
            armDownTimer(now, skewOnly: true)
        } else if config.nopreempt || priority >= effectivePriority
            || (config.preemptDelay > 0 && (preemptTime.map { $0 > now } ?? true))
        {
            // Accept: equal priority always wins in BACKUP (no address tie-break here).
            if config.version == .v3 { masterAdvertInterval = learnedInterval(advert) }
            masterAddress = source
            masterPriority = priority
            nextMasterReason = .masterNoResponse
            if config.preemptDelay > 0 {
                if priority >= effectivePriority {
                    preemptTime = nil
                } else if preemptTime == nil {
                    preemptTime = now + config.preemptDelay
                }
            }
            wantState = .backup
            armDownTimer(now, skewOnly: false)
        } else {
            // Lower priority while preempting: ignore it and let the down timer run out.
            nextMasterReason = .preempted
            masterAddress = source
        }
    }

    private mutating func masterReceive(_ advert: VRRPAdvert, from source: IPAddress, _ now: VRRPInstant) -> [VRRPAction] {
        var actions: [VRRPAction] = []
        let priority = advert.priority
        let comparison = compare(source, config.sourceAddress)
        var sentAdvert = false
        if priority == 0
            || (config.higherPrioSendAdvert
                && (priority > effectivePriority || (priority == effectivePriority && comparison > 0)))
        {
            actions.append(.sendAdvert(self.advert(priority: effectivePriority)))
            sentAdvert = true
            if priority == 0 {
                sands = now + config.advertInterval
                return actions
            }
        }
        if priority == effectivePriority && comparison > 0 && effectivePriority == 255 {
            // Two address owners: a configuration error. keepalived demotes both, and neither
            // is an owner again until restarted; here only the lower address yields (to 254),
            // and takes 255 back when it becomes MASTER because the other left.
            basePriority = 254
            effectivePriority = 254
        }
        if priority < effectivePriority || (priority == effectivePriority && comparison < 0) {
            // Split-brain healing: answer so the other side sees us and yields, and re-announce.
            if !config.lowerPrioNoAdvert {
                actions.append(.sendAdvert(self.advert(priority: effectivePriority)))
                sentAdvert = true
            }
            let rounds = config.garp.effectiveLowerPrioRepeat
            if rounds > 0 && !config.heldAddresses.isEmpty {
                actions.append(.sendGARP(config.heldAddresses, rounds: rounds))
                let delay = config.garp.effectiveLowerPrioDelay
                if delay > 0 { schedulePendingGARP(at: now + delay, rounds: rounds) }
            }
            actions.append(.masterReceivedLowerPriority(source: source, priority: priority))
        } else if priority > effectivePriority || (priority == effectivePriority && comparison > 0) {
            if config.version == .v3 { masterAdvertInterval = learnedInterval(advert) }
            masterAddress = source
            masterPriority = priority
            let reason: VRRPTransitionReason = priority > effectivePriority ? .higherPriorityAdvert : .equalPriorityHigherAddress
            return actions + leaveMaster(to: .backup, reason: reason, now)
        }
        // keepalived re-arms the advert timer after every received packet unless
        // lower_prio_no_advert; we re-arm only when an advert actually went out, so a stream
        // of rejected or foreign packets cannot starve our own adverts.
        if sentAdvert { sands = now + config.advertInterval }
        return actions
    }

    /// v3 Master_Adver_Interval from an advert. A zero interval would make the down timer
    /// zero and the backup take over at once, so it is read as one centisecond.
    private func learnedInterval(_ advert: VRRPAdvert) -> Int64 {
        max(advert.advertInterval, 10_000)
    }

    /// vrrp_state_leave_master: announce, drop the VIPs, notify, and arm the down timer.
    private mutating func leaveMaster(to target: VRRPState, reason: VRRPTransitionReason, _ now: VRRPInstant) -> [VRRPAction] {
        var actions: [VRRPAction] = [.stateChanged(from: .master, to: target, reason: reason)]
        if target == .fault { actions.append(.sendAdvert(advert(priority: 0))) }
        if !config.heldAddresses.isEmpty { actions.append(.removeVIPs(config.heldAddresses)) }
        vipsSet = false
        pendingGARPs = []
        garpRefreshAt = nil
        state = target
        actions.append(.runNotify(target == .fault ? .fault : .backup, priority: effectivePriority))
        if target == .backup {
            wantState = .backup
            preemptTime = nil
            nextMasterReason = .masterNoResponse
            armDownTimer(now, skewOnly: false)
        } else {
            wantState = .fault
            sands = nil
        }
        return actions
    }

    // MARK: Trackers and faults (vrrp_track.c down_instance / try_up_instance)

    private mutating func updateTrackers(_ trackers: [VRRPTracker], _ now: VRRPInstant) -> [VRRPAction] {
        let wasFaulted = isFaulted
        self.trackers = trackers
        setEffectivePriority(computeEffectivePriority())
        return reconcileFault(wasFaulted: wasFaulted, reason: isFaulted ? .faultDetected : .faultCleared, now)
    }

    /// A BACKUP's pending expiry moves by the change in its down timer, so a priority change
    /// takes effect without restarting the wait (vrrp_set_effective_priority).
    private mutating func setEffectivePriority(_ priority: UInt8) {
        guard priority != effectivePriority else { return }
        effectivePriority = priority
        rearmKeepingElapsed()
    }

    private mutating func rearmKeepingElapsed() {
        let newDown = downTimerIsSkew ? skew : masterDownInterval
        if state == .backup, let due = sands { sands = due + (newDown - downTimer) }
        downTimer = newDown
    }

    private mutating func reconcileFault(wasFaulted: Bool, reason: VRRPTransitionReason, _ now: VRRPInstant) -> [VRRPAction] {
        guard state != .initialize && state != .stopped else { return [] }
        if !wasFaulted && isFaulted {
            switch state {
            case .master:
                return leaveMaster(to: .fault, reason: reason, now)
            case .backup:
                state = .fault
                wantState = .fault
                sands = nil
                return [.stateChanged(from: .backup, to: .fault, reason: reason),
                        .runNotify(.fault, priority: effectivePriority)]
            default:
                return []
            }
        }
        if wasFaulted && !isFaulted && state == .fault {
            // Only when every fault is gone: back to BACKUP with our own interval and a full
            // down timer (an owner only waits one interval plus skew), then a normal election.
            state = .backup
            wantState = .backup
            preemptTime = nil
            masterAdvertInterval = config.advertInterval
            nextMasterReason = .masterNoResponse
            downTimerIsSkew = false
            downTimer = isOwner ? config.advertInterval + skew : masterDownInterval
            sands = now + downTimer
            var actions: [VRRPAction] = [
                .stateChanged(from: .fault, to: .backup, reason: reason),
                .runNotify(.backup, priority: effectivePriority),
            ]
            // A unicast peer may have lost our ARP entry while we were down; refresh it so
            // its adverts reach us before our down timer fires.
            if config.isUnicast { actions.append(.sendGARP([config.sourceAddress], rounds: 1)) }
            return actions
        }
        return []
    }

    // MARK: Shutdown, reload, sync group

    private mutating func shutdown() -> [VRRPAction] {
        var actions: [VRRPAction] = []
        if state == .master {
            // Priority 0 lets a backup take over after Skew_Time instead of Master_Down.
            actions.append(.sendAdvert(advert(priority: 0)))
            if !config.heldAddresses.isEmpty { actions.append(.removeVIPs(config.heldAddresses)) }
        }
        let previous = state
        state = .stopped
        sands = nil
        pendingGARPs = []
        garpRefreshAt = nil
        vipsSet = false
        actions.append(.stateChanged(from: previous, to: .stopped, reason: .shutdown))
        actions.append(.runNotify(.stop, priority: effectivePriority))
        return actions
    }

    /// A reload keeps the state, the timers and what is known of the master (keepalived's
    /// reload of a matched instance): VIPs that left the configuration are removed and new ones
    /// added and announced while MASTER, the others are not touched. A MASTER whose advert
    /// changed (priority, VIPs, interval, authentication) advertises at once so the peers see
    /// the new values; an unchanged one sends nothing extra, so a reload of the same file is
    /// invisible on the wire. A BACKUP's running down timer moves by the change of its length,
    /// so a new priority counts from now on without restarting the wait.
    private mutating func reload(_ newConfig: VRRPInstanceConfig, _ now: VRRPInstant) -> [VRRPAction] {
        let old = config
        let oldAdvert = advert(priority: effectivePriority)
        config = newConfig.normalized()
        // An owner that demoted itself to 254 on meeting a second owner stays demoted while
        // it is still configured as an owner.
        let demotedOwner = old.priority == 255 && config.priority == 255 && basePriority == 254
        if !demotedOwner { basePriority = config.priority }
        if state == .master || config.version == .v2 || old.version != config.version {
            masterAdvertInterval = config.advertInterval
        }
        effectivePriority = computeEffectivePriority()
        rearmKeepingElapsed()
        guard state == .master else { return [] }
        var actions: [VRRPAction] = []
        // The advert goes first, as when becoming master: peers learn the new address list
        // before the GARPs for it.
        if advert(priority: effectivePriority) != oldAdvert {
            actions.append(.sendAdvert(advert(priority: effectivePriority)))
            sands = now + config.advertInterval
        }
        let removed = old.heldAddresses.filter { !config.heldAddresses.contains($0) }
        let added = config.heldAddresses.filter { !old.heldAddresses.contains($0) }
        if !removed.isEmpty { actions.append(.removeVIPs(removed)) }
        if !added.isEmpty {
            actions.append(.addVIPs(added))
            if config.garp.masterRepeat > 0 { actions.append(.sendGARP(added, rounds: config.garp.masterRepeat)) }
        }
        if config.garp.masterRefresh != old.garp.masterRefresh {
            garpRefreshAt = config.garp.masterRefresh > 0 ? now + config.garp.masterRefresh : nil
        }
        return actions
    }

    private mutating func sync(_ command: VRRPSyncCommand, _ now: VRRPInstant) -> [VRRPAction] {
        switch command {
        case .permitMaster(let permitted):
            syncPermitsMaster = permitted
            return []
        case .forceMaster:
            guard state == .backup && !isFaulted else { return [] }
            return goToMaster(now, reason: .syncGroup, from: .backup)
        case .forceBackup:
            if state == .master { return leaveMaster(to: .backup, reason: .syncGroup, now) }
            if state == .backup { wantState = .backup }
            return []
        case .groupFault(let faulted):
            let wasFaulted = isFaulted
            groupFault = faulted
            return reconcileFault(wasFaulted: wasFaulted, reason: .syncGroup, now)
        }
    }

    // MARK: Helpers

    private mutating func armDownTimer(_ now: VRRPInstant, skewOnly: Bool) {
        downTimerIsSkew = skewOnly
        downTimer = skewOnly ? skew : masterDownInterval
        sands = now + downTimer
    }

    private mutating func schedulePendingGARP(at instant: VRRPInstant, rounds: Int) {
        let index = pendingGARPs.firstIndex { $0.at > instant } ?? pendingGARPs.endIndex
        pendingGARPs.insert(PendingGARP(at: instant, rounds: rounds), at: index)
    }
}

/// keepalived compares PASS data with a constant-time compare so the time taken does not
/// leak how many leading bytes matched. Both sides are padded to 8 bytes first.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    let a = Array(lhs.prefix(8)) + Array(repeating: 0, count: max(0, 8 - lhs.count))
    let b = Array(rhs.prefix(8)) + Array(repeating: 0, count: max(0, 8 - rhs.count))
    var difference: UInt8 = 0
    for index in 0..<8 { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// keepalived's `vrrp_saddr_cmp`: numeric order within a family, 0 across families.
func compare(_ lhs: IPAddress, _ rhs: IPAddress) -> Int {
    guard lhs.family == rhs.family else { return 0 }
    return lhs < rhs ? -1 : (lhs == rhs ? 0 : 1)
}
