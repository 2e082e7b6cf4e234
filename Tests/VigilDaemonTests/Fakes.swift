// In-memory stand-ins for every adapter behind `DaemonSystem`, on one virtual clock, and a
// LAN that carries adverts between simulated directors: the idea of swift-nio's embedded
// event loop, applied to the whole daemon. Nothing here touches the machine.
import Addressing
import HealthCheck
import IPVS
import LVS
import Logging
import ScriptRunner
import TCPProbe
import VRRP
import VigilConfig
import VigilDaemon
import VigilSystem

final class VirtualClock: DaemonClock {
    var current: Int64 = 1_000_000_000
    /// Time that passes with every reading, to model work that takes real time (a long parse),
    /// and what the rest of the world does meanwhile (other directors' turns): `whileBusy`
    /// runs after each advance, with the advance suspended.
    var advancePerReading: Int64 = 0
    var whileBusy: () -> Void = {}
    /// The wall clock the simulation starts at (2026-12-01 00:00:00 UTC), moving with `current`.
    func wallClock() -> Double { 1_796_083_200 + Double(current - 1_000_000_000) / 1e6 }
    func now() -> Int64 {
        if advancePerReading > 0 {
            current += advancePerReading
            let step = advancePerReading
            advancePerReading = 0
            whileBusy()
            advancePerReading = step
        }
        return current
    }
    func pause(_ microseconds: Int64) { current += microseconds }
}

/// Descriptor numbers for fakes: far above anything real, unique per simulation.
final class FakeDescriptors {
    private var next: Int32 = 10_000
    func allocate() -> Int32 {
        next += 1
        return next
    }
}

/// What crossed the simulated wire, as tcpdump on the bridge would show it.
struct WireEvent: CustomStringConvertible {
    enum Kind: Equatable {
        case advert(VRRPAdvert)
        case announce(IPAddress)
    }
    var time: Int64
    var node: String
    var source: IPAddress
    var destination: IPAddress?
    var kind: Kind

    var advert: VRRPAdvert? { if case .advert(let a) = kind { a } else { nil } }
    var isAnnouncement: Bool { if case .announce = kind { true } else { false } }
    var description: String {
        switch kind {
        case .advert(let a): "\(time) \(node) \(source) > \(destination.map { "\($0)" } ?? "?") VRRPv\(a.version.rawValue) vrid \(a.vrid) prio \(a.priority) addrs \(a.addresses)"
        case .announce(let address): "\(time) \(node) announce \(address)"
        }
    }
}

/// A broadcast domain: every channel on a segment sees the multicast adverts of the others,
/// and a unicast advert reaches the channel bound to its destination.
final class FakeLAN {
    var capture: [WireEvent] = []
    private var channels: [FakeChannel] = []
    let clock: VirtualClock

    init(clock: VirtualClock) { self.clock = clock }

    func attach(_ channel: FakeChannel) { channels.append(channel) }
    func detach(_ channel: FakeChannel) { channels.removeAll { $0 === channel } }

    func transmit(_ packet: [UInt8], payload: [UInt8], from sender: FakeChannel, source: IPAddress, destination: IPAddress) {
        if let decoded = try? VRRPAdvert.decode(payload, endpoints: VRRPEndpoints(source: source, destination: destination)!) {
            capture.append(WireEvent(time: clock.current, node: sender.node.name, source: source, destination: destination, kind: .advert(decoded)))
        }
        for channel in channels where channel !== sender && channel.segment == sender.segment && channel.family == sender.family
            && channel.ipProtocol == sender.ipProtocol {
            switch channel.mode {
            case .multicast(let group) where destination == group: channel.queue.append((packet, source))
            case .unicast(let local) where local == destination: channel.queue.append((packet, source))
            default: break
            }
        }
    }

    /// A packet from outside any simulated daemon (a keepalived peer, an attacker).
    func inject(_ packet: [UInt8], source: IPAddress, segment: String) {
        for channel in channels where channel.segment == segment {
            if case .multicast = channel.mode { channel.queue.append((packet, source)) }
        }
    }

    func announced(_ address: IPAddress, by node: FakeNode) {
        capture.append(WireEvent(time: clock.current, node: node.name, source: address, destination: nil, kind: .announce(address)))
    }
}

final class FakeChannel: VRRPChannel {
    let node: FakeNode
    let fd: Int32
    let segment: String
    let family: AddressFamily
    let mode: VRRPChannelMode
    var queue: [([UInt8], IPAddress)] = []
    private(set) var isClosed = false
    var interface = ""
    /// The link's index when the socket was made: a link deleted and created again is another
    /// link, and a socket bound to the old one sends nothing (ENODEV), as Linux's.
    var ifindex: Int32 = 0
    var ipProtocol: UInt8 = 112

    init(node: FakeNode, fd: Int32, segment: String, family: AddressFamily, mode: VRRPChannelMode) {
        self.node = node
        self.fd = fd
        self.segment = segment
        self.family = family
        self.mode = mode
    }

