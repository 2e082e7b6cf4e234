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

    public init(configPath: String, configID: String?, logConsole: Bool, logDetail: Bool, foreground: Bool,
                pidFile: String?, releaseVIPsOnStop: Bool) {
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
    let addresses: AddressManager
    let scripts: ScriptHost
    var stopping = false
    var nextInterfaceCheck: Int64 = 0

    public static func run(_ options: DaemonOptions) -> Int32 {
        LoggingSystem.bootstrap { _ in
            VigilLogHandler(destination: options.logConsole ? .console : .syslog,
                            level: options.logDetail ? .debug : .info)
        }
        var logger = Logger(label: "vigil")
        if !options.logConsole { openlog("Vigil", LOG_PID, LOG_DAEMON) }

        let (config, diagnostics) = ConfigLoader.load(path: options.configPath, configID: options.configID)
        for d in diagnostics.all where d.klass != .note {
            logger.log(level: d.severity == .error ? .error : .warning, "\(d)")
        }
        if diagnostics.all.contains(where: { $0.klass == .fatal }) {
            logger.critical("configuration has fatal problems (see above): not starting; check it with vigil -t")
            return 2
        }
        if config.instances.isEmpty {
            logger.critical("no vrrp_instance configured: nothing to do (IPVS virtual servers are not supported yet)")
            return 2
        }
        if !options.foreground { daemonize(&logger) }
        do {
            let daemon = try Daemon(options: options, configuration: config, logger: logger)
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
        for model in configuration.instances { try setUp(model) }
    }

    private func setUp(_ model: VigilConfig.VRRPInstance) throws {
        guard let interface = model.interface else { throw DaemonError("(\(model.name)) has no interface") }
        let info: InterfaceInfo
        do { info = try InterfaceInfo.lookup(interface, using: addresses) } catch {
            throw DaemonError("(\(model.name)) interface \(interface): \(error)")
        }
        let configuredSource = model.unicastSourceIP ?? model.mcastSourceIP
        guard let source = configuredSource.flatMap({ IPv4Addr($0.description) }) ?? info.primaryIPv4 else {
            throw DaemonError("(\(model.name)) interface \(interface) has no IPv4 address to send adverts from")
        }
        let peers = model.unicastPeers.compactMap { IPv4Addr($0.address.description) }
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
        var specs: [InetAddress: AddressSpec] = [:]
        for vip in model.virtualAddresses + model.excludedAddresses {
            guard let inet = InetAddress(vip.address.description) else { continue }
            specs[inet] = try InstanceMapping.addressSpec(vip, instanceInterface: interface)
        }
        let core = try InstanceMapping.coreConfig(model, globals: configuration.globals, source: source)
        let runtime = InstanceRuntime(model: model, machine: VRRPStateMachine(config: core, trackers: []),
                                      interface: interface, ifindex: info.index, socket: socket, garp: garp,
                                      source: source, peers: peers, vipSpecs: specs)
        runtime.interfaceUp = info.isUp && info.isRunning
        instances.append(runtime)
    }

    // MARK: the loop

    func loop() -> Int32 {
        let start = now()
        scripts.start(at: start.microseconds)
        for instance in instances {
            // A VIP left behind by a crashed run would answer for us while we are BACKUP.
            removeLeftoverVIPs(instance)
            let trackers = currentTrackers(instance)
            _ = instance.machine.handle(.trackersChanged(trackers), at: start)
            apply(instance.machine.handle(.start, at: start), to: instance)
        }
        while !stopping {
            let wait = microsecondsUntilNextDeadline()
            let readable: [Int32]
            do {
                readable = try Poller.wait(readable: sockets.values.map(\.fd) + [SignalPipe.readFD], timeoutMicroseconds: wait)
            } catch {
                logger.error("poll: \(error)")
                continue
            }
            if readable.contains(SignalPipe.readFD) { handleSignals() }
            for socket in sockets.values where readable.contains(socket.fd) { receive(on: socket) }
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
            apply(instance.machine.handle(.timerFired, at: current), to: instance)
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
                apply(instance.machine.handle(.packetReceived(advert), at: received), to: instance)
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
        let destinations = instance.peers.isEmpty ? [IPv4Addr.vrrpMulticast] : instance.peers
        for destination in destinations {
            let endpoints = VRRPEndpoints.ipv4(source: IPv4Address(instance.source.value), destination: IPv4Address(destination.value))
            let payload = advert.encode(endpoints: endpoints, v3ChecksumAsV2: instance.machine.config.v3ChecksumAsV2)
            do {
                try instance.socket.send(payload, from: instance.source, to: destination,
                                         ttl: UInt8(instance.model.unicastTTL ?? 255))
                instance.count("adverts_sent")
            } catch {
                instance.count("send_errors")
                logger.error("(\(instance.name)) cannot send advert on \(instance.interface): \(error)")
            }
        }
    }

    private func sendGARP(_ vips: [InetAddress], rounds: Int, from instance: InstanceRuntime) {
        guard let garp = instance.garp else { return }
        for _ in 0..<max(rounds, 0) {
            for vip in vips {
                guard case .v4(let address) = vip else { continue }
                do {
                    try garp.send(for: IPv4Addr(value: address.value))
                    instance.count("garp_sent")
                } catch {
                    logger.error("(\(instance.name)) gratuitous ARP for \(vip) on \(instance.interface): \(error)")
                }
            }
        }
        if let first = vips.first { logger.info("(\(instance.name)) Sending/queueing gratuitous ARPs on \(instance.interface) for \(first)\(vips.count > 1 ? " and \(vips.count - 1) more" : "")") }
    }

    private func changeVIP(_ vip: InetAddress, add: Bool, _ instance: InstanceRuntime) {
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
        return trackers
    }

    private func refreshTrackers(at time: VRRPInstant) {
        for instance in instances {
            let before = instance.machine.effectivePriority
            apply(instance.machine.handle(.trackersChanged(currentTrackers(instance)), at: time), to: instance)
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
        if changed || instances.contains(where: { !$0.model.trackInterfaces.isEmpty }) { refreshTrackers(at: now()) }
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
            let actions = instance.machine.handle(.shutdown, at: time)
            // -V keeps the VIPs and, like keepalived, sends no goodbye advert either.
            let kept = options.releaseVIPsOnStop ? actions : actions.filter {
                if case .removeVIPs = $0 { return false }
                if case .sendAdvert = $0 { return false }
                return true
            }
            apply(kept, to: instance)
        }
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
