// Everything the daemon touches outside its own memory, each behind a small protocol: the
// clock, waiting on descriptors, signals, addresses and links, VRRP sockets, GARP/NA, IPVS,
// processes, connects, and the configuration files. `DaemonSystem.linux()` gives the real
// ones; Tests/VigilDaemonTests gives in-memory fakes on a virtual clock, which is how the
// whole daemon (reloads included) is tested without root in milliseconds.
@preconcurrency import Glibc
import Addressing
import IPVS
import LVS
import ScriptRunner
import TCPProbe
import VigilConfig
import VigilSystem

/// Monotonic time in µs, and the only way the daemon waits without descriptors.
public protocol DaemonClock: AnyObject {
    func now() -> Int64
    /// Seconds since the epoch, for what people read (last transition, start time).
    func wallClock() -> Double
    /// A short pause (shutdown waits for notify scripts); a virtual clock just advances.
    func pause(_ microseconds: Int64)
}

/// One wait of the event loop.
public protocol DescriptorWaiter: AnyObject {
    /// The fds that became ready within `timeout` µs (negative: no limit). Interrupted waits
    /// return early with whatever is ready.
    func wait(readable: [Int32], writable: [Int32], timeout: Int64) throws(SystemError) -> [Int32]
    /// The loop's descriptors or their interests changed since the last wait (a waiter that
    /// keeps a kernel set, epoll, updates it then, and only then).
    func watchesChanged()
}

extension DescriptorWaiter {
    public func watchesChanged() {}
}

/// The service manager that started the daemon (systemd's notify protocol).
public protocol ServiceManager: AnyObject {
    /// Sends one message (`READY=1`, `STATUS=…`, several lines at once).
    func notify(_ message: String) throws(SystemError)
    /// How often the manager wants `WATCHDOG=1`, µs (systemd's WATCHDOG_USEC); nil without one.
    var watchdogInterval: Int64? { get }
}

/// Signals as bytes on a descriptor the loop watches (the self-pipe trick).
public protocol SignalSource: AnyObject {
    var fd: Int32 { get }
    /// The signals received since the last call, in order.
    func drain() -> [Int32]
}

/// Links and addresses (rtnetlink).
public protocol AddressControl: AnyObject {
    func interface(named name: String) throws(SystemError) -> InterfaceInfo
    /// Up and running (false when missing): asked for every tracked interface when the
    /// monitor reports a link change (once a second without a monitor).
    func isUpAndRunning(_ name: String) -> Bool
    /// A descriptor that turns readable when the kernel reports address or link changes
    /// (rtnetlink's address and link groups), so that a VIP someone deletes is put back, and a
    /// tracked link that goes down is seen, without a dump or a flags query every second;
    /// nil: the hosts poll once a second instead.
    func openNetlinkMonitor() -> Int32?
    /// Reads what is queued on the monitor (bounded per call); both kinds when events were
    /// lost (then anything may have changed).
    func netlinkEvents(on monitor: Int32) -> NetlinkEvents
    func closeNetlinkMonitor(_ monitor: Int32)
    func add(_ spec: AddressSpec) throws(AddressError)
    func remove(_ spec: AddressSpec) throws(AddressError)
    func list(ifindex: Int32?) throws(AddressError) -> [InterfaceAddress]
}

/// keepalived's `vrrp_*` and `checker_*` scheduling keywords, on Vigil's threads
/// (`ThreadScheduling`): the loop's gets the VRRP plan, the checkers' workers the checker one.
public protocol SchedulingControl: AnyObject {
    /// Returns one message per setting the kernel refused.
    func apply(loop: ThreadScheduling.Plan, checkers: ThreadScheduling.Plan) -> [String]
    func lockMemory(_ wanted: Bool) -> String?
    var isMemoryLocked: Bool { get }
    func setRealtimeLimit(_ microseconds: UInt64?) -> String?
    /// Where failures for workers made later go (the daemon's log).
    var report: (String) -> Void { get set }
}

extension ThreadScheduling: SchedulingControl {}