    func send(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, ttl: UInt8) throws(SystemError) {
        guard node.interfaces[interface]?.index == ifindex else { throw SystemError(errno: 19, operation: "sendto", interface: interface) }
        let packet: [UInt8]
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            packet = VRRPSocket.ipv4Header(payloadLength: payload.count, source: s, destination: d, ttl: ttl) + payload
        case (.v6(let s), .v6(let d)):
            packet = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), VRRPAdvert.ipProtocol, ttl]
                + s.bytes + d.bytes + payload
        default:
            throw SystemError(errno: 97, operation: "sendto", interface: nil)
        }
        node.lan.transmit(packet, payload: payload, from: self, source: source, destination: destination)
    }

    func sendPacket(_ packet: [UInt8], to destination: IPAddress) throws(SystemError) {
        let source = IPAddress.v4(IPv4Address(bytes: packet[12..<16]))
        node.lan.transmit(packet, payload: Array(packet[44...]), from: self, source: source, destination: destination)
    }

    func receive() throws(SystemError) -> ReceivedVRRPPacket? {
        guard !queue.isEmpty else { return nil }
        let (bytes, source) = queue.removeFirst()
        return ReceivedVRRPPacket(bytes: bytes, source: source)
    }

    func close() {
        isClosed = true
        node.lan.detach(self)
    }
}

final class FakeAnnouncer: Announcer {
    let node: FakeNode
    /// The link the frames leave by, and the source MAC they carry.
    let interface: String
    let mac: [UInt8]
    init(node: FakeNode, interface: String = "eth0", mac: [UInt8] = []) {
        self.node = node
        self.interface = interface
        self.mac = mac
    }
    func announce(_ address: IPAddress) throws(SystemError) {
        node.announcements.append((interface, mac, address))
        node.lan.announced(address, by: node)
    }
}

/// One link of a simulated director.
struct FakeInterface {
    var name: String
    var index: Int32
    var segment: String
    var isUp = true
    var addresses: [InterfaceAddress] = []
    var mac: [UInt8]
    /// A macvlan's parent index and mode; nil for any other link.
    var macvlan: (parent: Int32, privateMode: Bool)?
}

/// rtnetlink, links and raw sockets of one simulated director.
final class FakeNode: AddressControl, VRRPNetwork {
    let name: String
    let lan: FakeLAN
    let descriptors: FakeDescriptors
    var interfaces: [String: FakeInterface] = [:]
    /// Every address change, as `ip monitor address` would list them.
    var addressLog: [(time: Int64, add: Bool, address: IPAddress, ifindex: Int32)] = []
    /// Addresses whose add the kernel refuses (as it refuses one it has no room or route for).
    var refusedAdds: Set<IPAddress> = []
    var routes: [RouteDefinition] = []
    var rules: [RuleDefinition] = []
    private(set) var channels: [FakeChannel] = []

    init(name: String, lan: FakeLAN, descriptors: FakeDescriptors) {
        self.name = name
        self.lan = lan
        self.descriptors = descriptors
    }

    /// /proc/sys as the daemon sees it, by key (`net/ipv4/conf/eth0/arp_ignore`).
    var sysctls: [String: Int] = [:]
    private var nextIndex: Int32 = 2

    func addInterface(_ name: String, segment: String = "lan", ipv4: String?, linkLocal: String? = nil) {
        let index = nextIndex
        nextIndex += 1
        for key in ["arp_ignore", "arp_filter", "rp_filter", "accept_local", "promote_secondaries"] {
            sysctls["net/ipv4/conf/\(name)/\(key)"] = sysctls["net/ipv4/conf/default/\(key)"] ?? 0
        }
        var interface = FakeInterface(name: name, index: index, segment: segment, mac: [0x02, 0, 0, 0, UInt8(index), UInt8(truncatingIfNeeded: self.name.hashValue & 0xFF)])
        if let ipv4 { interface.addresses.append(InterfaceAddress(ifindex: index, address: IPAddress(ipv4)!, prefixLength: 24)) }
        if let linkLocal { interface.addresses.append(InterfaceAddress(ifindex: index, address: IPAddress(linkLocal)!, prefixLength: 64, scope: 253)) }
        interfaces[name] = interface
    }

    private func interface(index: Int32) -> String? { interfaces.first { $0.value.index == index }?.key }

    /// The VIPs and other addresses on a link, as `ip addr show` lists them.
    func addresses(on name: String) -> [IPAddress] { interfaces[name]?.addresses.map(\.address) ?? [] }

    /// Kernel-visible address state: (interface, address/prefix, label), sorted.
    var addressState: [String] {
        interfaces.values.flatMap { i in i.addresses.map { "\(i.name) \($0.address)/\($0.prefixLength) \($0.label ?? "")" } }.sorted()
    }

