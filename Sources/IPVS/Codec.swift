import Addressing
// The IPVS generic netlink codec: typed requests to bytes, receive buffers to typed messages.
// Attribute order and contents follow keepalived's libipvs (`ipvs_nl_fill_service_attr`,
// `ipvs_nl_fill_dest_attr`) so a capture of Vigil and of keepalived can be compared directly.

/// A change to the IPVS table; what the reconciler plans and the error policy judges.
public enum IPVSOperation: Hashable, Sendable, CustomStringConvertible {
    case addService(IPVSService)
    case editService(IPVSService)
    case deleteService(IPVSServiceKey)
    case addDestination(IPVSDestination, to: IPVSServiceKey)
    case editDestination(IPVSDestination, in: IPVSServiceKey)
    case deleteDestination(IPVSDestinationKey, from: IPVSServiceKey)
    /// Empties the whole table, foreign services included: only on explicit request.
    case flush

    public var command: IPVSCommand {
        switch self {
        case .addService: .newService
        case .editService: .setService
        case .deleteService: .delService
        case .addDestination: .newDest
        case .editDestination: .setDest
        case .deleteDestination: .delDest
        case .flush: .flush
        }
    }

    public var serviceKey: IPVSServiceKey? {
        switch self {
        case .addService(let s), .editService(let s): s.key
        case .deleteService(let k): k
        case .addDestination(_, let k), .editDestination(_, let k), .deleteDestination(_, let k): k
        case .flush: nil
        }
    }

    public var destinationKey: IPVSDestinationKey? {
        switch self {
        case .addDestination(let d, _), .editDestination(let d, _): d.key
        case .deleteDestination(let k, _): k
        default: nil
        }
    }

    /// e.g. `NEW_DEST [10.0.0.1]:tcp:80 -> [192.168.0.21]:tcp:80 weight 2`, for plans and logs.
    public var description: String {
        switch self {
        case .addService(let s): "NEW_SERVICE \(s.key) \(s.scheduler)"
        case .editService(let s): "SET_SERVICE \(s.key) \(s.scheduler)"
        case .deleteService(let k): "DEL_SERVICE \(k)"
        case .addDestination(let d, let k): "NEW_DEST \(k) -> \(d.key.formatted(in: k)) weight \(d.weight)"
        case .editDestination(let d, let k): "SET_DEST \(k) -> \(d.key.formatted(in: k)) weight \(d.weight)"
        case .deleteDestination(let d, let k): "DEL_DEST \(k) -> \(d.formatted(in: k))"
        case .flush: "FLUSH"
        }
    }
}

/// Everything Vigil sends to the IPVS family.
public enum IPVSRequest: Hashable, Sendable {
    case operation(IPVSOperation)
    case dumpServices
    case dumpDestinations(IPVSServiceKey)
    /// Sent at startup: failure means the ip_vs module is not loaded (keepalived then runs
    /// `modprobe ip_vs` and retries).
    case getInfo
    /// IPVS_CMD_NEW_DAEMON: one connection-sync thread (master or backup).
    case startSyncDaemon(IPVSSyncDaemon)
    /// IPVS_CMD_DEL_DAEMON: the kernel stops the thread of that state.
    case stopSyncDaemon(IPVSSyncState, syncID: UInt32)
    case dumpSyncDaemons
    /// IPVS_CMD_GET_CONFIG: the connection timeouts (`ipvsadm -L --timeout`).
    case getTimeouts
    /// IPVS_CMD_SET_CONFIG: all three, as keepalived sends them (`ipvsadm --set`).
    case setTimeouts(IPVSTimeouts)

    public var command: IPVSCommand {
        switch self {
        case .operation(let op): op.command
        case .dumpServices: .getService
        case .dumpDestinations: .getDest
        case .getInfo: .getInfo
        case .startSyncDaemon: .newDaemon
        case .stopSyncDaemon: .delDaemon
        case .dumpSyncDaemons: .getDaemon
        case .getTimeouts: .getConfig
        case .setTimeouts: .setConfig
        }
    }

    public var isDump: Bool {
        switch self {
        case .dumpServices, .dumpDestinations, .dumpSyncDaemons: true
        default: false
        }
    }
}

/// The kernel's IPVS connection timeouts in seconds: established TCP, TCP after a FIN, UDP.
public struct IPVSTimeouts: Hashable, Sendable, CustomStringConvertible {
    public var tcp: UInt32
    public var tcpFin: UInt32
    public var udp: UInt32

