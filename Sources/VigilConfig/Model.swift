import Addressing
/// The typed configuration: what keepalived.conf means once parsed, defaults filled in.
/// Durations are microseconds, as keepalived's TIMER_HZ; every element keeps its location.

public typealias Microseconds = Int64

public struct Configuration: Sendable {
    public var globals = GlobalDefs()
    public var scripts: [VRRPScript] = []
    public var trackFiles: [TrackFile] = []
    public var trackProcesses: [TrackProcess] = []
    public var instances: [VRRPInstance] = []
    public var syncGroups: [SyncGroup] = []
    public var staticAddresses: [VirtualAddress] = []
    /// `static_routes`/`static_rules` and `virtual_routes`/`virtual_rules` lines, kept verbatim
    /// (Vigil parses but does not yet install routes or rules).
    public var staticRoutes: [RouteLine] = []
    public var staticRules: [RouteLine] = []
    public var virtualServerGroups: [VirtualServerGroup] = []
    public var virtualServers: [VirtualServer] = []
    /// keepalived's top-level `net_namespace NAME` (or `-s NAME`): the network namespace the
    /// daemon runs in, entered before the host is checked.
    public var netNamespace: String?
    /// keepalived's interface_up_down_delays: how long a link must stay down (up) before the
    /// instances that track it see it so; a flap shorter than that is not a transition.
    public var interfaceDelays: [InterfaceDelays] = []
    /// keepalived's linkbeat_interfaces: links polled for their state, not only reported.
    public var linkbeatInterfaces: [LinkbeatInterface] = []
    public var netNamespaceLocation: SourceLocation?
    /// keepalived's top-level `instance NAME`: names the pid file and control socket, so that
    /// several daemons can run side by side.
    public var instanceName: String?
    /// Files that contributed lines, main file first.
    public var files: [String] = []

    public init() {}

    /// Every script command line the configuration would run, with who runs it.
    public var allScripts: [ConfiguredScript] {
        var result: [ConfiguredScript] = []
        for s in scripts { if let c = s.script { result.append(.init(command: c, owner: "vrrp_script \(s.name)", role: .track)) } }
        for i in instances {
            for c in i.notify.all { result.append(.init(command: c, owner: "vrrp_instance \(i.name)", role: .notify)) }
        }
        for g in syncGroups { for c in g.notify.all { result.append(.init(command: c, owner: "vrrp_sync_group \(g.name)", role: .notify)) } }
        if let c = globals.startupScript { result.append(.init(command: c, owner: "startup_script", role: .notify)) }
        if let c = globals.shutdownScript { result.append(.init(command: c, owner: "shutdown_script", role: .notify)) }
        for (kind, fifo) in globals.notifyFIFOs.sorted(by: { $0.key < $1.key }) {
            if let c = fifo.script { result.append(.init(command: c, owner: kind.keyword + "_script", role: .notify)) }
        }
        for vs in virtualServers {
            for c in [vs.quorumUp, vs.quorumDown].compactMap({ $0 }) { result.append(.init(command: c, owner: "virtual_server \(vs.key)", role: .checker)) }
            for rs in vs.realServers {
                for c in [rs.notifyUp, rs.notifyDown].compactMap({ $0 }) { result.append(.init(command: c, owner: "real_server \(rs.address)", role: .checker)) }
                for chk in rs.checkers { if let c = chk.miscPath { result.append(.init(command: c, owner: "MISC_CHECK of \(rs.address)", role: .checker)) } }
            }
        }
        return result
    }
}

/// keepalived's unicast VRRPv3 checksum before 2.0.? covered the multicast group instead of the
/// peer's address; keepalived 2.2.7 (built with OLD_CHKSUM_COMPAT, as Debian's is) follows a peer
/// that still sends it unless told `never`.
public enum OldUnicastChecksum: String, Sendable, Hashable { case always, never }

/// One of keepalived's notify FIFOs: made (mode 0644) when nothing is at `path`, opened for
/// writing without blocking, and fed one line per event; `script`, when given, is started with
/// the FIFO's path as its last argument to read it.
public struct NotifyFIFO: Sendable, Equatable {
    /// keepalived's keyword prefixes: `notify_fifo` gets every line, the others theirs only.
    public enum Kind: String, Sendable, CaseIterable, Comparable {
        case all = "", vrrp = "vrrp_", lvs = "lvs_"
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
        public var keyword: String { rawValue + "notify_fifo" }
    }
    public var path: String
    /// Who owns a FIFO Vigil makes: the user named, else the default script user.
    public var owner: ScriptUser?
    public var script: ScriptCommand?
    public var location: SourceLocation
    public init(path: String, owner: ScriptUser? = nil, script: ScriptCommand? = nil, location: SourceLocation) {
        self.path = path
        self.owner = owner
        self.script = script
        self.location = location
    }
}