/// Routes and policy rules (keepalived's static_* and virtual_* routes and rules).
public protocol RoutingControl: AnyObject {
    func add(_ route: RouteDefinition) throws(RouteError)
    func remove(_ route: RouteDefinition) throws(RouteError)
    func add(_ rule: RuleDefinition) throws(RouteError)
    func remove(_ rule: RuleDefinition) throws(RouteError)
    /// The routes of `table` marked `protocolNumber` (family, destination, prefix only).
    func routes(table: UInt32, protocolNumber: UInt8) throws(RouteError) -> [RouteDefinition]
}

/// keepalived's VMACs: macvlans, and the /proc/sys settings they need.
public protocol LinkControl: AnyObject {
    /// nil when no link has the name.
    func kind(of name: String) throws(LinkError) -> LinkKind?
    func createMacvlan(name: String, parent: Int32, mac: [UInt8]) throws(LinkError)
    func bringUp(_ name: String) throws(LinkError)
    func delete(_ name: String) throws(LinkError)
    /// A value under /proc/sys (`net/ipv4/conf/eth0/arp_ignore`); nil when unreadable.
    func sysctl(_ key: String) -> Int?
    func setSysctl(_ key: String, _ value: Int) -> Bool
    func linkNames() -> [String]
}

public enum VRRPChannelMode: Hashable, Sendable {
    /// Joined to this group on the interface (the family's VRRP group unless
    /// vrrp_mcast_group4/6 say otherwise).
    case multicast(group: IPAddress)
    /// Bound to the local unicast source.
    case unicast(local: IPAddress)
}

/// A VRRP packet as received: the whole IP packet, header first. IPv6 raw sockets deliver
/// no header, so the adapter rebuilds one from the ancillary data, and the daemon decodes
/// both families the same way.
public struct ReceivedVRRPPacket: Sendable {
    public var bytes: [UInt8]
    public var source: IPAddress
    /// False when the socket did not report the hop limit (then it is not checked).
    public var hopLimitKnown: Bool
    public init(bytes: [UInt8], source: IPAddress, hopLimitKnown: Bool = true) {
        self.bytes = bytes
        self.source = source
        self.hopLimitKnown = hopLimitKnown
    }
}

/// VRRP on one interface in one mode, shared by every instance that uses it.
public protocol VRRPChannel: AnyObject {
    var fd: Int32 { get }
    func send(_ payload: [UInt8], from source: IPAddress, to destination: IPAddress, ttl: UInt8) throws(SystemError)
    /// A whole IPv4 packet, header included (AH adverts, whose ICV covers the header).
    func sendPacket(_ packet: [UInt8], to destination: IPAddress) throws(SystemError)
    /// The next queued packet; nil when none is queued.
    func receive() throws(SystemError) -> ReceivedVRRPPacket?
    func close()
}

/// Gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) on one interface.
public protocol Announcer: AnyObject {
    func announce(_ address: IPAddress) throws(SystemError)
}

public protocol VRRPNetwork: AnyObject {
    /// `ipProtocol` 112 for VRRP, 51 for keepalived's IPsec AH (IPv4 only).
    func openChannel(interface: String, family: AddressFamily, mode: VRRPChannelMode, ipProtocol: UInt8) throws(SystemError) -> any VRRPChannel
    func announcer(for interface: InterfaceInfo, family: AddressFamily) throws(SystemError) -> any Announcer
}

/// The kernel's IPVS table.
public protocol IPVSClient: AnyObject {
    func info() throws(IPVSKernelError) -> (version: UInt32, connectionTableSize: UInt32)
    func dump() throws(IPVSKernelError) -> IPVSTable
    /// Traffic counters of every service and destination.
    func statistics() throws(IPVSKernelError) -> [IPVSServiceKey: IPVSServiceStatistics]
    func apply(_ operations: [IPVSOperation]) throws(IPVSKernelError) -> [IPVSOperationFailure]
    /// The kernel's connection-sync threads (`ipvsadm --start-daemon`, `--stop-daemon`, `-L --daemon`).
    func startSyncDaemon(_ daemon: IPVSSyncDaemon) throws(IPVSKernelError)
    func stopSyncDaemon(_ state: IPVSSyncState, syncID: UInt32) throws(IPVSKernelError)
    func syncDaemons() throws(IPVSKernelError) -> [IPVSSyncDaemon]
    /// The connection timeouts (`ipvsadm -L --timeout`, `ipvsadm --set`).
    func timeouts() throws(IPVSKernelError) -> IPVSTimeouts
    func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSKernelError)
}

