import Addressing
import Logging
import VRRP
import VRRPSpecs
import VigilSystem

/// The VRRP half of the daemon: each vrrp_instance's pure state machine, the sockets it
/// sends and receives on (shared per interface and mode), its VIPs and its GARP/NA sender.
/// It feeds the machines packets, timer ticks and tracker changes with the current time and
/// carries out the actions they return, in keepalived's order (advert first, then VIPs, then
/// GARPs, then notify). Everything that decides *what* happens lives in the VRRP module.
final class VRRPHost: LoopHost {
    final class Instance {
        var spec: InstanceSpec
        var machine: VRRPStateMachine
        /// Both are made anew when their link is deleted and created again (`followNewLinks`).
        var channel: Channel
        var announcer: (any Announcer)?
        /// The senders of VIPs written with another device (`dev eth2`): keepalived announces
        /// each VIP on its own link, where its neighbours are.
        var deviceAnnouncers: [String: any Announcer] = [:]
        /// garp_extra_if: when the next round of extra-link announcements is due (MASTER only).
        var nextExtraAnnouncement: Int64?
        /// Each VIP's device, for its announcement.
        lazy var vipDevices: [IPAddress: String] = Dictionary((spec.virtualAddresses + spec.excludedAddresses).map { ($0.address, $0.device) },
                                                               uniquingKeysWith: { first, _ in first })
        /// The spec's core configuration with the advert source resolved (the configured one or
        /// the interface's own): what the machine starts with, or takes on at a reload.
        var core: VRRPInstanceConfig
        /// dynamic_interfaces: its link did not exist when it was prepared (a socket that sends
        /// nothing, no GARP sender, no source of the link's own); FAULT until the link comes.
        var awaitingLink = false
        /// How each VIP is put on its device (resolved ifindex, prefix, label, scope, …).
        var vipSpecs: [IPAddress: AddressSpec]
        var group: GroupRuntime?
        var groupMember = 0
        var stats = VRRPStatistics()
        var rejections = RejectionLog()
        /// VIPs the machine wants set whose last add failed: `vigil status` must not call them
        /// installed because the machine is MASTER.
        var vipsNotSet: Set<IPAddress> = []
        /// virtual_routes and virtual_rules are in the kernel (installed on becoming MASTER).
        var routesInstalled = false
        var lastMailedState: VRRPState?
        /// Removed by a reload: its stop mail says "Deleted", as keepalived's.
        var deleted = false
        /// The last state change: when (wall clock, seconds since the epoch), from, to, why.
        var lastTransition: (time: Double, from: VRRPState, to: VRRPState, reason: VRRPTransitionReason)?
        /// auth_type AH: the HMAC key, keepalived's sequence counter, the IP id of the last
        /// advert (never 0, which the kernel would replace), the number last heard.
        var ahKey: [UInt8]? {
            if case .ah(let password) = spec.core.authentication { IPsecAH.key(password) } else { nil }
        }
        var ahSequence = AHSequence()
        /// The last advert encoded, by what went into it: a master sends the same bytes every
        /// advert_int until its priority, addresses or source change, and encoding them (with
        /// the checksum) anew each time was a fifth of an idle master's own CPU.
        var encoded: (advert: VRRPAdvert, endpoints: VRRPEndpoints, v3AsV2: Bool, payload: [UInt8])?
        /// Unicast VRRPv3 checksums the old way: configured, or since a peer's advert used it.
        lazy var usesOldChecksum = spec.oldUnicastChecksum == .always
        var ipIdentification: UInt16 = 0
        var lastHeardSequence: UInt32?

        init(spec: InstanceSpec, machine: VRRPStateMachine, channel: Channel, announcer: (any Announcer)?,
             core: VRRPInstanceConfig, vipSpecs: [IPAddress: AddressSpec]) {
            self.spec = spec
            self.machine = machine
            self.channel = channel
            self.announcer = announcer
            self.core = core
            self.vipSpecs = vipSpecs
        }

        /// The advert source in use.
        var source: IPAddress { machine.config.sourceAddress }
        var name: String { spec.name }
        var vrid: UInt8 { spec.vrid }
    }

    /// One socket, shared by every instance on the same interface, family and mode.
    final class Channel {
        struct Key: Hashable {
            var interface: String
            var family: AddressFamily
            var mode: VRRPChannelMode
            /// 112, or 51 for AH adverts.
            var ipProtocol: UInt8 = VRRPAdvert.ipProtocol
        }
        let key: Key
        let socket: any VRRPChannel
        init(key: Key, socket: any VRRPChannel) {
            self.key = key
            self.socket = socket
        }
    }

    private let loop: EventLoop
    private let clock: any DaemonClock
    private let network: any VRRPNetwork
    private let addresses: any AddressControl
    private let routing: (any RoutingControl)?
    /// keepalived's -V at stop: VIPs, virtual routes and rules stay.
    private var keepingOnStop = false
    /// The static addresses, routes and rules installed, for stop and reload.
    private var installedStatic = (addresses: [VIPSpec](), routes: [RouteDefinition](), rules: [RuleDefinition]())
    /// Routes and rules found deleted that could not be put back, logged once each.
    private var unrestorable: Set<String> = []
    private let scripts: ScriptHost
    private let trackers: TrackerHost
    private var logger: Logger
    private(set) var instances: [Instance] = []
    private(set) var groups: [GroupRuntime] = []
    /// Called on every instance's transition (route announcements and the IPVS sync daemon
    /// follow VRRP state); the states are read back through `isMaster`.
    var onStateChanged: () -> Void = {}
    /// Called when the netlink monitor reports an address added or deleted, and once a
    /// second without a monitor (ha_suspend follows the director's addresses).
    var onAddressesChanged: () -> Void = {}

    /// Whether the vrrp_instance or vrrp_sync_group `name` is MASTER (false if unknown).
    func isMaster(_ name: String) -> Bool {
        if let group = groups.first(where: { $0.name == name }) { return group.core.state == .master }
        return instances.first(where: { $0.name == name })?.machine.state == .master
    }
    private var channels: [Channel.Key: Channel] = [:]
    private var announcers: [String: any Announcer] = [:]
    /// The once-a-second pass: deleted routes put back, rejection summaries, and (without an
    /// address monitor) the look for VIPs someone deleted while we are MASTER.
    private var nextVIPCheck: Int64 = 0
    /// rtnetlink's address notifications: with them a deleted VIP is put back when the kernel
    /// reports it, and the addresses are dumped only every `safetyCheckInterval` in case a
    /// notification was missed; nil in hosts without one (they dump once a second).
    private var netlinkMonitor: Int32?
    private var nextSafetyCheck: Int64 = 0
    static let safetyCheckInterval: Int64 = 30_000_000
    /// keepalived's vrrp_startup_delay: until then no instance starts and adverts received are
    /// read and dropped, so a director that boots cannot take over before its links carry the
    /// master's adverts (the usual "nopreempt does not work" report).
    private var startupDelay: Int64 = 0
    private var delayedUntil: Int64?
    /// Packets read from one socket per wake: a flood on one link must not starve the timers
    /// and the other sockets; what is left is read on the next turn.
    static let packetsPerWake = 64

    /// keepalived's use_vmac: the macvlans the instances live on.
    private let vmacs: VMACHost
    /// keepalived's nftables rules: VMAC IGMP/MLD reports, no_accept drops.
    var firewall: FirewallHost?

    init(loop: EventLoop, clock: any DaemonClock, network: any VRRPNetwork, addresses: any AddressControl,
         routing: (any RoutingControl)?, links: (any LinkControl)? = nil, scripts: ScriptHost, trackers: TrackerHost, logger: Logger) {
        vmacs = VMACHost(links: links, addresses: addresses, logger: logger)
        self.loop = loop
        self.clock = clock
        self.network = network
        self.addresses = addresses
        self.routing = routing
        self.scripts = scripts
        self.trackers = trackers
        self.logger = logger
    }

    // MARK: Set-up

    /// Links looked up once per set-up or reload: a lookup is a getifaddrs and an address
    /// dump, and fifty instances with their VIPs on one link would otherwise repeat it.
    private var linkCache: [String: InterfaceInfo] = [:]

    private func link(_ name: String) throws(SystemError) -> InterfaceInfo {
        if let known = linkCache[name] { return known }
        let info = try addresses.interface(named: name)
        linkCache[name] = info
        linkIndexes[name] = info.index
        return info
    }

