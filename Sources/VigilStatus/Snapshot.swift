// What a running daemon is doing, as plain values: built by the daemon on request and rendered
// here (a table, Vigil's JSON document, keepalived's dumps) without touching the daemon again.
import Addressing
import IPVS
import VRRP

/// The whole daemon at one moment.
public struct StatusSnapshot: Sendable {
    public var version: String
    public var pid: Int32
    /// Seconds since the epoch.
    public var startedAt: Double
    public var takenAt: Double
    public var configFile: String
    public var instances: [InstanceStatus] = []
    public var syncGroups: [SyncGroupStatus] = []
    public var trackScripts: [TrackScriptStatus] = []
    /// nil without virtual servers; `ipvsAvailable` false when the kernel has no IPVS.
    public var virtualServers: [VirtualServerStatus] = []
    public var ipvsAvailable: Bool = true
    /// The kernel's counters of every IPVS service and destination, as read for this snapshot.
    public var ipvsTraffic: [IPVSServiceKey: IPVSServiceStatistics] = [:]
    public var reloads = ReloadCounts()
    /// VRRP packets no instance could be given, by interface and reason ("truncated",
    /// "unknown_vrid"); with the instances' receive errors they account for every packet read.
    public var unmatchedPackets: [UnmatchedPackets] = []

    public init(version: String, pid: Int32, startedAt: Double, takenAt: Double, configFile: String) {
        self.version = version
        self.pid = pid
        self.startedAt = startedAt
        self.takenAt = takenAt
        self.configFile = configFile
    }
}

public struct ReloadCounts: Sendable {
    public var applied = 0
    public var unchanged = 0
    public var refused = 0
    /// The last reload: when (epoch seconds), its result and its log line.
    public var last: (time: Double, result: String, summary: String)?
    /// The last reload that applied or found nothing to change.
    public var lastSuccessAt: Double?
    public init() {}
}

public struct VIPStatus: Sendable {
    public var address: IPAddress
    public var prefixLength: UInt8
    public var device: String
    public var label: String?
    public var broadcast: IPv4Address?
    public var scope: UInt8
    /// On the interface right now (keepalived's "set").
    public var installed: Bool
    public init(address: IPAddress, prefixLength: UInt8, device: String, label: String?, broadcast: IPv4Address?, scope: UInt8, installed: Bool) {
        self.address = address
        self.prefixLength = prefixLength
        self.device = device
        self.label = label
        self.broadcast = broadcast
        self.scope = scope
        self.installed = installed
    }

    /// `10.0.0.1/24`, or the bare address for a host prefix: what keepalived's VIP strings and
    /// the exporters' `ip_address` label show.
    public var addressText: String {
        prefixLength == UInt8(address.maxPrefixLength) ? "\(address)" : "\(address)/\(prefixLength)"
    }
}

public struct TrackerStatus: Sendable {
    public var name: String
    public var weight: Int
    public var up: Bool
    public init(name: String, weight: Int, up: Bool) {
        self.name = name
        self.weight = weight
        self.up = up
    }
}

public struct InstanceStatus: Sendable {
    public var name: String
    public var vrid: UInt8
    public var interface: String
    /// use_vmac: the macvlan the instance lives on.
    public var vmacInterface: String?
    public var family: AddressFamily
    public var version: VRRPVersion
    public var state: VRRPState
    public var wantState: VRRPState
    public var basePriority: UInt8
    public var effectivePriority: UInt8
    public var source: IPAddress
    public var unicastPeers: [IPAddress]
    /// The master as this instance last heard it (itself when MASTER).
    public var masterAddress: IPAddress?
    public var masterPriority: UInt8?
    public var advertInterval: Double
    public var masterAdvertInterval: Double
    public var nopreempt: Bool
    public var preemptDelay: Double
    public var garpDelay: Double
    public var garpRepeat: Int
    public var garpRefresh: Double
    public var garpRefreshRepeat: Int
    public var garpLowerPriorityDelay: Double
    public var garpLowerPriorityRepeat: Int
    public var lowerPriorityNoAdvert: Bool
    public var higherPrioritySendAdvert: Bool
    public var skipCheckAdvertAddresses: Bool
    public var dontTrackPrimary: Bool
    /// RFC 5798 Accept_Mode as configured (`accept`/`no_accept`; keepalived's default is on
    /// unless strict_mode). Vigil installs no filter either way; it is reported as keepalived does.
    public var accept: Bool
    /// "none" or "PASS"; the password itself is never part of a snapshot.
    public var authentication: String
    public var vips: [VIPStatus]
    /// keepalived's eVIPs: held with the VIPs, not advertised.
    public var excludedVIPs: [VIPStatus] = []
    public var trackers: [TrackerStatus]
    public var lastTransition: (time: Double, from: VRRPState, to: VRRPState, reason: String)?
    public var stats: VRRPStatistics
    public var syncGroup: String?
    /// keepalived's script_* fields: the notify command lines, by state ("master", …, "" for `notify`).
    public var notifyScripts: [String: String]

