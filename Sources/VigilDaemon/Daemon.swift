import Addressing
@preconcurrency import Glibc
import Logging
import VRRP
import VigilConfig
import VigilSystem

public struct DaemonOptions: Sendable {
    public var configPath: String
    public var configID: String?
    public var logConsole: Bool
    public var logDetail: Bool
    public var foreground: Bool
    public var pidFile: String?
    /// keepalived's `-V`: keep VIPs (and send no priority-0 advert) on stop.
    public var releaseVIPsOnStop: Bool
    /// keepalived's `-I`: leave the IPVS services in place on stop.
    public var releaseIPVSOnStop: Bool
    /// `-P` / `-C`: run only one half.
    public var runVRRP: Bool
    public var runChecker: Bool

    public init(configPath: String, configID: String?, logConsole: Bool, logDetail: Bool, foreground: Bool,
                pidFile: String?, releaseVIPsOnStop: Bool, releaseIPVSOnStop: Bool = true,
                runVRRP: Bool = true, runChecker: Bool = true) {
        self.releaseIPVSOnStop = releaseIPVSOnStop
        self.runVRRP = runVRRP
        self.runChecker = runChecker
        self.configPath = configPath
        self.configID = configID
        self.logConsole = logConsole
        self.logDetail = logDetail
        self.foreground = foreground
        self.pidFile = pidFile
        self.releaseVIPsOnStop = releaseVIPsOnStop
    }
}

/// The single-process daemon: one thread, one poll(2) loop. Each turn it waits until the
/// earliest protocol deadline, a packet, or a signal; feeds the pure state machines an event
/// with the current monotonic time; and carries out the actions they return. Everything that
/// decides *what* happens lives in the VRRP module; this file only moves bytes and time.
public final class Daemon {
    let options: DaemonOptions
    var logger: Logger
    let configuration: Configuration
    var instances: [InstanceRuntime] = []
    var sockets: [String: VRRPSocket] = [:]
    var arpSenders: [String: GratuitousARP] = [:]
    var sockets6: [String: VRRPSocket6] = [:]
    var naSenders: [String: UnsolicitedNA] = [:]
    /// vrrp_sync_groups: their members' state machines live in the pure `VRRPSyncGroup`;
    /// each member's `machine` is a copy refreshed after every event (see `dispatch`).
    var groups: [GroupRuntime] = []
    let addresses: AddressManager
    let scripts: ScriptHost
    /// IPVS virtual servers and their health checks; nil without virtual_server blocks.
    var checkers: CheckerHost?
    var stopping = false
    var nextInterfaceCheck: Int64 = 0

    public static func run(_ options: DaemonOptions) -> Int32 {
        UserDatabase.useFilesOnlyIfStatic()
        LoggingSystem.bootstrap { _ in
            VigilLogHandler(destination: options.logConsole ? .console : .syslog,
                            level: options.logDetail ? .debug : .info)
        }
        var logger = Logger(label: "vigil")
        if !options.logConsole { openlog("Vigil", LOG_PID, LOG_DAEMON) }

        logger.notice("Starting Vigil with \(options.configPath)")
        let loadStart = MonotonicClock.nowMicroseconds()
        let (config, diagnostics) = ConfigLoader.load(path: options.configPath, configID: options.configID)
        logger.debug("configuration read in \((MonotonicClock.nowMicroseconds() - loadStart) / 1000) ms")
        for d in diagnostics.all where d.klass != .note {
            logger.log(level: d.severity == .error ? .error : .warning, "\(d)")
        }
        if diagnostics.all.contains(where: { $0.klass == .fatal }) {
            logger.critical("configuration has fatal problems (see above): not starting; check it with vigil -t")
            return 2
        }
        let hasVRRP = options.runVRRP && !config.instances.isEmpty
        let hasLVS = options.runChecker && !config.virtualServers.isEmpty
        if !hasVRRP && !hasLVS {
            logger.critical("no vrrp_instance and no virtual_server to run: nothing to do")
            return 2
        }
        if !options.foreground { daemonize(&logger) }
        do {
            let daemon = try Daemon(options: options, configuration: config, logger: logger)
            if daemon.instances.isEmpty && !(daemon.checkers?.isActive ?? false) {
                logger.critical("nothing left to run: no VRRP instance, and the virtual servers need IPVS")
                return 1
            }
            return daemon.loop()
        } catch {
            logger.critical("cannot start: \(error)")
            return 1
        }
    }