    /// The index each link had when sockets, GARP senders and VIP specs were made from it. A
    /// link deleted and created again (a veth or VLAN re-made, a driver reloaded) has a new
    /// one, and everything made from the old index fails with ENODEV: keepalived follows the
    /// new link, and so does Vigil.
    private var linkIndexes: [String: Int32] = [:]

    /// Links the instances use that now have another index: their instances get new sockets,
    /// senders and VIP specs, with state, timers and counters kept. Looked at on the monitor's
    /// link reports (once a second without it, and with the 30 s safety net).
    /// `awaitedOnly`: only links that were missing (index 0) or not ready, as on an address
    /// report: a new link may get the address its instances send from after it came up.
    private func followNewLinks(awaitedOnly: Bool = false) {
        var renewed: [String: (was: Int32, now: Int32)] = [:]
        for (name, index) in linkIndexes where !awaitedOnly || index == 0 {
            guard let info = try? addresses.interface(named: name), info.index != index else { continue }
            renewed[name] = (index, info.index)
        }
        guard !renewed.isEmpty else { return }
        let affected = instances.filter { instance in
            let spec = instance.spec
            return ([spec.interface, spec.channelInterface, spec.addressInterface] + (spec.virtualAddresses + spec.excludedAddresses).map(\.device))
                .contains { renewed[$0] != nil }
        }
        for key in Set(affected.map(\.channel.key)) {
            guard let channel = channels.removeValue(forKey: key) else { continue }
            loop.unwatch(channel.socket.fd)
            channel.socket.close()
        }
        linkCache = [:]
        defer { linkCache = [:] }
        let time = VRRPInstant(microseconds: clock.now())
        var ready = true
        for instance in affected {
            var fresh: Instance
            do { fresh = try prepare(instance.spec, keeping: instance) } catch {
                // Not ready yet (no address to send from, a VIP's device still missing): the
                // instance waits as for a missing link, in FAULT, and is tried again at the
                // next link or address report (an index no link has is never the link's).
                if waitingLogged.insert(instance.name).inserted { logger.notice("\(error): waiting for it in FAULT state") }
                fresh = awaitingLink(instance.spec, keeping: instance)
                ready = false
            }
            instance.channel = fresh.channel
            instance.announcer = fresh.announcer
            instance.deviceAnnouncers = fresh.deviceAnnouncers
            instance.vipSpecs = fresh.vipSpecs
            instance.encoded = nil
            instance.awaitingLink = fresh.awaitingLink
            if !fresh.awaitingLink {
                waitingLogged.remove(instance.name)
                if fresh.core != instance.core {
                    // The advert source of a link that was missing: the link's own address now.
                    instance.core = fresh.core
                    apply(instance.machine.handle(.configChanged(fresh.core), at: time), to: instance)
                }
            }
            reweigh(instance, at: time)
        }
        if ready {
            for (name, index) in renewed.sorted(by: { $0.key < $1.key }) {
                logger.notice(index.was == 0 ? "\(name) exists now (index \(index.now)): the instances on it take it"
                              : "\(name) was created again (index \(index.was), now \(index.now)): the VRRP sockets, GARP senders and VIPs on it follow the new link")
            }
        } else {
            for name in renewed.keys { linkIndexes[name] = 0 }
        }
        closeUnused()
    }

    /// Instances already logged as waiting for a link that is not ready, so each report of
    /// an address that is not yet the one needed does not log it again.
    private var waitingLogged: Set<String> = []

    /// Prepares an instance without starting it: its interface, source, socket, announcer and
    /// VIP specs. Nothing is changed on the machine yet, so a failure leaves no trace, except
    /// a VMAC (the socket needs it), which goes again when no instance ends up using it.
    private func prepare(_ spec: InstanceSpec, keeping old: Instance? = nil) throws(DaemonError) -> Instance {
        for case .configuration(let why) in spec.trackers.map(\.source) where old == nil {
            logger.info("(\(spec.name)) Cannot use \(why) - going to fault state")
        }
        let info: InterfaceInfo
        do { info = try link(spec.interface) } catch {
            guard dynamicInterfaces else { throw DaemonError("(\(spec.name)) interface \(spec.interface): \(error)") }
            return awaitingLink(spec, keeping: old)
        }
        let source = try resolveSource(spec, info: info, keeping: old)
        if let vmac = spec.vmac, let rule = spec.firewallVMAC {
            // The rule first: it matches the name, and the link's first reports follow at once.
            firewall?.addVMAC(rule)
            try vmacs.ensure(vmac, family: spec.family, otherFamilyAddresses: spec.excludedAddresses.contains { $0.address.family != spec.family },
                             instance: spec.name)
            if !vmac.transmitOnParent { vmacs.addSource(source, to: vmac, instance: spec.name) }
        }
        var core = spec.core
        core.sourceAddress = source
        let channel = try openChannel(channelKey(spec, source: source), owner: spec.name)
        var vipSpecs: [IPAddress: AddressSpec] = [:]
        for vip in spec.virtualAddresses + spec.excludedAddresses { vipSpecs[vip.address] = try addressSpec(vip, owner: spec.name) }
        let machine = old.map { $0.machine } ?? VRRPStateMachine(config: core, trackers: [])
        let announceOn: InterfaceInfo
        if spec.addressInterface == spec.interface { announceOn = info } else {
            do { announceOn = try link(spec.addressInterface) } catch {
                throw DaemonError("(\(spec.name)) interface \(spec.addressInterface): \(error)")
            }
        }
        let made = Instance(spec: spec, machine: machine, channel: channel, announcer: announcer(announceOn, spec.family),
                            core: core, vipSpecs: vipSpecs)
        for device in Set((spec.virtualAddresses + spec.excludedAddresses).map(\.device)) where device != spec.addressInterface {
            // A device that is missing (dynamic_interfaces) has no sender until it comes.
            if let info = try? link(device), let sender = announcer(info, spec.family) { made.deviceAnnouncers[device] = sender }
        }
        return made
    }

    /// keepalived's dynamic_interfaces for a link that does not exist (yet): the instance is
    /// made with a socket that sends nothing and VIP specs of index 0, its trackers see the
    /// link down (FAULT), and `followNewLinks` prepares it for real once the link is created.
    private func awaitingLink(_ spec: InstanceSpec, keeping old: Instance?) -> Instance {
        if !(old?.awaitingLink ?? false) {
            logger.notice("Configuration specifies interface \(spec.interface) which doesn't currently exist - will use if created")
        }
        linkIndexes[spec.interface] = 0
        var core = spec.core
        core.sourceAddress = spec.configuredSource ?? (spec.family == .ipv4 ? .v4(.any) : .v6(.any))
        let key = channelKey(spec, source: core.sourceAddress)
        let channel = channels[key] ?? Channel(key: key, socket: LinkAwaited(interface: spec.channelInterface))
        channels[key] = channel
        var vipSpecs: [IPAddress: AddressSpec] = [:]
        for vip in spec.virtualAddresses + spec.excludedAddresses { vipSpecs[vip.address] = addressSpec(vip, ifindex: (try? link(vip.device).index) ?? 0) }
        let instance = Instance(spec: spec, machine: old.map { $0.machine } ?? VRRPStateMachine(config: core, trackers: []), channel: channel,
                                announcer: nil, core: core, vipSpecs: vipSpecs)
        instance.awaitingLink = true
        return instance
    }

    /// The socket of an instance whose link does not exist: what it sends fails as a socket
    /// on a deleted link does, and it never has anything to read (it is not in the loop).
    final class LinkAwaited: VRRPChannel {
        let interface: String
        init(interface: String) { self.interface = interface }
        var fd: Int32 { -1 }
        func send(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, ttl: UInt8) throws(SystemError) {
            throw SystemError(errno: 19, operation: "sendto", interface: interface)
        }
        func sendPacket(_ packet: [UInt8], to destination: IPAddress) throws(SystemError) {
            throw SystemError(errno: 19, operation: "sendto", interface: interface)
        }
        func receive() throws(SystemError) -> ReceivedVRRPPacket? { nil }
        func close() {}
    }