/// A script the configuration would run, and why: keepalived treats a missing track script as
/// an error but silently drops missing notify and checker scripts.
public struct ConfiguredScript: Sendable {
    public enum Role: Sendable { case track, notify, checker }
    public var command: ScriptCommand
    public var owner: String
    public var role: Role
}

/// The top-level `SSL { password; ca; certificate; key }` block SSL_GET checkers use.
public struct SSLSettings: Sendable, Hashable {
    public var password: String?
    public var ca: String?
    public var certificate: String?
    public var key: String?
    public var location: SourceLocation?
    public init() {}
}

public struct GlobalDefs: Sendable {
    public var routerID: String?
    public var ssl: SSLSettings?
    public var notificationEmail: [String] = []
    public var notificationEmailFrom: String?
    public var smtpServer: String?
    public var smtpPort = 25
    public var smtpServerLocation: SourceLocation?
    /// smtp_server's address: the literal, or what its name resolved to when the file was read.
    public var smtpServerAddress: IPAddress?
    public var smtpHeloName: String?
    /// Global defaults of smtp_alert: `smtp_alert_vrrp` for VRRP, else `smtp_alert`.
    public var smtpAlert: Bool?
    public var smtpAlertVRRP: Bool?
    /// `smtp_alert_checker`: the default for virtual and real servers, before `smtp_alert`.
    public var smtpAlertChecker: Bool?
    /// `no_checker_emails`: a real server's mail only when the server itself changes, not
    /// when one of several checkers does.
    public var noCheckerEmails = false
    public var noEmailFaults = false
    public var smtpConnectTimeout: Microseconds = 30_000_000
    public var enableScriptSecurity = false
    public var scriptUser: ScriptUser?
    public var vrrpVersion = 2
    public var vrrpStrict = false
    public var garp = GARPSettings()
    public var garpInterval: Microseconds = 0
    public var gnaInterval: Microseconds = 0
    public var vrrpMcastGroup4 = IPAddress.v4(IPv4Address(224, 0, 0, 18))
    public var vrrpMcastGroup6 = IPAddress("ff02::12")!
    /// `vmac_prefix`: how VMAC names start when an instance names none (keepalived's "vrrp").
    public var vmacPrefix: String?
    /// `nftables [TABLE]`: the no_accept drop rules are wanted, in this table ("keepalived").
    public var nftablesTable: String?
    /// `nftables_priority`: the chains' priority (keepalived's -1).
    public var nftablesPriority = -1
    public var vrrpSkipCheckAdvAddr = false
    public var vrrpCheckUnicastSrc = false
    public var lowerPrioNoAdvert = false
    /// nil: not set, and Vigil then sends the advert (see SpecBuilder): keepalived's default
    /// (off) leaves stale ARP caches after a split brain heals.
    public var higherPrioSendAdvert: Bool?
    public var downTimerAdverts = 3
    public var startupDelay: Microseconds = 0
    public var defaultInterface = "eth0"
    public var dynamicInterfaces = false
    /// keepalived's top-level linkbeat_use_polling: every instance's own link is polled.
    /// keepalived's vrrp_garp_extra_if [all] SECS: the instances' default for garp_extra_if.
    public var garpExtraInterval = 0
    public var garpExtraAll = false
    public var linkbeatUsePolling = false
    public var lvsFlush = false
    public var lvsFlushOnStop = false
    /// `lvs_timeouts tcp N tcpfin N udp N`: the kernel's IPVS connection timeouts while Vigil
    /// runs; a missing one (or 0) keeps the kernel's value.
    public var lvsTimeouts: LVSTimeouts?
    /// keepalived's `use_pid_dir`: the pid file goes in a directory of its own (Vigil's
    /// /run/vigil, beside the control socket) unless `-p` names one.
    public var usePidDir = false
    /// keepalived's `child_wait_time` (seconds its parent waits for its children at stop):
    /// how long Vigil's stop waits for the scripts still running (notify_stop, the FIFO
    /// readers) before it kills them. nil: 1 s.
    public var childWaitTime: Int?
    /// keepalived's `disable_local_igmp`: net.ipv4.igmp_link_local_mcast_reports 0 while Vigil
    /// runs (no IGMP reports for 224.0.0.18, which some switches mishandle).
    public var disableLocalIGMP = false
    /// `reload_check_config [LOG]`: where a reload writes the new file's diagnostics (keepalived:
    /// the config-test output); "/dev/null" when given without a file. Vigil checks every
    /// reload either way.
    public var reloadCheckConfigLog: String?
    /// `reload_file [PATH]`: created before a reload reads the file, removed when it is done,
    /// so an updater can wait for it. keepalived's default path: /run/keepalived.reload.
    public var reloadFile: String?
    public static let defaultReloadFile = "/run/keepalived.reload"
    /// keepalived's `lvs_sync_daemon` (or an instance's deprecated `lvs_sync_daemon_interface`).
    public var lvsSyncDaemon: LVSSyncDaemonSettings?
    /// Vigil's own `vigil_announce_table`: the kernel table the announced routes go in, which a
    /// routing daemon (FRR's `ip import-table`, BIRD's `learn`) reads.
    public var announceTable: UInt32 = 198
    /// Vigil's own `vigil_announce_protocol`: how the announced routes are marked (keepalived's
    /// 18 by default), so the ones a killed run left behind can be told and removed at start.
    public var announceProtocol: UInt8 = 18
    /// keepalived's `vrrp_*` process settings (`vrrp_priority`, `vrrp_rt_priority`,
    /// `vrrp_rlimit_rttime`, `vrrp_cpu_affinity`, `vrrp_no_swap`): in Vigil's one process they
    /// are the loop thread's, which sends the adverts.
    public var vrrpScheduling = SchedulingSettings()
    /// The `checker_*` ones: the checkers' worker threads'.
    public var checkerScheduling = SchedulingSettings()
    /// Keywords keepalived knows that Vigil accepts without acting on them yet.
    /// keepalived's notify FIFOs: `notify_fifo` (every event), `vrrp_notify_fifo`, `lvs_notify_fifo`.
    public var notifyFIFOs: [NotifyFIFO.Kind: NotifyFIFO] = [:]
    /// `fifo_write_vrrp_states_on_reload`: after a reload, every instance and sync group whose
    /// state did not change writes its state line again.
    public var fifoWriteStatesOnReload = false
    /// `vrrp_notify_priority_changes`: the default of each instance's `notify_priority_changes`.
    public var notifyPriorityChanges = false
    /// `log_unknown_vrids`: adverts for a VRID no instance here runs are logged, not only counted.
    public var logUnknownVRIDs = false
    /// `startup_script` / `shutdown_script` and their timeouts (µs; keepalived's 10 s default):
    /// run to their end before the daemon starts, and after it has stopped.
    public var startupScript: ScriptCommand?
    public var startupScriptTimeout: Microseconds = 10_000_000
    public var shutdownScript: ScriptCommand?
    public var shutdownScriptTimeout: Microseconds = 10_000_000
    /// `max_auto_priority` (0: off; with no value 99) and `min_auto_priority_delay` (µs): when
    /// the loop wakes more than the delay after its earliest timer, keepalived logs it and
    /// raises itself one SCHED_RR step, up to the maximum.
    public var maxAutoPriority = 0
    public var minAutoPriorityDelay: Int64 = 1_000_000
    /// `checker_log_all_failures`: the default of every checker's `log_all_failures`.
    public var checkerLogAllFailures = false
    /// `rs_init_notifies`: a real server alive from the start gets its notify_up and FIFO line.
    public var rsInitNotifies = false
    /// `umask`: the daemon's file-creation mask (nil: keepalived's 0177); `-u` wins over it.
    public var umask: UInt32?
    public var notActedOn: [String: SourceLocation] = [:]
    public init() {}
}

