import Addressing
/// Checks that need the whole configuration: names that refer to other blocks, VRIDs that
/// collide, groups that overlap. Pure: the host is consulted separately (`HostChecks`).
enum CrossReferences {
    static func check(_ config: inout Configuration, _ diagnostics: inout DiagnosticSink) {
        let scriptNames = Set(config.scripts.filter { $0.script != nil }.map(\.name))
        let fileNames = Set(config.trackFiles.filter { $0.path != nil }.map(\.name))
        let processNames = Set(config.trackProcesses.filter { $0.process != nil }.map(\.name))
        // keepalived's words for a tracked file or process that is not defined; it carries on.
        func dropUndefined(_ tracked: inout [Tracked], known: Set<String>, _ what: String, owner: String) {
            tracked.removeAll { entry in
                guard !known.contains(entry.name) else { return false }
                diagnostics.warning(entry.location, "(\(owner)) \(what) \(entry.name) not found, ignoring...")
                return true
            }
        }
        for index in config.instances.indices {
            let name = config.instances[index].name
            dropUndefined(&config.instances[index].trackProcesses, known: processNames, "track process", owner: name)
            dropUndefined(&config.instances[index].trackFiles, known: fileNames, "track file", owner: name)
        }
        // keepalived's vrrp_complete_instance: the own interface is tracked already (unweighted).
        for index in config.instances.indices {
            let instance = config.instances[index]
            guard let own = instance.interface else { continue }
            config.instances[index].trackInterfaces.removeAll { tracked in
                guard tracked.name == own else { return false }
                diagnostics.warning(tracked.location, "(\(instance.name)) Ignoring track_interface \(own) since own interface")
                return true
            }
        }
        for index in config.instances.indices {
            let instance = config.instances[index]
            config.instances[index].trackScripts.removeAll { tracked in
                guard !scriptNames.contains(tracked.name) else { return false }
                diagnostics.error(tracked.location, "(\(instance.name)) track_script '\(tracked.name)' is not a defined vrrp_script (with a script): ignored",
                                  suggestion: nearest(tracked.name, in: scriptNames))
                return true
            }
        }

        // Two instances with the same VRID on the same link and family would fight each other.
        var vrids: [String: VRRPInstance] = [:]
        for instance in config.instances {
            guard let vrid = instance.virtualRouterID else { continue }
            let family = instance.virtualAddresses.first?.address.isV6 == true ? "6" : "4"
            let key = "\(instance.interface ?? "-")/\(family)/\(vrid)/\(instance.unicastPeers.map(\.address.description).joined(separator: ","))"
            if let other = vrids[key] {
                diagnostics.error(instance.location, "(\(instance.name)) virtual_router_id \(vrid) is already used on \(instance.interface ?? "this interface") by vrrp_instance \(other.name) (\(other.location))")
            } else {
                vrids[key] = instance
            }
        }

        let instanceNames = Set(config.instances.map(\.name))
        var owner: [String: String] = [:]
        for index in config.syncGroups.indices {
            let group = config.syncGroups[index]
            var kept: [(name: String, location: SourceLocation)] = []
            for member in group.members {
                if !instanceNames.contains(member.name) {
                    diagnostics.error(member.location, "vrrp_sync_group \(group.name): '\(member.name)' is not a vrrp_instance",
                                      suggestion: nearest(member.name, in: instanceNames))
                } else if let other = owner[member.name] {
                    diagnostics.error(member.location, "vrrp_sync_group \(group.name): \(member.name) is already in sync group \(other); an instance can be in one group only")
                } else {
                    owner[member.name] = group.name
                    kept.append(member)
                }
            }
            config.syncGroups[index].members = kept
            if kept.count == 1 {
                diagnostics.warning(group.location, "vrrp_sync_group \(group.name) has only one member: it synchronises nothing")
            } else if kept.isEmpty {
                diagnostics.warning(group.location, "vrrp_sync_group \(group.name) has no members: removed")
            }
            config.syncGroups[index].trackScripts.removeAll { tracked in
                guard !scriptNames.contains(tracked.name) else { return false }
                diagnostics.error(tracked.location, "vrrp_sync_group \(group.name): track_script '\(tracked.name)' is not a defined vrrp_script: ignored",
                                  suggestion: nearest(tracked.name, in: scriptNames))
                return true
            }
            dropUndefined(&config.syncGroups[index].trackFiles, known: fileNames, "track file", owner: group.name)
            dropUndefined(&config.syncGroups[index].trackProcesses, known: processNames, "track process", owner: group.name)
        }
        config.syncGroups.removeAll { $0.members.isEmpty }
        fixedPriorityTrackers(&config, &diagnostics)
        groupTrackers(&config, &diagnostics)
        debounceLimits(&config, &diagnostics)

        let groupNames = Set(config.virtualServerGroups.map(\.name))
        for vs in config.virtualServers {
            if case .group(let name) = vs.key, !groupNames.contains(name) {
                diagnostics.error(vs.location, "virtual_server group \(name): no virtual_server_group of that name",
                                  suggestion: nearest(name, in: groupNames))
            }
        }
        // keepalived's validate_check_config: a firewall mark has no address to look for.
        for index in config.virtualServers.indices where config.virtualServers[index].haSuspend {
            let vs = config.virtualServers[index]
            // The virtual server as keepalived's FMT_VS names it ("FWM 7", a group's "[name]:0"),
            // when it uses a firewall mark.
            let markedName: String?
            switch vs.key {
            case .fwmark(let mark): markedName = "FWM \(mark)"
            case .group(let name):
                let marked = config.virtualServerGroups.first { $0.name == name }?.entries.contains {
                    if case .fwmark = $0 { true } else { false }
                } ?? false
                markedName = marked ? "[\(name)]:0" : nil
            case .address: markedName = nil
            }
            if let markedName {
                diagnostics.error(vs.location, "Virtual server \(markedName): cannot use ha_suspend with fwmarks - clearing ha_suspend")
                config.virtualServers[index].haSuspend = false
            }
        }

        // Vigil's own route announcements: an unknown master would never be MASTER, so the
        // route would never go in; said here rather than found in production.
        let masterNames = instanceNames.union(config.syncGroups.map(\.name))
        for vsIndex in config.virtualServers.indices {
            config.virtualServers[vsIndex].announcements.removeAll { announcement in
                guard let master = announcement.master, !masterNames.contains(master) else { return false }
                diagnostics.error(announcement.location, "vigil_announce: master '\(master)' is neither a vrrp_instance nor a vrrp_sync_group: the route would never be announced",
                                  suggestion: nearest(master, in: masterNames))
                return true
            }
        }
        // keepalived's vrrp_complete_init: an unknown instance clears the whole setting.
        if let sync = config.globals.lvsSyncDaemon, let name = sync.instance, !instanceNames.contains(name) {
            diagnostics.error(sync.location, "Unable to find vrrp instance \(name) for lvs_syncd - clearing lvs_syncd config",
                              suggestion: nearest(name, in: instanceNames))
            config.globals.lvsSyncDaemon = nil
        }

        for instance in config.instances {
            if let source = instance.unicastSourceIP {
                for peer in instance.unicastPeers where peer.address.isV6 != source.isV6 {
                    diagnostics.error(instance.location, "(\(instance.name)) unicast_peer \(peer.address) is \(peer.address.family) but unicast_src_ip is \(source.family)")
                }
            }
        }
    }
}