    /// The configured source, else (IPv4) the interface's primary address or (IPv6) its own
    /// link-local address, never a link-local VIP that a crashed run left behind. A kept
    /// instance with no configured source keeps the one it had.
    private func resolveSource(_ spec: InstanceSpec, info: InterfaceInfo, keeping old: Instance?) throws(DaemonError) -> IPAddress {
        if let configured = spec.configuredSource { return configured }
        if let old, old.spec.configuredSource == nil, !old.awaitingLink { return old.source }
        switch spec.family {
        case .ipv4:
            guard let primary = info.primaryIPv4 else {
                throw DaemonError("(\(spec.name)) interface \(spec.interface) has no IPv4 address to send adverts from")
            }
            return .v4(primary)
        case .ipv6:
            let vips = Set(spec.virtualAddresses.map(\.address))
            let own = ((try? addresses.list(ifindex: info.index)) ?? []).lazy.compactMap { entry -> IPv6Address? in
                guard case .v6(let v6) = entry.address, v6.isLinkLocal, !vips.contains(entry.address) else { return nil }
                return v6
            }.first ?? info.linkLocalIPv6
            guard let own else {
                throw DaemonError("(\(spec.name)) interface \(spec.interface) has no IPv6 link-local address to send adverts from")
            }
            return .v6(own)
        }
    }

    private func openChannel(_ key: Channel.Key, owner: String) throws(DaemonError) -> Channel {
        if let existing = channels[key] { return existing }
        let socket: any VRRPChannel
        do { socket = try network.openChannel(interface: key.interface, family: key.family, mode: key.mode, ipProtocol: key.ipProtocol) } catch {
            throw DaemonError("(\(owner)) VRRP\(key.family == .ipv6 ? " IPv6" : "") socket on \(key.interface): \(error)")
        }
        let channel = Channel(key: key, socket: socket)
        channels[key] = channel
        loop.watch(socket.fd) { [unowned self] now in self.receive(on: channel, at: now) }
        return channel
    }

    private func promoteSecondaries() {
        for instance in instances where instance.spec.promoteSecondaries {
            vmacs.promoteSecondaries(on: instance.spec.interface, instance: instance.name)
        }
    }

    /// Sockets and GARP/NA senders no instance uses any more are closed (their descriptors
    /// leave the loop): after a reload, and after a refused one that had opened new ones.
    private func closeUnused() {
        let used = Set(instances.map { $0.channel.key })
        for (key, channel) in channels where !used.contains(key) {
            loop.unwatch(channel.socket.fd)
            channel.socket.close()
            channels[key] = nil
        }
        let senders = instances.compactMap(\.announcer) + instances.flatMap(\.deviceAnnouncers.values)
        announcers = announcers.filter { _, announcer in senders.contains { $0 === announcer } }
        vmacs.prune(keeping: Set(instances.compactMap { $0.spec.vmac?.name }))
        firewall?.keepDropped(for: Set(instances.map(\.name)))
        firewall?.setVMACs(Array(Set(instances.compactMap(\.spec.firewallVMAC))))
    }

    /// One sender per link and family. The key holds the link's index and MAC too, so a link
    /// deleted and created again (a new index, maybe a new MAC) gets a sender of its own.
    private func announcer(_ info: InterfaceInfo, _ family: AddressFamily) -> (any Announcer)? {
        let key = "\(info.name)|\(info.index)|\(info.mac)|\(family)"
        if let existing = announcers[key] { return existing }
        guard !info.isNoARP, let made = try? network.announcer(for: info, family: family) else { return nil }
        announcers[key] = made
        return made
    }

    private func addressSpec(_ vip: VIPSpec, owner: String) throws(DaemonError) -> AddressSpec {
        let ifindex: Int32
        do { ifindex = try link(vip.device).index } catch {
            guard dynamicInterfaces else { throw DaemonError("(\(owner)) interface \(vip.device) for address \(vip.address) does not exist") }
            // Index 0 is no link's: adding the VIP fails (logged) until the device comes.
            linkIndexes[vip.device] = 0
            ifindex = 0
        }
        return addressSpec(vip, ifindex: ifindex)
    }

    private func addressSpec(_ vip: VIPSpec, ifindex: Int32) -> AddressSpec {
        AddressSpec(ifindex: ifindex, address: vip.address, prefixLength: vip.prefixLength, label: vip.label,
                    scope: vip.scope, broadcast: vip.broadcast, noDAD: vip.noDAD)
    }

    /// The socket an instance shares with those of the same link, family, mode and protocol.
    private func channelKey(_ spec: InstanceSpec, source: IPAddress) -> Channel.Key {
        let mode: VRRPChannelMode = spec.multicastGroup.map { .multicast(group: $0) } ?? .unicast(local: source)
        let ipProtocol = spec.core.authentication.authType == .ipsecAH ? IPsecAH.ipProtocol : VRRPAdvert.ipProtocol
        return Channel.Key(interface: spec.channelInterface, family: spec.family, mode: mode, ipProtocol: ipProtocol)
    }

    /// keepalived's dynamic_interfaces, as the set-up or reload being prepared has it.
    private var dynamicInterfaces = false

    /// Every instance is prepared before any is kept, so a set-up error changes nothing.
    func setUp(_ setup: VRRPSetup) throws(DaemonError) {
        dynamicInterfaces = setup.dynamicInterfaces
        linkCache = [:]
        defer { linkCache = [:] }
        var prepared: [Instance] = []
        do {
            for spec in setup.instances { prepared.append(try prepare(spec)) }
        } catch {
            // The VMACs (and their rules) made before the failing instance go again.
            vmacs.removeAll()
            firewall?.removeAll()
            throw error
        }
        instances = prepared
        promoteSecondaries()
        if setup.disableLocalIGMP { vmacs.disableLocalIGMP() }
        groups = makeGroups(setup.groups, continuing: false)
        startupDelay = setup.startupDelay
        staticSpecs = setup
        announcementSpacing = (setup.garpInterval, setup.gnaInterval)
        logUnknownVRIDs = setup.logUnknownVRIDs
        closeUnused()
    }

    /// What `start` installs before any instance runs.
    private var staticSpecs = VRRPSetup()
    /// Announcements held back by vrrp_garp_interval / vrrp_gna_interval, in sending order,
    /// and when each interface may send its next one (keepalived queues them the same way).
    /// keepalived's smtp_alert for instances and sync groups; nil in hosts without mail.
    var mail: MailHost?
    private var pacedAnnouncements: [(instance: Instance, address: IPAddress)] = []
    private var nextAnnouncementAt: [String: Int64] = [:]
    private var announcementSpacing = (garp: Int64(0), gna: Int64(0))

    private func makeGroups(_ specs: [SyncGroupSpec], continuing: Bool) -> [GroupRuntime] {
        for instance in instances { instance.group = nil }
        var made: [GroupRuntime] = []
        for spec in specs {
            let members = spec.members.compactMap { name in instances.first { $0.name == name && $0.group == nil } }
            guard !members.isEmpty else {
                logger.warning("VRRP_Group(\(spec.name)) has no usable member: ignored")
                continue
            }
            if members.count == 1 && !continuing {
                logger.warning("VRRP_Group(\(spec.name)) has only 1 virtual router(s) - this probably isn't what you want")
            }
            let group = GroupRuntime(spec: spec, members: members, continuing: continuing)
            for (index, member) in members.enumerated() {
                member.group = group
                member.groupMember = index
            }
            made.append(group)
        }
        return made
    }

    func start(at now: Int64) {
        nextVIPCheck = now + 1_000_000
        nextSafetyCheck = now + Self.safetyCheckInterval
        if netlinkMonitor == nil, let fd = addresses.openNetlinkMonitor() {
            netlinkMonitor = fd
            trackers.linkEventsArrive = true
            loop.watch(fd) { [unowned self] now in
                let events = self.addresses.netlinkEvents(on: fd)
                if events.addressDeleted { self.restoreDeletedVIPs() }
                if events.addressAdded { self.followNewLinks(awaitedOnly: true) }
                if events.addressAdded || events.addressDeleted { self.addressesChanged(at: now) }
                if events.linkChanged {
                    self.followNewLinks()
                    self.trackers.checkLinks(at: now)
                }
            }
        }
        installStatic(staticSpecs)
        lookAtTrackedSources()
        if startupDelay > 0 {
            // As keepalived: leftovers go at once; the instances' timers count from the end
            // of the delay (keepalived shows them BACKUP meanwhile, Vigil INIT).
            delayedUntil = now + startupDelay
            logger.info("Delaying startup for \(Double(startupDelay) / 1e6) seconds")
            for instance in instances { removeLeftoverVIPs(instance) }
            return
        }
        for instance in instances { begin(instance, at: now) }
    }

    private func endStartupDelay(at now: Int64) {
        delayedUntil = nil
        for instance in instances where instance.machine.state == .initialize { begin(instance, at: now) }
    }

