import VRRP
import VigilConfig

/// One vrrp_sync_group at run time: the pure `VRRPSyncGroup` (which owns the members' state
/// machines and applies keepalived's group rules) and the members' runtimes, in group order.
final class GroupRuntime {
    let model: SyncGroup
    var core: VRRPSyncGroup
    let members: [InstanceRuntime]

    init(model: SyncGroup, members: [InstanceRuntime]) {
        self.model = model
        self.members = members
        self.core = VRRPSyncGroup(name: model.name, members: members.map(\.machine))
    }

    var name: String { model.name }

    /// Copies the group's machines back to the members, so code reading `instance.machine`
    /// (deadlines, state, priority) sees the group's view after every event.
    func refreshMembers() {
        for (index, member) in members.enumerated() { member.machine = core.members[index] }
    }
}
