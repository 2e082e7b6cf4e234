// What the VRRP host runs, as plain values: the daemon builds these from the configuration
// once per load, and a reload compares the old values with the new ones. Nothing here
// carries a source location, so moving a block within the file changes nothing.
import Addressing
import VRRP
import Tracking
import VigilConfig

/// What keepalived's `vrrp_exist` matches an instance by on reload: not its name. Two
/// instances with equal identities are the same virtual router, so a renamed instance keeps
/// its state, and changing any of these is a stop of the old router and a start of a new one.
public struct InstanceIdentity: Hashable, Sendable, CustomStringConvertible {
    public enum Transport: Hashable, Sendable {
        /// Adverts to a group from the interface's address (or `mcast_src_ip`).
        case multicast(group: IPAddress)
        /// Adverts to peers from `unicast_src_ip` (nil: the interface's address).
        case unicast(source: IPAddress?)
    }

    public var vrid: UInt8
    public var family: AddressFamily
    public var interface: String
    public var transport: Transport
    /// The VMAC the router lives on (use_vmac), nil on the interface itself: a router moved
    /// onto or off a VMAC is a new one, as keepalived's reload treats it.
    public var vmacName: String?

    public init(vrid: UInt8, family: AddressFamily, interface: String, transport: Transport, vmacName: String? = nil) {
        self.vrid = vrid
        self.family = family
        self.interface = interface
        self.transport = transport
        self.vmacName = vmacName
    }

    public var description: String {
        let mode: String
        switch transport {
        case .multicast(let group): mode = "multicast \(group)"
        case .unicast(let source): mode = "unicast from \(source.map { "\($0)" } ?? "the interface address")"
        }
        return "VRID \(vrid) \(family) on \(vmacName.map { "\($0)@" } ?? "")\(interface), \(mode)"
    }
}

/// How one address is put on an interface: the fields `ip addr del` must repeat too.
public struct VIPSpec: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: UInt8
    /// `dev` of the line, else the instance's interface.
    public var device: String
    /// IPv4 only (`eth0:vip`).
    public var label: String?
    /// RT_SCOPE_*: 0 global (keepalived's default), 253 link, 254 host.
    public var scope: UInt8
    public var broadcast: IPv4Address?
    /// IPv6: IFA_F_NODAD, always set by keepalived so a VIP is usable at once.
    public var noDAD: Bool

    public init(address: IPAddress, prefixLength: UInt8, device: String, label: String? = nil, scope: UInt8 = 0,
                broadcast: IPv4Address? = nil, noDAD: Bool = true) {
        self.address = address
        self.prefixLength = prefixLength
        self.device = device
        self.label = label
        self.scope = scope
        self.broadcast = broadcast
        self.noDAD = noDAD
    }

    public var description: String { "\(address)/\(prefixLength) dev \(device)" }
}

/// keepalived's use_vmac: a private-mode macvlan on the instance's interface, with the
/// virtual MAC, that carries the VIPs, so a takeover moves no MAC in the switches' tables
/// and hosts that ignore gratuitous ARPs still find the master.
public struct VMACSpec: Hashable, Sendable {
    public var name: String
    /// The configured interface.
    public var parent: String
    public var mac: [UInt8]
    /// vmac_xmit_base: adverts leave and are heard on the parent (forced for unicast).
    public var transmitOnParent: Bool

    public init(name: String, parent: String, mac: [UInt8], transmitOnParent: Bool = false) {
        self.name = name
        self.parent = parent
        self.mac = mac
        self.transmitOnParent = transmitOnParent
    }

    public var macText: String { macAddressText(mac) }

    /// RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
    public static func virtualMAC(vrid: UInt8, family: AddressFamily) -> [UInt8] {
        [0x00, 0x00, 0x5e, 0x00, family == .ipv4 ? 0x01 : 0x02, vrid]
    }

