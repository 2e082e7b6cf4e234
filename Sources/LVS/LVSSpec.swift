// From keepalived.conf's virtual_server blocks to what the checker needs at run time: the IPVS
// services to create, each real server's destination and checkers with every parameter already
// resolved through keepalived's checker → real_server → virtual_server → default chain. Pure:
// the same config always gives the same specs, and tests need no kernel.
import Addressing
import HealthCheck
import IPVS
import VigilConfig

/// Where and how one TCP_CHECK connects.
public struct CheckTarget: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public var bindTo: IPAddress?
    public var bindPort: UInt16?
    public var bindInterface: String?
    public var fwmark: UInt32

    /// keepalived's FMT_CHK: `[192.168.0.21]:tcp:80`.
    public var description: String { "[\(address)]:tcp:\(port)" }
}

/// What an HTTP_GET or SSL_GET asks for, resolved: each url's request and expectation.
public struct HTTPCheckSpec: Sendable, Hashable {
    public struct URL: Sendable, Hashable {
        public var path: String
        /// The Host: header: the url's virtualhost, else the checker's, the real server's, the
        /// virtual server's; nil: the server's address and port.
        public var virtualhost: String?
        public var expectation: HTTPExpectation
    }
    public var urls: [URL]
    public var version: HTTPProtocolVersion
    public var tls: Bool
    /// SNI (enable_sni or sni_name).
    public var serverName: String?
    public var fastRecovery: Bool
}

/// A MISC_CHECK: what to run, for how long, and whether its exit status sets the weight.
public struct MiscCheckSpec: Sendable, Equatable {
    public var command: ScriptCommand
    /// misc_timeout, else the virtual server's delay_loop (keepalived).
    public var timeout: Int64
    public var dynamic: Bool

    /// The same checker across a reload: the same command line and user, wherever it stands.
    public static func == (a: Self, b: Self) -> Bool {
        a.command.command == b.command.command && a.command.user == b.command.user && a.timeout == b.timeout && a.dynamic == b.dynamic
    }
}

/// FILE_CHECK: the track_file it follows (where, and its init_file) and the weight that
/// multiplies the number read (see `FileCheckMachine`).
public struct FileCheckSpec: Sendable, Hashable {
    public var trackFile: String
    public var path: String
    public var initValue: Int?
    public var initOverwrite: Bool
    public var weight: Int
    public var reverse: Bool

    public init(trackFile: String, path: String, initValue: Int?, initOverwrite: Bool, weight: Int, reverse: Bool) {
        self.trackFile = trackFile
        self.path = path
        self.initValue = initValue
        self.initOverwrite = initOverwrite
        self.weight = weight
        self.reverse = reverse
    }
}

/// UDP_CHECK, DNS_CHECK, PING_CHECK: one request datagram, judged on its answer.
public enum DatagramCheckSpec: Sendable, Hashable {
    case udp(UDPCheckSpec)
    case dns(DNSQuery)
    case ping
}

public struct CheckerSpec: Sendable {
    public var kind: CheckerKind
    public var target: CheckTarget
    public var timing: TCPCheckConfig
    public var http: HTTPCheckSpec?
    public var misc: MiscCheckSpec?
    public var datagram: DatagramCheckSpec?
    /// SMTP_CHECK: the HELO name.
    public var smtpHelo: String?
    public var file: FileCheckSpec?
    public var location: SourceLocation
    /// keepalived's `log_all_failures` / `checker_log_all_failures`.
    public var logAllFailures = false

    public init(kind: CheckerKind, target: CheckTarget, timing: TCPCheckConfig, http: HTTPCheckSpec? = nil, misc: MiscCheckSpec? = nil,
                datagram: DatagramCheckSpec? = nil, location: SourceLocation) {
        self.kind = kind
        self.target = target
        self.timing = timing
        self.http = http
        self.misc = misc
        self.datagram = datagram
        self.location = location
    }

    /// keepalived migrates a checker across a reload only when its kind and every parameter
    /// are equal (`compare` of the checker); anything else is a new checker.
    public func isSameChecker(as other: CheckerSpec) -> Bool {
        kind == other.kind && target == other.target && timing == other.timing && http == other.http && misc == other.misc && datagram == other.datagram && smtpHelo == other.smtpHelo && file == other.file
    }
}