    public init(tcp: UInt32, tcpFin: UInt32, udp: UInt32) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }

    /// ipvsadm's wording: `tcp 900 tcpfin 120 udp 300`.
    public var description: String { "tcp \(tcp) tcpfin \(tcpFin) udp \(udp)" }
}

/// IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP.
public enum IPVSSyncState: UInt32, Hashable, Sendable, CustomStringConvertible {
    case master = 1, backup = 2
    public var description: String { self == .master ? "master" : "backup" }
}

/// One of the kernel's connection-sync threads, as `ipvsadm --start-daemon` takes it: the
/// master sends the connections it creates as UDP multicast, the backup creates the ones it
/// hears. nil options are the kernel's defaults (group 224.0.0.81, port 8848, TTL 1, the
/// length from the interface's MTU).
public struct IPVSSyncDaemon: Hashable, Sendable, CustomStringConvertible {
    public var state: IPVSSyncState
    public var interface: String
    public var syncID: UInt32
    public var maxLength: UInt16?
    public var port: UInt16?
    public var ttl: UInt8?
    public var group: IPAddress?

    public init(state: IPVSSyncState, interface: String, syncID: UInt32, maxLength: UInt16? = nil, port: UInt16? = nil,
                ttl: UInt8? = nil, group: IPAddress? = nil) {
        self.state = state
        self.interface = interface
        self.syncID = syncID
        self.maxLength = maxLength
        self.port = port
        self.ttl = ttl
        self.group = group
    }

    /// keepalived's and ipvsadm's wording: `master sync daemon (mcast=eth1, syncid=7)`.
    public var description: String {
        var text = "\(state) sync daemon (mcast=\(interface), syncid=\(syncID)"
        if let maxLength { text += ", maxlen=\(maxLength)" }
        if let group { text += ", group=\(group)" }
        if let port { text += ", port=\(port)" }
        if let ttl { text += ", ttl=\(ttl)" }
        return text + ")"
    }
}

/// A generic netlink family as the controller describes it.
public struct GenericNetlinkFamily: Hashable, Sendable {
    public var id: UInt16
    public var name: String
    public var version: UInt32?
    public var maxAttribute: UInt32?

    public init(id: UInt16, name: String, version: UInt32? = nil, maxAttribute: UInt32? = nil) {
        self.id = id
        self.name = name
        self.version = version
        self.maxAttribute = maxAttribute
    }
}

/// The kernel's cumulative traffic counters of a service or destination (the STATS64 nest;
/// the 32-bit STATS nest on kernels that send only that).
public struct IPVSStatistics: Hashable, Sendable {
    public var connections: UInt64
    public var inPackets: UInt64
    public var outPackets: UInt64
    public var inBytes: UInt64
    public var outBytes: UInt64

    public init(connections: UInt64 = 0, inPackets: UInt64 = 0, outPackets: UInt64 = 0, inBytes: UInt64 = 0, outBytes: UInt64 = 0) {
        self.connections = connections
        self.inPackets = inPackets
        self.outPackets = outPackets
        self.inBytes = inBytes
        self.outBytes = outBytes
    }
}

/// One decoded netlink message.
public struct IPVSNetlinkMessage: Hashable, Sendable {
    public var type: UInt16
    public var flags: UInt16
    public var seq: UInt32
    public var pid: UInt32
    public var payload: Payload
    /// A dumped service's or destination's counters, when the reply carried them.
    public var statistics: IPVSStatistics?

    public enum Payload: Hashable, Sendable {
        /// NLMSG_ERROR with error 0.
        case ack
        /// NLMSG_ERROR; `errno` is positive (the kernel sends it negated). `message` is the
        /// extended-ack text when the socket enabled NETLINK_EXT_ACK.
        case error(errno: Int32, message: String?)
        /// NLMSG_DONE; a dump that failed part-way carries its errno here (0 otherwise).
        case done(errno: Int32)
        case service(IPVSService)
        /// Dump replies carry no service; our own requests (decoded in tests) do.
        case destination(IPVSDestination, service: IPVSServiceKey?)
        /// The GET_INFO reply: `IP_VS_VERSION_CODE` and the connection hash table size.
        case info(version: UInt32, connectionTableSize: UInt32)
        /// A GET_DAEMON dump's entry (and our own NEW_DAEMON, decoded in tests).
        case syncDaemon(IPVSSyncDaemon)
        /// GET_CONFIG's reply (command SET_CONFIG), and our own SET_CONFIG decoded in tests.
        case timeouts(IPVSTimeouts)
        /// The controller's answer to CTRL_CMD_GETFAMILY.
        case family(GenericNetlinkFamily)
        /// NOOP, OVERRUN, other families or commands: valid framing, nothing Vigil needs.
        case other
    }