    public init(name: String, vrid: UInt8, interface: String, family: AddressFamily, version: VRRPVersion, state: VRRPState,
                wantState: VRRPState, basePriority: UInt8, effectivePriority: UInt8, source: IPAddress, unicastPeers: [IPAddress],
                masterAddress: IPAddress?, masterPriority: UInt8?, advertInterval: Double, masterAdvertInterval: Double,
                nopreempt: Bool, preemptDelay: Double, garpDelay: Double, garpRepeat: Int, garpRefresh: Double,
                garpRefreshRepeat: Int, garpLowerPriorityDelay: Double, garpLowerPriorityRepeat: Int,
                lowerPriorityNoAdvert: Bool, higherPrioritySendAdvert: Bool, skipCheckAdvertAddresses: Bool,
                dontTrackPrimary: Bool, accept: Bool, authentication: String, vips: [VIPStatus], trackers: [TrackerStatus],
                lastTransition: (time: Double, from: VRRPState, to: VRRPState, reason: String)?, stats: VRRPStatistics,
                syncGroup: String?, notifyScripts: [String: String]) {
        self.name = name
        self.vrid = vrid
        self.interface = interface
        self.family = family
        self.version = version
        self.state = state
        self.wantState = wantState
        self.basePriority = basePriority
        self.effectivePriority = effectivePriority
        self.source = source
        self.unicastPeers = unicastPeers
        self.masterAddress = masterAddress
        self.masterPriority = masterPriority
        self.advertInterval = advertInterval
        self.masterAdvertInterval = masterAdvertInterval
        self.nopreempt = nopreempt
        self.preemptDelay = preemptDelay
        self.garpDelay = garpDelay
        self.garpRepeat = garpRepeat
        self.garpRefresh = garpRefresh
        self.garpRefreshRepeat = garpRefreshRepeat
        self.garpLowerPriorityDelay = garpLowerPriorityDelay
        self.garpLowerPriorityRepeat = garpLowerPriorityRepeat
        self.lowerPriorityNoAdvert = lowerPriorityNoAdvert
        self.higherPrioritySendAdvert = higherPrioritySendAdvert
        self.skipCheckAdvertAddresses = skipCheckAdvertAddresses
        self.dontTrackPrimary = dontTrackPrimary
        self.accept = accept
        self.authentication = authentication
        self.vips = vips
        self.trackers = trackers
        self.lastTransition = lastTransition
        self.stats = stats
        self.syncGroup = syncGroup
        self.notifyScripts = notifyScripts
    }
}

public struct SyncGroupStatus: Sendable {
    public var name: String
    public var state: VRRPState
    public var members: [String]
    public init(name: String, state: VRRPState, members: [String]) {
        self.name = name
        self.state = state
        self.members = members
    }
}

public struct TrackScriptStatus: Sendable {
    public enum Verdict: String, Sendable { case up, down, pending, disabled }
    public var name: String
    public var command: String
    public var verdict: Verdict
    public var running: Bool
    public var successes: UInt64
    public var failures: UInt64
    public var timeouts: UInt64
    /// The last run's duration, seconds.
    public var lastDuration: Double?
    public init(name: String, command: String, verdict: Verdict, running: Bool, successes: UInt64, failures: UInt64,
                timeouts: UInt64, lastDuration: Double?) {
        self.name = name
        self.command = command
        self.verdict = verdict
        self.running = running
        self.successes = successes
        self.failures = failures
        self.timeouts = timeouts
        self.lastDuration = lastDuration
    }
}

/// One health check's last result.
public struct CheckStatus: Sendable {
    public var kind: String
    public var target: String
    public var up: Bool
    /// "connected", "refused: …", "timed out", "not run: …"; nil before the first check.
    public var lastResult: String?
    public var lastCheckAt: Double?
    /// Seconds.
    public var lastDuration: Double?
    public var checks: UInt64
    public init(kind: String, target: String, up: Bool, lastResult: String?, lastCheckAt: Double?, lastDuration: Double?, checks: UInt64) {
        self.kind = kind
        self.target = target
        self.up = up
        self.lastResult = lastResult
        self.lastCheckAt = lastCheckAt
        self.lastDuration = lastDuration
        self.checks = checks
    }
}

public struct RealServerStatus: Sendable {
    public var address: IPAddress
    public var port: UInt16
    /// keepalived's FMT_RS: `[10.0.1.1]:tcp:80`.
    public var name: String
    public var alive: Bool
    public var configuredWeight: Int32
    /// The weight IPVS has now; nil when the server is not in the table.
    public var currentWeight: Int32?
    public var checks: [CheckStatus]
    public var traffic: IPVSStatistics?
    public init(address: IPAddress, port: UInt16, name: String, alive: Bool, configuredWeight: Int32, currentWeight: Int32?,
                checks: [CheckStatus], traffic: IPVSStatistics?) {
        self.address = address
        self.port = port
        self.name = name
        self.alive = alive
        self.configuredWeight = configuredWeight
        self.currentWeight = currentWeight
        self.checks = checks
        self.traffic = traffic
    }
}

public struct VirtualServerStatus: Sendable {
    /// keepalived's FMT_VS of the first service.
    public var name: String
    /// Every IPVS service of it (several for a group), with its counters.
    public var services: [(key: IPVSServiceKey, traffic: IPVSStatistics?)]
    public var scheduler: String
    public var quorumUp: Bool
    public var quorum: Int
    public var hysteresis: Int
    public var sorryServerActive: Bool
    public var realServers: [RealServerStatus]
    public init(name: String, services: [(key: IPVSServiceKey, traffic: IPVSStatistics?)], scheduler: String, quorumUp: Bool,
                quorum: Int, hysteresis: Int, sorryServerActive: Bool, realServers: [RealServerStatus]) {
        self.name = name
        self.services = services
        self.scheduler = scheduler
        self.quorumUp = quorumUp
        self.quorum = quorum
        self.hysteresis = hysteresis
        self.sorryServerActive = sorryServerActive
        self.realServers = realServers
    }
}

public struct UnmatchedPackets: Sendable, Hashable {
    public var interface: String
    /// "inet" or "inet6", as keepalived-exporter names families.
    public var family: String
    public var reason: String
    public var count: UInt64

    public init(interface: String, family: String, reason: String, count: UInt64) {
        self.interface = interface
        self.family = family
        self.reason = reason
        self.count = count
    }
}