public struct RealServerSpec: Sendable {
    /// The destination as configured: full weight, before health decides anything.
    public var destination: IPVSDestination
    public var inhibitOnFailure: Bool
    public var notifyUp: ScriptCommand?
    public var notifyDown: ScriptCommand?
    /// Mail its checkers' verdicts (keepalived's resolution: the real server's smtp_alert,
    /// else smtp_alert_checker, else global smtp_alert, else on; never the virtual server's).
    public var smtpAlert = true
    /// Only the checkers Vigil runs (TCP_CHECK); the others were reported as warnings.
    public var checkers: [CheckerSpec]
    public var location: SourceLocation
}

public struct SorryServerSpec: Sendable {
    public var destination: IPVSDestination
    public var inhibit: Bool
}

/// What keepalived's `vs_iseq` matches a virtual server by on reload: a group by its name,
/// any other by its one service key (protocol, address and port, or family and fwmark).
public enum VirtualServerIdentity: Hashable, Sendable, CustomStringConvertible {
    case service(IPVSServiceKey)
    case group(String, IPVSProtocol)

    public var description: String {
        switch self {
        case .service(let key): key.description
        case .group(let name, let proto): "group \(name) (\(proto.name))"
        }
    }
}

public struct VirtualServerSpec: Sendable {
    public var identity: VirtualServerIdentity
    /// keepalived's FMT_VS of the first service, for log lines.
    public var name: String
    /// One per address (several for a virtual_server_group); all share the real servers.
    public var services: [IPVSService]
    public var realServers: [RealServerSpec]
    public var sorryServer: SorryServerSpec?
    public var quorum: Int
    public var hysteresis: Int
    public var quorumUp: ScriptCommand?
    public var quorumDown: ScriptCommand?
    public var omega: Bool
    /// Mail quorum changes: its smtp_alert, else smtp_alert_checker, else global smtp_alert, else off.
    public var smtpAlert = false
    /// Vigil's own `vigil_announce` lines (see `RouteAnnouncer`).
    public var announcements: [AnnouncementSpec] = []
    public var location: SourceLocation
    /// ha_suspend: the addresses of which one must be on this director for the checks to
    /// run (empty without ha_suspend).
    public var suspendUnless: Set<IPAddress> = []
}

public struct LVSWarning: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(location): \(message)" }
}