    /// keepalived's create_vmac_name: PREFIX.VRID first, then PREFIX1.VRID, PREFIX2.VRID, …
    /// (IPv6 tries PREFIX6.VRID second), cut to fit the kernel's 15 characters.
    public static func defaultName(prefix: String, vrid: UInt8, family: AddressFamily, taken: Set<String>) -> String {
        func fitted(_ number: String) -> String {
            let tail = "\(number).\(vrid)"
            return String(prefix.prefix(max(0, 15 - tail.count))) + tail
        }
        var candidate = fitted("")
        var number = 0
        while taken.contains(candidate) {
            if family == .ipv6 {
                number = number == 0 ? 6 : number == 6 ? 1 : (number + 1 == 6 ? 7 : number + 1)
            } else {
                number += 1
            }
            candidate = fitted(String(number))
        }
        return candidate
    }
}

/// One tracked object of an instance with the weight it carries there.
public struct TrackerRule: Hashable, Sendable {
    public enum Source: Hashable, Sendable {
        case interface(String)
        case script(String)
        /// A track_file: its number times the weight.
        case file(String)
        /// A vrrp_track_process: up while its quorum of processes runs.
        case process(String)
        /// A configuration fault (keepalived's num_config_faults): always down, so an
        /// unweighted one holds the instance in FAULT. `unicast_fault_no_peer` without peers.
        case configuration(String)
        /// track_src_ip: up while the configured source address is on the interface.
        case sourceAddress(IPAddress)
    }

    public var source: Source
    public var weight: Int
    public var reverse: Bool
    /// Inherited from the instance's vrrp_sync_group rather than its own block.
    public var fromGroup: Bool

    public init(_ source: Source, weight: Int = 0, reverse: Bool = false, fromGroup: Bool = false) {
        self.source = source
        self.weight = weight
        self.reverse = reverse
        self.fromGroup = fromGroup
    }

    /// "interface eth0", "script chk_haproxy", "group script chk_db".
    public var name: String {
        let prefix = fromGroup ? "group " : ""
        switch source {
        case .interface(let name): return "\(prefix)interface \(name)"
        case .script(let name): return "\(prefix)script \(name)"
        case .file(let name): return "\(prefix)file \(name)"
        case .process(let name): return "\(prefix)process \(name)"
        case .configuration(let why): return "configuration: \(why)"
        case .sourceAddress(let address): return "source address \(address)"
        }
    }
}

/// One vrrp_instance, ready to run.
public struct InstanceSpec: Hashable, Sendable {
    public var name: String
    public var identity: InstanceIdentity
    /// The protocol core's configuration. Its `sourceAddress` is `configuredSource` or, when
    /// none is configured, the family's zero address: the host fills in the interface's own
    /// address at start (it can only be looked up on the machine).
    public var core: VRRPInstanceConfig
    /// `unicast_src_ip` or `mcast_src_ip`.
    public var configuredSource: IPAddress?
    public var unicastPeers: [IPAddress]
    public var unicastTTL: UInt8
    /// keepalived's old unicast VRRPv3 checksum (`old_unicast_checksum`) and the group it
    /// covered (vrrp_mcast_group4).
    public var oldUnicastChecksum: OldUnicastChecksum?
    public var oldChecksumGroup = IPv4Address(224, 0, 0, 18)
    /// keepalived's garp_extra_if (µs; 0: none): while MASTER, one gratuitous ARP (NA) this
    /// often on each of `extraAnnouncementDevices`, for the first VIP there.
    public var extraAnnouncementInterval: Int64 = 0
    /// The links of its VIPs but its own that are VMACs of the daemon's (with `all`: every
    /// one), and its own with vmac_xmit_base; garp_extra_if is off when there is no other.
    public var extraAnnouncementDevices: Set<String> = []
    /// The VIPs in configuration order (the order adverts list them).
    public var virtualAddresses: [VIPSpec]
    /// `virtual_ipaddress_excluded` and the VIPs beyond an advert's capacity: held with the
    /// VIPs, not advertised. They may be of the other family.
    public var excludedAddresses: [VIPSpec]
    /// `virtual_routes` and `virtual_rules`: installed while MASTER, after the VIPs.
    public var virtualRoutes: [RouteDefinition] = []
    public var virtualRules: [RuleDefinition] = []
    public var trackers: [TrackerRule]
    public var notify: NotifyCommands
    /// Mail this instance's state changes.
    public var smtpAlert = false
    /// Write a notify FIFO line at each change of effective priority (keepalived tells only the FIFOs).
    public var notifyPriorityChanges = false
    /// use_vmac: VIPs without a `dev` and the gratuitous ARPs move to the VMAC.
    public var vmac: VMACSpec?
    /// promote_secondaries: the interface keeps its other addresses of a subnet (the VIPs)
    /// when the first one goes. Never with a VMAC, which has it set anyway.
    public var promoteSecondaries = false
    /// RFC 5798's Accept_Mode off (no_accept, or strict mode's default) on a router that does
    /// not own its addresses: as MASTER it must not take traffic for them (with `nftables`).
    public var noAccept = false