    /// An instance's start: leftover VIPs go (a crashed run's VIP would answer for us while we
    /// are BACKUP), its trackers are weighed, then the machine starts. The weighing yields no
    /// action of its own (a machine in INIT only records them), but in a sync group it may
    /// move running members: an instance added by a reload with a failed tracker faults them.
    /// The machine's own start asks for the leftover VIPs' removal too; they are gone already.
    private func begin(_ instance: Instance, at now: Int64) {
        removeLeftoverVIPs(instance)
        let time = VRRPInstant(microseconds: now)
        dispatch(.trackersChanged(trackerStates(instance)), to: instance, at: time)
        dispatch(.start, to: instance, at: time, keep: { target, action in
            if target === instance, case .removeVIPs = action { return false }
            return true
        })
    }

    private func removeLeftoverVIPs(_ instance: Instance) {
        for vip in instance.spec.virtualAddresses + instance.spec.excludedAddresses {
            // Index 0: the device does not exist yet (dynamic_interfaces), so nothing is left on it.
            guard let spec = instance.vipSpecs[vip.address], spec.ifindex != 0, (try? addresses.remove(spec)) != nil else { continue }
            logger.info("(\(instance.name)) removed \(vip.address) left by an earlier run")
        }
    }

    // MARK: Dispatch

    /// Feeds one event to an instance and carries out what comes back. A sync group member
    /// gets it through its `VRRPSyncGroup`, which applies the group rules and may move the
    /// other members too; `keep` filters the actions by the instance they are for (shutdown
    /// with -V, the VIP removal at start that already happened).
    func dispatch(_ event: VRRPEvent, to instance: Instance, at time: VRRPInstant,
                  keep: (Instance, VRRPAction) -> Bool = { _, _ in true }) {
        guard let group = instance.group else {
            apply(instance.machine.handle(event, at: time).filter { keep(instance, $0) }, to: instance)
            return
        }
        let outputs = group.core.handle(event, member: instance.groupMember, at: time)
        group.refreshMembers()
        for output in outputs {
            switch output {
            case .member(let index, let action):
                if keep(group.members[index], action) { apply([action], to: group.members[index]) }
            case .groupStateChanged(let from, let to):
                guard to != .initialize else { continue }
                logger.notice("VRRP_Group(\(group.name)) Syncing instances to \(stateName(to)) state (was \(stateName(from)))")
                if group.spec.smtpAlert { mailGroupChange(group, to: to) }
                scripts.notify(group: group.spec, state: stateName(to))
            }
        }
    }

    /// Routes and rules follow once all of a step's actions are done, so that a MASTER's come
    /// after its VIPs (a route with `src VIP` needs the address), as keepalived orders them.
    func apply(_ actions: [VRRPAction], to instance: Instance) {
        defer {
            syncRoutes(instance)
            syncDropRules(instance)
        }
        for action in actions {
            instance.stats.record(action)
            switch action {
            case .sendAdvert(let advert):
                send(advert, from: instance)
                if instance.machine.state == .master, advert.priority > 0 { sendExtraAnnouncements(instance) }
            case .sendGARP(let vips, let rounds):
                announce(vips, rounds: rounds, from: instance)
            case .addVIPs(let vips):
                for vip in vips { changeVIP(vip, add: true, instance) }
            case .removeVIPs(let vips):
                for vip in vips { changeVIP(vip, add: false, instance) }
            case .runNotify(let state, let priority):
                scripts.notify(instance: instance.spec, state: state.rawValue, priority: Int(priority))
            case .stateChanged(let from, let to, let reason):
                logger.notice("(\(instance.name)) Entering \(stateName(to)) STATE (\(reason.rawValue), was \(stateName(from)))")
                instance.lastTransition = (clock.wallClock(), from, to, reason)
                onStateChanged()
                if to == .master { instance.ahSequence.becameMaster() }
                // garp_extra_if counts from becoming MASTER, as keepalived's vmac_garp_timer.
                instance.nextExtraAnnouncement = to == .master && instance.spec.extraAnnouncementInterval > 0
                    ? clock.now() + instance.spec.extraAnnouncementInterval : nil
                if instance.spec.smtpAlert { mailStateChange(instance, to: to) }
            case .countReceiveError(let error):
                noteRejection(error.counterName, from: nil, instance)
            case .masterReceivedLowerPriority(let source, let priority):
                if instance.ahKey != nil, let heard = instance.lastHeardSequence {
                    logger.info("(\(instance.name)) IPSEC-AH : Syncing seq_num - Increment seq")
                    instance.ahSequence.heardLowerPriority(heard)
                }
                logger.info("(\(instance.name)) Received advert from \(source) with lower priority \(priority), ours \(instance.machine.effectivePriority), forcing new election")
                scripts.notifyLowerPriority(instance: instance.spec, priority: Int(instance.machine.effectivePriority))
            }
        }
    }

    /// keepalived's vrrp_send_vmac_update, looked at after each of a MASTER's adverts: once
    /// garp_extra_if has passed, one gratuitous ARP (NA) on each of the spec's extra links, for
    /// the first VIP there, so the switches keep those MACs.
    private func sendExtraAnnouncements(_ instance: Instance) {
        guard let due = instance.nextExtraAnnouncement, clock.now() > due else { return }
        instance.nextExtraAnnouncement = clock.now() + instance.spec.extraAnnouncementInterval
        let spec = instance.spec
        var done: Set<String> = []
        for vip in spec.virtualAddresses + spec.excludedAddresses where vip.address.family == spec.family {
            guard spec.extraAnnouncementDevices.contains(vip.device), done.insert(vip.device).inserted,
                  !instance.vipsNotSet.contains(vip.address) else { continue }
            sendAnnouncement(vip.address, from: instance)
        }
    }

    private func send(_ advert: VRRPAdvert, from instance: Instance) {
        let destinations: [IPAddress] = instance.spec.multicastGroup.map { [$0] } ?? instance.spec.unicastPeers
        if let key = instance.ahKey { return sendAH(advert, to: destinations, key: key, from: instance) }
        let v3AsV2 = instance.machine.config.v3ChecksumAsV2
        for destination in destinations {
            // keepalived's old unicast VRRPv3 checksum covered the multicast group, not the peer.
            let covered = instance.usesOldChecksum && !destination.isMulticast ? .v4(instance.spec.oldChecksumGroup) : destination
            guard let endpoints = VRRPEndpoints(source: instance.source, destination: covered) else { continue }
            let payload: [UInt8]
            if let last = instance.encoded, last.advert == advert, last.endpoints == endpoints, last.v3AsV2 == v3AsV2 {
                payload = last.payload
            } else {
                payload = advert.encode(endpoints: endpoints, v3ChecksumAsV2: v3AsV2)
                instance.encoded = (advert, endpoints, v3AsV2, payload)
            }
            do {
                try instance.channel.socket.send(payload, from: instance.source, to: destination,
                                                 ttl: destination.isMulticast ? 255 : instance.spec.unicastTTL)
            } catch {
                sendFailed(error, instance)
            }
        }
    }

    /// Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6), keepalived's words.
    /// Excluded addresses of the other family are held but not announced (keepalived announces
    /// them too): the announcer speaks the instance's family only.
    private func announce(_ addresses: [IPAddress], rounds: Int, from instance: Instance) {
        let vips = addresses.filter { $0.family == instance.spec.family }
        guard instance.announcer != nil || !instance.deviceAnnouncers.isEmpty, rounds > 0, !vips.isEmpty else { return }
        let v6 = instance.spec.family == .ipv6
        let spacing = v6 ? announcementSpacing.gna : announcementSpacing.garp
        for _ in 0..<max(rounds, 0) {
            for vip in vips {
                if spacing > 0 { pacedAnnouncements.append((instance, vip)) } else { sendAnnouncement(vip, from: instance) }
            }
        }
        if spacing > 0 { sendPacedAnnouncements(at: clock.now()) }
        if let first = vips.first {
            let what = v6 ? "Unsolicited Neighbour Adverts" : "gratuitous ARPs"
            logger.info("(\(instance.name)) Sending/queueing \(what) on \(instance.spec.addressInterface) for \(first)\(vips.count > 1 ? " and \(vips.count - 1) more" : "")")
        }
    }

    private func sendAnnouncement(_ vip: IPAddress, from instance: Instance) {
        let device = instance.vipDevices[vip] ?? instance.spec.addressInterface
        let own = device == instance.spec.addressInterface
        guard let announcer = own ? instance.announcer : instance.deviceAnnouncers[device] else { return }
        do {
            try announcer.announce(vip)
            instance.stats.announcementsSent += 1
        } catch {
            logger.error("(\(instance.name)) \(vip.family == .ipv6 ? "unsolicited NA" : "gratuitous ARP") for \(vip) on \(device): \(error)")
        }
    }