/// How a keepalived process is scheduled, as its `*_priority`, `*_rt_priority`,
/// `*_rlimit_rttime`, `*_cpu_affinity` and `*_no_swap` keywords say.
public struct SchedulingSettings: Sendable, Equatable {
    /// The nice value, -20...19; keepalived ignores it when a real-time priority is set.
    public var nice: Int?
    /// SCHED_RR at this priority, 1...99.
    public var realtimePriority: Int?
    /// RLIMIT_RTTIME in µs (keepalived's default 10,000 when a real-time priority is set).
    public var realtimeLimit: UInt64?
    /// The CPUs the threads may run on; empty: wherever the kernel likes.
    public var cpus: [Int] = []
    /// mlockall: the process's pages never go to swap.
    public var noSwap = false
    /// Where the settings were written, for the daemon's messages.
    public var locations: [String: SourceLocation] = [:]

    public init() {}

    /// keepalived's RT_RLIMIT_DEFAULT.
    public static let defaultRealtimeLimit: UInt64 = 10_000

    public static func == (a: SchedulingSettings, b: SchedulingSettings) -> Bool {
        a.nice == b.nice && a.realtimePriority == b.realtimePriority && a.realtimeLimit == b.realtimeLimit
            && a.cpus == b.cpus && a.noSwap == b.noSwap
    }

    public var isDefault: Bool { self == SchedulingSettings() }
}

