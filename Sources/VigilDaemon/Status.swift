@preconcurrency import Glibc
import Addressing
import IPVS
import LVS
import TCPProbe
import VRRP
import VRRPSpecs
import VigilStatus
import VigilSystem

/// The version every interface reports (`vigil -v`, status, metrics).
public let vigilVersion = "0.2.0"

extension Daemon {
    /// What the daemon is doing right now, for `vigil status`, the metrics and keepalived's
    /// dumps. `traffic` adds the IPVS counters (one netlink dump); without `details` the
    /// per-check results and the real servers' display names are left out (the metrics need
    /// neither, and formatting them was most of a large scrape's own cost).
    public func statusSnapshot(traffic: Bool = true, details: Bool = true) -> StatusSnapshot {
        var snapshot = StatusSnapshot(version: vigilVersion, pid: getpid(), startedAt: startedAt,
                                      takenAt: system.clock.wallClock(), configFile: options.configPath)
        // RFC 5798 Accept_Mode as keepalived reports it: on unless no_accept or strict mode.
        let accept = Dictionary(configuration.instances.map { ($0.name, $0.acceptMode(strictByDefault: configuration.globals.vrrpStrict)) },
                                uniquingKeysWith: { a, _ in a })
        (snapshot.instances, snapshot.syncGroups) = vrrp.status(accept: { accept[$0] ?? true })
        snapshot.trackScripts = trackers.status(setup.trackScripts)
        if let checkers {
            (snapshot.ipvsAvailable, snapshot.virtualServers, snapshot.ipvsTraffic) = checkers.status(traffic: traffic, details: details)
        }
        snapshot.reloads = reloadCounts
        snapshot.unmatchedPackets = vrrp.unmatchedPackets.map { key, count in
            UnmatchedPackets(interface: key.interface, family: key.family == .ipv4 ? "inet" : "inet6", reason: key.reason, count: count)
        }.sorted { ($0.interface, $0.family, $0.reason) < ($1.interface, $1.family, $1.reason) }
        return snapshot
    }
}

extension VRRPHost {
    func status(accept: (String) -> Bool) -> ([InstanceStatus], [SyncGroupStatus]) {
        let instances = instances.map { i -> InstanceStatus in
            let m = i.machine
            let c = m.config
            func status(_ vip: VIPSpec) -> VIPStatus {
                VIPStatus(address: vip.address, prefixLength: vip.prefixLength, device: vip.device, label: vip.label,
                          broadcast: vip.broadcast, scope: vip.scope, installed: m.vipsAreSet && !i.vipsNotSet.contains(vip.address))
            }
            let vips = i.spec.virtualAddresses.map(status)
            var notify: [String: String] = [:]
            let n = i.spec.notify
            for (key, line) in [("master", n.master), ("backup", n.backup), ("fault", n.fault), ("stop", n.stop),
                                ("deleted", n.deleted), ("", n.generic), ("master_rx_lower_pri", n.masterRxLowerPriority)] {
                if let line { notify[key] = line.command }
            }
            let authentication: String
            if case .password = c.authentication { authentication = "PASS" } else { authentication = "none" }
            var instance = InstanceStatus(
                name: i.name, vrid: i.vrid, interface: i.spec.interface, family: i.spec.family, version: c.version,
                state: m.state, wantState: m.wantState, basePriority: m.basePriority, effectivePriority: m.effectivePriority,
                source: i.source, unicastPeers: i.spec.unicastPeers,
                masterAddress: m.state == .master ? i.source : m.masterAddress,
                masterPriority: m.state == .master ? m.effectivePriority : m.masterPriority,
                advertInterval: Double(c.advertInterval) / 1e6, masterAdvertInterval: Double(m.masterAdvertInterval) / 1e6,
                nopreempt: c.nopreempt, preemptDelay: Double(c.preemptDelay) / 1e6,
                garpDelay: Double(c.garp.masterDelay) / 1e6, garpRepeat: c.garp.masterRepeat,
                garpRefresh: Double(c.garp.masterRefresh) / 1e6, garpRefreshRepeat: c.garp.masterRefreshRepeat,
                garpLowerPriorityDelay: Double(c.garp.effectiveLowerPrioDelay) / 1e6, garpLowerPriorityRepeat: c.garp.effectiveLowerPrioRepeat,
                lowerPriorityNoAdvert: c.lowerPrioNoAdvert, higherPrioritySendAdvert: c.higherPrioSendAdvert,
                skipCheckAdvertAddresses: c.skipCheckAdvAddr,
                dontTrackPrimary: !i.spec.trackers.contains { $0.source == .interface(i.spec.interface) && !$0.fromGroup },
                accept: accept(i.name), authentication: authentication, vips: vips,
                trackers: m.trackers.map { TrackerStatus(name: $0.name, weight: $0.weight, up: $0.isUp) },
                lastTransition: i.lastTransition.map { ($0.time, $0.from, $0.to, $0.reason.rawValue) },
                stats: i.stats, syncGroup: i.group?.name, notifyScripts: notify)
            instance.excludedVIPs = i.spec.excludedAddresses.map(status)
            instance.vmacInterface = i.spec.vmac?.name
            return instance
        }
        let groups = groups.map { SyncGroupStatus(name: $0.name, state: $0.core.state, members: $0.members.map(\.name)) }
        return (instances, groups)
    }
}

extension CheckerHost {
    func status(traffic: Bool, details: Bool = true) -> (available: Bool, [VirtualServerStatus], [IPVSServiceKey: IPVSServiceStatistics]) {
        let counters = traffic ? statisticsForStatus() : [:]
        let weights = installedWeights
        var all: [VirtualServerStatus] = []
        for (v, vs) in controller.specs.enumerated() {
            let first = vs.services[0].key
            // Looked up once a virtual server, not once a real server (a scrape of 1,000).
            let installed = weights[first]
            let traffic = counters[first]?.destinations
            let reals = vs.realServers.enumerated().map { r, rs -> RealServerStatus in
                let checks = !details ? [] : rs.checkers.indices.map { c -> CheckStatus in
                    let id = controller.ids[v][r][c]
                    let record = records.indices.contains(id.slot) ? records[id.slot] : CheckRecord()
                    return CheckStatus(kind: rs.checkers[c].kind.rawValue, target: rs.checkers[c].target.description,
                                       up: controller.machines[id.slot].isUp, lastResult: record.result,
                                       lastCheckAt: record.finishedAt, lastDuration: record.duration.map { Double($0) / 1e6 },
                                       checks: record.count)
                }
                return RealServerStatus(address: rs.destination.key.address, port: rs.destination.key.port,
                                        name: details ? rs.destination.key.formatted(in: first) : "", alive: controller.servers[v][r].isAlive,
                                        configuredWeight: rs.destination.weight, currentWeight: installed?[rs.destination.key],
                                        checks: checks, traffic: traffic?[rs.destination.key])
            }
            let pool = controller.pools[v]
            all.append(VirtualServerStatus(
                name: vs.name, services: vs.services.map { ($0.key, counters[$0.key]?.service) }, scheduler: vs.services[0].scheduler,
                quorumUp: pool.isQuorumUp, quorum: vs.quorum, hysteresis: vs.hysteresis,
                sorryServerActive: pool.isSorryServerActive, realServers: reals))
        }
        return (isActive, all, counters)
    }

}
