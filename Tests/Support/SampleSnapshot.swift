import Addressing
import IPVS
import VRRP
import VigilStatus

/// A snapshot of one MASTER (shared by the status and metrics tests) with a password, two VIPs, a tracked script and a virtual server.
public func sampleSnapshot() -> StatusSnapshot {
    var snapshot = StatusSnapshot(version: "0.2.0", pid: 4242, startedAt: 1_796_083_200, takenAt: 1_796_083_265.5,
                                  configFile: "/etc/keepalived/keepalived.conf")
    var stats = VRRPStatistics()
    stats.advertsSent = 61
    stats.advertsReceived = 3
    stats.becameMaster = 1
    stats.authFailures = 2
    stats.receiveErrors = ["auth_failure": 2]
    stats.transitions = [.init(from: .initialize, to: .backup): 1, .init(from: .backup, to: .master): 1]
    let vip = VIPStatus(address: .v4(IPv4Address(10, 0, 0, 100)), prefixLength: 24, device: "eth0", label: "eth0:1",
                        broadcast: IPv4Address(10, 0, 0, 255), scope: 0, installed: true)
    let host = VIPStatus(address: .v4(IPv4Address(10, 0, 0, 101)), prefixLength: 32, device: "eth0", label: nil,
                         broadcast: nil, scope: 0, installed: true)
    snapshot.instances = [InstanceStatus(
        name: "VI_1", vrid: 51, interface: "eth0", family: .ipv4, version: .v2, state: .master, wantState: .master,
        basePriority: 150, effectivePriority: 140, source: .v4(IPv4Address(10, 0, 0, 1)), unicastPeers: [],
        masterAddress: .v4(IPv4Address(10, 0, 0, 1)), masterPriority: 140, advertInterval: 1, masterAdvertInterval: 1,
        nopreempt: false, preemptDelay: 0, garpDelay: 5, garpRepeat: 5, garpRefresh: 0, garpRefreshRepeat: 1,
        garpLowerPriorityDelay: 5, garpLowerPriorityRepeat: 5, lowerPriorityNoAdvert: false, higherPrioritySendAdvert: false,
        skipCheckAdvertAddresses: false, dontTrackPrimary: false, accept: true, authentication: "PASS", vips: [vip, host],
        trackers: [TrackerStatus(name: "script chk_nginx", weight: -10, up: false)],
        lastTransition: (time: 1_796_083_204.25, from: .backup, to: .master, reason: "masterNoResponse"),
        stats: stats, syncGroup: nil, notifyScripts: ["master": "/etc/keepalived/notify.sh MASTER"])]
    snapshot.trackScripts = [TrackScriptStatus(name: "chk_nginx", command: "/usr/bin/pgrep \"nginx\"", verdict: .down, running: false,
                                               successes: 4, failures: 1, timeouts: 0, lastDuration: 0.0125)]
    let key = IPVSServiceKey.address(.tcp, .v4(IPv4Address(10, 0, 0, 100)), port: 80)
    snapshot.virtualServers = [VirtualServerStatus(
        name: "10.0.0.100:tcp:80", services: [(key: key, traffic: IPVSStatistics(connections: 7, inPackets: 70, outPackets: 60,
                                                                                   inBytes: 7000, outBytes: 9000))],
        scheduler: "wlc", quorumUp: true, quorum: 1, hysteresis: 0, sorryServerActive: false,
        realServers: [RealServerStatus(address: .v4(IPv4Address(10, 0, 1, 1)), port: 80, name: "[10.0.1.1]:tcp:80", alive: true,
                                       configuredWeight: 3, currentWeight: 3,
                                       checks: [CheckStatus(kind: "TCP_CHECK", target: "10.0.1.1:80", up: true, lastResult: "connected",
                                                            lastCheckAt: 1_796_083_263, lastDuration: 0.0004, checks: 21)],
                                       traffic: nil)])]
    snapshot.ipvsTraffic = [key: IPVSServiceStatistics(
        service: IPVSStatistics(connections: 7, inPackets: 70, outPackets: 60, inBytes: 7000, outBytes: 9000),
        destinations: [IPVSDestinationKey(.v4(IPv4Address(10, 0, 1, 1)), port: 80):
                        IPVSStatistics(connections: 7, inPackets: 70, outPackets: 60, inBytes: 7000, outBytes: 9000)])]
    snapshot.reloads.applied = 1
    snapshot.reloads.last = (time: 1_796_083_230, result: "applied", summary: "reload applied: 1 instance changed")
    snapshot.reloads.lastSuccessAt = 1_796_083_230
    return snapshot
}