    // AddressControl
    func interface(named name: String) throws(SystemError) -> InterfaceInfo {
        guard let i = interfaces[name] else { throw SystemError(errno: 19, operation: "if_nametoindex", interface: name) }
        let primary = i.addresses.first { if case .v4 = $0.address { true } else { false } }?.address.ipv4
        let linkLocal = i.addresses.first { $0.address.ipv6?.isLinkLocal ?? false }?.address.ipv6
        return InterfaceInfo(name: name, index: i.index, mac: i.mac, flags: i.isUp ? InterfaceInfo.upAndRunningFlags : 0,
                             primaryIPv4: primary, linkLocalIPv6: linkLocal)
    }

    func add(_ spec: AddressSpec) throws(AddressError) {
        guard let name = interface(index: spec.ifindex) else { throw .noDevice(ifindex: spec.ifindex) }
        if refusedAdds.contains(spec.address) { throw .netlink(code: 12, message: "Invalid input data or parameter", operation: "rtnl_addr_add") }
        if interfaces[name]!.addresses.contains(where: { $0.address == spec.address }) { throw .exists(spec.address, ifindex: spec.ifindex) }
        interfaces[name]!.addresses.append(InterfaceAddress(ifindex: spec.ifindex, address: spec.address, prefixLength: spec.prefixLength,
                                                            label: spec.label, scope: spec.scope, broadcast: spec.broadcast))
        addressLog.append((lan.clock.current, true, spec.address, spec.ifindex))
    }

    func remove(_ spec: AddressSpec) throws(AddressError) {
        guard let name = interface(index: spec.ifindex) else { return }
        guard let at = interfaces[name]!.addresses.firstIndex(where: { $0.address == spec.address && $0.prefixLength == spec.prefixLength }) else {
            throw .notFound(spec.address, ifindex: spec.ifindex)
        }
        interfaces[name]!.addresses.remove(at: at)
        addressLog.append((lan.clock.current, false, spec.address, spec.ifindex))
    }

    func list(ifindex: Int32?) throws(AddressError) -> [InterfaceAddress] {
        interfaces.values.filter { ifindex == nil || $0.index == ifindex }.flatMap(\.addresses)
    }

    /// Set before the daemon starts: the node then offers a netlink monitor, as Linux does
    /// (without it the daemon polls, as it does when the kernel refuses the socket).
    var offersNetlinkMonitor = false
    private(set) var netlinkMonitor: Int32?
    /// What the kernel has reported and the daemon not yet read.
    var pendingNetlinkEvents = NetlinkEvents()

    func openNetlinkMonitor() -> Int32? {
        guard offersNetlinkMonitor else { return nil }
        netlinkMonitor = descriptors.allocate()
        return netlinkMonitor
    }

    func netlinkEvents(on monitor: Int32) -> NetlinkEvents {
        defer { pendingNetlinkEvents = NetlinkEvents() }
        return pendingNetlinkEvents
    }

    func closeNetlinkMonitor(_ monitor: Int32) { netlinkMonitor = nil }

    /// A link deleted (`ip link del`), with its addresses, reported as the kernel reports it.
    func deleteInterface(_ name: String) {
        interfaces[name] = nil
        pendingNetlinkEvents.linkChanged = true
        pendingNetlinkEvents.addressDeleted = true
    }

    /// A link goes down or up (carrier or admin state), reported as the kernel reports it.
    func setLink(_ name: String, up: Bool) {
        interfaces[name]!.isUp = up
        pendingNetlinkEvents.linkChanged = true
    }

    /// Readable while reports wait to be read.
    var readyNetlinkMonitor: Int32? {
        pendingNetlinkEvents == NetlinkEvents() ? nil : netlinkMonitor
    }

    // VRRPNetwork
    func openChannel(interface name: String, family: AddressFamily, mode: VRRPChannelMode, ipProtocol: UInt8) throws(SystemError) -> any VRRPChannel {
        guard let i = interfaces[name] else { throw SystemError(errno: 19, operation: "socket", interface: name) }
        let channel = FakeChannel(node: self, fd: descriptors.allocate(), segment: i.segment, family: family, mode: mode)
        channel.ipProtocol = ipProtocol
        channel.interface = name
        channel.ifindex = i.index
        channels.append(channel)
        lan.attach(channel)
        return channel
    }

    func announcer(for interface: InterfaceInfo, family: AddressFamily) throws(SystemError) -> any Announcer {
        FakeAnnouncer(node: self, interface: interface.name, mac: interface.mac)
    }
    /// Every gratuitous ARP or NA: the link, the source MAC, the address.
    var announcements: [(interface: String, mac: [UInt8], address: IPAddress)] = []

    var openChannels: [FakeChannel] { channels.filter { !$0.isClosed } }
}

/// Macvlans and /proc/sys: a VMAC is a link on its parent's segment with its own MAC.
extension FakeNode: LinkControl {
    func kind(of name: String) throws(LinkError) -> LinkKind? {
        guard let link = interfaces[name] else { return nil }
        guard let macvlan = link.macvlan else { return .other("veth") }
        return .macvlan(parent: macvlan.parent, mac: link.mac, privateMode: macvlan.privateMode)
    }