    /// keepalived's AH advert: one sequence number and IP id per advert, its copies to every
    /// peer with their own ICV (the destination is covered).
    private func sendAH(_ advert: VRRPAdvert, to destinations: [IPAddress], key: [UInt8], from instance: Instance) {
        guard case .v4(let source) = instance.source, let sequence = instance.ahSequence.nextToSend() else { return }
        instance.ipIdentification = instance.ipIdentification == .max ? 1 : instance.ipIdentification + 1
        for destination in destinations {
            guard case .v4(let to) = destination else { continue }
            let payload = advert.encode(endpoints: .ipv4(source: source, destination: to))
            let packet = IPsecAH.encodeIPv4(advert: payload, source: source, destination: to,
                                            ttl: to.isMulticast ? 255 : instance.spec.unicastTTL, identification: instance.ipIdentification,
                                            sequence: sequence, hmac: { Digest.hmacMD5(key: key, $0) })
            do { try instance.channel.socket.sendPacket(packet, to: destination) } catch {
                sendFailed(error, instance)
            }
        }
    }

    private func sendFailed(_ error: SystemError, _ instance: Instance) {
        instance.stats.sendErrors += 1
        logger.error("(\(instance.name)) cannot send advert on \(instance.spec.channelInterface): \(error)")
    }

    /// keepalived's vrrp_in_chk_ipsecah: the ICV, the SPI (the sender's address), then the
    /// sequence number against replay. nil when the advert passes.
    private func ahRejection(_ packet: VRRPAHPacket, key: [UInt8], _ instance: Instance) -> String? {
        let icv = Array(Digest.hmacMD5(key: key, packet.icvInput).prefix(IPsecAH.icvLength))
        guard constantTimeEqual(icv, packet.icv) else {
            return "(\(instance.name)) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !"
        }
        guard packet.spi == packet.ip.source.value else {
            return "IPSEC AH : invalid IPSEC SPI value. \(packet.ip.source.value) and expect \(packet.spi)"
        }
        let counter = instance.ahSequence.counter
        guard instance.ahSequence.accept(packet.sequence, asBackup: instance.machine.state == .backup) else {
            return "(\(instance.name)) IPSEC-AH : sequence number \(packet.sequence) already processed. Packet dropped. Local(\(counter))"
        }
        return nil
    }

    /// Which clock paces an announcement: keepalived keeps the GARP and the NA clock of an
    /// interface apart.
    private static func pacingKey(_ entry: (instance: Instance, address: IPAddress)) -> String {
        "\(entry.instance.vipDevices[entry.address] ?? entry.instance.spec.addressInterface)|\(entry.address.family)"
    }

    /// Sends the held-back announcements whose interface may send again, each interface at
    /// its own pace. One that is no longer MASTER drops its own (keepalived's
    /// vrrp_remove_delayed_arp).
    private func sendPacedAnnouncements(at now: Int64) {
        // By state only: a reload hands a kept MASTER's queue to a new object before the
        // instance list has it, and a removed instance is stopped first.
        pacedAnnouncements.removeAll { $0.instance.machine.state != .master }
        var waiting: [(instance: Instance, address: IPAddress)] = []
        for entry in pacedAnnouncements {
            let key = Self.pacingKey(entry)
            guard nextAnnouncementAt[key].map({ $0 <= now }) ?? true else { waiting.append(entry); continue }
            sendAnnouncement(entry.address, from: entry.instance)
            let spacing = entry.address.family == .ipv6 ? announcementSpacing.gna : announcementSpacing.garp
            nextAnnouncementAt[key] = now + spacing
        }
        pacedAnnouncements = waiting
    }

    private func changeVIP(_ vip: IPAddress, add: Bool, _ instance: Instance) {
        guard let spec = instance.vipSpecs[vip] else { return }
        change(spec, add: add, on: instance)
    }

    /// Adds or removes one address; an add that failed is remembered in `vipsNotSet`.
    private func change(_ spec: AddressSpec, add: Bool, on instance: Instance) {
        var done = true
        do {
            if add { try addresses.add(spec) } else { try addresses.remove(spec) }
        } catch AddressError.exists where add {
            // Already there (left by us or an operator): it serves the same purpose.
        } catch AddressError.notFound where !add {
        } catch {
            done = !add
            logger.error("(\(instance.name)) cannot \(add ? "add" : "remove") \(spec.address): \(error)")
        }
        if done { instance.vipsNotSet.remove(spec.address) } else { instance.vipsNotSet.insert(spec.address) }
    }

    // MARK: Receive and timers

    struct UnmatchedPacketKey: Hashable {
        var interface: String
        var family: AddressFamily
        var reason: String
    }
    /// Packets no instance could be given (too short to name a VRID, or a VRID nobody here
    /// runs): counted by interface, so a flood of them shows in the metrics, not only the
    /// ones that reached an instance.
    private(set) var unmatchedPackets: [UnmatchedPacketKey: UInt64] = [:]

    /// `log_unknown_vrids`: keepalived logs each such advert; here the first per VRID and
    /// interface in a window, and a count of the rest.
    private var logUnknownVRIDs = false
    private var unknownVRIDLog = RejectionLog()

    private func receive(on channel: Channel, at now: Int64) {
        for _ in 0..<Self.packetsPerWake {
            let packet: ReceivedVRRPPacket?
            do { packet = try channel.socket.receive() } catch {
                logger.error("receive on \(channel.key.interface): \(error)")
                return
            }
            guard let packet else { return }
            guard delayedUntil == nil else { continue }
            var header = channel.key.family == .ipv4 ? (packet.bytes.first.map { Int($0 & 0x0F) * 4 } ?? 0) : 40
            if channel.key.ipProtocol == IPsecAH.ipProtocol { header += IPsecAH.headerLength }
            guard packet.bytes.count > header + 1 else {
                unmatchedPackets[UnmatchedPacketKey(interface: channel.key.interface, family: channel.key.family, reason: "truncated"), default: 0] += 1
                continue
            }
            let vrid = packet.bytes[header + 1]
            guard let instance = instances.first(where: { $0.channel === channel && $0.vrid == vrid }) else {
                unmatchedPackets[UnmatchedPacketKey(interface: channel.key.interface, family: channel.key.family, reason: "unknown_vrid"), default: 0] += 1
                if logUnknownVRIDs, unknownVRIDLog.note("VRID \(vrid) on \(channel.key.interface)", at: now) {
                    logger.info("Unknown VRID(\(vrid)) received on interface(\(channel.key.interface)). ignoring...")
                }
                continue
            }
            do {
                let advert: VRRPReceivedAdvert
                if let key = instance.ahKey {
                    let decoded = try IPsecAH.decodeIPv4(packet.bytes)
                    if let why = ahRejection(decoded, key: key, instance) {
                        logger.info("\(why)")
                        instance.stats.recordReceived(decoded.ip.advert)
                        apply([.countReceiveError(.authFailure)], to: instance)
                        continue
                    }
                    instance.lastHeardSequence = decoded.sequence
                    advert = VRRPReceivedAdvert(advert: decoded.ip.advert, source: .v4(decoded.ip.source), ttl: decoded.ip.ttl,
                                                isMulticast: decoded.ip.destination.isMulticast)
                } else if channel.key.family == .ipv4 {
                    let decoded = try decodeUnicastAware(packet.bytes, instance)
                    advert = VRRPReceivedAdvert(advert: decoded.advert, source: .v4(decoded.source), ttl: decoded.ttl,
                                                isMulticast: decoded.destination.isMulticast)
                } else {
                    let decoded = try decodeIPv6Packet(packet.bytes)
                    advert = VRRPReceivedAdvert(advert: decoded.advert, source: .v6(decoded.source),
                                                ttl: packet.hopLimitKnown ? decoded.hopLimit : nil,
                                                isMulticast: decoded.destination.isMulticast)
                }
                instance.stats.recordReceived(advert.advert)
                dispatch(.packetReceived(advert), to: instance, at: VRRPInstant(microseconds: now))
            } catch {
                instance.stats.recordDecodeFailure(error)
                noteRejection(error.counterName, from: packet.source, instance)
            }
        }
    }

