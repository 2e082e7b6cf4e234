@preconcurrency import Glibc
import Addressing
import IPVS
import LVS
import ScriptRunner
import TCPProbe
import VRRP
import VigilConfig
import VigilSystem

extension DaemonSystem {
    /// The real machine: ppoll, the self-pipe for signals, libnl route and genl, raw and
    /// AF_PACKET sockets, fork/exec, epoll connects, the file system.
    public static func linux() throws(DaemonError) -> DaemonSystem {
        let addresses: AddressManager
        do { addresses = try AddressManager() } catch { throw DaemonError("rtnetlink: \(error)") }
        try SignalPipe.install(KeepalivedSignal.handled)
        let scheduling = ThreadScheduling()
        signal(SIGPIPE, SIG_IGN)
        var system = DaemonSystem(
            clock: LinuxClock(), waiter: PollWaiter(), signals: SignalPipeSource(),
            addresses: RTNetlinkAddresses(addresses), network: LinuxVRRPNetwork(),
            openIPVS: openKernelIPVS,
            processes: SupervisedProcesses(),
            makeProber: { makeConnectProber(scheduling) },
            files: LocalDaemonFiles(), host: LocalHost())
        system.listenUnix = listenOnUnixSocket
        system.routing = try? RouteManager()
        system.links = try? LinkManager()
        system.nftPath = ["/usr/sbin/nft", "/sbin/nft"].first { access($0, X_OK) == 0 }
        system.runNow = runToCompletion
        system.processTable = { ProcFS.processes(commandLines: $0) }
        system.connectTCP = { address, port throws(SystemError) in try StreamSocket.connect(to: address, port: port) }
        var name = [CChar](repeating: 0, count: 256)
        if gethostname(&name, name.count) == 0 { system.hostName = String(cString: name) }
        system.userName = {
            guard let user = getpwuid(getuid()), let login = user.pointee.pw_name else { return "root" }
            return String(cString: login)
        }
        system.listenTCP = listenOnTCP
        system.releaseStartupPages = { StartupPages.release() }
        system.fifos = LinuxFIFOs()
        system.setUmask = { Glibc.umask(mode_t($0)) }
        system.scheduling = scheduling
        // Every checker's I/O on a thread of its own, so it never holds the loop and its adverts
        // (on the loop's thread when no thread can be had), scheduled as checker_* says.
        system.makeHTTPFetcher = {
            guard let prober = HTTPProber<CheckerID>() else { return nil }
            if let thread = ProberThread(prober) { scheduling.adopt(thread); return thread }
            return prober
        }
        system.makeDatagramChecker = {
            guard let prober = DatagramProber<CheckerID>() else { return nil }
            if let thread = ProberThread(prober) { scheduling.adopt(thread); return thread }
            return prober
        }
        system.makeDialogueChecker = {
            guard let prober = DialogueProber<CheckerID>() else { return nil }
            if let thread = ProberThread(prober) { scheduling.adopt(thread); return thread }
            return prober
        }
        system.makeTLS = { settings throws(DaemonError) in
            let context: TLSClientContext
            do {
                context = try TLSClientContext(certificate: settings?.certificate, key: settings?.key, password: settings?.password, ca: settings?.ca)
            } catch {
                throw DaemonError("SSL: \(error)")
            }
            return { fd, name in context.session(fd: fd, serverName: name) }
        }
        let (notifySocket, watchdog) = SystemdNotifySocket.fromEnvironment()
        if let notifySocket {
            do {
                system.serviceManager = SystemdManager(socket: try SystemdNotifySocket(path: notifySocket), watchdogInterval: watchdog)
            } catch {
                throw DaemonError("$NOTIFY_SOCKET: \(error)")
            }
        }
        return system
    }
}

private func listenOnUnixSocket(_ path: String) throws(SystemError) -> any StreamListener { try StreamListenerSocket.unix(path: path) }
private func listenOnTCP(_ address: IPAddress, _ port: UInt16) throws(SystemError) -> any StreamListener {
    try StreamListenerSocket.tcp(address: address, port: port)
}

extension StreamSocket: StreamConnection {}
extension StreamListenerSocket: StreamListener {
    public func accept() -> (any StreamConnection)? { (accept() as StreamSocket?) }
}

private func makeConnectProber(_ scheduling: ThreadScheduling) -> any ConnectProber {
    if let threaded = ThreadedConnectProber() {
        scheduling.adopt(threaded.worker)
        return threaded
    }
    if let epoll = EpollProber() { return epoll }
    return PollProber()
}

private func openKernelIPVS() throws(IPVSKernelError) -> any IPVSClient { try IPVSKernel() }