    func createMacvlan(name: String, parent: Int32, mac: [UInt8]) throws(LinkError) {
        guard interfaces[name] == nil else { throw .netlink(code: 6, message: "Object exists", operation: "rtnl_link_add(\(name))") }
        guard let parentLink = interfaces.values.first(where: { $0.index == parent }) else {
            throw .netlink(code: 31, message: "No such device", operation: "rtnl_link_add(\(name))")
        }
        addInterface(name, segment: parentLink.segment, ipv4: nil)
        interfaces[name]!.mac = mac
        interfaces[name]!.isUp = false
        interfaces[name]!.macvlan = (parent, true)
    }

    func bringUp(_ name: String) throws(LinkError) {
        guard interfaces[name] != nil else { throw .netlink(code: 31, message: "No such device", operation: "link up \(name)") }
        interfaces[name]!.isUp = true
    }

    func delete(_ name: String) throws(LinkError) {
        guard interfaces.removeValue(forKey: name) != nil else { throw .netlink(code: 31, message: "No such device", operation: "rtnl_link_delete(\(name))") }
        sysctls = sysctls.filter { !$0.key.contains("/\(name)/") }
    }

    func sysctl(_ key: String) -> Int? { sysctls[key] }
    func setSysctl(_ key: String, _ value: Int) -> Bool {
        let parts = key.split(separator: "/")
        guard key == "net/ipv4/igmp_link_local_mcast_reports"
                || parts.count == 5 && (parts[3] == "all" || parts[3] == "default" || interfaces[String(parts[3])] != nil) else { return false }
        sysctls[key] = value
        return true
    }
    func linkNames() -> [String] { interfaces.keys.sorted() }
}

/// The node's routing tables and policy rules, as `ip route` / `ip rule` would list them.
extension FakeNode: RoutingControl {
    func add(_ route: RouteDefinition) throws(RouteError) {
        guard !routes.contains(route) else { throw .exists }
        if let device = route.device, interfaces[device] == nil { throw .noDevice(device) }
        routes.append(route)
    }

    func remove(_ route: RouteDefinition) throws(RouteError) {
        guard let at = routes.firstIndex(of: route) else { throw .notFound }
        routes.remove(at: at)
    }

    func add(_ rule: RuleDefinition) throws(RouteError) {
        guard !rules.contains(rule) else { throw .exists }
        rules.append(rule)
    }

    func remove(_ rule: RuleDefinition) throws(RouteError) {
        guard let at = rules.firstIndex(of: rule) else { throw .notFound }
        rules.remove(at: at)
    }

    func routes(table: UInt32, protocolNumber: UInt8) throws(RouteError) -> [RouteDefinition] {
        routes.filter { $0.table == table && $0.protocolNumber == protocolNumber }
    }
}

/// The kernel's IPVS table, with every request it was sent.
final class FakeIPVS: IPVSClient {
    var table: IPVSTable = [:]
    var requests: [IPVSOperation] = []
    var available = true

    func info() throws(IPVSKernelError) -> (version: UInt32, connectionTableSize: UInt32) {
        guard available else { throw .unavailable("no IPVS in this fake") }
        return (0x010203, 4096)
    }
    func dump() throws(IPVSKernelError) -> IPVSTable { table }
    /// The sync threads running, and every start and stop asked for.
    var syncThreads: [IPVSSyncDaemon] = []
    var syncRequests: [String] = []
    func startSyncDaemon(_ daemon: IPVSSyncDaemon) throws(IPVSKernelError) {
        syncRequests.append("start \(daemon)")
        guard !syncThreads.contains(where: { $0.state == daemon.state }) else { throw .refused(request: "newDaemon", errno: 17) }
        syncThreads.append(daemon)
    }
    func stopSyncDaemon(_ state: IPVSSyncState, syncID: UInt32) throws(IPVSKernelError) {
        syncRequests.append("stop \(state)")
        guard syncThreads.contains(where: { $0.state == state }) else { throw .refused(request: "delDaemon", errno: 3) }
        syncThreads.removeAll { $0.state == state }
    }
    func syncDaemons() throws(IPVSKernelError) -> [IPVSSyncDaemon] { syncThreads }
    /// The kernel's defaults (900, 120, 300), and every SET_CONFIG asked for.
    var connectionTimeouts = IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300)
    var timeoutRequests: [IPVSTimeouts] = []
    func timeouts() throws(IPVSKernelError) -> IPVSTimeouts { connectionTimeouts }
    func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSKernelError) {
        timeoutRequests.append(timeouts)
        connectionTimeouts = timeouts
    }
    /// Counters a test sets; services and destinations without any read 0.
    var counters: [IPVSServiceKey: IPVSServiceStatistics] = [:]
    func statistics() throws(IPVSKernelError) -> [IPVSServiceKey: IPVSServiceStatistics] {
        var all: [IPVSServiceKey: IPVSServiceStatistics] = [:]
        for (service, dests) in table {
            var entry = counters[service.key] ?? IPVSServiceStatistics(service: IPVSStatistics())
            for d in dests where entry.destinations[d.key] == nil { entry.destinations[d.key] = IPVSStatistics() }
            all[service.key] = entry
        }
        return all
    }
    /// How many operations each apply call carried.
    var requestSizes: [Int] = []
    /// Called with each apply call's operations (a test advances the clock: a slow kernel).
    var onApply: ([IPVSOperation]) -> Void = { _ in }
    func apply(_ operations: [IPVSOperation]) throws(IPVSKernelError) -> [IPVSOperationFailure] {
        requests += operations
        requestSizes.append(operations.count)
        onApply(operations)
        table = IPVSReconciler.applying(operations, to: table)
        return []
    }

    /// Sorted text of the table, for comparisons.
    var state: [String] {
        table.flatMap { service, dests in
            ["\(service.key) \(service.scheduler) flags \(service.flags.rawValue) timeout \(service.timeout)"]
                + dests.map { "\(service.key) -> \($0.key.formatted(in: service.key)) w\($0.weight) \($0.forwarding.code)" }
        }.sorted()
    }
}