public struct GARPSettings: Sendable, Equatable {
    public var masterDelay: Microseconds = 5_000_000
    public var masterRepeat = 5
    public var masterRefresh: Microseconds = 0
    public var masterRefreshRepeat = 1
    /// nil: same as the master values.
    public var lowerPrioDelay: Microseconds?
    public var lowerPrioRepeat: Int?
    public init() {}
}

public struct ScriptUser: Sendable, Equatable {
    public var user: String
    public var group: String?
    public var location: SourceLocation
    public init(user: String, group: String?, location: SourceLocation) {
        self.user = user
        self.group = group
        self.location = location
    }
}

/// A command line to execute, as written (keepalived takes it quoted), plus an optional user.
public struct ScriptCommand: Sendable, Equatable {
    public var command: String
    public var user: ScriptUser?
    public var location: SourceLocation
    /// Whether the command line needs a shell (redirections, pipes, variables, globs): then it
    /// runs as `/bin/sh -c COMMAND`, otherwise Vigil executes the program directly.
    public var needsShell: Bool {
        command.contains { "<>|&;$`*?()[]{}~\"'\\".contains($0) }
    }
    /// The program that will be executed: the first word, or /bin/sh when a shell is needed.
    public var program: String {
        needsShell ? "/bin/sh" : String(command.split(separator: " ", omittingEmptySubsequences: true).first ?? "")
    }
}

/// keepalived's `track_file NAME { file, weight, init_file }` (vrrp_track_file: the old name).
public struct TrackFile: Sendable {
    public var name: String
    public var location: SourceLocation
    public var path: String?
    /// Multiplies the number in the file; 0 makes any non-zero number a failure.
    public var weight = 1
    public var reverse = false
    /// `init_file [VALUE] [overwrite]`: written at start when the file is missing (or always).
    public var initValue: Int?
    public var initOverwrite = false
}

/// keepalived's `vrrp_track_process NAME { process, param_match, weight, quorum, quorum_max,
/// fork_delay, terminate_delay, delay, full_command }`.
public struct TrackProcess: Sendable {
    public enum ParameterMatch: Sendable { case none, exact, partial, initial }
    public var name: String
    public var location: SourceLocation
    public var process: String?
    public var parameters: [String] = []
    public var parameterMatch = ParameterMatch.none
    public var fullCommand = false
    public var weight = 0
    public var reverse = false
    public var quorum = 1
    public var quorumMax = Int.max
    public var forkDelay: Microseconds = 0
    public var terminateDelay: Microseconds = 0
}

public struct VRRPScript: Sendable {
    public var name: String
    public var location: SourceLocation
    public var script: ScriptCommand?
    public var interval: Microseconds = 1_000_000
    /// nil: the same as interval (keepalived's default).
    public var timeout: Microseconds?
    public var weight = 0
    public var weightReverse = false
    public var rise = 1
    public var fall = 1
    public var user: ScriptUser?
    public var initFail = false
}

public enum InitialState: String, Sendable { case master = "MASTER", backup = "BACKUP" }

public enum AuthType: String, Sendable { case pass = "PASS", ah = "AH" }

public struct Tracked: Sendable, Equatable {
    public var name: String
    public var weight: Int?
    public var reverse = false
    public var location: SourceLocation
}

public struct UnicastPeer: Sendable, Equatable {
    public var address: IPAddress
    public var minTTL: Int?
    public var maxTTL: Int?
}

public struct NotifyScripts: Sendable {
    public var master: ScriptCommand?
    public var backup: ScriptCommand?
    public var fault: ScriptCommand?
    public var stop: ScriptCommand?
    public var deleted: ScriptCommand?
    public var generic: ScriptCommand?
    public var masterRxLowerPri: ScriptCommand?
    public var all: [ScriptCommand] { [master, backup, fault, stop, deleted, generic, masterRxLowerPri].compactMap { $0 } }
}

public struct VirtualAddress: Sendable, Equatable {
    public var address: IPAddress
    public var prefixLength: Int
    public var device: String?
    public var broadcast: String?
    public var scope: String?
    public var label: String?
    public var peer: IPAddress?
    public var noDAD = true
    public var noTrack = false
    public var options: [String] = []
    public var location: SourceLocation
}

public struct RouteLine: Sendable {
    public var words: [String]
    public var location: SourceLocation
    /// What Vigil installs for a route line; nil when it cannot (reported where it was read).
    public var route: RouteDefinition?
    /// The same for a rule line.
    public var rule: RuleDefinition?
}