    init(options: DaemonOptions, configuration: Configuration, logger: Logger) throws {
        self.options = options
        self.configuration = configuration
        self.logger = logger
        do { addresses = try AddressManager() } catch { throw DaemonError("rtnetlink: \(error)") }
        scripts = ScriptHost(configuration: configuration, logger: logger)
        if let pidFile = options.pidFile { try writePidFile(pidFile) }
        try SignalPipe.install([SIGTERM, SIGINT, SIGHUP, SIGCHLD])
        signal(SIGPIPE, SIG_IGN)
        if options.runVRRP {
            for model in configuration.instances { try setUp(model) }
            setUpGroups()
        }
        if options.runChecker {
            checkers = CheckerHost(configuration: configuration, logger: logger, scripts: scripts)
        }
    }

    private func setUpGroups() {
        for model in configuration.syncGroups {
            let members = model.members.compactMap { member in
                instances.first { $0.name == member.name && $0.group == nil }
            }
            guard !members.isEmpty else {
                logger.warning("VRRP_Group(\(model.name)) has no usable member: ignored")
                continue
            }
            if members.count == 1 {
                logger.warning("VRRP_Group(\(model.name)) has only 1 virtual router(s) - this probably isn't what you want")
            }
            let group = GroupRuntime(model: model, members: members)
            for (index, member) in members.enumerated() {
                member.group = group
                member.groupMember = index
            }
            groups.append(group)
        }
    }

    private func setUp(_ model: VigilConfig.VRRPInstance) throws {
        guard let interface = model.interface else { throw DaemonError("(\(model.name)) has no interface") }
        let info: InterfaceInfo
        do { info = try InterfaceInfo.lookup(interface, using: addresses) } catch {
            throw DaemonError("(\(model.name)) interface \(interface): \(error)")
        }
        if try InstanceMapping.isIPv6(model) {
            try setUpIPv6(model, interface: interface, info: info)
            return
        }
        let configuredSource = model.unicastSourceIP ?? model.mcastSourceIP
        guard let source = configuredSource?.ipv4 ?? info.primaryIPv4 else {
            throw DaemonError("(\(model.name)) interface \(interface) has no IPv4 address to send adverts from")
        }
        let peers = model.unicastPeers.compactMap { $0.address.ipv4 }
        let mode: VRRPSocket.Mode = peers.isEmpty ? .multicast : .unicast(local: source)
        let key = "\(interface)|\(peers.isEmpty ? "mcast" : "ucast \(source)")"
        let socket: VRRPSocket
        if let existing = sockets[key] { socket = existing } else {
            do { socket = try VRRPSocket(interface: interface, mode: mode) } catch {
                throw DaemonError("(\(model.name)) VRRP socket on \(interface): \(error)")
            }
            sockets[key] = socket
        }
        var garp = arpSenders[interface]
        if garp == nil && !info.isNoARP {
            garp = try? GratuitousARP(interface: interface, mac: info.mac)
            arpSenders[interface] = garp
        }
        var specs: [IPAddress: AddressSpec] = [:]
        for vip in model.virtualAddresses + model.excludedAddresses {
            guard let inet = Optional(vip.address) else { continue }
            specs[inet] = try InstanceMapping.addressSpec(vip, instanceInterface: interface)
        }
        let core = try InstanceMapping.coreConfig(model, globals: configuration.globals, source: source)
        let runtime = InstanceRuntime(model: model, machine: VRRPStateMachine(config: core, trackers: []),
                                      interface: interface, ifindex: info.index, socket: socket, garp: garp,
                                      source: source, peers: peers, vipSpecs: specs)
        runtime.interfaceUp = info.isUp && info.isRunning
        instances.append(runtime)
    }