/// The real file system: reads through VigilConfig's LocalFileSystem, writes with open(2).
struct LocalDaemonFiles: DaemonFileSystem {
    let reader = LocalFileSystem()
    func read(_ path: String) -> [UInt8]? { reader.read(path) }
    func glob(_ pattern: String) -> [String] { reader.glob(pattern) }
    func canonical(_ path: String) -> String { reader.canonical(path) }
    /// keepalived's reload_file: rw-r--r-- whatever the umask.
    func create(_ path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        fchmod(fd, 0o644)
        close(fd)
        return true
    }
    func remove(_ path: String) { unlink(path) }
    func replace(_ path: String, with text: String) throws(SystemError) {
        try AtomicFile.replace(path, with: Array(text.utf8))
    }
    func kind(of path: String) -> FileKind? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return (status.st_mode & S_IFMT) == S_IFREG ? .regular : .other
    }
    func readSmall(_ path: String, max: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n < 0 ? (errno == EAGAIN ? [] : nil) : Array(buffer.prefix(n))
    }
    func write(_ text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}

final class SystemdManager: ServiceManager {
    let socket: SystemdNotifySocket
    let watchdogInterval: Int64?
    init(socket: SystemdNotifySocket, watchdogInterval: Int64?) {
        self.socket = socket
        self.watchdogInterval = watchdogInterval
    }
    func notify(_ message: String) throws(SystemError) { try socket.send(message) }
}

final class LinuxClock: DaemonClock {
    func now() -> Int64 { MonotonicClock.nowMicroseconds() }
    func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    func pause(_ microseconds: Int64) {
        var pause = timespec(tv_sec: Int(microseconds / 1_000_000), tv_nsec: Int(microseconds % 1_000_000) * 1000)
        nanosleep(&pause, nil)
    }
}

final class PollWaiter: DescriptorWaiter {
    /// One epoll set with a timerfd for the deadline (`EpollWaiter`); else ppoll with a
    /// timerfd (see `TimerFDPoller`); plain ppoll without either.
    private let epoll = EpollWaiter()
    private let precise = TimerFDPoller()

    func watchesChanged() { epoll?.watchesChanged() }

    func wait(readable: [Int32], writable: [Int32], timeout: Int64) throws(SystemError) -> [Int32] {
        if let epoll { return try epoll.wait(readable: readable, writable: writable, timeoutMicroseconds: timeout) }
        if let precise { return try precise.wait(readable: readable, writable: writable, timeoutMicroseconds: timeout) }
        return try Poller.wait(readable: readable, writable: writable, timeoutMicroseconds: timeout)
    }
}

final class SignalPipeSource: SignalSource {
    var fd: Int32 { SignalPipe.readFD }
    func drain() -> [Int32] { SignalPipe.drain() }
}

final class RTNetlinkAddresses: AddressControl {
    let manager: AddressManager
    /// For SIOCGIFFLAGS: the once-a-second interface tracking costs one ioctl per link, where
    /// a lookup dumps every link and address (most of an idle director's CPU before).
    private let flagsSocket = socket(AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    init(_ manager: AddressManager) { self.manager = manager }
    deinit { if flagsSocket >= 0 { close(flagsSocket) } }
    func interface(named name: String) throws(SystemError) -> InterfaceInfo { try InterfaceInfo.lookup(name, using: manager) }
    func isUpAndRunning(_ name: String) -> Bool {
        guard flagsSocket >= 0 else { return (try? interface(named: name)).map { $0.isUp && $0.isRunning } ?? false }
        return InterfaceInfo.isUpAndRunning(name, socket: flagsSocket) ?? false
    }
    func openNetlinkMonitor() -> Int32? { NetlinkMonitor.open() }
    func netlinkEvents(on monitor: Int32) -> NetlinkEvents { NetlinkMonitor.drain(monitor) }
    func closeNetlinkMonitor(_ monitor: Int32) { close(monitor) }
    func add(_ spec: AddressSpec) throws(AddressError) { try manager.add(spec) }
    func remove(_ spec: AddressSpec) throws(AddressError) { try manager.remove(spec) }
    func list(ifindex: Int32?) throws(AddressError) -> [InterfaceAddress] { try manager.list(ifindex: ifindex) }
}

final class LinuxVRRPNetwork: VRRPNetwork {
    func openChannel(interface: String, family: AddressFamily, mode: VRRPChannelMode, ipProtocol: UInt8) throws(SystemError) -> any VRRPChannel {
        switch (family, mode) {
        case (.ipv4, .multicast(.v4(let group))):
            return IPv4Channel(try VRRPSocket(interface: interface, mode: .multicast(group: group), ipProtocol: Int32(ipProtocol)))
        case (.ipv4, .unicast(.v4(let local))):
            return IPv4Channel(try VRRPSocket(interface: interface, mode: .unicast(local: local), ipProtocol: Int32(ipProtocol)))
        case (.ipv6, .multicast(.v6(let group))):
            return IPv6Channel(try VRRPSocket6(interface: interface, mode: .multicast(group: group)))
        case (.ipv6, .unicast(.v6(let local))):
            return IPv6Channel(try VRRPSocket6(interface: interface, mode: .unicast(local: local)))
        default:
            throw SystemError(errno: EAFNOSUPPORT, operation: "VRRP socket (source of the wrong family)", interface: interface)
        }
    }

