import VRRP
import VRRPSpecs

/// One vrrp_sync_group at run time: the pure `VRRPSyncGroup` (which owns the members' state
/// machines and applies keepalived's group rules) and the members' runtimes, in group order.
final class GroupRuntime {
    let spec: SyncGroupSpec
    var core: VRRPSyncGroup
    let members: [VRRPHost.Instance]
    /// keepalived mails a group state once (vrrp_sync_smtp_notifier).
    var lastMailedState: VRRPState?

    /// `continuing`: rebuilt by a reload around members that kept their state, so the
    /// group's state is theirs without a transition.
    init(spec: SyncGroupSpec, members: [VRRPHost.Instance], continuing: Bool) {
        self.spec = spec
        self.members = members
        let machines = members.map(\.machine)
        core = continuing ? VRRPSyncGroup(name: spec.name, continuing: machines) : VRRPSyncGroup(name: spec.name, members: machines)
    }

    var name: String { spec.name }

    /// Copies the group's machines back to the members, so code reading `instance.machine`
    /// (deadlines, state, priority) sees the group's view after every event.
    func refreshMembers() {
        for (index, member) in members.enumerated() { member.machine = core.members[index] }
    }
}