/// Scripts that take a virtual while and then succeed or fail as the test says.
final class FakeProcesses: ProcessRunner {
    struct Started { var time: Int64; var command: String; var arguments: [String]; var id: ScriptRunID; var user: String? }
    let clock: VirtualClock
    /// Whether a command succeeds, and how long it runs (default: succeeds after 10 ms).
    var behaviour: (String) -> (success: Bool, duration: Int64) = { _ in (true, 10_000) }
    /// An exit status other than 0/1 for a command (MISC_CHECK misc_dynamic); nil: from `behaviour`.
    var exitCode: (String) -> Int32? = { _ in nil }
    private(set) var started: [Started] = []
    private var running: [(id: ScriptRunID, finishAt: Int64, success: Bool, timedOut: Bool, startedAt: Int64, code: Int32)] = []

    init(clock: VirtualClock) { self.clock = clock }

    func start(_ spec: ScriptSpec, id: ScriptRunID, timeout: Int64?, now: Int64) throws(ScriptError) {
        let (success, duration) = behaviour(spec.command)
        let code = exitCode(spec.command) ?? (success ? 0 : 1)
        started.append(Started(time: now, command: spec.command, arguments: spec.arguments, id: id, user: spec.user))
        if let timeout, duration > timeout {
            running.append((id, now + timeout, false, true, now, 15))
        } else {
            running.append((id, now + duration, code == 0, false, now, code))
        }
    }

    var runningCount: Int { running.count }
    var nextDeadline: Int64? { running.map(\.finishAt).min() }

    func poll(now: Int64) -> [FinishedScript] {
        let due = running.filter { $0.finishAt <= now }
        running.removeAll { $0.finishAt <= now }
        return due.map { FinishedScript(id: $0.id, success: $0.success, timedOut: $0.timedOut, runtime: now - $0.startedAt,
                                        status: $0.timedOut ? .signaled($0.code) : .exited($0.code)) }
    }

    func terminateAll(now: Int64) {
        running = running.map { ($0.id, now, false, true, $0.startedAt, 15) }
    }

    func terminate(_ id: ScriptRunID, now: Int64) {
        running = running.map { $0.id == id ? ($0.id, now, false, true, $0.startedAt, 15) : $0 }
    }

    /// Notify scripts run so far: "command arg arg".
    var notifications: [String] {
        started.filter { if case .notify = $0.id { true } else { false } }.map { ([$0.command] + $0.arguments).joined(separator: " ") }
    }
}

/// TCP_CHECK connects that answer after a virtual millisecond, up or down as the test says.
final class FakeProber: ConnectProber {
    let clock: VirtualClock
    var alive: (SocketAddress) -> Bool = { _ in true }
    private(set) var started: [(time: Int64, id: CheckerID, target: SocketAddress)] = []
    private var pending: [(id: CheckerID, at: Int64, outcome: ProbeOutcome)] = []
    let shared: Int32

    init(clock: VirtualClock, descriptors: FakeDescriptors) {
        self.clock = clock
        shared = descriptors.allocate()
    }

    var sharedDescriptor: Int32? { shared }
    var count: Int { pending.count }
    var nextDeadline: Int64? { pending.map(\.at).min() }

    func start(id: CheckerID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<CheckerID> {
        started.append((now, id, target))
        let up = alive(target)
        pending.append((id, up ? now + 1_000 : now + timeout, up ? .connected : .timedOut))
        return .pending(fd: shared)
    }

    /// The fake never reports through the shared descriptor: results come due as deadlines.
    func ready(fd: Int32, now: Int64) -> [ProbeResult<CheckerID>] { expire(now: now) }

    func expire(now: Int64) -> [ProbeResult<CheckerID>] {
        let due = pending.filter { $0.at <= now }
        pending.removeAll { $0.at <= now }
        return due.map { ProbeResult(id: $0.id, outcome: $0.outcome) }
    }

    func cancelAll() { pending = [] }
}

/// HTTP_GET / SSL_GET fetches answered after a virtual millisecond by `page`, which gives the
/// status line's code and body for a target and request (nil: the connect times out).
final class FakeFetcher: HTTPFetcher {
    let clock: VirtualClock
    let descriptor: Int32
    var page: (SocketAddress, String) -> (status: Int, body: String)? = { _, _ in (200, "ok") }
    private(set) var started: [(time: Int64, id: CheckerID, target: SocketAddress, request: String, tls: Bool)] = []
    private var pending: [(id: CheckerID, at: Int64, outcome: HTTPFetchOutcome)] = []