public enum LVSSpecBuilder {
    /// Every usable virtual_server of `config`. Blocks the config test already rejects or
    /// drops (no real server, unknown group) are skipped; checkers Vigil does not run yet are
    /// left out (the configuration's diagnostics say so, so nobody believes a server is
    /// health-checked when it is not).
    public static func build(_ config: Configuration) -> (specs: [VirtualServerSpec], warnings: [LVSWarning]) {
        var specs: [VirtualServerSpec] = []
        var warnings: [LVSWarning] = []
        for vs in config.virtualServers where !vs.realServers.isEmpty {
            let keys = serviceKeys(vs, config: config)
            guard let first = keys.first else {
                warnings.append(LVSWarning(location: vs.location, message: "virtual_server \(vs.key): no address to install: ignored"))
                continue
            }
            let services = keys.map { service(vs, key: $0) }
            let isFwmark: Bool = { if case .fwmark = first { true } else { false } }()
            let vsPort: UInt16 = { if case .address(_, _, let port) = first { port } else { 0 } }()
            var realServers: [RealServerSpec] = []
            for rs in vs.realServers {
                let address = rs.address
                let method = rs.method ?? vs.method
                // keepalived: only NAT can change the port; DR and TUN use the VS port (0 for fwmark).
                let port: UInt16 = method == .nat ? UInt16(clamping: rs.port) : (isFwmark ? UInt16(clamping: rs.port) : vsPort)
                let dest = IPVSDestination(
                    IPVSDestinationKey(address, port: port), forwarding: forwarding(method, rs.tunnel ?? vs.tunnel),
                    weight: Int32(clamping: rs.weight ?? vs.weight),
                    upperThreshold: UInt32(clamping: rs.upperThreshold), lowerThreshold: UInt32(clamping: rs.lowerThreshold))
                var checkers: [CheckerSpec] = []
                // Checkers Vigil does not run yet are reported with the configuration's own
                // diagnostics (by `vigil -t` and in the daemon's log), not a second time here.
                for chk in rs.checkers where [.tcp, .http, .ssl, .smtp, .udp, .dns, .ping].contains(chk.kind) || (chk.kind == .misc && chk.miscPath != nil) {
                    var made = checker(chk, rs: rs, vs: vs, rsAddress: address, rsPort: UInt16(clamping: rs.port))
                    made.logAllFailures = chk.logAllFailures ?? config.globals.checkerLogAllFailures
                    checkers.append(made)
                }
                for chk in rs.checkers where chk.kind == .file {
                    // A FILE_CHECK whose track_file is unknown or has no file was refused by the config test.
                    guard let name = chk.trackFile, let file = config.trackFiles.first(where: { $0.name == name }), let path = file.path else { continue }
                    var spec = checker(chk, rs: rs, vs: vs, rsAddress: address, rsPort: UInt16(clamping: rs.port))
                    spec.logAllFailures = chk.logAllFailures ?? config.globals.checkerLogAllFailures
                    spec.timing.alpha = false   // keepalived's too: the file's state is known at once
                    spec.file = FileCheckSpec(trackFile: name, path: path, initValue: file.initValue, initOverwrite: file.initOverwrite,
                                              weight: chk.fileWeight ?? file.weight, reverse: chk.fileWeight != nil ? chk.fileReverse : file.reverse)
                    checkers.append(spec)
                }
                let globals = config.globals
                realServers.append(RealServerSpec(destination: dest, inhibitOnFailure: rs.inhibitOnFailure ?? vs.inhibitOnFailure,
                                                  notifyUp: rs.notifyUp, notifyDown: rs.notifyDown,
                                                  smtpAlert: rs.smtpAlert ?? globals.smtpAlertChecker ?? globals.smtpAlert ?? true,
                                                  checkers: checkers, location: rs.location))
            }
            var sorry: SorryServerSpec?
            if let s = vs.sorryServer {
                let address = s.address
                let port = UInt16(clamping: s.port ?? Int(vsPort))
                let method = vs.sorryMethod ?? vs.method
                sorry = SorryServerSpec(destination: IPVSDestination(IPVSDestinationKey(address, port: method == .nat ? port : vsPort),
                                                                     forwarding: forwarding(method, vs.sorryTunnel ?? vs.tunnel), weight: 1),
                                        inhibit: vs.sorryServerInhibit)
            }
            let identity: VirtualServerIdentity
            if case .group(let groupName) = vs.key { identity = .group(groupName, ipvsProtocol(vs.proto)) } else { identity = .service(first) }
            specs.append(VirtualServerSpec(identity: identity, name: first.description, services: services, realServers: realServers, sorryServer: sorry,
                                           quorum: vs.quorum, hysteresis: vs.hysteresis, quorumUp: vs.quorumUp, quorumDown: vs.quorumDown,
                                           omega: vs.omega,
                                           smtpAlert: vs.smtpAlert ?? config.globals.smtpAlertChecker ?? config.globals.smtpAlert ?? false,
                                           announcements: announcements(vs, keys: keys), location: vs.location))
            if vs.haSuspend {
                specs[specs.count - 1].suspendUnless = Set(keys.compactMap { key in
                    if case .address(_, let address, _) = key { address } else { nil }
                })
            }
        }
        return (specs, warnings)
    }

    /// A `vigil_announce` without an address announces every address the virtual server
    /// serves (each of a group's), as host routes; fwmark services have none to give.
    static func announcements(_ vs: VirtualServer, keys: [IPVSServiceKey]) -> [AnnouncementSpec] {
        var result: [AnnouncementSpec] = []
        for announcement in vs.announcements {
            if let address = announcement.address {
                let length = UInt8(announcement.prefixLength ?? address.maxPrefixLength)
                result.append(AnnouncementSpec(prefix: AnnouncedPrefix(address, length: length), master: announcement.master))
                continue
            }
            for key in keys {
                guard case .address(_, let address, _) = key else { continue }
                let spec = AnnouncementSpec(prefix: AnnouncedPrefix(address, length: UInt8(address.maxPrefixLength)), master: announcement.master)
                if !result.contains(spec) { result.append(spec) }
            }
        }
        return result
    }