public struct VRRPInstance: Sendable {
    public var name: String
    public var location: SourceLocation
    /// `notify_priority_changes`: a FIFO line (`INSTANCE "VI_1" MASTER_PRIORITY 90`) at each change
    /// of effective priority; nil: the sync group's, else the global default.
    public var notifyPriorityChanges: Bool?
    public var state: InitialState?
    public var interface: String?
    public var interfaceLocation: SourceLocation?
    public var virtualRouterID: Int?
    /// nil until completion: then 100, or 255 when `state MASTER` was given without a priority.
    public var priority: Int?
    public var advertInterval: Microseconds = 1_000_000
    public var version: Int?
    public var nopreempt = false
    public var preemptDelay: Microseconds = 0
    public var authType: AuthType?
    public var authPass: String?
    public var virtualAddresses: [VirtualAddress] = []
    public var excludedAddresses: [VirtualAddress] = []
    public var virtualRoutes: [RouteLine] = []
    public var virtualRules: [RouteLine] = []
    public var trackInterfaces: [Tracked] = []
    public var trackScripts: [Tracked] = []
    public var trackFiles: [Tracked] = []
    public var trackProcesses: [Tracked] = []
    public var mcastSourceIP: IPAddress?
    public var unicastSourceIP: IPAddress?
    /// `mcast_dst_ip`: this instance's multicast group instead of vrrp_mcast_group4/6.
    public var multicastDestination: IPAddress?
    /// Any of keepalived's unicast keywords (unicast_peer, unicast_src_ip, check_unicast_src,
    /// unicast_fault_no_peer, old_unicast_checksum): with no peer, keepalived falls back to
    /// multicast (deprecated) or, with `unicast_fault_no_peer`, holds the instance in FAULT.
    public var unicastConfigured = false
    public var unicastFaultNoPeer = false
    /// `track_src_ip`: FAULT while the configured source (unicast_src_ip / mcast_src_ip) is not
    /// on the interface.
    public var trackSourceIP = false
    /// `old_unicast_checksum [never]`: nil (the default: new checksums, switching to the old
    /// ones when a peer's adverts use them), `.always` (no value), `.never`.
    public var oldUnicastChecksum: OldUnicastChecksum?
    public var unicastPeers: [UnicastPeer] = []
    public var unicastTTL: Int?
    public var garp = GARPSettings()
    public var notify = NotifyScripts()
    public var dontTrackPrimary = false
    /// `use_vmac`: the instance's VIPs and adverts move to a macvlan with the virtual MAC.
    public var vmac: VMACSettings?
    /// `vmac_xmit_base`: adverts leave by the parent interface, not the VMAC.
    public var vmacTransmitOnParent = false
    /// `promote_secondaries`: the interface's sysctl of that name is set while Vigil runs.
    public var promoteSecondaries = false
    public var promoteSecondariesLocation: SourceLocation?
    public var accept: Bool?
    public var strict: Bool?
    public var lowerPrioNoAdvert: Bool?
    public var higherPrioSendAdvert: Bool?
    public var skipCheckAdvAddr: Bool?
    public var checkUnicastSource = false
    public var ownerIgnoreAdverts = false
    public var smtpAlert: Bool?
    public var downTimerAdverts: Int?
    public var v3ChecksumAsV2 = false
    public var noVirtualIPAddress = false
    /// keepalived's native_ipv6: IPv6 (VRRPv3) whatever the VIPs; IPv4 ones after it are dropped.
    public var nativeIPv6 = false
    /// The deprecated per-instance linkbeat_use_polling: this instance's link is polled.
    /// keepalived's garp_extra_if [all] SECS (0...86400; nil: the global's): while MASTER, a
    /// gratuitous ARP every SECS on each VMAC (with `all`: each link) of its VIPs but its own.
    public var garpExtraInterval: Int?
    public var garpExtraAll = false
    public var linkbeatUsePolling = false
    public var notActedOn: [String: SourceLocation] = [:]

    /// The priority Vigil will use: keepalived derives 255 from `state MASTER` when none is set.
    public var effectivePriority: Int { priority ?? (state == .master ? 255 : 100) }
    /// The initial state Vigil will use: keepalived derives MASTER from priority 255.
    public var effectiveState: InitialState { state ?? (effectivePriority == 255 ? .master : .backup) }

    /// RFC 5798's Accept_Mode as keepalived sets it: on unless no_accept, or strict mode
    /// (this instance's or the global one) without an explicit accept.
    public func acceptMode(strictByDefault: Bool) -> Bool { accept ?? !(strict ?? strictByDefault) }
}