    public init(type: UInt16, flags: UInt16, seq: UInt32, pid: UInt32, payload: Payload) {
        self.type = type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.payload = payload
    }
}

public enum IPVSNetlink {
    public static let familyName = "IPVS"      // IPVS_GENL_NAME
    public static let familyVersion: UInt8 = 1 // IPVS_GENL_VERSION

    // MARK: Encoding

    /// One complete request. Default flags are REQUEST|ACK (what libnl's `nl_send_auto`
    /// sends, so every command ends in an ACK or an error) and REQUEST|DUMP for dumps, which
    /// end in NLMSG_DONE instead.
    public static func encode(
        _ request: IPVSRequest, familyID: UInt16, seq: UInt32, pid: UInt32 = 0, flags: UInt16? = nil
    ) throws(IPVSEncodeError) -> [UInt8] {
        var attrs = AttributeWriter()
        switch request {
        case .operation(let op):
            switch op {
            case .addService(let s), .editService(let s):
                try writeService(&attrs, s)
            case .deleteService(let k):
                writeServiceKey(&attrs, k)
            case .addDestination(let d, let k), .editDestination(let d, let k):
                writeServiceKey(&attrs, k)
                writeDestination(&attrs, d)
            case .deleteDestination(let dk, let k):
                writeServiceKey(&attrs, k)
                writeDestinationKey(&attrs, dk)
            case .flush:
                break
            }
        case .dumpServices, .getInfo, .dumpSyncDaemons, .getTimeouts:
            break
        case .setTimeouts(let timeouts):
            attrs.u32(IPVSAttr.cmdTimeoutTCP, timeouts.tcp)
            attrs.u32(IPVSAttr.cmdTimeoutTCPFin, timeouts.tcpFin)
            attrs.u32(IPVSAttr.cmdTimeoutUDP, timeouts.udp)
        case .dumpDestinations(let k):
            writeServiceKey(&attrs, k)
        case .startSyncDaemon(let daemon):
            try checkName(daemon.interface)
            writeSyncDaemon(&attrs, daemon)
        case .stopSyncDaemon(let state, let syncID):
            attrs.nested(IPVSAttr.cmdDaemon) { w in
                w.u32(IPVSAttr.daemonState, state.rawValue)
                w.u32(IPVSAttr.daemonSyncID, syncID)
            }
        }
        let defaultFlags = NetlinkConstants.flagRequest
            | (request.isDump ? NetlinkConstants.flagDump : NetlinkConstants.flagAck)
        return genericMessage(
            type: familyID, flags: flags ?? defaultFlags, seq: seq, pid: pid,
            command: request.command.rawValue, version: familyVersion, attributes: attrs.bytes)
    }

    /// CTRL_CMD_GETFAMILY by name, to learn the id the kernel assigned to "IPVS".
    public static func encodeGetFamily(name: String = familyName, seq: UInt32, pid: UInt32 = 0) throws(IPVSEncodeError) -> [UInt8] {
        try checkName(name)
        var attrs = AttributeWriter()
        attrs.string(NetlinkConstants.controllerAttrFamilyName, name)
        return genericMessage(
            type: NetlinkConstants.controllerFamilyID,
            flags: NetlinkConstants.flagRequest | NetlinkConstants.flagAck, seq: seq, pid: pid,
            command: NetlinkConstants.controllerCommandGetFamily, version: 1, attributes: attrs.bytes)
    }

    static func checkName(_ name: String) throws(IPVSEncodeError) {
        guard name.utf8.count < IPVSAttr.nameMax, !name.utf8.contains(0) else { throw .invalidName(name) }
    }

    /// Identity only: the kernel parses nothing else for deletes, destination commands and
    /// dumps (`need_full_svc` is false for them).
    static func writeServiceKey(_ w: inout AttributeWriter, _ key: IPVSServiceKey) {
        w.nested(IPVSAttr.cmdService) { writeServiceKeyFields(&$0, key) }
    }

