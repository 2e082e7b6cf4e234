import Addressing
import Logging
import Testing
import VRRP
import VigilConfig
import VigilSystem
@testable import VigilDaemon

/// One simulated director: a real `Daemon` on fakes.
final class Director {
    let name: String
    let node: FakeNode
    let ipvs = FakeIPVS()
    let processes: FakeProcesses
    let prober: FakeProber
    let fetcher: FakeFetcher
    let dialogues: FakeDialogues
    let signals: FakeSignals
    let files = FakeFiles()
    let log = LogStore()
    let path = "/etc/keepalived/keepalived.conf"
    var scripts: Set<String> = ["/etc/keepalived/check.sh", "/etc/keepalived/notify.sh", "/usr/bin/true", "/bin/true", "/bin/sh"]
    private(set) var daemon: Daemon?
    let clock: VirtualClock
    /// Listening sockets the daemon opened (control socket, metrics), by path or "ADDR:PORT".
    var listeners: [String: FakeListener] = [:]
    /// The SMTP server at 10.0.0.25:25.
    let smtp = FakeSMTPServer()
    /// How often the daemon asked for the user's name (an NSS lookup on a real host).
    var userNameLookups = 0
    let users = FakeUsers()
    /// The rule sets nft was run with and waited for (start, reload).
    var nftRunsNow: [(time: Int64, rules: String)] = []
    /// Every nft rule set, waited for or not, in order (at the same moment, the waited-for
    /// ones came first).
    var nftRuleSets: [String] {
        let background = processes.started.compactMap { run -> (time: Int64, rules: String)? in
            if case .firewall = run.id { (run.time, run.arguments.first ?? "") } else { nil }
        }
        return (nftRunsNow.map { ($0.time, 0, $0.rules) } + background.map { ($0.time, 1, $0.rules) })
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
    }
    /// The vrrp_* / checker_* scheduling the daemon asked of its threads.
    let scheduling = FakeScheduling()
    /// What vrrp_track_process finds running on this director.
    var runningProcesses: [RunningProcess] = []
    let descriptors: FakeDescriptors
    /// keepalived's notify FIFOs on this director.
    let fifos: FakeFIFOs
    /// Commands other than nft the daemon ran to their end (startup and shutdown scripts).
    var commandsRunNow: [(command: String, timeout: Int64)] = []
    var runNowOutcome: (String) -> (success: Bool, output: String) = { _ in (true, "") }
    /// µs the next wait takes beyond its deadline: the process not scheduled (a loaded host).
    var stallNextWait: Int64 = 0
    /// Every file-creation mask the daemon set, in order.
    var umasks: [UInt32] = []
    /// When the daemon let go of its resident code pages (virtual µs).
    var codePageReleases: [Int64] = []
    /// systemd, as the daemon sees it: what it was told, and when.
    let systemd: FakeServiceManager

    init(_ name: String, simulation: Simulation, ipv4: String = "10.0.0.1", extraInterfaces: [String] = []) {
        self.name = name
        clock = simulation.clock
        descriptors = simulation.descriptors
        node = FakeNode(name: name, lan: simulation.lan, descriptors: simulation.descriptors)
        node.addInterface("eth0", ipv4: ipv4, linkLocal: "fe80::\(ipv4.split(separator: ".").last!)")
        for (index, extra) in extraInterfaces.enumerated() {
            node.addInterface(extra, segment: "lan-\(extra)", ipv4: "10.\(index + 1).0.\(ipv4.split(separator: ".").last!)")
        }
        processes = FakeProcesses(clock: simulation.clock)
        fifos = FakeFIFOs(descriptors: simulation.descriptors)
        prober = FakeProber(clock: simulation.clock, descriptors: simulation.descriptors)
        fetcher = FakeFetcher(clock: simulation.clock, descriptors: simulation.descriptors)
        dialogues = FakeDialogues(descriptors: simulation.descriptors)
        signals = FakeSignals(descriptors: simulation.descriptors)
        log.clock = simulation.clock
        systemd = FakeServiceManager(clock: simulation.clock)
        simulation.directors.append(self)
    }