public struct SyncGroup: Sendable {
    public var name: String
    public var location: SourceLocation
    public var members: [(name: String, location: SourceLocation)] = []
    public var notify = NotifyScripts()
    public var trackInterfaces: [Tracked] = []
    public var trackScripts: [Tracked] = []
    public var trackFiles: [Tracked] = []
    public var trackProcesses: [Tracked] = []
    public var trackingWeight = false
    public var smtpAlert: Bool?
    /// `notify_priority_changes`: the default of its members' (nil: the global one).
    public var notifyPriorityChanges: Bool?
    /// Keywords keepalived acts on that Vigil accepts without acting on them yet (`NotActedOn`).
    public var notActedOn: [String: SourceLocation] = [:]
}

// MARK: - LVS

public enum ForwardingMethod: String, Sendable { case nat = "NAT", dr = "DR", tun = "TUN" }

/// keepalived's TUN options: the encapsulation IPVS uses for a tunnelled server.
public struct TunnelOptions: Sendable, Equatable {
    public enum Kind: String, Sendable { case ipip, gue, gre }
    /// keepalived's nocsum / csum / remcsum (IP_VS_TUNNEL_ENCAP_FLAG_*: 0, 1, 2).
    public enum Checksum: String, Sendable { case nocsum, csum, remcsum }
    public var kind = Kind.ipip
    /// GUE's UDP port (1...65535); 0 for the others.
    public var port = 0
    public var checksum = Checksum.nocsum
    public init() {}

    /// As keepalived's config dump writes it after TUN ("" for plain IPIP).
    public var words: String {
        guard self != TunnelOptions() else { return "" }
        return " type \(kind.rawValue)" + (kind == .gue ? " port \(port)" : "") + (checksum == .nocsum ? "" : " \(checksum.rawValue)")
    }
}

public enum TransportProtocol: String, Sendable { case tcp = "TCP", udp = "UDP", sctp = "SCTP" }

public enum VirtualServerKey: Sendable, Equatable, CustomStringConvertible {
    case address(IPAddress, port: Int)
    case fwmark(UInt32)
    case group(String)

    public var description: String {
        switch self {
        case .address(let a, let p): return a.isV6 ? "[\(a)]:\(p)" : "\(a):\(p)"
        case .fwmark(let m): return "fwmark \(m)"
        case .group(let g): return "group \(g)"
        }
    }
}

public struct VirtualServerGroup: Sendable {
    public enum Entry: Sendable, Equatable {
        case address(IPAddress, lastOctetRange: Int?, port: Int)
        case fwmark(UInt32)
    }
    public var name: String
    public var location: SourceLocation
    public var entries: [Entry] = []
}

public enum CheckerKind: String, Sendable, CaseIterable {
    case tcp = "TCP_CHECK", http = "HTTP_GET", ssl = "SSL_GET", misc = "MISC_CHECK", smtp = "SMTP_CHECK"
    case dns = "DNS_CHECK", udp = "UDP_CHECK", ping = "PING_CHECK", file = "FILE_CHECK", bfd = "BFD_CHECK"
}

public struct HTTPURL: Sendable, Equatable {
    public var path: String?
    public var digest: String?
    public var statusCodes: [ClosedRange<Int>] = []
    public var virtualhost: String?
    /// `regex` with `regex_options` (PCRE2 bits), `regex_no_match` and the offsets; the pattern
    /// was compiled by the config test.
    public var regex: String?
    public var regexOptions: UInt32 = 0
    public var regexNoMatch = false
    public var regexMinOffset = 0
    public var regexMaxOffset: Int?
    public var location: SourceLocation
}

/// A health checker. Connection parameters left nil inherit from the real server, then the
/// virtual server, then keepalived's defaults (§5.1 of the reference).
public struct Checker: Sendable {
    public var kind: CheckerKind
    public var location: SourceLocation
    public var connectIP: IPAddress?
    public var connectPort: Int?
    public var bindTo: IPAddress?
    public var bindPort: Int?
    public var bindInterface: String?
    public var connectTimeout: Microseconds?
    public var retry: Int?
    public var delayBeforeRetry: Microseconds?
    public var warmup: Microseconds?
    public var delayLoop: Microseconds?
    public var fwmark: UInt32?
    /// `log_all_failures`: every failed attempt while the checker is up is logged (nil: global
    /// `checker_log_all_failures`).
    public var logAllFailures: Bool?
    public var alpha: Bool?
    public var urls: [HTTPURL] = []
    /// `http_protocol`: 1.0 (nil), 1.0C, 1.1.
    public var httpProtocol: String?
    public var virtualhost: String?
    public var fastRecovery = false
    /// `enable_sni`: send the virtualhost as SNI.
    public var enableSNI = false
    public var sniName: String?
    /// UDP_CHECK: `payload` (hex), `require_reply [DATA [MASK]]`, reply length limits.
    public var payload: [UInt8] = []
    public var requireReply = false
    public var replyData: [UInt8] = []
    public var replyMask: [UInt8] = []
    public var minReplyLength: Int?
    public var maxReplyLength: Int?
    /// DNS_CHECK: `type` (A by default) and `name` ("." by default).
    public var dnsType: String?
    public var dnsName: String?
    public var miscPath: ScriptCommand?
    public var miscTimeout: Microseconds?
    public var miscDynamic = false
    /// SMTP_CHECK: `helo_name` (keepalived's "smtpchecker.keepalived.org" when nil) and the
    /// deprecated `host` blocks, each a connection of its own (see `expandingSMTPHosts`).
    public var heloName: String?
    public var smtpHosts: [Checker] = []
    /// FILE_CHECK: the top-level track_file it follows, and its own `weight W [reverse]`
    /// (nil: the track_file's weight and reverse).
    public var trackFile: String?
    public var fileWeight: Int?
    public var fileReverse = false
    public var notActedOn: [String: SourceLocation] = [:]