    init(clock: VirtualClock, descriptors: FakeDescriptors) {
        self.clock = clock
        descriptor = descriptors.allocate()
    }

    var count: Int { pending.count }
    var nextDeadline: Int64? { pending.map(\.at).min() }

    func start(id: CheckerID, _ request: HTTPFetchRequest, now: Int64) -> HTTPFetchResult<CheckerID>? {
        let text = String(decoding: request.request, as: UTF8.self)
        started.append((now, id, request.target, text, request.tls != nil))
        guard let answer = page(request.target, text) else {
            pending.append((id, now + request.timeout, .failed(reason: "Timeout connecting", detail: nil)))
            return nil
        }
        var reader = HTTPResponseReader()
        let digest = request.digest?()
        let bytes = Array("HTTP/1.0 \(answer.status) X\r\nContent-Length: \(answer.body.utf8.count)\r\n\r\n\(answer.body)".utf8)
        try? reader.consume(bytes[...]) { body in body.withUnsafeBytes { digest?.update($0) } }
        pending.append((id, now + 1_000, .response(reader, digest: digest?.finish())))
        return nil
    }

    func ready(now: Int64) -> [HTTPFetchResult<CheckerID>] { expire(now: now) }

    func expire(now: Int64) -> [HTTPFetchResult<CheckerID>] {
        let due = pending.filter { $0.at <= now }
        pending.removeAll { $0.at <= now }
        return due.map { HTTPFetchResult(id: $0.id, outcome: $0.outcome) }
    }

    func cancelAll() { pending = [] }
}

/// SMTP_CHECK conversations: the real dialogue against a scripted server, one virtual
/// millisecond per round trip. `server` gives, for a target, the banner and then the answer to
/// each line the dialogue sends (nil: nothing listens, the connect is refused).
final class FakeDialogues: ExchangeChecker {
    let descriptor: Int32
    var server: (SocketAddress) -> [String]? = { _ in ["220 ok\r\n", "250 ok\r\n", "221 bye\r\n"] }
    private(set) var sent: [(target: SocketAddress, lines: [String])] = []
    private var pending: [(id: CheckerID, at: Int64, outcome: ExchangeOutcome)] = []

    init(descriptors: FakeDescriptors) { descriptor = descriptors.allocate() }

    var count: Int { pending.count }
    var nextDeadline: Int64? { pending.map(\.at).min() }

    func start(id: CheckerID, _ request: DialogueRequest, now: Int64) -> ExchangeResult<CheckerID>? {
        guard let script = server(request.target) else { return ExchangeResult(id: id, outcome: .failed("Error connecting to server (Connection refused)")) }
        var dialogue = request.dialogue
        var lines: [String] = []
        var outcome = ExchangeOutcome.failed("Read failure from server (closed by the server)")
        var elapsed: Int64 = 1_000
        talk: for answer in script {
            elapsed += 1_000
            switch Array(answer.utf8).withUnsafeBytes({ dialogue.received($0) }) {
            case .wait: continue
            case .send(let bytes): lines.append(String(decoding: bytes, as: UTF8.self))
            case .pass: outcome = .passed; break talk
            case .fail(let why): outcome = .failed(why); break talk
            }
        }
        sent.append((request.target, lines))
        pending.append((id, now + elapsed, outcome))
        return nil
    }

    func ready(now: Int64) -> [ExchangeResult<CheckerID>] { expire(now: now) }

    func expire(now: Int64) -> [ExchangeResult<CheckerID>] {
        let due = pending.filter { $0.at <= now }
        pending.removeAll { $0.at <= now }
        return due.map { ExchangeResult(id: $0.id, outcome: $0.outcome) }
    }

