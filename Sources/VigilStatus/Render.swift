import Addressing
import IPVS
import VRRP

/// keepalived's state numbers (include/vrrp.h), which its JSON and the exporters use.
public func keepalivedStateNumber(_ state: VRRPState) -> Int {
    switch state {
    case .initialize: 0
    case .backup: 1
    case .master: 2
    case .fault: 3
    case .stopped: 98
    }
}

/// keepalived's state names, as its logs, dumps and the exporters' `state` labels spell them.
public func stateName(_ state: VRRPState) -> String { state.rawValue }

private let scopeNames: [UInt8: String] = [0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"]

extension VIPStatus {
    /// keepalived's `format_ipaddress` string: `10.0.0.1/24 brd 10.0.0.255 dev eth0 scope global
    /// label eth0:1 set` (the exporters read the address and the device from it).
    public var keepalivedString: String {
        var text = addressText
        if let broadcast { text += " brd \(broadcast)" }
        text += " dev \(device) scope \(scopeNames[scope] ?? String(scope))"
        if let label { text += " label \(label)" }
        if installed { text += " set" }
        return text
    }
}

extension VRRPStatistics {
    /// keepalived's `stats` object, in its order and with its names.
    public var keepalivedFields: [(String, UInt64)] {
        [("advert_rcvd", advertsReceived), ("advert_sent", advertsSent), ("become_master", becameMaster),
         ("release_master", releasedMaster), ("packet_len_err", packetLengthErrors), ("advert_interval_err", advertIntervalErrors),
         ("ip_ttl_err", ttlErrors), ("invalid_type_rcvd", invalidTypeReceived), ("addr_list_err", addressListErrors),
         ("invalid_authtype", invalidAuthType), ("authtype_mismatch", authTypeMismatches), ("auth_failure", authFailures),
         ("pri_zero_rcvd", priorityZeroReceived), ("pri_zero_sent", priorityZeroSent)]
    }
}

private func json(_ stats: IPVSStatistics?) -> JSONValue {
    guard let s = stats else { return .null }
    return .object([("connections", .uint(s.connections)), ("in_packets", .uint(s.inPackets)), ("out_packets", .uint(s.outPackets)),
                    ("in_bytes", .uint(s.inBytes)), ("out_bytes", .uint(s.outBytes))])
}

/// `vigil status --json`: a versioned document. Instance objects use keepalived's JSON field
/// names where one exists (`iname`, `state` as its number, `effective_priority`, `vips`,
/// `last_transition`, `stats` with its 14 counters) and add Vigil's own beside them. Field
/// names and meanings of a version never change; new fields may be added.
public enum StatusDocument {
    public static let version = 1

    public static func render(_ s: StatusSnapshot, pretty: Bool = true) -> String {
        document(s).rendered(pretty: pretty) + "\n"
    }

    public static func document(_ s: StatusSnapshot) -> JSONValue {
        var reloads: [(String, JSONValue)] = [("applied", .int(s.reloads.applied)), ("unchanged", .int(s.reloads.unchanged)),
                                              ("refused", .int(s.reloads.refused))]
        if let last = s.reloads.last {
            reloads.append(("last", .object([("time", .double(last.time)), ("result", .string(last.result)), ("summary", .string(last.summary))])))
        }
        reloads.append(("last_success", .optional(s.reloads.lastSuccessAt)))
        return .object([
            ("vigil_status_version", .int(version)),
            ("vigil", .object([("version", .string(s.version)), ("pid", .int(s.pid)), ("started_at", .double(s.startedAt)),
                               ("taken_at", .double(s.takenAt)), ("config_file", .string(s.configFile)),
                               ("ipvs_available", .bool(s.ipvsAvailable)), ("reloads", .object(reloads))])),
            ("instances", .array(s.instances.map(instance))),
            ("sync_groups", .array(s.syncGroups.map { g in
                .object([("name", .string(g.name)), ("state", .int(keepalivedStateNumber(g.state))), ("state_name", .string(stateName(g.state))),
                         ("members", .array(g.members.map(JSONValue.string)))])
            })),
            ("track_scripts", .array(s.trackScripts.map { t in
                .object([("name", .string(t.name)), ("command", .string(t.command)), ("result", .string(t.verdict.rawValue)),
                         ("running", .bool(t.running)), ("successes", .uint(t.successes)), ("failures", .uint(t.failures)),
                         ("timeouts", .uint(t.timeouts)), ("last_duration", .optional(t.lastDuration))])
            })),
            ("virtual_servers", .array(s.virtualServers.map(virtualServer))),
        ])
    }

    static func instance(_ i: InstanceStatus) -> JSONValue {
        var stats: [(String, JSONValue)] = i.stats.keepalivedFields.map { ($0.0, .uint($0.1)) }
        stats.append(("receive_errors", .object(i.stats.receiveErrors.sorted { $0.key < $1.key }.map { ($0.key, .uint($0.value)) })))
        stats.append(("transitions", .array(i.stats.transitions.sorted { $0.key < $1.key }.map { t in
            .object([("from", .string(stateName(t.key.from))), ("to", .string(stateName(t.key.to))), ("count", .uint(t.value))])
        })))
        stats.append(("announcements_sent", .uint(i.stats.announcementsSent)))
        stats.append(("send_errors", .uint(i.stats.sendErrors)))
        stats.append(("vips_restored", .uint(i.stats.vipsRestored)))
        var fields: [(String, JSONValue)] = [
            ("iname", .string(i.name)), ("state", .int(keepalivedStateNumber(i.state))), ("state_name", .string(stateName(i.state))),
            ("wantstate", .int(keepalivedStateNumber(i.wantState))), ("vrid", .int(i.vrid)), ("ifp_ifname", .string(i.vmacInterface ?? i.interface)),
            ("vmac_ifname", .string(i.vmacInterface ?? "")), ("family", .string(i.family.description)), ("version", .int(i.version.rawValue)),
            ("base_priority", .int(i.basePriority)), ("effective_priority", .int(i.effectivePriority)),
            ("master_priority", i.masterPriority.map { .int($0) } ?? .null),
            ("master_address", .optional(i.masterAddress.map { "\($0)" })), ("source_address", .string("\(i.source)")),
            ("unicast_peers", .array(i.unicastPeers.map { .string("\($0)") })),
            ("adver_int", .double(i.advertInterval)), ("master_adver_int", .double(i.masterAdvertInterval)),
            ("nopreempt", .bool(i.nopreempt)), ("preempt_delay", .double(i.preemptDelay)),
            ("vipset", .bool(i.vips.contains { $0.installed })), ("vips", .array(i.vips.map { .string($0.keepalivedString) })),
            ("evips", .array(i.excludedVIPs.map { .string($0.keepalivedString) })),
            ("auth_type", .int(i.authentication == "PASS" ? 1 : 0)),
        ]
        if i.authentication == "PASS" { fields.append(("auth_data", .string("********"))) }
        fields += [
            ("last_transition", .optional(i.lastTransition?.time)),
            ("last_transition_from", .optional(i.lastTransition.map { stateName($0.from) })),
            ("last_transition_reason", .optional(i.lastTransition?.reason)),
            ("trackers", .array(i.trackers.map { .object([("name", .string($0.name)), ("weight", .int($0.weight)), ("up", .bool($0.up))]) })),
            ("sync_group", .optional(i.syncGroup)),
            ("stats", .object(stats)),
        ]
        return .object(fields)
    }

    static func virtualServer(_ v: VirtualServerStatus) -> JSONValue {
        .object([
            ("name", .string(v.name)),
            ("services", .array(v.services.map { .object([("service", .string($0.key.description)), ("traffic", json($0.traffic))]) })),
            ("scheduler", .string(v.scheduler)), ("quorum_up", .bool(v.quorumUp)), ("quorum", .int(v.quorum)),
            ("hysteresis", .int(v.hysteresis)), ("sorry_server_active", .bool(v.sorryServerActive)),
            ("real_servers", .array(v.realServers.map { r in
                .object([
                    ("name", .string(r.name)), ("address", .string("\(r.address)")), ("port", .int(r.port)), ("alive", .bool(r.alive)),
                    ("weight", .int(r.configuredWeight)), ("ipvs_weight", r.currentWeight.map { .int($0) } ?? .null),
                    ("checks", .array(r.checks.map { c in
                        .object([("kind", .string(c.kind)), ("target", .string(c.target)), ("up", .bool(c.up)),
                                 ("last_result", .optional(c.lastResult)), ("last_check_at", .optional(c.lastCheckAt)),
                                 ("last_duration", .optional(c.lastDuration)), ("checks", .uint(c.checks))])
                    })),
                    ("traffic", json(r.traffic)),
                ])
            })),
        ])
    }
}

/// `vigil status`: what a person reads.
public enum StatusTable {
    public static func render(_ s: StatusSnapshot) -> String {
        var out = "Vigil \(s.version), pid \(s.pid), up \(duration(s.takenAt - s.startedAt)), \(s.configFile)\n"
        var reload = "reloads: \(s.reloads.applied) applied, \(s.reloads.unchanged) unchanged, \(s.reloads.refused) refused"
        if let last = s.reloads.last { reload += " (last \(last.result), \(duration(s.takenAt - last.time)) ago)" }
        out += reload + "\n"
        if !s.instances.isEmpty {
            out += "\nVRRP instances\n"
            var rows = [["NAME", "STATE", "PRIORITY", "VRID", "INTERFACE", "MASTER", "VIPS", "LAST TRANSITION"]]
            for i in s.instances {
                let master: String
                if i.state == .master { master = "\(i.source) (this)" } else { master = i.masterAddress.map { "\($0)" } ?? "-" }
                let priority = i.basePriority == i.effectivePriority ? "\(i.basePriority)" : "\(i.basePriority)/\(i.effectivePriority)"
                let vips = i.vips.isEmpty ? "-" : i.vips.map { $0.addressText + ($0.installed ? "" : " (not set)") }.joined(separator: ", ")
                let last = i.lastTransition.map { "\(formatUTC($0.time)) \(stateName($0.from))->\(stateName($0.to)) (\($0.reason))" } ?? "-"
                rows.append([i.name, stateName(i.state), priority, "\(i.vrid)", i.interface, master, vips, last])
            }
            out += table(rows)
        }
        if !s.syncGroups.isEmpty {
            out += "\nSync groups\n"
            out += table([["NAME", "STATE", "MEMBERS"]] + s.syncGroups.map { [$0.name, stateName($0.state), $0.members.joined(separator: ", ")] })
        }
        if !s.trackScripts.isEmpty {
            out += "\nTrack scripts\n"
            out += table([["NAME", "RESULT", "RUNS OK/FAILED", "LAST RUN"]] + s.trackScripts.map {
                [$0.name, $0.verdict.rawValue, "\($0.successes)/\($0.failures + $0.timeouts)", $0.lastDuration.map(milliseconds) ?? "-"]
            })
        }
        if !s.virtualServers.isEmpty {
            out += "\nVirtual servers\(s.ipvsAvailable ? "" : " (IPVS is not available in this kernel: nothing installed)")\n"
            for v in s.virtualServers {
                let up = v.realServers.filter(\.alive).count
                out += "\(v.name) \(v.scheduler), quorum \(v.quorumUp ? "up" : "down")\(v.sorryServerActive ? ", sorry server active" : ""), \(up)/\(v.realServers.count) real servers up\n"
                var rows: [[String]] = []
                for r in v.realServers {
                    let weight = "weight \(r.configuredWeight)" + (r.currentWeight.map { $0 == r.configuredWeight ? "" : " (IPVS \($0))" } ?? " (not in IPVS)")
                    let check = r.checks.map { c in
                        let result = c.lastResult ?? "not checked yet"
                        let when = c.lastCheckAt.map { " \(duration(s.takenAt - $0)) ago" } ?? ""
                        return "\(c.kind) \(result)\(c.lastDuration.map { " in " + milliseconds($0) } ?? "")\(when)"
                    }.joined(separator: "; ")
                    rows.append(["  " + r.name, r.alive ? "UP" : "DOWN", weight, check.isEmpty ? "no checker" : check])
                }
                out += table(rows)
            }
        }
        return out
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86_400 { return "\(s / 3600) h \(s / 60 % 60) min" }
        return "\(s / 86_400) d \(s / 3600 % 24) h"
    }

    static func milliseconds(_ seconds: Double) -> String {
        let tenths = Int((seconds * 10_000).rounded())
        return "\(tenths / 10).\(tenths % 10) ms"
    }
}

/// keepalived's dump files, for the scripts and exporters written against them: the JSON dump
/// (SIGJSON, json_version 1), the stats file (SIGUSR2) and the data file (SIGUSR1), in the
/// formats keepalived 2.2.7 writes, the password masked.
public enum KeepalivedDumps {
    /// A top-level array, one `{"data": …, "stats": …}` per instance.
    public static func json(_ s: StatusSnapshot) -> String {
        let commands = Dictionary(s.trackScripts.map { ($0.name, $0.command) }, uniquingKeysWith: { a, _ in a })
        return JSONValue.array(s.instances.map { i in
            var data: [(String, JSONValue)] = [
                ("iname", .string(i.name)), ("dont_track_primary", .int(i.dontTrackPrimary ? 1 : 0)),
                ("skip_check_adv_addr", .int(i.skipCheckAdvertAddresses ? 1 : 0)), ("strict_mode", .int(0)),
                ("vmac_ifname", .string(i.vmacInterface ?? "")), ("ifp_ifname", .string(i.vmacInterface ?? i.interface)),
                ("master_priority", .int(i.masterPriority ?? 0)), ("last_transition", .double(i.lastTransition?.time ?? 0)),
                ("garp_delay", .double(i.garpDelay)), ("garp_refresh", .double(i.garpRefresh)), ("garp_rep", .int(i.garpRepeat)),
                ("garp_refresh_rep", .int(i.garpRefreshRepeat)), ("garp_lower_prio_delay", .double(i.garpLowerPriorityDelay)),
                ("garp_lower_prio_rep", .int(i.garpLowerPriorityRepeat)), ("lower_prio_no_advert", .int(i.lowerPriorityNoAdvert ? 1 : 0)),
                ("higher_prio_send_advert", .int(i.higherPrioritySendAdvert ? 1 : 0)), ("vrid", .int(i.vrid)),
                ("base_priority", .int(i.basePriority)), ("effective_priority", .int(i.effectivePriority)),
                ("vipset", .bool(i.vips.contains { $0.installed })), ("promote_secondaries", .bool(false)),
                ("adver_int", .double(i.advertInterval)), ("master_adver_int", .double(i.masterAdvertInterval)),
                ("accept", .int(i.accept ? 1 : 0)),
                ("nopreempt", .bool(i.nopreempt)), ("preempt_delay", .double(i.preemptDelay)),
                ("state", .int(keepalivedStateNumber(i.state))), ("wantstate", .int(keepalivedStateNumber(i.wantState))),
                ("version", .int(i.version.rawValue)), ("smtp_alert", .bool(false)), ("notify_deleted", .bool(i.notifyScripts["deleted"] != nil)),
            ]
            for (state, key) in [("backup", "script_backup"), ("master", "script_master"), ("fault", "script_fault"), ("stop", "script_stop"),
                                 ("deleted", "script_deleted"), ("", "script"), ("master_rx_lower_pri", "script_master_rx_lower_pri")] {
                if let command = i.notifyScripts[state] { data.append((key, .string(command))) }
            }
            if !i.vips.isEmpty { data.append(("vips", .array(i.vips.map { .string($0.keepalivedString) }))) }
            if !i.excludedVIPs.isEmpty { data.append(("evips", .array(i.excludedVIPs.map { .string($0.keepalivedString) }))) }
            // keepalived lists the track_interface entries, not the instance's own interface.
            let interfaces = i.trackers.compactMap { $0.name.hasPrefix("interface ") ? String($0.name.dropFirst(10)) : nil }
                .filter { $0 != i.interface }
            if !interfaces.isEmpty { data.append(("track_ifp", .array(interfaces.map(JSONValue.string)))) }
            let scripts = i.trackers.compactMap { $0.name.hasPrefix("script ") ? commands[String($0.name.dropFirst(7))] : nil }
            if !scripts.isEmpty { data.append(("track_script", .array(scripts.map { .string(keepalivedCommand($0)) }))) }
            data.append(("auth_type", .int(i.authentication == "PASS" ? 1 : 0)))
            if i.authentication == "PASS" { data.append(("auth_data", .string("********"))) }
            return .object([("data", .object(data)), ("stats", .object(i.stats.keepalivedFields.map { ($0.0, .uint($0.1)) }))])
        }).rendered() + "\n"
    }

    /// `/tmp/keepalived.stats`.
    public static func stats(_ s: StatusSnapshot) -> String {
        var out = ""
        for i in s.instances {
            let t = i.stats
            out += """
            VRRP Instance: \(i.name)
              Advertisements:
                Received: \(t.advertsReceived)
                Sent: \(t.advertsSent)
              Became master: \(t.becameMaster)
              Released master: \(t.releasedMaster)
              Packet Errors:
                Length: \(t.packetLengthErrors)
                TTL: \(t.ttlErrors)
                Invalid Type: \(t.invalidTypeReceived)
                Advertisement Interval: \(t.advertIntervalErrors)
                Address List: \(t.addressListErrors)
              Authentication Errors:
                Invalid Type: \(t.invalidAuthType)
                Type Mismatch: \(t.authTypeMismatches)
                Failure: \(t.authFailures)
              Priority Zero:
                Received: \(t.priorityZeroReceived)
                Sent: \(t.priorityZeroSent)

            """
        }
        return out
    }

    /// `/tmp/keepalived.data`: the parts of keepalived's `dump_data_vrrp` that scripts and
    /// the text-mode exporter read (per instance state, interface, VRID, priorities, VIPs;
    /// per script status and state). keepalived's man page itself calls the format unstable.
    public static func data(_ s: StatusSnapshot) -> String {
        var out = "------< VRRP Topology >------\n"
        for i in s.instances {
            out += " VRRP Instance = \(i.name)\n"
            out += "   VRRP Version = \(i.version.rawValue)\n"
            out += "   State = \(stateName(i.state))\n"
            if i.state == .backup, let master = i.masterAddress {
                out += "   Master router = \(master)\n"
                out += "   Master priority = \(i.masterPriority ?? 0)\n"
            }
            out += "   Wantstate = \(stateName(i.wantState))\n"
            if let t = i.lastTransition { out += "   Last transition = \(fixed6(t.time)) (\(formatCTime(t.time)))\n" }
            out += "   Interface = \(i.interface)\n"
            out += "   Using src_ip = \(i.source)\n"
            if i.unicastPeers.isEmpty {
                out += "   Multicast address \(i.family == .ipv4 ? "224.0.0.18" : "ff02::12")\n"
            } else {
                out += "   Unicast Peer :\n" + i.unicastPeers.map { "     \($0)\n" }.joined()
            }
            out += "   Gratuitous ARP delay = \(Int(i.garpDelay))\n"
            out += "   Gratuitous ARP repeat = \(i.garpRepeat)\n"
            out += "   Gratuitous ARP refresh = \(Int(i.garpRefresh))\n"
            out += "   Gratuitous ARP refresh repeat = \(i.garpRefreshRepeat)\n"
            out += "   Gratuitous ARP lower priority delay = \(Int(i.garpLowerPriorityDelay))\n"
            out += "   Gratuitous ARP lower priority repeat = \(i.garpLowerPriorityRepeat)\n"
            out += "   Virtual Router ID = \(i.vrid)\n"
            out += "   Priority = \(i.basePriority)\n"
            out += "   Effective priority = \(i.effectivePriority)\n"
            out += i.version == .v2 ? "   Advert interval = \(Int(i.advertInterval.rounded())) sec\n"
                                    : "   Advert interval = \(Int((i.advertInterval * 1000).rounded())) milli-sec\n"
            out += "   Accept = \(i.accept ? "enabled" : "disabled")\n"
            out += "   Preempt = \(i.nopreempt ? "disabled" : "enabled")\n"
            out += "   Promote_secondaries = disabled\n"
            out += "   Authentication type = \(i.authentication == "PASS" ? "SIMPLE_PASSWORD" : "none")\n"
            if i.authentication == "PASS" { out += "   Password = ********\n" }
            if !i.vips.isEmpty {
                out += "   Virtual IP (\(i.vips.count)):\n"
                for vip in i.vips { out += "     \(vip.keepalivedString)\n" }
            }
            if !i.excludedVIPs.isEmpty {
                out += "   Virtual IP Excluded :\n"
                for vip in i.excludedVIPs { out += "     \(vip.keepalivedString)\n" }
            }
            let scripts = i.trackers.filter { $0.name.hasPrefix("script ") }
            if !scripts.isEmpty {
                out += "   Tracked scripts :\n"
                for t in scripts { out += "     \(t.name.dropFirst(7)) weight \(t.weight)\n" }
            }
        }
        if !s.trackScripts.isEmpty {
            out += "------< VRRP Scripts >------\n"
            for t in s.trackScripts {
                out += " VRRP Script = \(t.name)\n"
                out += "   Command = \(keepalivedCommand(t.command))\n"
                out += "   Status = \(t.verdict == .up ? "GOOD" : "BAD")\n"
                out += "   State = \(t.running ? "running" : "idle")\n"
            }
        }
        return out
    }

    /// keepalived's `cmd_str`: every word of the command line in single quotes.
    static func keepalivedCommand(_ command: String) -> String {
        command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { "'\($0)'" }.joined(separator: " ")
    }

    static func fixed6(_ v: Double) -> String {
        let micro = Int64((v * 1e6).rounded())
        let fraction = String(micro % 1_000_000)
        return "\(micro / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}