    /// VRRPv3 over IPv6: VRRPSocket6 on the interface, adverts from its link-local address
    /// (unless mcast_src_ip/unicast_src_ip), unsolicited NAs instead of GARPs.
    private func setUpIPv6(_ model: VigilConfig.VRRPInstance, interface: String, info: InterfaceInfo) throws {
        let configuredSource = model.unicastSourceIP ?? model.mcastSourceIP
        // The interface's own link-local address, not a link-local VIP a crashed run left behind.
        let linkLocalVIPs = Set(model.virtualAddresses.compactMap { $0.address.ipv6 })
        let ownLinkLocal = ((try? addresses.list(ifindex: info.index)) ?? []).lazy.compactMap { entry -> IPv6Address? in
            guard case .v6(let v6) = entry.address, v6.isLinkLocal,
                  !linkLocalVIPs.contains(v6) else { return nil }
            return v6
        }.first ?? info.linkLocalIPv6
        guard let source = configuredSource?.ipv6 ?? ownLinkLocal else {
            throw DaemonError("(\(model.name)) interface \(interface) has no IPv6 link-local address to send adverts from")
        }
        let peers = model.unicastPeers.compactMap { $0.address.ipv6 }
        let mode: VRRPSocket6.Mode = peers.isEmpty ? .multicast : .unicast(local: source)
        let key = "\(interface)|\(peers.isEmpty ? "mcast" : "ucast \(source)")"
        let socket: VRRPSocket6
        if let existing = sockets6[key] { socket = existing } else {
            do { socket = try VRRPSocket6(interface: interface, mode: mode) } catch {
                throw DaemonError("(\(model.name)) VRRP IPv6 socket on \(interface): \(error)")
            }
            sockets6[key] = socket
        }
        var na = naSenders[interface]
        if na == nil && !info.isNoARP {
            na = try? UnsolicitedNA(interface: interface, mac: info.mac)
            naSenders[interface] = na
        }
        var specs: [IPAddress: AddressSpec] = [:]
        for vip in model.virtualAddresses + model.excludedAddresses {
            guard let inet = Optional(vip.address) else { continue }
            specs[inet] = try InstanceMapping.addressSpec(vip, instanceInterface: interface)
        }
        let core = try InstanceMapping.coreConfig(model, globals: configuration.globals,
                                                  sourceAddress: .v6(source))
        let runtime = InstanceRuntime(model: model, machine: VRRPStateMachine(config: core, trackers: []),
                                      interface: interface, ifindex: info.index, socket: nil, garp: nil,
                                      source: IPv4Address(0), peers: [], vipSpecs: specs)
        runtime.socket6 = socket
        runtime.unsolicitedNA = na
        runtime.source6 = source
        runtime.peers6 = peers
        runtime.interfaceUp = info.isUp && info.isRunning
        instances.append(runtime)
    }

    // MARK: dispatch

    /// Feeds one event to an instance and carries out what comes back. A sync group member
    /// gets it through its `VRRPSyncGroup`, which applies the group rules and may move the
    /// other members too; `keep` filters the actions (shutdown with -V, start-up trackers).
    func dispatch(_ event: VRRPEvent, to instance: InstanceRuntime, at time: VRRPInstant,
                  keep: (VRRPAction) -> Bool = { _ in true }) {
        guard let group = instance.group else {
            apply(instance.machine.handle(event, at: time).filter(keep), to: instance)
            return
        }
        let outputs = group.core.handle(event, member: instance.groupMember, at: time)
        group.refreshMembers()
        for output in outputs {
            switch output {
            case .member(let index, let action):
                if keep(action) { apply([action], to: group.members[index]) }
            case .groupStateChanged(let from, let to):
                groupStateChanged(group, from: from, to: to)
            }
        }
    }

    private func groupStateChanged(_ group: GroupRuntime, from: VRRPState, to: VRRPState) {
        guard to != .initialize else { return }
        logger.notice("VRRP_Group(\(group.name)) Syncing instances to \(stateName(to)) state (was \(stateName(from)))")
        scripts.notify(group: group.model, state: stateName(to))
    }

    // MARK: the loop