/// What the daemon's scripts are known by while they run.
public enum ScriptRunID: Hashable, Sendable {
    /// A track script's run; `serial` tells runs of a script replaced by a reload apart.
    case track(String, serial: Int)
    case notify(Int)
    /// An `nft` run that applies Vigil's firewall rules.
    case firewall(Int)
    /// A MISC_CHECK run of checker `slot`; `serial` tells a reload's new checker apart.
    case misc(slot: Int, serial: Int)
    /// A notify FIFO's reader script (`notify_fifo_script`), which runs as long as the FIFO.
    case fifoScript(Int)
}

public struct FinishedScript: Sendable {
    public var id: ScriptRunID
    public var success: Bool
    public var timedOut: Bool
    public var runtime: Int64
    /// How it ended; nil when it could not be reaped.
    public var status: ScriptRunner.ExitStatus?
    public init(id: ScriptRunID, success: Bool, timedOut: Bool, runtime: Int64, status: ScriptRunner.ExitStatus? = nil) {
        self.id = id
        self.success = success
        self.timedOut = timedOut
        self.runtime = runtime
        self.status = status ?? (success ? .exited(0) : nil)
    }
}

/// Processes with timeouts (SIGTERM, then SIGKILL), reaped by pid.
public protocol ProcessRunner: AnyObject {
    func start(_ spec: ScriptSpec, id: ScriptRunID, timeout: Int64?, now: Int64) throws(ScriptError)
    var runningCount: Int { get }
    /// When `poll` next has work no SIGCHLD announces (a timeout to enforce).
    var nextDeadline: Int64? { get }
    func poll(now: Int64) -> [FinishedScript]
    func terminateAll(now: Int64)
    /// The timeout treatment (SIGTERM, then SIGKILL) for one run, now.
    func terminate(_ id: ScriptRunID, now: Int64)
}

/// keepalived's notify FIFOs (`notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo`).
public protocol FIFOControl: AnyObject {
    /// Opens the FIFO at `path` for writing without blocking (and for reading, so that no
    /// reader is needed), making it with mode 0644 and `owner` when nothing is there; anything
    /// but a FIFO at `path` is refused. `created`: Vigil made it, so Vigil removes it at the end.
    func open(_ path: String, owner: (user: String, group: String?)?) throws(SystemError) -> (fd: Int32, created: Bool)
    /// The line in one write (a FIFO keeps writes under PIPE_BUF whole); false when it was not
    /// written (the reader is behind and the pipe is full).
    func write(_ fd: Int32, _ line: [UInt8]) -> Bool
    func close(_ fd: Int32, removing path: String?)
}