    public var interface: String { identity.interface }
    /// Where adverts are sent and heard: the VMAC, unless vmac_xmit_base.
    public var channelInterface: String {
        guard let vmac, !vmac.transmitOnParent else { return interface }
        return vmac.name
    }
    /// Where the VIPs live and are announced: the VMAC, if any.
    public var addressInterface: String { vmac?.name ?? interface }
    /// Where multicast adverts go and are heard; nil for a unicast instance.
    public var multicastGroup: IPAddress? {
        if case .multicast(let group) = identity.transport { group } else { nil }
    }
    public var family: AddressFamily { identity.family }
    public var vrid: UInt8 { identity.vrid }
}

/// The notify scripts of an instance or a sync group, without source locations.
public struct NotifyCommands: Hashable, Sendable {
    public var master: ScriptLine?
    public var backup: ScriptLine?
    public var fault: ScriptLine?
    public var stop: ScriptLine?
    public var deleted: ScriptLine?
    public var generic: ScriptLine?
    public var masterRxLowerPriority: ScriptLine?

    public init() {}

    public init(_ scripts: NotifyScripts) {
        master = scripts.master.map(ScriptLine.init)
        backup = scripts.backup.map(ScriptLine.init)
        fault = scripts.fault.map(ScriptLine.init)
        stop = scripts.stop.map(ScriptLine.init)
        deleted = scripts.deleted.map(ScriptLine.init)
        generic = scripts.generic.map(ScriptLine.init)
        masterRxLowerPriority = scripts.masterRxLowerPri.map(ScriptLine.init)
    }

    /// The state's own script (notify_master, …, notify_deleted).
    public func specific(to state: String) -> ScriptLine? {
        switch state {
        case "MASTER": master
        case "BACKUP": backup
        case "FAULT": fault
        case "STOP": stop
        case "DELETED": deleted
        default: nil
        }
    }
}

/// A command line and the user it runs as, as a value that compares equal wherever it is
/// written in the file.
public struct ScriptLine: Hashable, Sendable {
    public var command: String
    public var user: String?
    public var group: String?

    public init(command: String, user: String? = nil, group: String? = nil) {
        self.command = command
        self.user = user
        self.group = group
    }

    public init(_ command: ScriptCommand) {
        self.init(command: command.command, user: command.user?.user, group: command.user?.group)
    }
}

/// One vrrp_script that some instance or group tracks.
/// A vrrp_track_process some instance tracks.
public struct TrackProcessSpec: Hashable, Sendable {
    public var name: String
    public var pattern: ProcessPattern
    public var quorum: Int
    public var quorumMax: Int
    public var forkDelay: Int64
    public var terminateDelay: Int64
}