    func loop() -> Int32 {
        let start = now()
        scripts.start(at: start.microseconds)
        for instance in instances {
            // A VIP left behind by a crashed run would answer for us while we are BACKUP.
            removeLeftoverVIPs(instance)
            let trackers = currentTrackers(instance)
            dispatch(.trackersChanged(trackers), to: instance, at: start, keep: { _ in false })
            dispatch(.start, to: instance, at: start)
        }
        checkers?.start(at: now().microseconds)
        // The VRRP sockets and the signal pipe never change while the loop runs.
        var fixedFDs: [Int32] = [SignalPipe.readFD]
        for socket in sockets.values { fixedFDs.append(socket.fd) }
        for socket in sockets6.values { fixedFDs.append(socket.fd) }
        while !stopping {
            let wait = microsecondsUntilNextDeadline()
            let readable: [Int32]
            do {
                let checkerFDs = checkers?.descriptors ?? []
                let pollOut = checkers?.usesWritableDescriptors ?? false
                readable = try Poller.wait(readable: pollOut ? fixedFDs : fixedFDs + checkerFDs,
                                           writable: pollOut ? checkerFDs : [], timeoutMicroseconds: wait)
            } catch {
                logger.error("poll: \(error)")
                continue
            }
            if readable.contains(SignalPipe.readFD) { handleSignals() }
            for socket in sockets.values where readable.contains(socket.fd) { receive(on: socket) }
            for socket in sockets6.values where readable.contains(socket.fd) { receive(on: socket) }
            checkers?.poll(at: now().microseconds, readable: readable)
            fireDueTimers()
        }
        return shutDown()
    }

    func now() -> VRRPInstant { VRRPInstant(microseconds: MonotonicClock.nowMicroseconds()) }

    private func microsecondsUntilNextDeadline() -> Int64 {
        let current = now().microseconds
        var earliest = nextInterfaceCheck
        for instance in instances { if let d = instance.machine.nextDeadline { earliest = min(earliest, d.microseconds) } }
        if let d = scripts.nextDeadline { earliest = min(earliest, d) }
        if let d = checkers?.nextDeadline { earliest = min(earliest, d) }
        return min(max(0, earliest - current), 60_000_000)
    }

    private func fireDueTimers() {
        let current = now()
        if current.microseconds >= nextInterfaceCheck {
            checkInterfaces()
            nextInterfaceCheck = current.microseconds + 1_000_000
        }
        for change in scripts.poll(at: current.microseconds) {
            logger.info("VRRP_Script(\(change.name)) \(change.up ? "succeeded" : "failed")")
            refreshTrackers(at: current)
        }
        for instance in instances {
            guard let deadline = instance.machine.nextDeadline, deadline <= current else { continue }
            dispatch(.timerFired, to: instance, at: current)
        }
    }

    private func receive(on socket: VRRPSocket) {
        while true {
            let packet: VRRPPacket?
            do { packet = try socket.receive() } catch {
                logger.error("receive on \(socket.interface): \(error)")
                return
            }
            guard let packet else { return }
            let header = packet.headerLength
            guard packet.bytes.count > header + 1 else { continue }
            let vrid = packet.bytes[header + 1]
            guard let instance = instances.first(where: { $0.socket === socket && $0.vrid == vrid }) else { continue }
            let received = now()
            do {
                let decoded = try decodeIPv4Packet(packet.bytes, v3ChecksumAsV2: instance.machine.config.v3ChecksumAsV2)
                let advert = VRRPReceivedAdvert(advert: decoded.advert, source: .v4(decoded.source), ttl: decoded.ttl,
                                                isMulticast: decoded.destination.isMulticast)
                instance.count("adverts_received")
                dispatch(.packetReceived(advert), to: instance, at: received)
            } catch {
                instance.count(error.counterName)
                logger.debug("(\(instance.name)) bad advert from \(packet.source): \(error.counterName)")
            }
        }
    }