/// Non-blocking TCP connects for TCP_CHECK.
public protocol ConnectProber: AnyObject {
    /// The one descriptor that becomes readable when any connect finishes (epoll), or nil
    /// when each pending connect's own descriptor must be watched for writing.
    var sharedDescriptor: Int32? { get }
    var count: Int { get }
    var nextDeadline: Int64? { get }
    func start(id: CheckerID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<CheckerID>
    /// Results for a ready descriptor (the shared one, or a connect's own).
    func ready(fd: Int32, now: Int64) -> [ProbeResult<CheckerID>]
    func expire(now: Int64) -> [ProbeResult<CheckerID>]
    func cancelAll()
}

/// HTTP_GET / SSL_GET fetches, all behind one descriptor the loop watches.
public protocol HTTPFetcher: AnyObject {
    var descriptor: Int32 { get }
    var count: Int { get }
    var nextDeadline: Int64? { get }
    /// A result now when the fetch could not start.
    func start(id: CheckerID, _ request: HTTPFetchRequest, now: Int64) -> HTTPFetchResult<CheckerID>?
    func ready(now: Int64) -> [HTTPFetchResult<CheckerID>]
    func expire(now: Int64) -> [HTTPFetchResult<CheckerID>]
    func cancelAll()
}

extension HTTPProber: HTTPFetcher where ID == CheckerID {}

/// Request/answer checks behind one descriptor the loop watches: UDP_CHECK, DNS_CHECK and
/// PING_CHECK datagrams (`DatagramRequest`), SMTP_CHECK conversations (`DialogueRequest`).
public protocol ExchangeChecker<Request>: AnyObject {
    associatedtype Request
    var descriptor: Int32 { get }
    var count: Int { get }
    var nextDeadline: Int64? { get }
    func start(id: CheckerID, _ request: Request, now: Int64) -> ExchangeResult<CheckerID>?
    func ready(now: Int64) -> [ExchangeResult<CheckerID>]
    func expire(now: Int64) -> [ExchangeResult<CheckerID>]
    func cancelAll()
}

extension DatagramProber: ExchangeChecker where ID == CheckerID {}
extension DialogueProber: ExchangeChecker where ID == CheckerID {}
extension ProberThread: HTTPFetcher where Inner.ID == CheckerID, Inner.Request == HTTPFetchRequest, Inner.Result == HTTPFetchResult<CheckerID> {}
extension ProberThread: ExchangeChecker where Inner.ID == CheckerID, Inner.Result == ExchangeResult<CheckerID> {
    public typealias Request = Inner.Request
}

/// keepalived's SSL block made into sessions: (socket, SNI name) → a TLS session.
public typealias TLSSessionMaker = (Int32, String?) -> (any TLSSession)?

/// One accepted stream connection (control socket, metrics), non-blocking.
public protocol StreamConnection: AnyObject {
    var fd: Int32 { get }
    func read(max: Int) -> StreamReadResult
    /// Bytes written (0 when it would block); nil when the connection failed.
    func write(_ bytes: ArraySlice<UInt8>) -> Int?
    func close()
}

public protocol StreamListener: AnyObject {
    var fd: Int32 { get }
    /// The next pending connection; nil when none is.
    func accept() -> (any StreamConnection)?
    func close()
}

public enum FileKind: Sendable { case regular, other }

/// The configuration files, and the few files the daemon writes itself (keepalived's
/// reload_file and reload_check_config log).
public protocol DaemonFileSystem: ConfigFileSystem {
    /// Creates (or truncates) an empty file; false when it cannot.
    func create(_ path: String) -> Bool
    func remove(_ path: String)
    func write(_ text: String, to path: String) -> Bool
    /// Replaces the file at once: a reader sees the old file or the new one, never a part.
    func replace(_ path: String, with text: String) throws(SystemError)
    /// What is at `path`: nil when nothing.
    func kind(of path: String) -> FileKind?
    /// The first `max` bytes, opened without blocking (a FIFO gives nothing); nil when unreadable.
    func readSmall(_ path: String, max: Int) -> [UInt8]?
}

/// The adapters one daemon uses.
public struct DaemonSystem {
    public var clock: any DaemonClock
    public var waiter: any DescriptorWaiter
    public var signals: any SignalSource
    public var addresses: any AddressControl
    public var network: any VRRPNetwork
    public var openIPVS: () throws(IPVSKernelError) -> any IPVSClient
    public var processes: any ProcessRunner
    public var makeProber: () -> any ConnectProber
    /// Where reloads read the configuration, and what they check it against.
    public var files: any DaemonFileSystem
    public var host: any HostProbe
    public var listenUnix: (String) throws(SystemError) -> any StreamListener = { path throws(SystemError) in
        throw SystemError(errno: ENOSYS, operation: "listen on \(path)")
    }
    /// nil when no service manager asked to be told (no $NOTIFY_SOCKET).
    public var serviceManager: (any ServiceManager)?
    public var listenTCP: (IPAddress, UInt16) throws(SystemError) -> any StreamListener = { address, port throws(SystemError) in
        throw SystemError(errno: ENOSYS, operation: "listen on \(address):\(port)")
    }
    /// nil when the routing socket could not be opened: routes and rules are then logged as
    /// not installed.
    public var routing: (any RoutingControl)?
    /// nil when the link socket could not be opened: an instance with use_vmac cannot start.
    public var links: (any LinkControl)?
    /// nftables' `nft`, which applies Vigil's firewall rules; nil when not installed.
    public var nftPath: String?
    /// Runs a command to its end (at most the timeout, µs): whether it succeeded, and what it
    /// wrote. Only for what must be done before the daemon goes on (start, reload).
    public var runNow: (ScriptSpec, Int64) -> (success: Bool, output: String) = { _, _ in (false, "cannot run commands here") }
    /// A TCP connection on its way (SMTP alerts); a failed connect reads as closed.
    public var connectTCP: (IPAddress, UInt16) throws(SystemError) -> any StreamConnection = { address, port throws(SystemError) in
        throw SystemError(errno: ENOSYS, operation: "connect to \(address):\(port)")
    }
    /// The process's file-creation mask (umask(2)).
    public var setUmask: (UInt32) -> Void = { _ in }
    /// nil: notify FIFOs cannot be opened here (logged when the configuration names one).
    public var fifos: (any FIFOControl)?
    /// Lets go of the resident code pages start-up and a reload ran (`StartupPages`); the kB.
    public var releaseStartupPages: () -> Int = { 0 }
    /// keepalived's vrrp_* and checker_* process settings on Vigil's threads; nil: not applied.
    public var scheduling: (any SchedulingControl)?
    /// The host's name and the user's, for keepalived's default router_id, HELO and sender.
    public var hostName = "localhost"
    public var userName: () -> String = { "root" }
    /// The running processes (vrrp_track_process); with command lines when asked.
    public var processTable: (Bool) -> [RunningProcess] = { _ in [] }
    /// nil when no epoll descriptor can be had: HTTP_GET and SSL_GET are then not run.
    public var makeHTTPFetcher: () -> (any HTTPFetcher)? = { nil }
    /// nil when no epoll descriptor can be had: UDP_CHECK, DNS_CHECK and PING_CHECK do not run.
    public var makeDatagramChecker: () -> (any ExchangeChecker<DatagramRequest>)? = { nil }
    /// nil when no epoll descriptor can be had: SMTP_CHECK does not run.
    public var makeDialogueChecker: () -> (any ExchangeChecker<DialogueRequest>)? = { nil }
    /// The SSL_GET client from the SSL block (nil: no block); throws when its files are unusable.
    public var makeTLS: (SSLSettings?) throws(DaemonError) -> TLSSessionMaker = { _ throws(DaemonError) in
        throw DaemonError("TLS is not available here")
    }

    public init(clock: any DaemonClock, waiter: any DescriptorWaiter, signals: any SignalSource,
                addresses: any AddressControl, network: any VRRPNetwork,
                openIPVS: @escaping () throws(IPVSKernelError) -> any IPVSClient,
                processes: any ProcessRunner, makeProber: @escaping () -> any ConnectProber,
                files: any DaemonFileSystem, host: any HostProbe) {
        self.clock = clock
        self.waiter = waiter
        self.signals = signals
        self.addresses = addresses
        self.network = network
        self.openIPVS = openIPVS
        self.processes = processes
        self.makeProber = makeProber
        self.files = files
        self.host = host
    }
}

extension AddressControl {
    public func isUpAndRunning(_ name: String) -> Bool {
        (try? interface(named: name)).map { $0.isUp && $0.isRunning } ?? false
    }
    public func openNetlinkMonitor() -> Int32? { nil }
    public func netlinkEvents(on monitor: Int32) -> NetlinkEvents { NetlinkEvents() }
    public func closeNetlinkMonitor(_ monitor: Int32) {}
}