    /// Whether the checker block itself names any part of its connection.
    var namesConnection: Bool {
        connectIP != nil || connectPort != nil || bindTo != nil || bindPort != nil || bindInterface != nil
            || fwmark != nil || connectTimeout != nil
    }

    /// keepalived's SMTP_CHECK `host` blocks (check_smtp.c): every host is a checker of its
    /// own with the block's other settings (retry, delay_loop, helo_name...); the first host
    /// takes the checker's own place unless the checker names a connection itself. A host's
    /// connection starts from the real server, not from the checker's. Where keepalived gives
    /// a host without connect_timeout a zero timeout, Vigil gives it the real server's or
    /// virtual server's, as for any checker.
    public func expandingSMTPHosts() -> [Checker] {
        guard kind == .smtp, !smtpHosts.isEmpty else { return [self] }
        var base = self
        base.smtpHosts = []
        let hosts = smtpHosts.map { host in
            var checker = base
            checker.location = host.location
            checker.connectIP = host.connectIP
            checker.connectPort = host.connectPort
            checker.bindTo = host.bindTo
            checker.bindPort = host.bindPort
            checker.bindInterface = host.bindInterface
            checker.fwmark = host.fwmark
            checker.connectTimeout = host.connectTimeout
            return checker
        }
        return namesConnection ? [base] + hosts : hosts
    }

    /// keepalived's per-checker default for `retry`.
    public var defaultRetry: Int {
        switch kind {
        case .misc: return 0
        case .dns: return 3
        default: return 1
        }
    }
}

public struct RealServer: Sendable {
    public var address: IPAddress
    public var port: Int
    public var location: SourceLocation
    /// nil: `smtp_alert_checker`, else global `smtp_alert`, else on (keepalived's default,
    /// kept for compatibility: a real server is mailed about unless told otherwise).
    public var smtpAlert: Bool?
    public var weight: Int?
    public var inhibitOnFailure: Bool?
    public var method: ForwardingMethod?
    /// TUN's encapsulation when this server's lvs_method gave one (else the virtual server's).
    public var tunnel: TunnelOptions?
    public var notifyUp: ScriptCommand?
    public var notifyDown: ScriptCommand?
    public var upperThreshold = 0
    public var lowerThreshold = 0
    public var alpha: Bool?
    public var connectTimeout: Microseconds?
    public var retry: Int?
    public var delayBeforeRetry: Microseconds?
    public var warmup: Microseconds?
    public var delayLoop: Microseconds?
    /// The Host: of this server's HTTP_GET/SSL_GET checks, unless the url or checker names one.
    public var virtualhost: String?
    public var checkers: [Checker] = []
    /// Keywords keepalived acts on that Vigil accepts without acting on them yet (`NotActedOn`).
    public var notActedOn: [String: SourceLocation] = [:]
}