    /// IPv6 raw sockets deliver no IP header: it is rebuilt from the ancillary data (source,
    /// destination, IPV6_HOPLIMIT) so the advert goes through the same `decodeIPv6Packet`.
    private func receive(on socket: VRRPSocket6) {
        while true {
            let packet: VRRPPacket6?
            do { packet = try socket.receive() } catch {
                logger.error("receive on \(socket.interface): \(error)")
                return
            }
            guard let packet else { return }
            guard packet.payload.count > 1, packet.payload.count <= 65_535 else { continue }
            let vrid = packet.payload[1]
            guard let instance = instances.first(where: { $0.socket6 === socket && $0.vrid == vrid }) else { continue }
            let received = now()
            let destination = packet.destination ?? IPv6Address.vrrpMulticastGroup
            let length = packet.payload.count
            let hopLimit = packet.hopLimit < 0 ? 255 : UInt8(clamping: packet.hopLimit)
            let header: [UInt8] = [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), VRRPAdvert.ipProtocol, hopLimit]
                + packet.source.bytes + destination.bytes
            do {
                let decoded = try decodeIPv6Packet(header + packet.payload)
                let advert = VRRPReceivedAdvert(advert: decoded.advert, source: .v6(decoded.source),
                                                ttl: packet.hopLimit < 0 ? nil : decoded.hopLimit,
                                                isMulticast: destination.isMulticast)
                instance.count("adverts_received")
                dispatch(.packetReceived(advert), to: instance, at: received)
            } catch {
                instance.count(error.counterName)
                logger.debug("(\(instance.name)) bad advert from \(packet.source): \(error.counterName)")
            }
        }
    }

    // MARK: actions

    func apply(_ actions: [VRRPAction], to instance: InstanceRuntime) {
        for action in actions {
            switch action {
            case .sendAdvert(let advert):
                send(advert, from: instance)
            case .sendGARP(let addresses, let rounds):
                sendGARP(addresses, rounds: rounds, from: instance)
            case .addVIPs(let vips):
                for vip in vips { changeVIP(vip, add: true, instance) }
            case .removeVIPs(let vips):
                for vip in vips { changeVIP(vip, add: false, instance) }
            case .runNotify(let state, let priority):
                scripts.notify(instance: instance.model, state: state.rawValue, priority: Int(priority))
            case .stateChanged(let from, let to, let reason):
                logger.notice("(\(instance.name)) Entering \(stateName(to)) STATE (\(reason.rawValue), was \(stateName(from)))")
                instance.count("became_\(to.rawValue.lowercased())")
            case .countReceiveError(let error):
                instance.count(error.counterName)
                logger.debug("(\(instance.name)) advert counted as \(error.counterName)")
            case .masterReceivedLowerPriority(let source, let priority):
                logger.info("(\(instance.name)) Received advert from \(source) with lower priority \(priority), ours \(instance.machine.effectivePriority), forcing new election")
                scripts.notifyLowerPriority(instance: instance.model)
            }
        }
    }

    private func stateName(_ state: VRRPState) -> String {
        switch state {
        case .initialize: "INIT"
        case .backup: "BACKUP"
        case .master: "MASTER"
        case .fault: "FAULT"
        default: "\(state)".uppercased()
        }
    }

    private func send(_ advert: VRRPAdvert, from instance: InstanceRuntime) {
        if let socket6 = instance.socket6, let source6 = instance.source6 {
            let destinations = instance.peers6.isEmpty ? [IPv6Address.vrrpMulticastGroup] : instance.peers6
            for destination in destinations {
                let endpoints = VRRPEndpoints.ipv6(source: source6,
                                                   destination: destination)
                let payload = advert.encode(endpoints: endpoints)
                do {
                    try socket6.send(payload, from: source6, to: destination)
                    instance.count("adverts_sent")
                } catch {
                    instance.count("send_errors")
                    logger.error("(\(instance.name)) cannot send advert on \(instance.interface): \(error)")
                }
            }
            return
        }
        guard let socket = instance.socket else { return }
        let destinations = instance.peers.isEmpty ? [IPv4Address.vrrpMulticastGroup] : instance.peers
        for destination in destinations {
            let endpoints = VRRPEndpoints.ipv4(source: IPv4Address(instance.source.value), destination: IPv4Address(destination.value))
            let payload = advert.encode(endpoints: endpoints, v3ChecksumAsV2: instance.machine.config.v3ChecksumAsV2)
            do {
                try socket.send(payload, from: instance.source, to: destination,
                                         ttl: UInt8(instance.model.unicastTTL ?? 255))
                instance.count("adverts_sent")
            } catch {
                instance.count("send_errors")
                logger.error("(\(instance.name)) cannot send advert on \(instance.interface): \(error)")
            }
        }
    }

    private func sendGARP(_ vips: [IPAddress], rounds: Int, from instance: InstanceRuntime) {
        if instance.isIPv6 {
            sendNA(vips, rounds: rounds, from: instance)
            return
        }
        guard let garp = instance.garp else { return }
        for _ in 0..<max(rounds, 0) {
            for vip in vips {
                guard case .v4(let address) = vip else { continue }
                do {
                    try garp.send(for: address)
                    instance.count("garp_sent")
                } catch {
                    logger.error("(\(instance.name)) gratuitous ARP for \(vip) on \(instance.interface): \(error)")
                }
            }
        }
        if let first = vips.first { logger.info("(\(instance.name)) Sending/queueing gratuitous ARPs on \(instance.interface) for \(first)\(vips.count > 1 ? " and \(vips.count - 1) more" : "")") }
    }

    /// keepalived's IPv6 counterpart of GARP: unsolicited Neighbour Advertisements.
    private func sendNA(_ vips: [IPAddress], rounds: Int, from instance: InstanceRuntime) {
        guard let na = instance.unsolicitedNA else { return }
        for _ in 0..<max(rounds, 0) {
            for vip in vips {
                guard case .v6(let target) = vip else { continue }
                do {
                    try na.send(for: target)
                    instance.count("na_sent")
                } catch {
                    logger.error("(\(instance.name)) unsolicited NA for \(vip) on \(instance.interface): \(error)")
                }
            }
        }
        if let first = vips.first { logger.info("(\(instance.name)) Sending/queueing Unsolicited Neighbour Adverts on \(instance.interface) for \(first)\(vips.count > 1 ? " and \(vips.count - 1) more" : "")") }
    }

    private func changeVIP(_ vip: IPAddress, add: Bool, _ instance: InstanceRuntime) {
        guard let spec = instance.vipSpecs[vip] else { return }
        do {
            if add { try addresses.add(spec) } else { try addresses.remove(spec) }
        } catch AddressError.exists where add {
            // Already there (left by us or an operator): it serves the same purpose.
        } catch AddressError.notFound where !add {
        } catch {
            logger.error("(\(instance.name)) cannot \(add ? "add" : "remove") \(vip): \(error)")
        }
    }

    private func removeLeftoverVIPs(_ instance: InstanceRuntime) {
        for (vip, spec) in instance.vipSpecs {
            if (try? addresses.remove(spec)) != nil {
                logger.info("(\(instance.name)) removed \(vip) left by an earlier run")
            }
        }
    }

    // MARK: trackers

    /// The instance's own interface (unless dont_track_primary), its track_interface entries,
    /// and its track_script entries, as the state machine weighs them.
    func currentTrackers(_ instance: InstanceRuntime) -> [VRRPTracker] {
        var trackers: [VRRPTracker] = []
        if !instance.model.dontTrackPrimary {
            trackers.append(VRRPTracker(name: "interface \(instance.interface)", weight: 0, isUp: instance.interfaceUp))
        }
        for tracked in instance.model.trackInterfaces {
            let up = (try? InterfaceInfo.lookup(tracked.name)).map { $0.isUp && $0.isRunning } ?? false
            trackers.append(VRRPTracker(name: "interface \(tracked.name)", weight: tracked.weight ?? 0, reverse: tracked.reverse, isUp: up))
        }
        for tracked in instance.model.trackScripts {
            guard let script = configuration.scripts.first(where: { $0.name == tracked.name }),
                  scripts.isTracked(tracked.name) else { continue }
            let weight = tracked.weight ?? script.weight
            let reverse = tracked.weight != nil ? tracked.reverse : script.weightReverse
            // Before its first result a weight-0 script holds the instance in FAULT and a
            // weighted one adds nothing, as in keepalived.
            let isUp = scripts.verdict(tracked.name) ?? (weight == 0 ? reverse : (weight < 0) != reverse)
            trackers.append(VRRPTracker(name: "script \(tracked.name)", weight: weight, reverse: reverse, isUp: isUp))
        }
        // A sync group's own track_interface/track_script apply to every member; their weights
        // count only with `track_weight` (keepalived's sgt_weight), otherwise a failure faults.
        if let group = instance.group?.model {
            for tracked in group.trackInterfaces {
                let up = (try? InterfaceInfo.lookup(tracked.name)).map { $0.isUp && $0.isRunning } ?? false
                trackers.append(VRRPTracker(name: "group interface \(tracked.name)", weight: group.trackingWeight ? (tracked.weight ?? 0) : 0,
                                            reverse: tracked.reverse, isUp: up))
            }
            for tracked in group.trackScripts {
                guard let script = configuration.scripts.first(where: { $0.name == tracked.name }),
                      scripts.isTracked(tracked.name) else { continue }
                let weight = group.trackingWeight ? (tracked.weight ?? script.weight) : 0
                let reverse = tracked.weight != nil ? tracked.reverse : script.weightReverse
                let isUp = scripts.verdict(tracked.name) ?? (weight == 0 ? reverse : (weight < 0) != reverse)
                trackers.append(VRRPTracker(name: "group script \(tracked.name)", weight: weight, reverse: reverse, isUp: isUp))
            }
        }
        return trackers
    }

    private func refreshTrackers(at time: VRRPInstant) {
        for instance in instances {
            let before = instance.machine.effectivePriority
            dispatch(.trackersChanged(currentTrackers(instance)), to: instance, at: time)
            if instance.machine.effectivePriority != before {
                logger.info("(\(instance.name)) Changing effective priority from \(before) to \(instance.machine.effectivePriority)")
            }
        }
    }

    /// Link state by polling once a second: simpler than a netlink monitor and fast enough for
    /// a FAULT decision (keepalived's own default debounce is of the same order).
    private func checkInterfaces() {
        var changed = false
        for instance in instances {
            let up = (try? InterfaceInfo.lookup(instance.interface)).map { $0.isUp && $0.isRunning } ?? false
            if up != instance.interfaceUp {
                instance.interfaceUp = up
                changed = true
                logger.warning("(\(instance.name)) interface \(instance.interface) is \(up ? "up" : "down")")
            }
        }
        if changed || instances.contains(where: { !$0.model.trackInterfaces.isEmpty || !($0.group?.model.trackInterfaces.isEmpty ?? true) }) {
            refreshTrackers(at: now())
        }
        restoreDeletedVIPs()
    }

    /// A VIP someone deleted while we are master (`ip addr del`, a network restart) is put back
    /// at once and announced with one GARP. keepalived instead drops to BACKUP and re-elects,
    /// which leaves the VIP unserved for a whole master-down interval when there is no better
    /// router; Vigil keeps the same owner and skips that outage.
    private func restoreDeletedVIPs() {
        for instance in instances where instance.machine.state == .master {
            var present: [Int32: [InterfaceAddress]] = [:]
            for vip in instance.machine.config.virtualAddresses {
                guard let spec = instance.vipSpecs[vip] else { continue }
                if present[spec.ifindex] == nil { present[spec.ifindex] = (try? addresses.list(ifindex: spec.ifindex)) ?? [] }
                guard !present[spec.ifindex]!.contains(where: { $0.address == spec.address }) else { continue }
                logger.warning("(\(instance.name)) VIP \(vip) was deleted from the interface while MASTER: adding it back")
                instance.count("vip_restored")
                changeVIP(vip, add: true, instance)
                sendGARP([vip], rounds: 1, from: instance)
            }
        }
    }

    // MARK: signals and stop

    private func handleSignals() {
        for signal in SignalPipe.drain() {
            switch signal {
            case SIGTERM, SIGINT:
                logger.notice("Stopping on signal \(signal)")
                stopping = true
            case SIGHUP:
                logger.warning("SIGHUP: configuration reload is not supported yet; restart to apply changes")
            case SIGCHLD:
                break // reaped by the script host on the next poll
            default:
                break
            }
        }
    }

    private func shutDown() -> Int32 {
        let time = now()
        for instance in instances {
            // -V keeps the VIPs and, like keepalived, sends no goodbye advert either.
            let release = options.releaseVIPsOnStop
            dispatch(.shutdown, to: instance, at: time, keep: { action in
                if release { return true }
                if case .removeVIPs = action { return false }
                if case .sendAdvert = action { return false }
                return true
            })
        }
        checkers?.shutDown(release: options.releaseIPVSOnStop)
        scripts.stopAll()
        if let pidFile = options.pidFile { unlink(pidFile) }
        logger.notice("Stopped Vigil")
        return 0
    }

    private func writePidFile(_ path: String) throws(DaemonError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DaemonError("cannot write pid file \(path): \(String(cString: strerror(errno)))") }
        let text = "\(getpid())\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Classic daemon start: fork, new session, stdio to /dev/null. Done before any socket or
    /// thread exists.
    static func daemonize(_ logger: inout Logger) {
        let pid = fork()
        if pid < 0 { logger.critical("fork: \(String(cString: strerror(errno)))"); exit(1) }
        if pid > 0 { exit(0) }
        setsid()
        let null = open("/dev/null", O_RDWR)
        if null >= 0 { dup2(null, 0); dup2(null, 1); dup2(null, 2); if null > 2 { close(null) } }
    }
}
