// keepalived's `lvs_sync_daemon`: the kernel's IPVS connection synchronisation, so that the
// director that takes over (a VRRP backup, or another ECMP director) already knows the
// established connections and forwards them to the same real servers.
import Addressing
import IPVS
import VigilConfig

/// The sync threads wanted, resolved from the configuration.
public struct SyncDaemonSpec: Hashable, Sendable {
    public var interface: String
    /// With an instance: master while it is MASTER, backup otherwise (keepalived's VRRP child).
    /// Without: master and backup at once for as long as Vigil runs, the active-active mode
    /// where every director both sends its connections and learns the others'.
    public var instance: String?
    public var syncID: UInt32
    public var maxLength: UInt16?
    public var port: UInt16?
    public var ttl: UInt8?
    public var group: IPAddress?

    /// nil without `lvs_sync_daemon`. The sync id defaults to the instance's VRID, else 0.
    public static func build(_ config: Configuration) -> SyncDaemonSpec? {
        guard let sync = config.globals.lvsSyncDaemon else { return nil }
        let vrid = sync.instance.flatMap { name in config.instances.first { $0.name == name }?.virtualRouterID }
        return SyncDaemonSpec(interface: sync.interface, instance: sync.instance, syncID: UInt32(sync.syncID ?? vrid ?? 0),
                              maxLength: sync.maxLength.map { UInt16($0) }, port: sync.port.map { UInt16($0) },
                              ttl: sync.ttl.map { UInt8($0) }, group: sync.group)
    }

    /// The threads to run: `instanceIsMaster` is the instance's state (ignored without one).
    public func wanted(instanceIsMaster: Bool) -> [IPVSSyncDaemon] {
        let states: [IPVSSyncState] = instance == nil ? [.master, .backup] : [instanceIsMaster ? .master : .backup]
        return states.map { IPVSSyncDaemon(state: $0, interface: interface, syncID: syncID, maxLength: maxLength, port: port, ttl: ttl, group: group) }
    }

    /// From the threads running to the wanted ones: which states to stop (a changed thread is
    /// stopped and started again, as the kernel cannot change one) and which to start. Stops
    /// come first, as keepalived's `ipvs_syncd_master` stops the backup before starting the
    /// master.
    public static func changes(running: [IPVSSyncDaemon], wanted: [IPVSSyncDaemon]) -> (stop: [IPVSSyncDaemon], start: [IPVSSyncDaemon]) {
        let stop = running.filter { thread in !wanted.contains { matches($0, thread) } }
        let start = wanted.filter { thread in !running.contains { matches(thread, $0) } }
        return (stop, start)
    }

    /// The kernel reports the defaults it filled in (port 8848, TTL 1, the MTU's length, the
    /// group): a thread matches when every option Vigil set is what the kernel has.
    static let defaultGroup = IPAddress.v4(IPv4Address(224, 0, 0, 81))

    static func matches(_ wanted: IPVSSyncDaemon, _ running: IPVSSyncDaemon) -> Bool {
        wanted.state == running.state && wanted.interface == running.interface && wanted.syncID == running.syncID
            && (wanted.maxLength == nil || wanted.maxLength == running.maxLength)
            && (wanted.port ?? 8848) == (running.port ?? 8848)
            && (wanted.ttl ?? 1) == (running.ttl ?? 1)
            && (wanted.group ?? defaultGroup) == (running.group ?? defaultGroup)
    }
}