    private static func writeServiceKeyFields(_ w: inout AttributeWriter, _ key: IPVSServiceKey) {
        w.u16(IPVSAttr.svcAF, key.family.linuxNumber)
        switch key {
        case .fwmark(let mark, _):
            w.u32(IPVSAttr.svcFwmark, mark)
        case .address(let proto, let address, let port):
            w.u16(IPVSAttr.svcProtocol, proto.rawValue)
            w.put(IPVSAttr.svcAddr, address.nfInetAddr)
            w.be16(IPVSAttr.svcPort, port)
        }
    }

    static func writeService(_ w: inout AttributeWriter, _ s: IPVSService) throws(IPVSEncodeError) {
        try checkName(s.scheduler)
        if let pe = s.persistenceEngine { try checkName(pe) }
        w.nested(IPVSAttr.cmdService) { w in
            writeServiceKeyFields(&w, s.key)
            w.string(IPVSAttr.svcSchedName, s.scheduler)
            if let pe = s.persistenceEngine, !pe.isEmpty { w.string(IPVSAttr.svcPEName, pe) }
            // struct ip_vs_flags { flags, mask }: a full mask makes the kernel take our flags
            // verbatim instead of merging them with the old ones.
            w.put(IPVSAttr.svcFlags, host32(s.flags.rawValue) + host32(0xFFFF_FFFF))
            w.u32(IPVSAttr.svcTimeout, s.timeout)
            if s.key.family == .ipv4 { w.be32(IPVSAttr.svcNetmask, s.netmask) } else { w.u32(IPVSAttr.svcNetmask, s.netmask) }
        }
    }

    /// In keepalived's order (libipvs `ipvs_start_daemon`); the port is in host order, the
    /// IPv4 group as the in_addr it is.
    static func writeSyncDaemon(_ w: inout AttributeWriter, _ d: IPVSSyncDaemon) {
        w.nested(IPVSAttr.cmdDaemon) { w in
            w.u32(IPVSAttr.daemonState, d.state.rawValue)
            w.string(IPVSAttr.daemonInterface, d.interface)
            w.u32(IPVSAttr.daemonSyncID, d.syncID)
            if let v = d.maxLength { w.u16(IPVSAttr.daemonMaxLength, v) }
            if let v = d.port { w.u16(IPVSAttr.daemonPort, v) }
            if let v = d.ttl { w.u8(IPVSAttr.daemonTTL, v) }
            if let group = d.group { w.put(group.isV6 ? IPVSAttr.daemonGroup6 : IPVSAttr.daemonGroup, group.bytes) }
        }
    }

    static func decodeSyncDaemon(_ attrs: AttributeSet) throws(IPVSDecodeError) -> IPVSSyncDaemon {
        let raw = try attrs.u32(IPVSAttr.daemonState, "IPVS_DAEMON_ATTR_STATE")
        guard let state = IPVSSyncState(rawValue: raw) else { throw .invalidValue(attribute: "IPVS_DAEMON_ATTR_STATE", value: UInt64(raw)) }
        var daemon = IPVSSyncDaemon(state: state, interface: try attrs.string(IPVSAttr.daemonInterface, "IPVS_DAEMON_ATTR_MCAST_IFN"),
                                    syncID: try attrs.u32(IPVSAttr.daemonSyncID, "IPVS_DAEMON_ATTR_SYNC_ID"))
        if attrs.has(IPVSAttr.daemonMaxLength) { daemon.maxLength = try attrs.u16(IPVSAttr.daemonMaxLength, "IPVS_DAEMON_ATTR_SYNC_MAXLEN") }
        if attrs.has(IPVSAttr.daemonPort) { daemon.port = try attrs.u16(IPVSAttr.daemonPort, "IPVS_DAEMON_ATTR_MCAST_PORT") }
        if attrs.has(IPVSAttr.daemonTTL) { daemon.ttl = try attrs.u8(IPVSAttr.daemonTTL, "IPVS_DAEMON_ATTR_MCAST_TTL") }
        for (type, size, name) in [(IPVSAttr.daemonGroup, 4, "IPVS_DAEMON_ATTR_MCAST_GROUP"), (IPVSAttr.daemonGroup6, 16, "IPVS_DAEMON_ATTR_MCAST_GROUP6")]
        where attrs.has(type) {
            let bytes = try attrs.bytes(type, name)
            guard bytes.count == size, let group = IPAddress(bytes: bytes) else { throw .attributeSize(attribute: name, expected: size, actual: bytes.count) }
            daemon.group = group
        }
        return daemon
    }