    func announcer(for interface: InterfaceInfo, family: AddressFamily) throws(SystemError) -> any Announcer {
        family == .ipv4 ? GARPAnnouncer(try GratuitousARP(interface: interface.name, mac: interface.mac))
                        : NAAnnouncer(try UnsolicitedNA(interface: interface.name, mac: interface.mac))
    }
}

final class IPv4Channel: VRRPChannel {
    private var socket: VRRPSocket?
    let fd: Int32
    init(_ socket: VRRPSocket) {
        self.socket = socket
        fd = socket.fd
    }

    func send(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, ttl: UInt8) throws(SystemError) {
        guard let socket, case .v4(let from) = source, case .v4(let to) = destination else { return }
        try socket.send(payload, from: from, to: to, ttl: ttl)
    }

    func sendPacket(_ packet: [UInt8], to destination: IPAddress) throws(SystemError) {
        guard let socket, case .v4(let to) = destination else { return }
        try socket.sendPacket(packet, to: to)
    }

    func receive() throws(SystemError) -> ReceivedVRRPPacket? {
        guard let packet = try socket?.receive() else { return nil }
        return ReceivedVRRPPacket(bytes: packet.bytes, source: .v4(packet.source))
    }

    func close() { socket = nil }
}

final class IPv6Channel: VRRPChannel {
    private var socket: VRRPSocket6?
    let fd: Int32
    init(_ socket: VRRPSocket6) {
        self.socket = socket
        fd = socket.fd
    }

    func send(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, ttl: UInt8) throws(SystemError) {
        guard let socket, case .v6(let from) = source, case .v6(let to) = destination else { return }
        try socket.send(payload, from: from, to: to)
    }

    func sendPacket(_ packet: [UInt8], to destination: IPAddress) throws(SystemError) {
        throw SystemError(errno: EAFNOSUPPORT, operation: "AH adverts are IPv4 only")
    }

    /// IPv6 raw sockets deliver no IP header: it is rebuilt from the ancillary data (source,
    /// destination, IPV6_HOPLIMIT) so the advert goes through the same decoder as IPv4's.
    func receive() throws(SystemError) -> ReceivedVRRPPacket? {
        while let packet = try socket?.receive() {
            guard packet.payload.count > 1, packet.payload.count <= 65_535 else { continue }
            let destination = packet.destination ?? IPv6Address.vrrpMulticastGroup
            let length = packet.payload.count
            let hopLimit = packet.hopLimit < 0 ? 255 : UInt8(clamping: packet.hopLimit)
            let header: [UInt8] = [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), VRRPAdvert.ipProtocol, hopLimit]
                + packet.source.bytes + destination.bytes
            return ReceivedVRRPPacket(bytes: header + packet.payload, source: .v6(packet.source), hopLimitKnown: packet.hopLimit >= 0)
        }
        return nil
    }

    func close() { socket = nil }
}

final class GARPAnnouncer: Announcer {
    let sender: GratuitousARP
    init(_ sender: GratuitousARP) { self.sender = sender }
    func announce(_ address: IPAddress) throws(SystemError) {
        if case .v4(let v4) = address { try sender.send(for: v4) }
    }
}

final class NAAnnouncer: Announcer {
    let sender: UnsolicitedNA
    init(_ sender: UnsolicitedNA) { self.sender = sender }
    func announce(_ address: IPAddress) throws(SystemError) {
        if case .v6(let v6) = address { try sender.send(for: v6) }
    }
}

extension IPVSKernel: IPVSClient {}

final class LinuxFIFOs: FIFOControl {
    func open(_ path: String, owner: (user: String, group: String?)?) throws(SystemError) -> (fd: Int32, created: Bool) {
        try NotifyFIFOFile.open(path, owner: owner)
    }
    func write(_ fd: Int32, _ line: [UInt8]) -> Bool { NotifyFIFOFile.write(fd, line) }
    func close(_ fd: Int32, removing path: String?) { NotifyFIFOFile.close(fd, removing: path) }
}