    func cancelAll() { pending = [] }
}

final class FakeSignals: SignalSource {
    let fd: Int32
    var pending: [Int32] = []
    init(descriptors: FakeDescriptors) { fd = descriptors.allocate() }
    func drain() -> [Int32] {
        defer { pending = [] }
        return pending
    }
}

/// Configuration files in memory; `onRead` lets a test act while a reload reads the file.
final class FakeFiles: DaemonFileSystem {
    var files: [String: String] = [:]
    /// Every file the daemon created or wrote, in order, with what it held then.
    var written: [(path: String, text: String)] = []
    func create(_ path: String) -> Bool { write("", to: path) }
    func remove(_ path: String) { files[path] = nil }
    func write(_ text: String, to path: String) -> Bool {
        files[path] = text
        written.append((path, text))
        return true
    }
    /// Paths whose replacement fails, as a full /tmp would.
    var unwritable: Set<String> = []
    func replace(_ path: String, with text: String) throws(SystemError) {
        if unwritable.contains(path) { throw SystemError(errno: 28 /* ENOSPC */, operation: "write(\(path))") }
        _ = write(text, to: path)
    }
    func kind(of path: String) -> FileKind? { files[path] != nil ? .regular : nil }
    func readSmall(_ path: String, max: Int) -> [UInt8]? { files[path].map { Array($0.utf8.prefix(max)) } }
    var onRead: () -> Void = {}
    func read(_ path: String) -> [UInt8]? {
        defer { onRead() }
        return files[path].map { Array($0.utf8) }
    }
    func glob(_ pattern: String) -> [String] { files[pattern] != nil ? [pattern] : [] }
    func canonical(_ path: String) -> String { path }
}

/// The host's users, and how often they were looked up (each an NSS lookup on a real host).
final class FakeUsers {
    var names: Set<String> = ["root", "nobody"]
    var lookups = 0
}

/// The host as `vigil -t` checks it: the node's links, a few users, scripts that exist.
struct FakeHost: HostProbe {
    let node: FakeNode
    var scripts: Set<String>
    var users = FakeUsers()
    func interfaceExists(_ name: String) -> Bool { node.interfaces[name] != nil }
    func userExists(_ name: String) -> Bool { users.lookups += 1; return users.names.contains(name) }
    func groupExists(_ name: String) -> Bool { ["root", "nogroup"].contains(name) }
    func fileStatus(_ path: String) -> FileStatus? {
        if scripts.contains(path) { return FileStatus(isRegular: true, isDirectory: false, mode: 0o755, ownerUID: 0, ownerGID: 0) }
        let directories = ["/", "/etc", "/etc/keepalived", "/usr", "/usr/bin", "/bin"]
        if directories.contains(path) { return FileStatus(isRegular: false, isDirectory: true, mode: 0o755, ownerUID: 0, ownerGID: 0) }
        return nil
    }
    var searchPath: [String] { ["/usr/bin", "/bin"] }
    /// The simulated LAN's one name: the SMTP server.
    func resolveHost(_ name: String) -> IPAddress? { name == "mail.example.com" ? IPAddress("10.0.0.25") : nil }
}

/// Log lines with the virtual time they were written at.
final class LogStore: @unchecked Sendable {
    var lines: [(time: Int64, level: Logger.Level, text: String)] = []
    var clock: VirtualClock?
    func contains(_ text: String) -> Bool { lines.contains { $0.text.contains(text) } }
    func matching(_ text: String) -> [String] { lines.filter { $0.text.contains(text) }.map(\.text) }
}

struct StoreLogHandler: LogHandler {
    let store: LogStore
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        store.lines.append((store.clock?.current ?? 0, event.level, event.message.description))
    }
}

/// A client of the control socket or the metrics endpoint: what it sends, what it got, and
/// how much it is willing to read per turn (0: never reads, as a hostile client).
final class FakeConnection: StreamConnection {
    let fd: Int32
    var inbound: [UInt8] = []
    var received: [UInt8] = []
    var readsPerTurn = Int.max
    private(set) var closed = false
    /// The peer hung up without waiting.
    var peerClosed = false

    /// Called with what the daemon wrote (a fake server answers from here).
    var onWrite: ((FakeConnection, ArraySlice<UInt8>) -> Void)?

    init(fd: Int32) { self.fd = fd }

    func read(max: Int) -> StreamReadResult {
        if inbound.isEmpty { return peerClosed ? .closed : .wouldBlock }
        let chunk = Array(inbound.prefix(max))
        inbound.removeFirst(chunk.count)
        return .data(chunk)
    }

    /// The server has more to write than the client took.
    private(set) var writeBlocked = false

    func write(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !peerClosed else { return nil }
        let n = min(bytes.count, readsPerTurn)
        received += bytes.prefix(n)
        writeBlocked = n < bytes.count
        onWrite?(self, bytes.prefix(n))
        return n
    }

    func close() { closed = true }

    var text: String { String(decoding: received, as: UTF8.self) }
}

final class FakeListener: StreamListener {
    let fd: Int32
    let descriptors: FakeDescriptors
    var pending: [FakeConnection] = []
    private(set) var all: [FakeConnection] = []
    private(set) var closed = false
    init(descriptors: FakeDescriptors) {
        self.descriptors = descriptors
        fd = descriptors.allocate()
    }

    /// A client connects and sends `bytes`.
    @discardableResult
    func connect(sending bytes: [UInt8] = [], readsPerTurn: Int = .max) -> FakeConnection {
        let connection = FakeConnection(fd: descriptors.allocate())
        connection.inbound = bytes
        connection.readsPerTurn = readsPerTurn
        pending.append(connection)
        all.append(connection)
        return connection
    }