/// A track_file some instance tracks: where it is and how to initialise it.
public struct TrackFileSpec: Hashable, Sendable {
    public var name: String
    public var path: String
    public var initValue: Int?
    public var initOverwrite: Bool
    public init(name: String, path: String, initValue: Int?, initOverwrite: Bool) {
        self.name = name
        self.path = path
        self.initValue = initValue
        self.initOverwrite = initOverwrite
    }
}

public struct TrackScriptSpec: Hashable, Sendable {
    public var name: String
    public var line: ScriptLine
    /// The program that will run (the first word, or /bin/sh), for the load-time checks.
    public var program: String
    public var interval: Int64
    public var timeout: Int64?
    public var rise: Int
    public var fall: Int
    public var initFail: Bool

    /// Whether a run's verdict can be carried over: the same command under the same user.
    /// Interval, timeout, rise and fall may change around a kept verdict (keepalived maps the
    /// old result onto the new rise/fall on reload).
    public func runsTheSameCommand(as other: TrackScriptSpec) -> Bool { line == other.line }
}

/// One vrrp_sync_group: members by instance name, in group order.
public struct SyncGroupSpec: Hashable, Sendable {
    public var name: String
    public var members: [String]
    public var notify: NotifyCommands
    /// Mail its state changes (smtp_alert, else smtp_alert_vrrp, else smtp_alert in global_defs).
    public var smtpAlert = false
}

/// Where state-change mail goes (keepalived's smtp_server, notification_email, ...): only
/// when both a server and a recipient are configured.
public struct MailSettings: Hashable, Sendable {
    public var server: IPAddress
    public var port: UInt16
    public var to: [String]
    /// nil: user@host, as keepalived.
    public var from: String?
    /// nil: the host name.
    public var helo: String?
    /// nil: the host name.
    public var routerID: String?
    public var timeout: Int64
    public var noEmailFaults: Bool
}

/// Everything the VRRP side runs, built from one configuration.
public struct VRRPSetup: Hashable, Sendable {
    public var instances: [InstanceSpec] = []
    public var groups: [SyncGroupSpec] = []
    /// Only the scripts some instance or group tracks, as keepalived runs only those.
    public var trackScripts: [TrackScriptSpec] = []
    public var mail: MailSettings?
    /// Only the track files and processes some instance tracks.
    public var trackFiles: [TrackFileSpec] = []
    public var trackProcesses: [TrackProcessSpec] = []
    /// keepalived's `vrrp_startup_delay` (µs): at start only, not at a reload.
    public var startupDelay: Int64 = 0
    /// `vrrp_garp_interval` / `vrrp_gna_interval` (µs): the least time between two gratuitous
    /// ARPs (unsolicited NAs) on one interface; 0 sends a burst back to back.
    public var garpInterval: Int64 = 0
    public var gnaInterval: Int64 = 0
    /// `static_ipaddress`, `static_routes`, `static_rules`: installed at start whatever the
    /// VRRP state, removed at stop (keepalived's order: addresses, routes, rules).
    public var staticAddresses: [VIPSpec] = []
    public var staticRoutes: [RouteDefinition] = []
    public var staticRules: [RuleDefinition] = []
    /// keepalived's `log_unknown_vrids`.
    public var logUnknownVRIDs = false
    /// disable_local_igmp: set at start, put back at stop; a reload cannot change it.
    public var disableLocalIGMP = false
    /// keepalived's dynamic_interfaces: an instance whose link (or a VIP's device) is missing
    /// starts in FAULT and takes the link when it is created, instead of stopping the daemon.
    public var dynamicInterfaces = false
    /// interface_up_down_delays by link (µs), a VMAC with its parent's.
    public var linkDelays: [String: LinkDebounce.Delays] = [:]
    /// keepalived's linkbeat: links whose state is looked at every second, not only when
    /// rtnetlink reports a change (a driver that does not report carrier changes).
    public var polledLinks: Set<String> = []

    public init() {}
}

/// Why an instance cannot run, with where it was configured.
public struct SpecProblem: Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }
    public var description: String { "\(location): \(message)" }
}