/// fork/exec through ScriptRunner, timeouts enforced by its supervisor.
final class SupervisedProcesses: ProcessRunner {
    let supervisor = ScriptSupervisor<ScriptRunID>()
    func start(_ spec: ScriptSpec, id: ScriptRunID, timeout: Int64?, now: Int64) throws(ScriptError) {
        try supervisor.start(spec, id: id, timeout: timeout, now: now)
    }
    var runningCount: Int { supervisor.runningCount }
    var nextDeadline: Int64? { supervisor.nextDeadline }
    func poll(now: Int64) -> [FinishedScript] {
        supervisor.poll(now: now).map { FinishedScript(id: $0.id, success: $0.success, timedOut: $0.timedOut, runtime: $0.runtime, status: $0.status) }
    }
    func terminateAll(now: Int64) { supervisor.terminateAll(now: now) }
    func terminate(_ id: ScriptRunID, now: Int64) { supervisor.terminate(id, now: now) }
}

/// All connects behind one epoll descriptor in the loop's poll set.
final class EpollProber: ConnectProber {
    let prober: EpollTCPProber<CheckerID>
    init?() {
        guard let prober = EpollTCPProber<CheckerID>() else { return nil }
        self.prober = prober
    }
    var sharedDescriptor: Int32? { prober.descriptor }
    var count: Int { prober.count }
    var nextDeadline: Int64? { prober.nextDeadline }
    func start(id: CheckerID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<CheckerID> {
        prober.start(id: id, target: target, options: options, timeout: timeout, now: now)
    }
    func ready(fd: Int32, now: Int64) -> [ProbeResult<CheckerID>] { prober.collect(waitMs: 0, now: { now }) }
    func expire(now: Int64) -> [ProbeResult<CheckerID>] { prober.expire(now: now) }
    func cancelAll() { prober.cancelAll() }
}

/// The connects on a thread of their own (`ProberThread`): the loop watches one eventfd.
final class ThreadedConnectProber: ConnectProber {
    let worker: ProberThread<EpollTCPProber<CheckerID>>
    init?() {
        guard let prober = EpollTCPProber<CheckerID>(), let worker = ProberThread(prober) else { return nil }
        self.worker = worker
    }
    var sharedDescriptor: Int32? { worker.descriptor }
    var count: Int { worker.count }
    var nextDeadline: Int64? { nil }
    func start(id: CheckerID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<CheckerID> {
        _ = worker.start(id: id, ConnectRequest(target: target, options: options, timeout: timeout), now: now)
        return .pending(fd: worker.descriptor)
    }
    func ready(fd: Int32, now: Int64) -> [ProbeResult<CheckerID>] { worker.ready(now: now) }
    func expire(now: Int64) -> [ProbeResult<CheckerID>] { [] }
    func cancelAll() { worker.cancelAll() }
}

/// The fallback when no epoll instance can be had: each connect's socket in the poll set.
final class PollProber: ConnectProber {
    let prober = TCPProber<CheckerID>()
    var sharedDescriptor: Int32? { nil }
    var count: Int { prober.count }
    var nextDeadline: Int64? { prober.nextDeadline }
    func start(id: CheckerID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<CheckerID> {
        prober.start(id: id, target: target, options: options, timeout: timeout, now: now)
    }
    func ready(fd: Int32, now: Int64) -> [ProbeResult<CheckerID>] { prober.handleWritable(fd: fd).map { [$0] } ?? [] }
    func expire(now: Int64) -> [ProbeResult<CheckerID>] { prober.expire(now: now) }
    func cancelAll() { prober.cancelAll() }
}

extension RouteManager: RoutingControl {}
extension LinkManager: LinkControl {}

/// Runs a command and waits for it (polling every millisecond, at most `timeout` µs, then
/// SIGKILL to its group), keeping up to 4 KiB of what it wrote; the rest is read and dropped,
/// so a chatty command cannot block on a full pipe.
func runToCompletion(_ spec: ScriptSpec, timeout: Int64) -> (success: Bool, output: String) {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return (false, "pipe: errno \(errno)") }
    defer { close(fds[0]) }
    _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    var spec = spec
    spec.output = fds[1]
    let spawned: SpawnedScript
    do { spawned = try ScriptRunner.spawn(spec) } catch {
        close(fds[1])
        return (false, "\(error)")
    }
    close(fds[1])
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1024)
    func drain() {
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            output += buffer.prefix(min(n, max(0, 4096 - output.count)))
        }
    }
    let deadline = ScriptRunner.monotonicNow() + timeout
    while true {
        drain()
        if let status = ScriptRunner.reap(pid: spawned.pid) {
            drain()
            let text = String(decoding: output, as: UTF8.self)
            return (status.isSuccess, status.isSuccess ? text : "\(status): \(text)")
        }
        if ScriptRunner.monotonicNow() > deadline {
            _ = ScriptRunner.kill(group: spawned.pid, signal: SIGKILL)
            var status: Int32 = 0
            while waitpid(spawned.pid, &status, 0) < 0 && errno == EINTR {}
            return (false, "timed out after \(timeout / 1000) ms")
        }
        usleep(1_000)
    }
}