    func accept() -> (any StreamConnection)? { pending.isEmpty ? nil : pending.removeFirst() }
    func close() { closed = true }
}

/// systemd's side of the notify socket: every message with its virtual time.
final class FakeServiceManager: ServiceManager {
    let clock: VirtualClock
    var watchdogInterval: Int64?
    var messages: [(time: Int64, text: String)] = []
    init(clock: VirtualClock) { self.clock = clock }
    func notify(_ message: String) throws(SystemError) { messages.append((clock.current, message)) }

    /// The values of `key` in the messages so far, in order.
    func values(_ key: String) -> [String] {
        messages.flatMap { $0.text.split(separator: "\n") }.compactMap { line in
            line.hasPrefix(key + "=") ? String(line.dropFirst(key.count + 1)) : nil
        }
    }
}

/// An SMTP server that accepts every message (as python's smtpd would), or refuses the sender.
final class FakeSMTPServer {
    var connections: [FakeConnection] = []
    var refuseSender = false
    /// The DATA part of every message accepted.
    var messages: [String] = []

    func accept(fd: Int32) -> FakeConnection {
        let connection = FakeConnection(fd: fd)
        connection.inbound = Array("220 smtp.test ESMTP\r\n".utf8)
        var inData = false
        var data = ""
        connection.onWrite = { [unowned self] c, bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            if inData {
                data += text
                guard data.hasSuffix("\r\n.\r\n") else { return }
                inData = false
                self.messages.append(data)
                c.inbound += Array("250 queued\r\n".utf8)
                return
            }
            let reply: String
            switch text.prefix(4) {
            case "HELO": reply = "250 smtp.test\r\n"
            case "MAIL": reply = self.refuseSender ? "550 no relay\r\n" : "250 ok\r\n"
            case "RCPT": reply = "250 ok\r\n"
            case "DATA": reply = "354 go ahead\r\n"; inData = true; data = ""
            case "QUIT": reply = "221 bye\r\n"
            default: reply = "500 what\r\n"
            }
            c.inbound += Array(reply.utf8)
        }
        connections.append(connection)
        return connection
    }
}

/// Records what the daemon asks of its threads; `refuse` fails every call (no CAP_SYS_NICE).
final class FakeScheduling: SchedulingControl {
    var applied: [(loop: ThreadScheduling.Plan, checkers: ThreadScheduling.Plan)] = []
    var locked: [Bool] = []
    var limits: [UInt64?] = []
    var refuse = false
    var report: (String) -> Void = { _ in }
    private(set) var isMemoryLocked = false

    func apply(loop: ThreadScheduling.Plan, checkers: ThreadScheduling.Plan) -> [String] {
        applied.append((loop, checkers))
        return refuse ? ["vrrp_rt_priority \(loop.realtimePriority ?? 0): sched_setscheduler of thread 1: Operation not permitted"] : []
    }
    func lockMemory(_ wanted: Bool) -> String? {
        locked.append(wanted)
        isMemoryLocked = wanted
        return nil
    }
    func setRealtimeLimit(_ microseconds: UInt64?) -> String? {
        limits.append(microseconds)
        return nil
    }
}

/// Notify FIFOs as the daemon sees them: what it opened, made and removed, and each line.
final class FakeFIFOs: FIFOControl {
    struct Opened { var path: String; var owner: String?; var fd: Int32; var created: Bool; var closed = false; var removed = false }
    let descriptors: FakeDescriptors
    /// Paths where something already is (nothing is made there).
    var existing: Set<String> = []
    /// Paths the daemon cannot open.
    var refused: Set<String> = []
    /// A reader that does not read: every write is refused.
    var full = false
    private(set) var opened: [Opened] = []
    private(set) var lines: [String: [String]] = [:]

    init(descriptors: FakeDescriptors) { self.descriptors = descriptors }

    func open(_ path: String, owner: (user: String, group: String?)?) throws(SystemError) -> (fd: Int32, created: Bool) {
        if refused.contains(path) { throw SystemError(errno: 13, operation: "open \(path)") }
        let created = !existing.contains(path)
        let entry = Opened(path: path, owner: owner.map { $0.user + ($0.group.map { ":" + $0 } ?? "") }, fd: descriptors.allocate(), created: created)
        opened.append(entry)
        existing.insert(path)
        return (entry.fd, created)
    }

    func write(_ fd: Int32, _ line: [UInt8]) -> Bool {
        guard !full, let entry = opened.first(where: { $0.fd == fd && !$0.closed }) else { return false }
        lines[entry.path, default: []].append(String(decoding: line, as: UTF8.self))
        return true
    }

    func close(_ fd: Int32, removing path: String?) {
        guard let index = opened.firstIndex(where: { $0.fd == fd }) else { return }
        opened[index].closed = true
        if let path { opened[index].removed = true; existing.remove(path) }
    }

    func lines(of path: String) -> [String] { lines[path] ?? [] }
}
