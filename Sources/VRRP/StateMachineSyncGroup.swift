import Addressing
// vrrp_sync_group: instances that must move together, e.g. the outside and inside VIPs of
// a router, where half a failover is worse than none (keepalived vrrp_sync.c).

/// Owns the member state machines and routes every event through them, so the group rules
/// are applied after each event without the members knowing about each other:
/// a member may go MASTER on its own only if every other member wants MASTER; one member
/// reaching MASTER pulls the others up; one dropping to BACKUP pushes the others down; and
/// any faulted member holds the whole group in FAULT until no member is faulted.
public struct VRRPSyncGroup: Sendable {
    public enum Output: Hashable, Sendable {
        case member(Int, VRRPAction)
        case groupStateChanged(from: VRRPState, to: VRRPState)
    }

    public let name: String
    public private(set) var members: [VRRPStateMachine]
    public private(set) var state: VRRPState = .initialize

    public init(name: String, members: [VRRPStateMachine]) {
        self.name = name
        self.members = members
    }

    /// A group rebuilt by a reload around members that kept their state: its own state is
    /// derived from theirs without a transition, so no group notify runs for a state the group
    /// was already in (keepalived's `state_same_at_reload`).
    public init(name: String, continuing members: [VRRPStateMachine]) {
        self.name = name
        self.members = members
        state = .initialize
        state = derivedState()
    }

    public var nextDeadline: VRRPInstant? { members.compactMap(\.nextDeadline).min() }

    /// Starts every member in order.
    public mutating func start(at now: VRRPInstant) -> [Output] {
        members.indices.flatMap { handle(.start, member: $0, at: now) }
    }

    /// Delivers `.timerFired` to every member whose deadline has passed.
    public mutating func fireTimers(at now: VRRPInstant) -> [Output] {
        var outputs: [Output] = []
        for index in members.indices {
            if let deadline = members[index].nextDeadline, deadline <= now {
                outputs += handle(.timerFired, member: index, at: now)
            }
        }
        return outputs
    }

    public mutating func handle(_ event: VRRPEvent, member index: Int, at now: VRRPInstant) -> [Output] {
        _ = members[index].handle(.sync(.permitMaster(canGoToMaster(index))), at: now)
        let previous = members[index].state
        var outputs = members[index].handle(event, at: now).map { Output.member(index, $0) }
        outputs += propagate(from: index, previous: previous, now)
        return outputs
    }

    /// vrrp_sync_can_goto_master: the group is already MASTER, or every other member wants it.
    private func canGoToMaster(_ index: Int) -> Bool {
        if state == .master { return true }
        return members.indices.allSatisfy { $0 == index || members[$0].wantState == .master }
    }

    private mutating func propagate(from index: Int, previous: VRRPState, _ now: VRRPInstant) -> [Output] {
        var outputs: [Output] = []
        func deliver(_ command: VRRPSyncCommand, to member: Int) {
            outputs += members[member].handle(.sync(command), at: now).map { Output.member(member, $0) }
        }
        // vrrp_sync_fault / try_up_instance's num_member_fault.
        let anyFault = members.contains { $0.ownFault }
        for member in members.indices where members[member].groupFault != anyFault {
            deliver(.groupFault(anyFault), to: member)
        }
        let current = members[index].state
        if current == .master && previous != .master {
            for member in members.indices where member != index && members[member].state == .backup {
                deliver(.forceMaster, to: member)
            }
        } else if previous == .master && current == .backup {
            for member in members.indices where member != index {
                deliver(.forceBackup, to: member)
            }
        }
        let newState = derivedState()
        if newState != state {
            outputs.append(.groupStateChanged(from: state, to: newState))
            state = newState
        }
        return outputs
    }

    private func derivedState() -> VRRPState {
        let states = members.map(\.state)
        if states.allSatisfy({ $0 == .stopped }) { return .stopped }
        if states.contains(.fault) { return .fault }
        if states.allSatisfy({ $0 == .master }) { return .master }
        if states.allSatisfy({ $0 == .initialize }) { return .initialize }
        return .backup
    }
}