extension CrossReferences {
    /// keepalived's vrrp_complete_instance: a sync group member (without
    /// sync_group_tracking_weight) and an address owner may not float their priority. A
    /// weighted interface is made unweighted (an owner stops tracking it), a weighted script is
    /// dropped, a file with the default weight 1 is made unweighted and one with another
    /// weight dropped; track_process is left as it is. keepalived's words.
    /// keepalived's check_debounce_timers: a link's delays must end before the master down
    /// timer of an instance on it would (down_timer_adverts - 1 advert intervals), so they are
    /// cut to just under that; with down_timer_adverts 1 there is no room and they are 0. The
    /// messages are keepalived's, shown by -t as notes (keepalived only logs them at start).
    static func debounceLimits(_ config: inout Configuration, _ diagnostics: inout DiagnosticSink) {
        guard !config.interfaceDelays.isEmpty else { return }
        for instance in config.instances {
            guard let name = instance.interface,
                  let index = config.interfaceDelays.firstIndex(where: { $0.interface == name }) else { continue }
            var delays = config.interfaceDelays[index]
            guard delays.up > 0 || delays.down > 0 else { continue }
            let adverts = Int64(instance.downTimerAdverts ?? config.globals.downTimerAdverts)
            if adverts <= 1 {
                diagnostics.warning(delays.location, "\(instance.name): cannot use debounce timers with down_timer_adverts = 1 - resetting", klass: .note)
                delays.up = 0
                delays.down = 0
            } else {
                let limit = (adverts - 1) * instance.advertInterval
                guard delays.up >= limit || delays.down >= limit else { continue }
                diagnostics.warning(delays.location, "\(instance.name): interface \(name) debounce timer(s) not less that \(adverts - 1) * advert_int - resetting", klass: .note)
                let cut = limit - instance.advertInterval / 256
                if delays.up >= limit { delays.up = cut }
                if delays.down >= limit { delays.down = cut }
            }
            config.interfaceDelays[index] = delays
        }
    }