    var system: DaemonSystem {
        let waiter = SimulatedWaiter(director: self)
        var system = DaemonSystem(clock: clock, waiter: waiter, signals: signals, addresses: node, network: node,
                            openIPVS: { [ipvs] () throws(IPVSKernelError) -> any IPVSClient in
                                guard ipvs.available else { throw .unavailable("no IPVS in this fake") }
                                return ipvs
                            },
                            processes: processes, makeProber: { [prober] in prober },
                            files: files, host: FakeHost(node: node, scripts: scripts, users: users))
        system.listenUnix = { [unowned self] path throws(SystemError) in
            let listener = FakeListener(descriptors: self.descriptors)
            self.listeners[path] = listener
            return listener
        }
        system.serviceManager = systemd
        system.makeHTTPFetcher = { [fetcher] in fetcher }
        system.makeDialogueChecker = { [dialogues] in dialogues }
        system.makeTLS = { _ throws(DaemonError) in { _, _ in nil } }
        system.routing = node
        system.links = node
        system.nftPath = "/usr/sbin/nft"
        system.runNow = { [unowned self] spec, timeout in
            guard spec.command.hasSuffix("nft") else {
                self.commandsRunNow.append((spec.command, timeout))
                return self.runNowOutcome(spec.command)
            }
            self.nftRunsNow.append((self.clock.current, spec.arguments.first ?? ""))
            return (true, "")
        }
        system.processTable = { [unowned self] _ in self.runningProcesses }
        system.scheduling = scheduling
        system.fifos = fifos
        system.setUmask = { [unowned self] in self.umasks.append($0) }
        system.releaseStartupPages = { [unowned self] in self.codePageReleases.append(self.clock.current); return 0 }
        system.hostName = name
        system.userName = { [unowned self] in self.userNameLookups += 1; return "operator" }
        system.connectTCP = { [unowned self] address, port throws(SystemError) in
            guard address == IPAddress("10.0.0.25"), port == 25 else { throw SystemError(errno: 111, operation: "connect(\(address):\(port))") }
            return self.smtp.accept(fd: self.descriptors.allocate())
        }
        system.listenTCP = { [unowned self] address, port throws(SystemError) in
            let listener = FakeListener(descriptors: self.descriptors)
            self.listeners["\(address):\(port)"] = listener
            return listener
        }
        return system
    }

    /// A client of the control socket: sends `request`, lets the simulation run, returns what
    /// it read.
    func ask(_ request: String, in sim: Simulation) -> String {
        let client = listeners[controlPath]!.connect(sending: Array((request + "\n").utf8))
        sim.run(0.01)
        return client.text
    }

    let controlPath = "/run/vigil/vigil.sock"
    let metricsAddress = "127.0.0.1:9165"

    /// A Prometheus scrape of `path`: the whole HTTP response.
    func scrape(_ path: String = "/metrics", in sim: Simulation) -> String {
        let client = listeners[metricsAddress]!.connect(sending: Array("GET \(path) HTTP/1.1\r\nHost: \(name)\r\n\r\n".utf8))
        sim.run(0.01)
        return client.text
    }