    static func writeDestinationKey(_ w: inout AttributeWriter, _ key: IPVSDestinationKey) {
        w.nested(IPVSAttr.cmdDest) { writeDestinationKeyFields(&$0, key) }
    }

    private static func writeDestinationKeyFields(_ w: inout AttributeWriter, _ key: IPVSDestinationKey) {
        // Always sent: it is what allows an IPv4 real server behind an IPv6 service (TUN).
        w.u16(IPVSAttr.destAddrFamily, key.family.linuxNumber)
        w.put(IPVSAttr.destAddr, key.address.nfInetAddr)
        w.be16(IPVSAttr.destPort, key.port)
    }

    static func writeDestination(_ w: inout AttributeWriter, _ d: IPVSDestination) {
        w.nested(IPVSAttr.cmdDest) { w in
            writeDestinationKeyFields(&w, d.key)
            w.u32(IPVSAttr.destFwdMethod, d.forwarding.code)
            w.u32(IPVSAttr.destWeight, UInt32(bitPattern: d.weight))
            if case .tunnel(let tunnel) = d.forwarding {
                w.u8(IPVSAttr.destTunType, tunnel.typeCode)
                switch tunnel {
                case .ipip: break
                case .gue(let port, let flags):
                    w.be16(IPVSAttr.destTunPort, port)
                    w.u16(IPVSAttr.destTunFlags, flags)
                case .gre(let flags):
                    w.u16(IPVSAttr.destTunFlags, flags)
                }
            }
            w.u32(IPVSAttr.destUThresh, d.upperThreshold)
            w.u32(IPVSAttr.destLThresh, d.lowerThreshold)
        }
    }

    // MARK: Decoding

    /// Every message in one `recv` buffer. `ipvsFamilyID` is nil until the family has been
    /// resolved; IPVS messages are then reported as `.other`. `destinationFamilyFallback`
    /// stands in for IPVS_DEST_ATTR_ADDR_FAMILY, which kernels before 4.0 do not send (pass
    /// the family of the service whose destinations were dumped).
    public static func decode(
        _ buffer: [UInt8], ipvsFamilyID: UInt16?, destinationFamilyFallback: AddressFamily? = nil
    ) throws(IPVSDecodeError) -> [IPVSNetlinkMessage] {
        var messages: [IPVSNetlinkMessage] = []
        var offset = 0
        while offset < buffer.count {
            guard buffer.count - offset >= NetlinkConstants.messageHeaderLength else {
                throw .truncatedMessageHeader(offset: offset)
            }
            let length = readHost32(buffer, offset)
            guard length >= UInt32(NetlinkConstants.messageHeaderLength), UInt64(length) <= UInt64(buffer.count - offset) else {
                throw .badMessageLength(offset: offset, length: length)
            }
            let type = readHost16(buffer, offset + 4)
            let flags = readHost16(buffer, offset + 6)
            let body = (offset + NetlinkConstants.messageHeaderLength)..<(offset + Int(length))
            var statistics: IPVSStatistics?
            let payload = try decodePayload(
                buffer, body, type: type, flags: flags, ipvsFamilyID: ipvsFamilyID,
                destinationFamilyFallback: destinationFamilyFallback, statistics: &statistics)
            var message = IPVSNetlinkMessage(
                type: type, flags: flags, seq: readHost32(buffer, offset + 8), pid: readHost32(buffer, offset + 12),
                payload: payload)
            message.statistics = statistics
            messages.append(message)
            offset = min(offset + NetlinkConstants.align(Int(length)), buffer.count)
        }
        return messages
    }