    /// An IPv4 advert, with keepalived's old unicast checksum when the instance uses it; one
    /// that fails the new checksum but passes the old one switches the instance to the old
    /// one (unless `old_unicast_checksum never`), as keepalived 2.2.7 does.
    private func decodeUnicastAware(_ bytes: [UInt8], _ instance: Instance) throws(VRRPDecodeError) -> VRRPIPv4Packet {
        let v3AsV2 = instance.machine.config.v3ChecksumAsV2
        let group = instance.spec.oldChecksumGroup
        let unicast = !instance.spec.unicastPeers.isEmpty
        if unicast && instance.usesOldChecksum {
            return try decodeIPv4Packet(bytes, v3ChecksumAsV2: v3AsV2, checksumDestination: group)
        }
        do {
            return try decodeIPv4Packet(bytes, v3ChecksumAsV2: v3AsV2)
        } catch .badChecksum where unicast && instance.spec.oldUnicastChecksum == nil {
            guard let decoded = try? decodeIPv4Packet(bytes, v3ChecksumAsV2: v3AsV2, checksumDestination: group),
                  decoded.destination != group else { throw .badChecksum }
            instance.usesOldChecksum = true
            logger.info("(\(instance.name)) Setting unicast VRRPv3 checksum to old version")
            return decoded
        }
    }

    /// While a reload reads a large file the loop does not turn: a MASTER's adverts and GARP
    /// bursts that fall due are sent from here. A BACKUP's down timer is left for the next
    /// turn, which first reads the adverts that queued meanwhile: expiring it now could take
    /// over from a master that is alive.
    func sendDueAdverts(at now: Int64) { fireDueTimers(at: now, mastersOnly: true) }

    private func fireDueTimers(at now: Int64, mastersOnly: Bool) {
        let time = VRRPInstant(microseconds: now)
        for instance in instances where !mastersOnly || instance.machine.state == .master {
            guard let deadline = instance.machine.nextDeadline, deadline <= time else { continue }
            dispatch(.timerFired, to: instance, at: time)
        }
    }

    /// With an address monitor and no tracked route, the once-a-second pass needs no wake of
    /// its own: it runs at the first wake after it is due (an advert, a packet).
    private var needsTimedPass: Bool {
        netlinkMonitor == nil || !installedStatic.routes.isEmpty || !installedStatic.rules.isEmpty
            || instances.contains { $0.routesInstalled }
    }

    var nextDeadline: Int64? {
        if let delayedUntil { return delayedUntil }
        var earliest = instances.isEmpty || !needsTimedPass ? nil : nextVIPCheck
        for entry in pacedAnnouncements {
            if let at = nextAnnouncementAt[Self.pacingKey(entry)], at < (earliest ?? .max) { earliest = at }
        }
        for instance in instances {
            if let d = instance.machine.nextDeadline?.microseconds, d < (earliest ?? .max) { earliest = d }
        }
        return earliest
    }

    func runDueWork(at now: Int64) {
        if let delayedUntil {
            guard now >= delayedUntil else { return }
            endStartupDelay(at: now)
        }
        fireDueTimers(at: now, mastersOnly: false)
        if !pacedAnnouncements.isEmpty { sendPacedAnnouncements(at: now) }
        if now >= nextVIPCheck {
            nextVIPCheck = now + 1_000_000
            if netlinkMonitor == nil || now >= nextSafetyCheck {
                nextSafetyCheck = now + Self.safetyCheckInterval
                followNewLinks()
                restoreDeletedVIPs()
            }
            if netlinkMonitor == nil { addressesChanged(at: now) }
            restoreDeletedRoutes()
            for instance in instances {
                guard let summary = instance.rejections.summary(at: now) else { continue }
                logger.warning("(\(instance.name)) \(summary)")
            }
            if let summary = unknownVRIDLog.summary(at: now, counted: "adverts for VRIDs no instance here runs") { logger.info("\(summary)") }
        }
    }

    /// A rejected or flagged advert: the first of each reason in a window is logged, the rest
    /// only counted and summed up once a window, so a flood of bad packets cannot flood the log.
    private func noteRejection(_ reason: String, from source: IPAddress?, _ instance: Instance) {
        guard instance.rejections.note(reason, at: clock.now()) else { return }
        let origin = source.map { " from \($0)" } ?? ""
        logger.warning("(\(instance.name)) advert\(origin) counted as \(reason) (further ones are summed up every \(RejectionLog.window / 1_000_000) s)")
    }

    // MARK: Trackers

    func trackerStates(_ instance: Instance) -> [VRRPTracker] {
        let missing = sourceMissing.contains(instance.name)
        // A link awaited (dynamic_interfaces, or made again without its address yet) is down
        // for its instance whatever its flags say: it has no socket to send or hear adverts on.
        let interfaceUp: (String) -> Bool? = instance.awaitingLink
            ? { [trackers] name in name == instance.spec.interface ? false : trackers.interfaceUp(name) } : trackers.interfaceUp
        return TrackerWeighing.trackers(instance.spec.trackers, interfaceUp: interfaceUp, script: trackers.verdict,
                                        fileValue: trackers.fileValue, processUp: trackers.processUp, sourcePresent: { _ in !missing })
    }

    /// An address came or went (or, without the monitor, may have): ha_suspend's hook and
    /// track_src_ip follow.
    private func addressesChanged(at now: Int64) {
        onAddressesChanged()
        if lookAtTrackedSources() { trackersChanged(at: now) }
    }

    /// track_src_ip: the instances whose configured source is not on their interface now.
    private var sourceMissing: Set<String> = []

    /// Looks at the tracked sources again (at start, at a reload, on each address event, once
    /// a second without the netlink monitor); true when one came or went.
    @discardableResult
    private func lookAtTrackedSources() -> Bool {
        var missing: Set<String> = []
        for instance in instances {
            guard let address = instance.spec.trackers.lazy.compactMap({ rule -> IPAddress? in
                if case .sourceAddress(let address) = rule.source { address } else { nil }
            }).first else { continue }
            let index = try? addresses.interface(named: instance.spec.interface).index
            let present = index.flatMap { try? addresses.list(ifindex: $0) }?.contains { $0.address == address } ?? false
            if !present { missing.insert(instance.name) }
        }
        guard missing != sourceMissing else { return false }
        for instance in instances where missing.contains(instance.name) != sourceMissing.contains(instance.name) {
            let source = instance.spec.configuredSource.map { "\($0)" } ?? "?"
            if missing.contains(instance.name) {
                logger.info("(\(instance.name)) track_src_ip: source address \(source) is not on \(instance.spec.interface) - going to fault state")
            } else {
                logger.info("(\(instance.name)) track_src_ip: source address \(source) is back on \(instance.spec.interface)")
            }
        }
        sourceMissing = missing
        return true
    }

    /// A verdict or link changed: every instance is re-weighed with the full current set.
    func trackersChanged(at now: Int64) {
        let time = VRRPInstant(microseconds: now)
        for instance in instances { reweigh(instance, at: time) }
    }

    private func reweigh(_ instance: Instance, at time: VRRPInstant) {
        let before = instance.machine.effectivePriority
        dispatch(.trackersChanged(trackerStates(instance)), to: instance, at: time)
        if instance.machine.effectivePriority != before {
            logger.info("(\(instance.name)) Changing effective priority from \(before) to \(instance.machine.effectivePriority)")
            if instance.spec.notifyPriorityChanges {
                scripts.fifos.priorityChanged(instance: instance.name, isMaster: instance.machine.state == .master,
                                              priority: Int(instance.machine.effectivePriority))
            }
        }
    }

    /// See `VIPRestore`: a VIP someone deleted while we are MASTER is put back at once.
    private func restoreDeletedVIPs() {
        var present: [String: Set<IPAddress>] = [:]
        for instance in instances where instance.machine.state == .master {
            let held = instance.spec.virtualAddresses + instance.spec.excludedAddresses
            for vip in held where present[vip.device] == nil {
                guard let ifindex = instance.vipSpecs[vip.address]?.ifindex else { continue }
                present[vip.device] = Set(((try? addresses.list(ifindex: ifindex)) ?? []).map(\.address))
            }
            for vip in VIPRestore.missing(held, present: present) {
                logger.warning("(\(instance.name)) VIP \(vip.address) was deleted from the interface while MASTER: adding it back")
                instance.stats.vipsRestored += 1
                changeVIP(vip.address, add: true, instance)
                announce([vip.address], rounds: 1, from: instance)
            }
        }
    }