    static func forwarding(_ method: ForwardingMethod, _ tunnel: TunnelOptions) -> IPVSForwardingMethod {
        switch method {
        case .nat: .masquerade
        case .dr: .directRoute
        case .tun:
            switch tunnel.kind {
            case .ipip: .tunnel(.ipip)
            case .gue: .tunnel(.gue(port: UInt16(clamping: tunnel.port), flags: tunnel.checksum.encapFlags))
            case .gre: .tunnel(.gre(flags: tunnel.checksum.encapFlags))
            }
        }
    }

    static func serviceKeys(_ vs: VirtualServer, config: Configuration) -> [IPVSServiceKey] {
        let proto = ipvsProtocol(vs.proto)
        switch vs.key {
        case .address(let address, let port):
            return [.address(proto, address, port: UInt16(clamping: port))]
        case .fwmark(let mark):
            let v6 = vs.ipFamily.map { $0 == .ipv6 } ?? vs.realServers.first?.address.isV6 ?? false
            return [.fwmark(mark, family: v6 ? .ipv6 : .ipv4)]
        case .group(let name):
            guard let group = config.virtualServerGroups.first(where: { $0.name == name }) else { return [] }
            var keys: [IPVSServiceKey] = []
            for entry in group.entries {
                switch entry {
                case .fwmark(let mark):
                    let v6 = vs.ipFamily.map { $0 == .ipv6 } ?? vs.realServers.first?.address.isV6 ?? false
                    keys.append(.fwmark(mark, family: v6 ? .ipv6 : .ipv4))
                case .address(let address, let rangeEnd, let port):
                    let base = address
                    guard let end = rangeEnd else {
                        keys.append(.address(proto, base, port: UInt16(clamping: port)))
                        continue
                    }
                    // a.b.c.d-e: the last octet (IPv4) or last group (IPv6) runs from its value to e.
                    var bytes = base.bytes
                    let start = base.family == .ipv4 ? Int(bytes[3]) : Int(bytes[14]) << 8 | Int(bytes[15])
                    guard end >= start else { continue }
                    for value in start...end {
                        if base.family == .ipv4 {
                            guard value <= 255 else { break }
                            bytes[3] = UInt8(value)
                        } else {
                            guard value <= 0xFFFF else { break }
                            bytes[14] = UInt8(value >> 8)
                            bytes[15] = UInt8(value & 0xFF)
                        }
                        if let a = IPAddress(bytes: bytes) { keys.append(.address(proto, a, port: UInt16(clamping: port))) }
                    }
                }
            }
            return keys
        }
    }

    static func ipvsProtocol(_ p: TransportProtocol) -> IPVSProtocol {
        switch p {
        case .tcp: .tcp
        case .udp: .udp
        case .sctp: .sctp
        }
    }

    static func service(_ vs: VirtualServer, key: IPVSServiceKey) -> IPVSService {
        var flags: IPVSServiceFlags = []
        if vs.persistenceTimeout > 0 { flags.insert(.persistent) }
        for flag in vs.flags {
            switch flag {
            case "ops": if case .address(.udp, _, _) = key { flags.insert(.onePacket) }
            case "flag-1", "sh-fallback", "mh-fallback": flags.insert(.scheduler1)
            case "flag-2", "sh-port", "mh-port": flags.insert(.scheduler2)
            case "flag-3": flags.insert(.scheduler3)
            default: break
            }
        }
        var netmask: UInt32?
        if let text = vs.persistenceGranularity {
            if key.family == .ipv6 {
                netmask = UInt32(text).map { min(max($0, 1), 128) }
            } else if let mask = IPv4Address(text) {
                netmask = mask.value
            } else if let prefix = UInt32(text), prefix <= 32 {
                netmask = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            }
        }
        return IPVSService(key, scheduler: vs.scheduler, flags: flags, timeout: UInt32(clamping: vs.persistenceTimeout),
                           netmask: netmask, persistenceEngine: vs.persistenceEngine)
    }