    /// One sample's value from a scrape, by its name and labels as exposed (`name{a="b"}`).
    func metric(_ series: String, in sim: Simulation) -> Double? {
        for line in scrape(in: sim).split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// SIGTERM, and the stop it leads to (priority 0 advert, VIPs released).
    func stop(in sim: Simulation) {
        terminate()
        sim.run(0.01)
        daemon!.shutDown()
    }

    /// Loads `text` as the configuration file and starts the daemon on it.
    @discardableResult
    func start(_ text: String, options: DaemonOptions? = nil) throws -> Daemon {
        files.files[path] = text
        let (config, diagnostics) = ConfigLoader.load(path: path, configID: name, fileSystem: files,
                                                      host: FakeHost(node: node, scripts: scripts, users: users))
        let errors = diagnostics.all.filter { $0.severity == .error }
        #expect(errors.isEmpty, "\(name): \(errors.map(\.description))")
        let logger = Logger(label: name, factory: { [log] _ in StoreLogHandler(store: log) })
        let daemon = try Daemon(options: options ?? DaemonOptions(configPath: path, configID: name, logConsole: true, logDetail: true,
                                                                  foreground: true, pidFile: nil, releaseVIPsOnStop: true,
                                                                  controlPath: controlPath, metricsListen: metricsAddress),
                                configuration: config, system: system, logger: logger)
        daemon.start()
        self.daemon = daemon
        return daemon
    }

    /// Writes a new file and sends SIGHUP; the reload happens on the daemon's next turn.
    func hangUp(with text: String? = nil) {
        if let text { files.files[path] = text }
        signals.pending.append(SIGHUP_)
    }

    func terminate() { signals.pending.append(SIGTERM_) }

    /// Whether the loop has work right now, or when it next has.
    var nextWake: Int64? {
        guard let daemon, !daemon.stopping else { return nil }
        if hasReadyDescriptors { return clock.current }
        return daemon.loop.nextDeadline
    }

    var hasReadyDescriptors: Bool { !readyDescriptors.isEmpty || !writableDescriptors.isEmpty }

    /// Readable: signals pending, packets queued, clients waiting or sending. Writable: a
    /// client that reads (see `SimulatedWaiter`).
    var readyDescriptors: [Int32] {
        var ready = (signals.pending.isEmpty ? [] : [signals.fd]) + node.openChannels.filter { !$0.queue.isEmpty }.map(\.fd)
        if let monitor = node.readyNetlinkMonitor { ready.append(monitor) }
        for c in smtp.connections where !c.closed && (!c.inbound.isEmpty || c.peerClosed) { ready.append(c.fd) }
        for listener in listeners.values where !listener.closed {
            if !listener.pending.isEmpty { ready.append(listener.fd) }
            for c in listener.all where !c.closed && (!c.inbound.isEmpty || c.peerClosed) { ready.append(c.fd) }
        }
        return ready
    }

    var writableDescriptors: Set<Int32> {
        Set(listeners.values.flatMap { $0.all.filter { !$0.closed && $0.writeBlocked && $0.readsPerTurn > 0 }.map(\.fd) })
    }

    var vrrp: VRRPHost { daemon!.vrrp }
    func instance(_ name: String) -> VRRPHost.Instance? { vrrp.instances.first { $0.name == name } }
    func state(_ name: String) -> VRRPState? { instance(name)?.machine.state }
    func holds(_ address: String) -> Bool { node.addresses(on: "eth0").contains(IPAddress(address)!) }
}

/// The waiter never blocks: the simulation moves the clock, so a wait only reports what is ready.
final class SimulatedWaiter: DescriptorWaiter {
    unowned let director: Director
    init(director: Director) { self.director = director }
    func wait(readable: [Int32], writable: [Int32], timeout: Int64) throws(SystemError) -> [Int32] {
        if director.stallNextWait > 0 {
            director.clock.current += director.stallNextWait
            director.stallNextWait = 0
        }
        let ready = Set(director.readyDescriptors)
        let writes = director.writableDescriptors
        return readable.filter { ready.contains($0) } + writable.filter { writes.contains($0) }
    }
}

/// Discrete-event simulation of one LAN of directors on one virtual clock: the director due
/// first runs one loop turn, until the time asked for. Seconds of protocol time take
/// milliseconds.
final class Simulation {
    let clock = VirtualClock()
    lazy var lan = FakeLAN(clock: clock)
    let descriptors = FakeDescriptors()
    var directors: [Director] = []
    /// Things that happen at a virtual time (a packet from outside, a link going down).
    private var scheduled: [(time: Int64, action: () -> Void)] = []
    private(set) var turns = 0

    var now: Int64 { clock.current }

    func at(_ time: Int64, _ action: @escaping () -> Void) {
        scheduled.append((time, action))
        scheduled.sort { $0.time < $1.time }
    }

    func after(_ delay: Double, _ action: @escaping () -> Void) { at(now + Int64(delay * 1e6), action) }

    /// Runs until `seconds` of virtual time have passed.
    func run(_ seconds: Double) {
        let end = now + Int64(seconds * 1e6)
        while true {
            let wakes = directors.compactMap(\.nextWake)
            var earliest = wakes.min() ?? .max
            if let first = scheduled.first { earliest = min(earliest, first.time) }
            guard earliest <= end else { break }
            clock.current = max(clock.current, earliest)
            while let first = scheduled.first, first.time <= clock.current {
                scheduled.removeFirst()
                first.action()
            }
            for director in directors {
                guard let wake = director.nextWake, wake <= clock.current else { continue }
                director.daemon?.turn(maxWait: 0)
                turns += 1
            }
            precondition(turns < 50_000_000, "the simulation does not settle")
        }
        clock.current = max(clock.current, end)
    }

    /// Adverts and announcements since `time`.
    func wire(since time: Int64) -> [WireEvent] { lan.capture.filter { $0.time >= time } }
}

let SIGHUP_: Int32 = 1
let SIGTERM_: Int32 = 15

extension Simulation {
    /// lvs01 alone on the LAN, set up by `prepare`, started with `config` and run 5 s:
    /// MASTER by then (checked).
    static func loneMaster(_ config: String, prepare: (Director) -> Void = { _ in }) throws -> (Simulation, Director) {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        prepare(lvs01)
        try lvs01.start(config)
        sim.run(5)
        #expect(lvs01.state("VI_1") == .master)
        return (sim, lvs01)
    }
}