    /// keepalived watches its routes and rules: a static one someone deletes is put back, and a
    /// virtual one deleted while MASTER sends the instance to BACKUP, a flap that leaves the
    /// VIPs unserved for a master-down interval when no better router exists. Vigil puts both
    /// back, as it does VIPs. Asked once a second by adding again (the kernel says "exists"
    /// for one still there); one that cannot be put back is logged once until it can.
    private func restoreDeletedRoutes() {
        guard let routing else { return }
        var held = [(owner: "static_routes", routes: installedStatic.routes, rules: installedStatic.rules)]
        for instance in instances where instance.routesInstalled {
            held.append(("(\(instance.name))", instance.spec.virtualRoutes, instance.spec.virtualRules))
        }
        for (owner, routes, rules) in held {
            for route in routes where route.tracked {
                restore({ "route \(Self.describe(route))" }, owner) { () throws(RouteError) in try routing.add(route) }
            }
            for rule in rules where rule.tracked {
                restore({ Self.describe(rule) }, owner) { () throws(RouteError) in try routing.add(rule) }
            }
        }
    }

    /// `what` is built only when something is to be said: the pass runs every second.
    private func restore(_ what: () -> String, _ owner: String, _ add: () throws(RouteError) -> Void) {
        do {
            try add()
            unrestorable.remove(owner + " " + what())
            logger.warning("\(owner) \(what()) was deleted: added it back")
        } catch .exists {
            if !unrestorable.isEmpty { unrestorable.remove(owner + " " + what()) }
        } catch {
            if unrestorable.insert(owner + " " + what()).inserted { logger.error("\(owner) \(what()) is missing and cannot be added back: \(error)") }
        }
    }

    // MARK: Reload

    /// Everything a reload needs is prepared first (interfaces, sources, sockets, VIP
    /// specs): if any of it fails, nothing has changed and the reload is refused.
    struct PreparedReload {
        var plan: VRRPReloadPlan
        var setup: VRRPSetup
        /// By new index: the prepared runtime of every kept and added instance.
        var prepared: [Int: Instance]
    }

    func prepareReload(to setup: VRRPSetup, plan: VRRPReloadPlan) throws(DaemonError) -> PreparedReload {
        linkCache = [:]
        defer { linkCache = [:] }
        let wasDynamic = dynamicInterfaces
        dynamicInterfaces = setup.dynamicInterfaces
        var prepared: [Int: Instance] = [:]
        do {
            for kept in plan.kept { prepared[kept.new] = try prepare(setup.instances[kept.new], keeping: instances[kept.old]) }
            for index in plan.added { prepared[index] = try prepare(setup.instances[index]) }
        } catch {
            dynamicInterfaces = wasDynamic
            // Sockets opened for the refused reload go again.
            closeUnused()
            throw error
        }
        return PreparedReload(plan: plan, setup: setup, prepared: prepared)
    }

    /// Carries out a prepared reload: removed instances leave as on stop (keepalived notifies
    /// DELETED, or FAULT without notify_deleted), kept ones take their new settings in place
    /// (state, timers and master knowledge kept), added ones start as at start-up, and the
    /// sync groups are rebuilt around their members without a transition.
    /// `restateFIFOs`: fifo_write_vrrp_states_on_reload, which has the sync groups and the
    /// instances that went through the reload in their state write their line again.
    func commitReload(_ reload: PreparedReload, at now: Int64, restateFIFOs: Bool = false) {
        let time = VRRPInstant(microseconds: now)
        for index in reload.plan.removed { retire(instances[index], at: time) }
        // Every new index is kept or added (the plan covers them all), so the new list is
        // in configuration order.
        var next = reload.prepared
        for kept in reload.plan.kept {
            next[kept.new] = continueInstance(instances[kept.old], as: reload.prepared[kept.new]!, unchanged: kept.isUnchanged, at: time)
        }
        instances = reload.setup.instances.indices.map { next[$0]! }
        promoteSecondaries()
        lookAtTrackedSources()
        groups = makeGroups(reload.setup.groups, continuing: true)
        installStatic(reload.setup)
        announcementSpacing = (reload.setup.garpInterval, reload.setup.gnaInterval)
        logUnknownVRIDs = reload.setup.logUnknownVRIDs
        // An instance that left its group must not keep what the group last told it: held
        // back from MASTER, or faulted by another member.
        for instance in instances where instance.group == nil {
            if !instance.machine.syncPermitsMaster { apply(instance.machine.handle(.sync(.permitMaster(true)), at: time), to: instance) }
            if instance.machine.groupFault { apply(instance.machine.handle(.sync(.groupFault(false)), at: time), to: instance) }
        }
        closeUnused()
        // During the start-up delay an added instance starts with the others when it ends.
        if delayedUntil == nil { for index in reload.plan.added { begin(instances[index], at: now) } }
        trackersChanged(at: now)
        guard restateFIFOs else { return }
        for group in groups where group.core.state != .initialize { scripts.fifos.group(group.name, state: stateName(group.core.state)) }
        for kept in reload.plan.kept where instances[kept.new].machine.state != .initialize {
            let instance = instances[kept.new]
            scripts.fifos.instance(instance.name, state: instance.machine.state.rawValue, priority: Int(instance.machine.effectivePriority))
        }
    }

    private func retire(_ instance: Instance, at time: VRRPInstant) {
        let deleted = instance.spec.notify.deleted != nil ? "DELETED" : "FAULT"
        let wasFault = instance.machine.state == .fault
        logger.notice("(\(instance.name)) removed from the configuration: stopping")
        instance.deleted = true
        instance.group = nil
        apply(instance.machine.handle(.shutdown, at: time).filter { action in
            if case .runNotify = action { return false }
            return true
        }, to: instance)
        // keepalived sends nothing for an instance that was already in FAULT unless
        // notify_deleted asks for it.
        if !(wasFault && deleted == "FAULT") {
            scripts.notify(instance: instance.spec, state: deleted, priority: Int(instance.machine.effectivePriority))
        }
    }

    /// A kept instance: the old runtime's machine, counters and state go on under the new
    /// spec. VIP specs of both are known while the machine applies the change, so a removed
    /// VIP is taken off with exactly the prefix and label it was added with.
    private func continueInstance(_ old: Instance, as fresh: Instance, unchanged: Bool, at time: VRRPInstant) -> Instance {
        fresh.stats = old.stats
        fresh.lastTransition = old.lastTransition
        fresh.vipsNotSet = old.vipsNotSet.filter { fresh.vipSpecs[$0] != nil }
        fresh.routesInstalled = old.routesInstalled
        fresh.lastMailedState = old.lastMailedState
        fresh.ahSequence = old.ahSequence
        fresh.ipIdentification = old.ipIdentification
        guard !unchanged else { return fresh }
        let spec = fresh.spec
        if old.name != spec.name { logger.notice("(\(spec.name)) is (\(old.name)) renamed: the same virtual router, state kept") }
        let newSpecs = fresh.vipSpecs
        fresh.vipSpecs = old.vipSpecs.merging(newSpecs) { _, new in new }
        let wasMaster = fresh.machine.state == .master
        apply(fresh.machine.handle(.configChanged(fresh.core), at: time), to: fresh)
        // Same address, new prefix, label, scope or device: re-added in its new form.
        if wasMaster {
            var readded: [IPAddress] = []
            for (address, spec) in newSpecs {
                guard let before = old.vipSpecs[address], before != spec else { continue }
                change(before, add: false, on: fresh)
                change(spec, add: true, on: fresh)
                readded.append(address)
            }
            if !readded.isEmpty { announce(readded.sorted(), rounds: spec.core.garp.masterRepeat, from: fresh) }
        }
        fresh.vipSpecs = newSpecs
        reloadRoutes(old.spec, fresh)
        syncRoutes(fresh)
        return fresh
    }

    /// no_accept with `nftables`: a MASTER that does not own its addresses drops traffic for
    /// all it holds, whatever a step (or a reload's change) added or removed.
    private func syncDropRules(_ instance: Instance) {
        guard let firewall, firewall.dropRulesAsked else { return }
        let holding = instance.spec.noAccept && instance.machine.state == .master && !instance.deleted
        firewall.setDropped(holding ? instance.machine.config.heldAddresses : [], for: instance.name)
    }

    // MARK: Mail

    /// keepalived's vrrp_smtp_notifier: one mail per state the instance enters, not twice the
    /// same, none for FAULT with no_email_faults.
    private func mailStateChange(_ instance: Instance, to state: VRRPState) {
        let text: (String, String)? = switch state {
        case .master: ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <=")
        case .backup: ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <=")
        case .fault: ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <=")
        case .stopped: instance.deleted ? ("Deleted", "=> VRRP Deleted at reload <=") : ("Stopping", "=> VRRP Instance stopping <=")
        case .initialize: nil
        }
        mail("VRRP Instance \(instance.name)", entering: state, last: &instance.lastMailedState, text)
    }