public struct VirtualServer: Sendable {
    public var key: VirtualServerKey
    public var location: SourceLocation
    /// `ip_family inet|inet6`: the family of a fwmark service (nil: its first real server's).
    public var ipFamily: AddressFamily?
    /// nil: `smtp_alert_checker`, else global `smtp_alert`, else off.
    public var smtpAlert: Bool?
    public var delayLoop: Microseconds = 60_000_000
    public var scheduler = "wlc"
    public var schedulerSet = false
    public var method = ForwardingMethod.nat
    public var methodSet = false
    /// lb_kind TUN's encapsulation (`type ipip|gue port N|gre`, `nocsum|csum|remcsum`).
    public var tunnel = TunnelOptions()
    public var proto: TransportProtocol = .udp
    public var protoSet = false
    public var persistenceTimeout: Int = 0
    public var persistenceGranularity: String?
    public var persistenceEngine: String?
    public var quorum = 1
    public var hysteresis = 0
    public var quorumUp: ScriptCommand?
    public var quorumDown: ScriptCommand?
    public var sorryServer: (address: IPAddress, port: Int?)?
    public var sorryServerInhibit = false
    /// sorry_server_lvs_method: the sorry server's own forwarding (else the virtual server's).
    public var sorryMethod: ForwardingMethod?
    public var sorryTunnel: TunnelOptions?
    public var alpha = false
    public var omega = false
    public var inhibitOnFailure = false
    public var haSuspend = false
    public var virtualhost: String?
    public var connectTimeout: Microseconds?
    public var retry: Int?
    public var delayBeforeRetry: Microseconds?
    public var warmup: Microseconds?
    public var weight = 1
    public var flags: [String] = []
    public var realServers: [RealServer] = []
    /// Vigil's own `vigil_announce` lines.
    public var announcements: [RouteAnnouncementSettings] = []
    public var notActedOn: [String: SourceLocation] = [:]
}

/// keepalived's `lvs_sync_daemon IF [inst NAME] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`.
public struct LVSSyncDaemonSettings: Sendable, Equatable {
    public var interface: String
    /// With an instance the daemon follows it (master while it is MASTER, backup otherwise);
    /// without one both run for as long as Vigil does (active-active directors).
    public var instance: String?
    /// nil: the instance's VRID, or 0 without an instance (keepalived's default).
    public var syncID: Int?
    public var maxLength: Int?
    public var port: Int?
    public var ttl: Int?
    public var group: IPAddress?
    public var location: SourceLocation

    public init(interface: String, location: SourceLocation) {
        self.interface = interface
        self.location = location
    }
}

/// Vigil's own `vigil_announce [ADDRESS[/LEN]] [master NAME]` in a virtual_server: a host route
/// in the announce table while the service has quorum (and NAME, a vrrp_instance or
/// vrrp_sync_group, is MASTER), for FRR or BIRD to announce over BGP.
public struct RouteAnnouncementSettings: Sendable, Equatable {
    /// nil: the virtual server's own address(es) as host routes.
    public var address: IPAddress?
    public var prefixLength: Int?
    public var master: String?
    public var location: SourceLocation

    public init(address: IPAddress? = nil, prefixLength: Int? = nil, master: String? = nil, location: SourceLocation) {
        self.address = address
        self.prefixLength = prefixLength
        self.master = master
        self.location = location
    }
}

/// An instance's `use_vmac` line: its optional interface name and MAC. Without a MAC the
/// interface takes RFC 5798's 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
public struct VMACSettings: Sendable, Hashable {
    public var name: String?
    public var mac: [UInt8]?
    /// Five octets were written: the VRID is the sixth.
    public var macTakesVRID = false

    public init(name: String? = nil, mac: [UInt8]? = nil, macTakesVRID: Bool = false) {
        self.name = name
        self.mac = mac
        self.macTakesVRID = macTakesVRID
    }

    /// keepalived's dev_name_valid: what the kernel accepts as a link name.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count < 16, name != ".", name != ".." else { return false }
        return !name.contains { $0 == "/" || $0 == ":" || $0.isWhitespace }
    }

    /// Six octets of one or two hex digits, or five (with or without a trailing colon).
    public static func parseMAC(_ text: String) -> (octets: [UInt8], takesVRID: Bool)? {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 6, parts[5].isEmpty { parts.removeLast() }
        guard parts.count == 5 || parts.count == 6 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...2).contains(part.count), let value = UInt8(part, radix: 16) else { return nil }
            octets.append(value)
        }
        let takesVRID = octets.count == 5
        if takesVRID { octets.append(0) }
        return (octets, takesVRID)
    }
}

/// keepalived's `lvs_timeouts`, in seconds (0...31 days each).
public struct LVSTimeouts: Equatable, Sendable {
    public var tcp: UInt32?
    public var tcpFin: UInt32?
    public var udp: UInt32?
    public var location: SourceLocation

    public init(tcp: UInt32? = nil, tcpFin: UInt32? = nil, udp: UInt32? = nil, location: SourceLocation) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
        self.location = location
    }

    /// keepalived's LVS_MAX_TIMEOUT: 31 days.
    public static let maximum: UInt32 = 86_400 * 31
}

/// One line of `interface_up_down_delays`: `IFNAME DOWN_DELAY [UP_DELAY]` (seconds, 0...255).
public struct InterfaceDelays: Sendable, Equatable {
    public var interface: String
    public var down: Int64
    public var up: Int64
    public var location: SourceLocation
}

/// One line of `linkbeat_interfaces`.
public struct LinkbeatInterface: Sendable, Equatable {
    public var interface: String
    public var location: SourceLocation
}