    private static func decodePayload(
        _ b: [UInt8], _ body: Range<Int>, type: UInt16, flags: UInt16, ipvsFamilyID: UInt16?,
        destinationFamilyFallback: AddressFamily?, statistics: inout IPVSStatistics?
    ) throws(IPVSDecodeError) -> IPVSNetlinkMessage.Payload {
        switch type {
        case NetlinkConstants.typeError:
            return try decodeError(b, body, flags: flags)
        case NetlinkConstants.typeDone:
            // A DONE without its int is tolerated: the end of the dump is what matters.
            guard body.count >= 4 else { return .done(errno: 0) }
            return .done(errno: positiveErrno(readHost32(b, body.lowerBound)))
        case NetlinkConstants.typeNoop, NetlinkConstants.typeOverrun:
            return .other
        case NetlinkConstants.controllerFamilyID:
            let (command, attrs) = try genericBody(b, body)
            guard command == NetlinkConstants.controllerCommandNewFamily else { return .other }
            return .family(try decodeFamily(attrs))
        case ipvsFamilyID:
            let (command, attrs) = try genericBody(b, body)
            switch IPVSCommand(rawValue: command) {
            case .newService, .setService:
                let nest = try attrs.nested(IPVSAttr.cmdService, "IPVS_CMD_ATTR_SERVICE")
                statistics = decodeStatistics(nest)
                return .service(try decodeService(nest))
            case .newDest, .setDest:
                let nest = try attrs.nested(IPVSAttr.cmdDest, "IPVS_CMD_ATTR_DEST")
                statistics = decodeStatistics(nest)
                let dest = try decodeDestination(nest, fallback: destinationFamilyFallback)
                let service = attrs.has(IPVSAttr.cmdService)
                    ? try decodeServiceKey(attrs.nested(IPVSAttr.cmdService, "IPVS_CMD_ATTR_SERVICE")) : nil
                return .destination(dest, service: service)
            case .newDaemon:
                return .syncDaemon(try decodeSyncDaemon(attrs.nested(IPVSAttr.cmdDaemon, "IPVS_CMD_ATTR_DAEMON")))
            case .setConfig:
                return .timeouts(IPVSTimeouts(tcp: try attrs.u32(IPVSAttr.cmdTimeoutTCP, "IPVS_CMD_ATTR_TIMEOUT_TCP"),
                                              tcpFin: try attrs.u32(IPVSAttr.cmdTimeoutTCPFin, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN"),
                                              udp: try attrs.u32(IPVSAttr.cmdTimeoutUDP, "IPVS_CMD_ATTR_TIMEOUT_UDP")))
            case .setInfo:
                return .info(
                    version: try attrs.u32(IPVSAttr.infoVersion, "IPVS_INFO_ATTR_VERSION"),
                    connectionTableSize: try attrs.u32(IPVSAttr.infoConnTabSize, "IPVS_INFO_ATTR_CONN_TAB_SIZE"))
            default:
                return .other
            }
        default:
            return .other
        }
    }

    /// The counters of a dumped service or destination (`outer` is its nest; the attribute
    /// numbers are the same for both): STATS64 when present, else STATS. Only a reporting
    /// extra: a missing counter reads 0 and a malformed nest gives none, never a failed dump.
    private static func decodeStatistics(_ outer: AttributeSet) -> IPVSStatistics? {
        let nest = outer.has(IPVSAttr.svcStats64) ? IPVSAttr.svcStats64 : IPVSAttr.svcStats
        guard outer.has(nest), let stats = try? outer.nested(nest, "IPVS_*_ATTR_STATS") else { return nil }
        func counter(_ type: UInt16) -> UInt64 { (try? stats.counter(type, "IPVS_STATS_ATTR")) ?? 0 }
        return IPVSStatistics(connections: counter(IPVSAttr.statsConns), inPackets: counter(IPVSAttr.statsInPackets),
                              outPackets: counter(IPVSAttr.statsOutPackets), inBytes: counter(IPVSAttr.statsInBytes),
                              outBytes: counter(IPVSAttr.statsOutBytes))
    }

    private static func positiveErrno(_ raw: UInt32) -> Int32 {
        let value = Int32(bitPattern: raw)
        return value == Int32.min ? Int32.max : abs(value)
    }

    private static func genericBody(_ b: [UInt8], _ body: Range<Int>) throws(IPVSDecodeError) -> (UInt8, AttributeSet) {
        guard body.count >= NetlinkConstants.genericHeaderLength else {
            throw .truncatedPayload(offset: body.lowerBound, needed: NetlinkConstants.genericHeaderLength, available: body.count)
        }
        let attrs = try AttributeSet(b, (body.lowerBound + NetlinkConstants.genericHeaderLength)..<body.upperBound)
        return (b[body.lowerBound], attrs)
    }

    /// `struct nlmsgerr { int error; struct nlmsghdr msg; }`, then the echoed request (unless
    /// capped) and, with NLM_F_ACK_TLVS, extended-ack attributes.
    private static func decodeError(_ b: [UInt8], _ body: Range<Int>, flags: UInt16) throws(IPVSDecodeError) -> IPVSNetlinkMessage.Payload {
        guard body.count >= 4 else { throw .truncatedPayload(offset: body.lowerBound, needed: 4, available: body.count) }
        let errno = positiveErrno(readHost32(b, body.lowerBound))
        if errno == 0 { return .ack }
        var message: String?
        if flags & NetlinkConstants.flagAckTLVs != 0, body.count >= 4 + NetlinkConstants.messageHeaderLength {
            let echoed = flags & NetlinkConstants.flagCapped != 0
                ? NetlinkConstants.messageHeaderLength
                : NetlinkConstants.align(Int(readHost32(b, body.lowerBound + 4)))
            let start = body.lowerBound + 4 + echoed
            // The text is a courtesy: a malformed TLV block costs the text, not the errno.
            if echoed >= NetlinkConstants.messageHeaderLength, start <= body.upperBound,
               let tlvs = try? AttributeSet(b, start..<body.upperBound) {
                message = try? tlvs.string(NetlinkConstants.extAckAttrMessage, "NLMSGERR_ATTR_MSG")
            }
        }
        return .error(errno: errno, message: message)
    }

    private static func decodeFamily(_ attrs: AttributeSet) throws(IPVSDecodeError) -> GenericNetlinkFamily {
        GenericNetlinkFamily(
            id: try attrs.u16(NetlinkConstants.controllerAttrFamilyID, "CTRL_ATTR_FAMILY_ID"),
            name: try attrs.string(NetlinkConstants.controllerAttrFamilyName, "CTRL_ATTR_FAMILY_NAME"),
            version: attrs.has(NetlinkConstants.controllerAttrVersion)
                ? try attrs.u32(NetlinkConstants.controllerAttrVersion, "CTRL_ATTR_VERSION") : nil,
            maxAttribute: attrs.has(NetlinkConstants.controllerAttrMaxAttr)
                ? try attrs.u32(NetlinkConstants.controllerAttrMaxAttr, "CTRL_ATTR_MAXATTR") : nil)
    }

    private static func family(_ raw: UInt16, _ name: String) throws(IPVSDecodeError) -> AddressFamily {
        guard let family = AddressFamily(linuxNumber: raw) else { throw .invalidValue(attribute: name, value: UInt64(raw)) }
        return family
    }

    /// IPv4 addresses arrive as 16 bytes from the kernel and as 4 from some clients.
    private static func address(_ attrs: AttributeSet, _ type: UInt16, _ name: String, _ family: AddressFamily) throws(IPVSDecodeError) -> IPAddress {
        let range = try attrs.payload(type, name)
        switch (family, range.count) {
        case (.ipv4, 4), (.ipv4, 16): return .v4(IPv4Address(bytes: attrs.buffer[range.lowerBound..<range.lowerBound + 4]))
        case (.ipv6, 16): return .v6(IPv6Address(bytes: attrs.buffer[range]))
        default: throw .attributeSize(attribute: name, expected: family == .ipv4 ? 4 : 16, actual: range.count)
        }
    }

    /// Like the kernel, a FWMARK attribute makes it a fwmark service whatever else is there.
    static func decodeServiceKey(_ attrs: AttributeSet) throws(IPVSDecodeError) -> IPVSServiceKey {
        let af = try family(attrs.u16(IPVSAttr.svcAF, "IPVS_SVC_ATTR_AF"), "IPVS_SVC_ATTR_AF")
        if attrs.has(IPVSAttr.svcFwmark) {
            return .fwmark(try attrs.u32(IPVSAttr.svcFwmark, "IPVS_SVC_ATTR_FWMARK"), family: af)
        }
        let rawProto = try attrs.u16(IPVSAttr.svcProtocol, "IPVS_SVC_ATTR_PROTOCOL")
        guard let proto = IPVSProtocol(rawValue: rawProto) else {
            throw .invalidValue(attribute: "IPVS_SVC_ATTR_PROTOCOL", value: UInt64(rawProto))
        }
        let addr = try address(attrs, IPVSAttr.svcAddr, "IPVS_SVC_ATTR_ADDR", af)
        return .address(proto, addr, port: try attrs.be16(IPVSAttr.svcPort, "IPVS_SVC_ATTR_PORT"))
    }

    static func decodeService(_ attrs: AttributeSet) throws(IPVSDecodeError) -> IPVSService {
        let key = try decodeServiceKey(attrs)
        let flagsRange = try attrs.payload(IPVSAttr.svcFlags, "IPVS_SVC_ATTR_FLAGS")
        guard flagsRange.count == 8 else {
            throw .attributeSize(attribute: "IPVS_SVC_ATTR_FLAGS", expected: 8, actual: flagsRange.count)
        }
        let netmask = key.family == .ipv4
            ? try attrs.be32(IPVSAttr.svcNetmask, "IPVS_SVC_ATTR_NETMASK")
            : try attrs.u32(IPVSAttr.svcNetmask, "IPVS_SVC_ATTR_NETMASK")
        let pe = attrs.has(IPVSAttr.svcPEName) ? try attrs.string(IPVSAttr.svcPEName, "IPVS_SVC_ATTR_PE_NAME") : nil
        return IPVSService(
            key,
            scheduler: try attrs.string(IPVSAttr.svcSchedName, "IPVS_SVC_ATTR_SCHED_NAME"),
            flags: IPVSServiceFlags(rawValue: readHost32(attrs.buffer, flagsRange.lowerBound)),
            timeout: try attrs.u32(IPVSAttr.svcTimeout, "IPVS_SVC_ATTR_TIMEOUT"),
            netmask: netmask,
            persistenceEngine: pe?.isEmpty == false ? pe : nil)
    }

    static func decodeDestination(_ attrs: AttributeSet, fallback: AddressFamily?) throws(IPVSDecodeError) -> IPVSDestination {
        let af: AddressFamily
        if attrs.has(IPVSAttr.destAddrFamily) {
            af = try family(attrs.u16(IPVSAttr.destAddrFamily, "IPVS_DEST_ATTR_ADDR_FAMILY"), "IPVS_DEST_ATTR_ADDR_FAMILY")
        } else if let fallback {
            af = fallback
        } else {
            throw .missingAttribute("IPVS_DEST_ATTR_ADDR_FAMILY")
        }
        let key = IPVSDestinationKey(
            try address(attrs, IPVSAttr.destAddr, "IPVS_DEST_ATTR_ADDR", af),
            port: try attrs.be16(IPVSAttr.destPort, "IPVS_DEST_ATTR_PORT"))
        let code = try attrs.u32(IPVSAttr.destFwdMethod, "IPVS_DEST_ATTR_FWD_METHOD")
        let forwarding: IPVSForwardingMethod
        switch code {
        case 0: forwarding = .masquerade
        case 1: forwarding = .localNode
        case 2: forwarding = .tunnel(try decodeTunnel(attrs))
        case 3: forwarding = .directRoute
        case 4: forwarding = .bypass
        default: throw .invalidValue(attribute: "IPVS_DEST_ATTR_FWD_METHOD", value: UInt64(code))
        }
        return IPVSDestination(
            key, forwarding: forwarding,
            weight: Int32(bitPattern: try attrs.u32(IPVSAttr.destWeight, "IPVS_DEST_ATTR_WEIGHT")),
            upperThreshold: try attrs.u32(IPVSAttr.destUThresh, "IPVS_DEST_ATTR_U_THRESH"),
            lowerThreshold: try attrs.u32(IPVSAttr.destLThresh, "IPVS_DEST_ATTR_L_THRESH"))
    }

    /// Absent tunnel attributes mean zero, which is what the kernel stores when they are not
    /// sent. Port and flags are dropped where the type ignores them, as the encoder does.
    private static func decodeTunnel(_ attrs: AttributeSet) throws(IPVSDecodeError) -> IPVSTunnel {
        let type = attrs.has(IPVSAttr.destTunType) ? try attrs.u8(IPVSAttr.destTunType, "IPVS_DEST_ATTR_TUN_TYPE") : 0
        let port = attrs.has(IPVSAttr.destTunPort) ? try attrs.be16(IPVSAttr.destTunPort, "IPVS_DEST_ATTR_TUN_PORT") : 0
        let flags = attrs.has(IPVSAttr.destTunFlags) ? try attrs.u16(IPVSAttr.destTunFlags, "IPVS_DEST_ATTR_TUN_FLAGS") : 0
        switch type {
        case 0: return .ipip
        case 1: return .gue(port: port, flags: flags)
        case 2: return .gre(flags: flags)
        default: throw .invalidValue(attribute: "IPVS_DEST_ATTR_TUN_TYPE", value: UInt64(type))
        }
    }
}