    static func fixedPriorityTrackers(_ config: inout Configuration, _ diagnostics: inout DiagnosticSink) {
        var groupOf: [String: SyncGroup] = [:]
        for group in config.syncGroups { for member in group.members { groupOf[member.name] = group } }
        let scriptWeight = Dictionary(config.scripts.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        let fileWeight = Dictionary(config.trackFiles.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        for index in config.instances.indices {
            let i = config.instances[index]
            let inGroup = groupOf[i.name].map { !$0.trackingWeight } ?? false
            guard inGroup || i.effectivePriority == 255 else { continue }
            let why = inGroup ? "SYNC group" : "address_owner"
            config.instances[index].trackInterfaces = i.trackInterfaces.compactMap { tracked in
                guard let weight = tracked.weight, weight != 0 else { return tracked }
                diagnostics.warning(tracked.location, "(\(i.name)) ignoring \(tracked.name) tracked interface \(inGroup ? "weight " : "")due to \(inGroup ? "SYNC group" : "address owner")")
                guard inGroup else { return nil }
                var unweighted = tracked
                unweighted.weight = 0
                unweighted.reverse = false
                return unweighted
            }
            config.instances[index].trackScripts.removeAll { tracked in
                guard (tracked.weight ?? scriptWeight[tracked.name] ?? 0) != 0 else { return false }
                diagnostics.warning(tracked.location, "(\(i.name)) ignoring tracked script \(tracked.name) with weights due to \(why)")
                return true
            }
            config.instances[index].trackFiles = i.trackFiles.compactMap { tracked in
                let weight = tracked.weight ?? fileWeight[tracked.name] ?? 1
                if weight == 1 {
                    diagnostics.warning(tracked.location, "(\(i.name)) ignoring weight from tracked file \(tracked.name) due to \(why). specify weight 0")
                    var unweighted = tracked
                    unweighted.weight = 0
                    return unweighted
                }
                guard weight == 0 else {
                    diagnostics.warning(tracked.location, "(\(i.name)) ignoring tracked file \(tracked.name) with weight \(weight) due to \(why)")
                    return nil
                }
                return tracked
            }
        }
    }
}

extension CrossReferences {
    /// keepalived's sync_group_tracking_init: a group's trackers apply to every member with
    /// their own weights (sync_group_tracking_weight only concerns the members' own ones),
    /// cleared when a member owns its addresses; one the member tracks itself too is tracked
    /// once, unweighted if the member's was (its interface counts, unless dont_track_primary).
    /// keepalived's words; the interface one is a configuration error (`-t` exit 5).
    static func groupTrackers(_ config: inout Configuration, _ diagnostics: inout DiagnosticSink) {
        let scriptWeight = Dictionary(config.scripts.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        let fileWeight = Dictionary(config.trackFiles.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        let processWeight = Dictionary(config.trackProcesses.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        let instances = Dictionary(config.instances.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for index in config.syncGroups.indices {
            let group = config.syncGroups[index]
            let members = group.members.compactMap { instances[$0.name] }
            if members.contains(where: { $0.effectivePriority == 255 }) {
                func clear(_ list: WritableKeyPath<SyncGroup, [Tracked]>, _ defaults: [String: Int], _ what: String, _ action: String) {
                    config.syncGroups[index][keyPath: list] = group[keyPath: list].map { tracked in
                        guard (tracked.weight ?? defaults[tracked.name] ?? 0) != 0 else { return tracked }
                        diagnostics.warning(tracked.location, "(\(group.name)) Cannot have weighted track \(what) '\(tracked.name)' with member having priority 255 - \(action)")
                        var unweighted = tracked
                        unweighted.weight = 0
                        return unweighted
                    }
                }
                clear(\.trackScripts, scriptWeight, "script", "clearing weight")
                clear(\.trackFiles, fileWeight, "file", "setting weight 0")
                clear(\.trackProcesses, processWeight, "process", "setting weight 0")
                clear(\.trackInterfaces, [:], "interface", "clearing weight")
            }
            for member in members {
                let own = Set(member.trackInterfaces.map(\.name) + (member.dontTrackPrimary ? [] : [member.interface].compactMap { $0 }))
                for tracked in group.trackInterfaces where own.contains(tracked.name) {
                    diagnostics.warning(tracked.location, "(\(member.name)) track_interface \(tracked.name) is configured on VRRP instance and sync group. Remove vrrp instance or sync group config")
                }
                for (mine, theirs, what) in [(member.trackScripts, group.trackScripts, "track_script"), (member.trackFiles, group.trackFiles, "track_file")] {
                    let names = Set(mine.map(\.name))
                    for tracked in theirs where names.contains(tracked.name) {
                        diagnostics.warning(tracked.location, "(\(member.name)) \(what) \(tracked.name) is configured on VRRP instance and sync group. Remove vrrp instance config", klass: .note)
                    }
                }
            }
        }
    }
}

/// keepalived moves the VIPs one advert cannot hold to the excluded list: they are held by the
/// MASTER, not advertised. How many fit depends on the link's MTU (keepalived reads it from the
/// interface when it can, 1,500 otherwise): 255 IPv4 addresses on any usual link, 89 IPv6 ones
/// at 1,500 bytes, 83 at 1,400.
enum AdvertCapacity {
    static func fit(_ config: inout Configuration, mtu: (String) -> Int?, _ diagnostics: inout DiagnosticSink) {
        for index in config.instances.indices {
            let i = config.instances[index]
            let ipv6 = i.virtualAddresses.first?.address.isV6 == true
            let capacity = addresses(ipv6: ipv6, version: i.version ?? 2, ah: i.authType == .ah,
                                     mtu: i.interface.flatMap(mtu) ?? 1500)
            guard i.virtualAddresses.count > capacity else { continue }
            // keepalived's words and remedy.
            diagnostics.warning(i.location, "(\(i.name)) Number of VIPs (\(i.virtualAddresses.count)) exceeds maximum/space available in packet (max \(capacity) addresses) - excess moved to eVIPs")
            config.instances[index].excludedAddresses += i.virtualAddresses[capacity...]
            config.instances[index].virtualAddresses.removeLast(i.virtualAddresses.count - capacity)
        }
    }

    /// Ethernet, IP and VRRP headers, v2's authentication data and AH counted as keepalived counts them.
    static func addresses(ipv6: Bool, version: Int, ah: Bool, mtu: Int) -> Int {
        let header = 14 + 8 + (ipv6 ? 40 : 20 + (version == 2 ? 8 : 0) + (ah ? 24 : 0))
        return max(1, min(255, (mtu - header) / (ipv6 ? 16 : 4)))
    }
}