    /// vrrp_sync_smtp_notifier: the same for a sync group.
    private func mailGroupChange(_ group: GroupRuntime, to state: VRRPState) {
        let text: (String, String)? = switch state {
        case .master: ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <=")
        case .backup: ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <=")
        case .fault: ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <=")
        case .stopped: ("Stopping", "=> All VRRP group instances are now stopping <=")
        case .initialize: nil
        }
        mail("VRRP Group \(group.name)", entering: state, last: &group.lastMailedState, text)
    }

    private func mail(_ what: String, entering state: VRRPState, last: inout VRRPState?, _ text: (subject: String, body: String)?) {
        guard let mail, let settings = mail.settings, last != state, let text else { return }
        if state == .fault && settings.noEmailFaults { return }
        last = state
        mail.send(about: what, text.subject, body: text.body)
    }

    // MARK: Routes and rules

    /// virtual_routes, then virtual_rules, when the instance becomes MASTER (after its VIPs,
    /// as keepalived); rules, then routes, when it leaves MASTER, unless -V keeps them at stop.
    private func syncRoutes(_ instance: Instance) {
        let wanted = instance.machine.state == .master
        guard wanted != instance.routesInstalled, !instance.spec.virtualRoutes.isEmpty || !instance.spec.virtualRules.isEmpty else { return }
        if !wanted && keepingOnStop { return }
        instance.routesInstalled = wanted
        if wanted {
            for route in instance.spec.virtualRoutes { change(route, add: true, owner: "(\(instance.name))") }
            for rule in instance.spec.virtualRules { change(rule, add: true, owner: "(\(instance.name))") }
        } else {
            for rule in instance.spec.virtualRules { change(rule, add: false, owner: "(\(instance.name))") }
            for route in instance.spec.virtualRoutes { change(route, add: false, owner: "(\(instance.name))") }
        }
    }

    /// A kept MASTER whose routes or rules changed in a reload: the gone ones leave, the new
    /// ones come; the rest stay untouched.
    private func reloadRoutes(_ old: InstanceSpec, _ fresh: Instance) {
        guard fresh.routesInstalled else { return }
        let owner = "(\(fresh.name))"
        for rule in old.virtualRules where !fresh.spec.virtualRules.contains(rule) { change(rule, add: false, owner: owner) }
        for route in old.virtualRoutes where !fresh.spec.virtualRoutes.contains(route) { change(route, add: false, owner: owner) }
        for route in fresh.spec.virtualRoutes where !old.virtualRoutes.contains(route) { change(route, add: true, owner: owner) }
        for rule in fresh.spec.virtualRules where !old.virtualRules.contains(rule) { change(rule, add: true, owner: owner) }
        if fresh.spec.virtualRoutes.isEmpty && fresh.spec.virtualRules.isEmpty { fresh.routesInstalled = false }
    }

    private func change(_ route: RouteDefinition, add: Bool, owner: String) {
        routingChange(add, "route \(Self.describe(route))", owner) { routing throws(RouteError) in
            if add { try routing.add(route) } else { try routing.remove(route) }
        }
    }

    private func change(_ rule: RuleDefinition, add: Bool, owner: String) {
        routingChange(add, Self.describe(rule), owner) { routing throws(RouteError) in
            if add { try routing.add(rule) } else { try routing.remove(rule) }
        }
    }

    /// One route or rule request: already there (on add) or already gone (on remove) is what
    /// was wanted; anything else is logged with what and whose.
    private func routingChange(_ add: Bool, _ what: String, _ owner: String, _ request: (any RoutingControl) throws(RouteError) -> Void) {
        guard let routing else {
            logger.error("\(owner) cannot \(add ? "add" : "remove") \(what): no rtnetlink socket")
            return
        }
        do {
            try request(routing)
        } catch .exists where add {
        } catch .notFound where !add {
        } catch {
            logger.error("\(owner) cannot \(add ? "add" : "remove") \(what): \(error)")
        }
    }

    static func describe(_ route: RouteDefinition) -> String {
        let destination = route.destination.map { "\($0)/\(route.prefixLength)" } ?? "default"
        return destination + (route.gateway.map { " via \($0)" } ?? "") + (route.device.map { " dev \($0)" } ?? "")
            + (route.table == 254 ? "" : " table \(route.table)")
    }

    static func describe(_ rule: RuleDefinition) -> String {
        "rule (priority \(rule.priority.map(String.init) ?? "-"), table \(rule.table.map(String.init) ?? "-"))"
    }

    /// keepalived's static entries: addresses, routes, rules, at start; at a reload the ones
    /// gone leave and the new ones come.
    private func installStatic(_ setup: VRRPSetup) {
        let old = installedStatic
        for rule in old.rules where !setup.staticRules.contains(rule) { change(rule, add: false, owner: "static_rules") }
        for route in old.routes where !setup.staticRoutes.contains(route) { change(route, add: false, owner: "static_routes") }
        for vip in old.addresses where !setup.staticAddresses.contains(vip) { changeStatic(vip, add: false) }
        for vip in setup.staticAddresses where !old.addresses.contains(vip) { changeStatic(vip, add: true) }
        for route in setup.staticRoutes where !old.routes.contains(route) { change(route, add: true, owner: "static_routes") }
        for rule in setup.staticRules where !old.rules.contains(rule) { change(rule, add: true, owner: "static_rules") }
        installedStatic = (setup.staticAddresses, setup.staticRoutes, setup.staticRules)
    }

    private func removeStatic() { installStatic(VRRPSetup()) }

    private func changeStatic(_ vip: VIPSpec, add: Bool) {
        do {
            let spec = try addressSpec(vip, owner: "static_ipaddress")
            if add { try addresses.add(spec) } else { try addresses.remove(spec) }
        } catch AddressError.exists where add {
        } catch AddressError.notFound where !add {
        } catch {
            logger.error("static_ipaddress: cannot \(add ? "add" : "remove") \(vip.address): \(error)")
        }
    }

    // MARK: Stop

    /// Every instance leaves: priority 0 and VIPs released, unless `keepVIPs` (keepalived's
    /// -V, which also sends no goodbye advert).
    func shutDown(at now: Int64, keepVIPs: Bool) {
        let time = VRRPInstant(microseconds: now)
        keepingOnStop = keepVIPs
        // The daemon removes the tables once every script has ended.
        firewall?.stopping = true
        defer {
            removeStatic()
            // With -V the VIPs stay, and with them the VMACs they sit on and their settings.
            if !keepVIPs { vmacs.removeAll() }
        }
        for instance in instances {
            dispatch(.shutdown, to: instance, at: time, keep: { _, action in
                if !keepVIPs { return true }
                if case .removeVIPs = action { return false }
                if case .sendAdvert = action { return false }
                return true
            })
        }
        for channel in channels.values { loop.unwatch(channel.socket.fd) }
        if let fd = netlinkMonitor {
            loop.unwatch(fd)
            addresses.closeNetlinkMonitor(fd)
            netlinkMonitor = nil
            trackers.linkEventsArrive = false
        }
    }
}

func stateName(_ state: VRRPState) -> String {
    switch state {
    case .initialize: "INIT"
    case .backup: "BACKUP"
    case .master: "MASTER"
    case .fault: "FAULT"
    case .stopped: "STOP"
    }
}

/// Rate limiting for the log of rejected adverts: per reason, the first in each 10 s window is
/// logged; the others are counted and reported in one line when the window ends.
struct RejectionLog {
    static let window: Int64 = 10_000_000
    private var windowStart: Int64?
    private var logged = Set<String>()
    private var suppressed: [String: Int] = [:]

    /// Whether to log this one.
    mutating func note(_ reason: String, at now: Int64) -> Bool {
        if windowStart == nil { windowStart = now }
        if logged.insert(reason).inserted { return true }
        suppressed[reason, default: 0] += 1
        return false
    }

    /// After the window: what was counted and not logged, and a new window.
    mutating func summary(at now: Int64, counted what: String = "adverts counted as errors") -> String? {
        guard let start = windowStart, now - start >= Self.window else { return nil }
        defer {
            windowStart = nil
            logged = []
            suppressed = [:]
        }
        guard !suppressed.isEmpty else { return nil }
        let total = suppressed.values.reduce(0, +)
        let reasons = suppressed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "\(total) more \(what) in the last \((now - start) / 1_000_000) s: \(reasons)"
    }
}