    /// keepalived's resolution (check_data.c): the checker's own value, else the real server's,
    /// else the virtual server's, else the default.
    static func checker(_ chk: Checker, rs: RealServer, vs: VirtualServer, rsAddress: IPAddress, rsPort: UInt16) -> CheckerSpec {
        let delayLoop = chk.delayLoop ?? rs.delayLoop ?? vs.delayLoop
        let isHTTP = chk.kind == .http || chk.kind == .ssl
        let timing = TCPCheckConfig(
            delayLoop: max(1, delayLoop),
            connectTimeout: max(1, chk.connectTimeout ?? rs.connectTimeout ?? vs.connectTimeout ?? 5_000_000),
            retry: max(0, chk.retry ?? rs.retry ?? vs.retry ?? chk.defaultRetry),
            delayBeforeRetry: max(0, chk.delayBeforeRetry ?? rs.delayBeforeRetry ?? vs.delayBeforeRetry
                                  ?? (isHTTP ? 3_000_000 : chk.kind == .dns ? delayLoop : 1_000_000)),
            warmup: chk.warmup ?? rs.warmup ?? vs.warmup,
            alpha: chk.alpha ?? rs.alpha ?? vs.alpha)
        let target = CheckTarget(
            address: chk.connectIP ?? rsAddress,
            port: chk.connectPort.map { UInt16(clamping: $0) } ?? rsPort,
            bindTo: chk.bindTo,
            bindPort: chk.bindPort.map { UInt16(clamping: $0) },
            bindInterface: chk.bindInterface, fwmark: chk.fwmark ?? 0)
        var http: HTTPCheckSpec?
        if isHTTP {
            let urls = chk.urls.map { url in
                HTTPCheckSpec.URL(path: url.path ?? "/", virtualhost: url.virtualhost ?? chk.virtualhost ?? rs.virtualhost ?? vs.virtualhost,
                                  expectation: HTTPExpectation(statusCodes: url.statusCodes, digest: url.digest.flatMap(hexBytes),
                                                               regex: url.regex.map { HTTPRegexRule(pattern: $0, options: url.regexOptions, noMatch: url.regexNoMatch,
                                                                                                    minimumOffset: url.regexMinOffset, maximumOffset: url.regexMaxOffset) }))
            }
            let version: HTTPProtocolVersion = switch chk.httpProtocol { case "1.1": .http11; case "1.0C": .http10Close; default: .http10 }
            let sni = chk.sniName ?? (chk.enableSNI ? (urls.first?.virtualhost ?? chk.virtualhost ?? rs.virtualhost ?? vs.virtualhost) : nil)
            http = HTTPCheckSpec(urls: urls.isEmpty ? [HTTPCheckSpec.URL(path: "/", virtualhost: nil, expectation: HTTPExpectation())] : urls,
                                 version: version, tls: chk.kind == .ssl, serverName: sni, fastRecovery: chk.fastRecovery)
        }
        let misc = chk.miscPath.map { MiscCheckSpec(command: $0, timeout: chk.miscTimeout ?? vs.delayLoop, dynamic: chk.miscDynamic) }
        var datagram: DatagramCheckSpec?
        switch chk.kind {
        case .udp:
            datagram = .udp(UDPCheckSpec(payload: chk.payload, requireReply: chk.requireReply, replyData: chk.replyData, replyMask: chk.replyMask,
                                         minReplyLength: chk.minReplyLength ?? 0, maxReplyLength: chk.maxReplyLength ?? 255))
        case .dns:
            datagram = .dns(DNSQuery(name: chk.dnsName ?? ".", type: DNSQuery.types[chk.dnsType ?? "A"] ?? 1))
        case .ping:
            datagram = .ping
        default:
            break
        }
        var spec = CheckerSpec(kind: chk.kind, target: target, timing: timing, http: http, misc: chk.kind == .misc ? misc : nil, location: chk.location)
        spec.datagram = datagram
        if chk.kind == .smtp { spec.smtpHelo = chk.heloName ?? SMTPCheckDialogue.defaultHelo }
        return spec
    }
}

extension TunnelOptions.Checksum {
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    var encapFlags: UInt16 {
        switch self {
        case .nocsum: 0
        case .csum: 1
        case .remcsum: 2
        }
    }
}
