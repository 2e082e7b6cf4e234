import Addressing
import VRRP
import VigilConfig
import Tracking

/// From the configuration model to `VRRPSetup`. Pure: the same file always gives the same
/// setup, which is what lets a reload compare two of them value by value.
public enum VRRPSetupBuilder {
    /// `problems` are instances that cannot run at all; the daemon refuses a configuration
    /// (at start or on reload) that has any.
    /// Where keepalived's alert mails go (VRRP's and the checkers'); nil without a server
    /// or without a recipient, as keepalived then sends nothing.
    public static func mailSettings(_ g: GlobalDefs) -> MailSettings? {
        guard let server = g.smtpServerAddress ?? g.smtpServer.flatMap({ IPAddress($0) }), !g.notificationEmail.isEmpty else { return nil }
        return MailSettings(server: server, port: UInt16(clamping: g.smtpPort), to: g.notificationEmail,
                            from: g.notificationEmailFrom, helo: g.smtpHeloName, routerID: g.routerID,
                            timeout: max(g.smtpConnectTimeout, 1_000_000), noEmailFaults: g.noEmailFaults)
    }

    public static func build(_ config: Configuration) -> (setup: VRRPSetup, problems: [SpecProblem]) {
        var setup = VRRPSetup()
        setup.startupDelay = config.globals.startupDelay
        setup.logUnknownVRIDs = config.globals.logUnknownVRIDs
        setup.disableLocalIGMP = config.globals.disableLocalIGMP
        setup.dynamicInterfaces = config.globals.dynamicInterfaces
        for delays in config.interfaceDelays { setup.linkDelays[delays.interface] = LinkDebounce.Delays(down: delays.down, up: delays.up) }
        setup.mail = mailSettings(config.globals)
        setup.garpInterval = config.globals.garpInterval
        setup.gnaInterval = config.globals.gnaInterval
        setup.staticAddresses = config.staticAddresses.map { vipSpec($0, instanceInterface: config.globals.defaultInterface) }
        setup.staticRoutes = config.staticRoutes.compactMap(\.route)
        setup.staticRules = config.staticRules.compactMap(\.rule)
        var problems: [SpecProblem] = []
        let groupOf: [String: SyncGroup] = Dictionary(
            config.syncGroups.flatMap { g in g.members.map { ($0.name, g) } }, uniquingKeysWith: { first, _ in first })
        let scriptsByName = Dictionary(config.scripts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let filesByName = Dictionary(config.trackFiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let processesByName = Dictionary(config.trackProcesses.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var tracked = Set<String>()
        var trackedFiles = Set<String>()
        var trackedProcesses = Set<String>()
        var vmacNames = Set(config.instances.compactMap { $0.vmac?.name })
        for model in config.instances {
            do {
                let spec = try instance(model, group: groupOf[model.name], scripts: scriptsByName, files: filesByName,
                                        processes: processesByName, globals: config.globals, vmacNames: &vmacNames)
                for rule in spec.trackers {
                    if case .script(let name) = rule.source { tracked.insert(name) }
                    if case .file(let name) = rule.source { trackedFiles.insert(name) }
                    if case .process(let name) = rule.source { trackedProcesses.insert(name) }
                }
                setup.instances.append(spec)
            } catch {
                problems.append(error)
            }
        }
        let running = Set(setup.instances.map(\.name))
        for group in config.syncGroups {
            var groupSpec = SyncGroupSpec(name: group.name, members: group.members.map(\.name).filter { running.contains($0) },
                                          notify: NotifyCommands(group.notify))
            groupSpec.smtpAlert = group.smtpAlert ?? config.globals.smtpAlertVRRP ?? config.globals.smtpAlert ?? false
            setup.groups.append(groupSpec)
        }
        for script in config.scripts where tracked.contains(script.name) {
            guard let command = script.script else { continue }
            setup.trackScripts.append(TrackScriptSpec(
                name: script.name, line: ScriptLine(command: command.command, user: script.user?.user, group: script.user?.group),
                program: command.program, interval: script.interval, timeout: script.timeout,
                rise: script.rise, fall: script.fall, initFail: script.initFail))
        }
        for p in config.trackProcesses where trackedProcesses.contains(p.name) {
            guard let process = p.process, !setup.trackProcesses.contains(where: { $0.name == p.name }) else { continue }
            let match: ProcessPattern.ParameterMatch = switch p.parameterMatch {
            case .none: .none
            case .exact: .exact
            case .partial: .partial
            case .initial: .initial
            }
            setup.trackProcesses.append(TrackProcessSpec(
                name: p.name, pattern: ProcessPattern(process: process, parameters: p.parameters, parameterMatch: match, fullCommand: p.fullCommand),
                quorum: p.quorum, quorumMax: p.quorumMax, forkDelay: p.forkDelay, terminateDelay: p.terminateDelay))
        }
        for file in config.trackFiles where trackedFiles.contains(file.name) {
            guard let path = file.path, !setup.trackFiles.contains(where: { $0.name == file.name }) else { continue }
            setup.trackFiles.append(TrackFileSpec(name: file.name, path: path, initValue: file.initValue, initOverwrite: file.initOverwrite))
        }
        setup.polledLinks = Set(config.linkbeatInterfaces.map(\.interface))
        for instance in config.instances where instance.linkbeatUsePolling || config.globals.linkbeatUsePolling {
            if let name = instance.interface { setup.polledLinks.insert(name) }
        }
        // garp_extra_if: the instance's, else the global's; off without a link it would use
        // (keepalived's use_extra_vmac / use_extra_if).
        let madeVMACs = Set(setup.instances.compactMap { $0.vmac?.name })
        let configured = Dictionary(config.instances.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, instance) in setup.instances.enumerated() {
            guard let source = configured[instance.name] else { continue }
            let seconds = source.garpExtraInterval ?? config.globals.garpExtraInterval
            let all = source.garpExtraInterval != nil ? source.garpExtraAll : config.globals.garpExtraAll
            let devices = Set((instance.virtualAddresses + instance.excludedAddresses).map(\.device))
            let others = devices.subtracting([instance.addressInterface])
            var used = all ? others : others.intersection(madeVMACs)
            guard seconds > 0, !used.isEmpty else { continue }
            if instance.vmac?.transmitOnParent == true, devices.contains(instance.addressInterface) { used.insert(instance.addressInterface) }
            setup.instances[index].extraAnnouncementInterval = Int64(seconds) * 1_000_000
            setup.instances[index].extraAnnouncementDevices = used
        }
        // keepalived: a VMAC uses the same up/down delays as its parent interface.
        for instance in setup.instances {
            if let vmac = instance.vmac, let parent = setup.linkDelays[instance.interface] { setup.linkDelays[vmac.name] = parent }
        }
        return (setup, problems)
    }

    static func instance(_ i: VRRPInstance, group: SyncGroup?, scripts: [String: VRRPScript], files: [String: TrackFile] = [:],
                         processes: [String: TrackProcess] = [:],
                         globals: GlobalDefs, vmacNames: inout Set<String>) throws(SpecProblem) -> InstanceSpec {
        guard let interface = i.interface else { throw SpecProblem(i.location, "(\(i.name)) has no interface") }
        guard let vrid = i.virtualRouterID else { throw SpecProblem(i.location, "(\(i.name)) has no virtual_router_id") }
        let families = Set(i.virtualAddresses.map { $0.address.family })
        guard families.count <= 1 else {
            throw SpecProblem(i.location, "(\(i.name)) mixes IPv4 and IPv6 virtual addresses; use one instance per family")
        }
        // keepalived takes the family of the first VIP (IPv4 without any).
        let family = families.first ?? (i.nativeIPv6 ? .ipv6 : .ipv4)
        let authentication: VRRPAuthentication
        switch i.authType {
        case .none: authentication = .none
        case .pass: authentication = .password(i.authPass ?? "")
        case .ah: authentication = family == .ipv4 ? .ah(i.authPass ?? "") : .none
        }
        let configuredSource = i.unicastSourceIP ?? i.mcastSourceIP
        if let source = configuredSource, source.family != family {
            throw SpecProblem(i.location, "(\(i.name)) advert source \(source) is \(source.family) but the virtual addresses are \(family)")
        }
        let peers = i.unicastPeers.map(\.address).filter { $0.family == family }
        let transport: InstanceIdentity.Transport = peers.isEmpty
            ? .multicast(group: i.multicastDestination ?? (family == .ipv4 ? globals.vrrpMcastGroup4 : globals.vrrpMcastGroup6))
            : .unicast(source: i.unicastSourceIP)
        var vmac: VMACSpec?
        if let settings = i.vmac {
            let name = settings.name ?? VMACSpec.defaultName(prefix: globals.vmacPrefix ?? "vrrp", vrid: UInt8(clamping: vrid),
                                                             family: family, taken: vmacNames)
            vmacNames.insert(name)
            var mac = settings.mac ?? VMACSpec.virtualMAC(vrid: UInt8(clamping: vrid), family: family)
            if settings.macTakesVRID { mac[5] = UInt8(clamping: vrid) }
            vmac = VMACSpec(name: name, parent: interface, mac: mac, transmitOnParent: i.vmacTransmitOnParent)
        }
        let identity = InstanceIdentity(vrid: UInt8(clamping: vrid), family: family, interface: interface, transport: transport,
                                        vmacName: vmac?.name)
        let addressInterface = vmac?.name ?? interface

        let vips = i.virtualAddresses.map { vipSpec($0, instanceInterface: addressInterface) }
        let excluded = i.excludedAddresses.map { vipSpec($0, instanceInterface: addressInterface) }

        let defaults = GARPSettings()
        var garp = VRRPGARPConfig()
        garp.masterDelay = i.garp.masterDelay != defaults.masterDelay ? i.garp.masterDelay : globals.garp.masterDelay
        garp.masterRepeat = i.garp.masterRepeat != defaults.masterRepeat ? i.garp.masterRepeat : globals.garp.masterRepeat
        garp.masterRefresh = i.garp.masterRefresh != defaults.masterRefresh ? i.garp.masterRefresh : globals.garp.masterRefresh
        garp.masterRefreshRepeat = i.garp.masterRefreshRepeat != defaults.masterRefreshRepeat ? i.garp.masterRefreshRepeat : globals.garp.masterRefreshRepeat
        garp.lowerPrioDelay = i.garp.lowerPrioDelay ?? globals.garp.lowerPrioDelay
        garp.lowerPrioRepeat = i.garp.lowerPrioRepeat ?? globals.garp.lowerPrioRepeat
        var core = VRRPInstanceConfig(
            name: i.name, vrid: UInt8(clamping: vrid), version: (family == .ipv6 || i.version == 3) ? .v3 : .v2,
            priority: UInt8(clamping: i.effectivePriority), advertInterval: i.advertInterval,
            initialState: i.state.map { $0 == .master ? .master : .backup },
            nopreempt: i.nopreempt, preemptDelay: i.preemptDelay, authentication: authentication,
            virtualAddresses: vips.map(\.address), sourceAddress: configuredSource ?? .zero(family),
            unicastPeers: peers,
            downTimerAdverts: i.downTimerAdverts ?? globals.downTimerAdverts,
            lowerPrioNoAdvert: i.lowerPrioNoAdvert ?? globals.lowerPrioNoAdvert,
            // On unless set: a master yielding to a higher priority sends one advert first, so
            // the winner hears a lower priority and re-announces the VIP with gratuitous ARPs.
            // keepalived's default (off) lets the winner of a healed split brain stay silent
            // while hosts still send to the loser's MAC (its issues #2649, #166, #1884).
            higherPrioSendAdvert: i.higherPrioSendAdvert ?? globals.higherPrioSendAdvert ?? true,
            skipCheckAdvAddr: i.skipCheckAdvAddr ?? globals.vrrpSkipCheckAdvAddr,
            v3ChecksumAsV2: i.v3ChecksumAsV2, garp: garp
        )
        core.excludedAddresses = excluded.map(\.address)
        core.ownerIgnoreAdverts = i.ownerIgnoreAdverts
        core.checkUnicastSource = i.checkUnicastSource || globals.vrrpCheckUnicastSrc
        for peer in i.unicastPeers where peer.address.family == family && (peer.minTTL != nil || peer.maxTTL != nil) {
            core.peerTTLRanges[peer.address] = UInt8(clamping: peer.minTTL ?? 0)...UInt8(clamping: max(peer.minTTL ?? 0, peer.maxTTL ?? 255))
        }
        core = core.normalized()

        var spec = InstanceSpec(name: i.name, identity: identity, core: core, configuredSource: configuredSource,
                                unicastPeers: peers, unicastTTL: UInt8(clamping: i.unicastTTL ?? 255),
                                virtualAddresses: vips, excludedAddresses: excluded, trackers: trackerRules(i, group: group, scripts: scripts, files: files, processes: processes),
                                notify: NotifyCommands(i.notify))
        spec.smtpAlert = i.smtpAlert ?? globals.smtpAlertVRRP ?? globals.smtpAlert ?? false
        spec.notifyPriorityChanges = i.notifyPriorityChanges ?? group?.notifyPriorityChanges ?? globals.notifyPriorityChanges
        spec.oldUnicastChecksum = i.oldUnicastChecksum
        if case .v4(let group) = globals.vrrpMcastGroup4 { spec.oldChecksumGroup = group }
        if i.unicastFaultNoPeer && peers.isEmpty {
            // keepalived: "Cannot use unicast without any peers - going to fault state".
            spec.trackers.append(TrackerRule(.configuration("unicast without any peers (unicast_fault_no_peer)")))
        }
        if i.trackSourceIP, let configuredSource {
            spec.trackers.append(TrackerRule(.sourceAddress(configuredSource)))
        }
        spec.virtualRoutes = i.virtualRoutes.compactMap(\.route)
        spec.virtualRules = i.virtualRules.compactMap(\.rule)
        spec.vmac = vmac
        spec.promoteSecondaries = i.promoteSecondaries && vmac == nil
        spec.noAccept = i.effectivePriority != 255 && !i.acceptMode(strictByDefault: globals.vrrpStrict)
        return spec
    }

    /// The instance's own interface (unless dont_track_primary), its track_interface,
    /// track_script, track_file and track_process entries, then its sync group's.
    static func trackerRules(_ i: VRRPInstance, group: SyncGroup?, scripts: [String: VRRPScript],
                             files: [String: TrackFile] = [:], processes: [String: TrackProcess] = [:]) -> [TrackerRule] {
        /// A weight on the tracking line overrides the tracked object's own, reverse included.
        /// A sync group member's own weights were settled by CrossReferences, as keepalived's.
        func rules(interfaces: [Tracked], scripts tracked: [Tracked], files trackedFiles: [Tracked], processes trackedProcesses: [Tracked],
                   fromGroup: Bool) -> [TrackerRule] {
            var made = interfaces.map { TrackerRule(.interface($0.name), weight: $0.weight ?? 0, reverse: $0.reverse, fromGroup: fromGroup) }
            for t in tracked {
                guard let script = scripts[t.name], script.script != nil else { continue }
                made.append(TrackerRule(.script(t.name), weight: t.weight ?? script.weight,
                                        reverse: t.weight != nil ? t.reverse : script.weightReverse, fromGroup: fromGroup))
            }
            for t in trackedFiles {
                guard let file = files[t.name], file.path != nil else { continue }
                made.append(TrackerRule(.file(t.name), weight: t.weight ?? file.weight,
                                        reverse: t.weight != nil ? t.reverse : file.reverse, fromGroup: fromGroup))
            }
            for t in trackedProcesses {
                guard let process = processes[t.name], process.process != nil else { continue }
                made.append(TrackerRule(.process(t.name), weight: t.weight ?? process.weight,
                                        reverse: t.weight != nil ? t.reverse : process.reverse, fromGroup: fromGroup))
            }
            return made
        }
        var all: [TrackerRule] = []
        if !i.dontTrackPrimary, let interface = i.interface { all.append(TrackerRule(.interface(interface))) }
        all += rules(interfaces: i.trackInterfaces, scripts: i.trackScripts, files: i.trackFiles, processes: i.trackProcesses, fromGroup: false)
        guard let group else { return all }
        // keepalived's sync_group_tracking_init: the group's trackers with their own weights
        // (CrossReferences cleared them for a group with an owner); one the member tracks too
        // is tracked once, with the group's weight unless the member's was unweighted.
        for rule in rules(interfaces: group.trackInterfaces, scripts: group.trackScripts, files: group.trackFiles,
                          processes: group.trackProcesses, fromGroup: true) {
            if let at = all.firstIndex(where: { $0.source == rule.source }) {
                if all[at].weight != 0 {
                    all[at].weight = rule.weight
                    // keepalived's add_vrrp_to_track_process keeps the member's reverse.
                    if case .process = rule.source {} else { all[at].reverse = rule.reverse }
                }
            } else {
                all.append(rule)
            }
        }
        return all
    }

    /// keepalived's address defaults: /32 or /128, the instance's interface, scope global,
    /// IFA_F_NODAD for IPv6; `brd +` / `brd -` computed from the prefix.
    public static func vipSpec(_ a: VirtualAddress, instanceInterface: String) -> VIPSpec {
        var broadcast: IPv4Address?
        if let brd = a.broadcast, case .v4(let v4) = a.address {
            let mask: UInt32 = a.prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(a.prefixLength))
            switch brd {
            case "+": broadcast = IPv4Address(v4.value | ~mask)
            case "-": broadcast = IPv4Address(v4.value & mask)
            default: broadcast = IPv4Address(brd)
            }
        }
        let scopes: [String: UInt8] = ["global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255]
        let scope = a.scope.flatMap { scopes[$0] ?? UInt8($0) } ?? 0
        return VIPSpec(address: a.address, prefixLength: UInt8(clamping: a.prefixLength), device: a.device ?? instanceInterface,
                       label: a.label, scope: scope, broadcast: broadcast, noDAD: a.noDAD || a.address.isV6)
    }
}

extension SpecProblem: Error {}
