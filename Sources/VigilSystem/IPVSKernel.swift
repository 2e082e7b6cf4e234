import Addressing
@preconcurrency import Glibc
import CNetlink
import IPVS

/// Why the IPVS family cannot be used at all.
public enum IPVSKernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The "IPVS" generic-netlink family does not exist: the ip_vs module is not loaded (or
    /// the kernel has no IPVS).
    case unavailable(String)
    /// A socket-level failure (`errno`) in `operation`.
    case system(operation: String, errno: Int32)
    /// The kernel's reply could not be decoded; the table state is unknown.
    case malformedReply(String)
    /// A request was refused as a whole (a dump or GET_INFO), with the kernel's errno.
    case refused(request: String, errno: Int32)

    public var description: String {
        switch self {
        case .unavailable(let why):
            "IPVS is not available in this kernel (\(why)); load it with 'modprobe ip_vs'"
        case .system(let operation, let errno):
            "\(operation): \(SystemError.describe(errno)) (errno \(errno))"
        case .malformedReply(let what):
            "malformed netlink reply from IPVS: \(what)"
        case .refused(let request, let errno):
            "IPVS \(request) failed: \(SystemError.describe(errno)) (errno \(errno))"
        }
    }
}

/// One operation the kernel refused, after keepalived's error policy was applied.
public struct IPVSOperationFailure: Sendable, Equatable {
    public var operation: IPVSOperation
    public var errno: Int32
    /// keepalived's log line for it (`IPVS cmd IP_VS_SO_SET_ADDDEST(1159) error: …`).
    public var message: String
}

/// The IPVS generic-netlink family through a libnl socket. libnl opens the socket and resolves
/// the family id (`genl_ctrl_resolve`, as keepalived does); the messages themselves are built
/// and parsed by the pure `IPVSNetlink` codec, so what goes on the wire is what the golden-byte
/// tests pin down. Commands are pipelined: a batch of requests goes out in one `send` and the
/// ACKs are matched back by sequence number, which is what makes installing thousands of
/// entries fast (one round trip per batch instead of per entry).
public final class IPVSKernel {
    private let socket: OpaquePointer
    private let fd: Int32
    public let familyID: UInt16
    private var sequence: UInt32 = 1
    private var receiveBuffer = [UInt8](repeating: 0, count: 256 * 1024)
    /// Requests per `send`. Each ACK costs the receive buffer about 1 KB of skb truesize, so a
    /// batch must fit the buffer set below or acknowledgements would be dropped (ENOBUFS).
    static let batchSize = 256

    /// Opens the socket and resolves "IPVS". keepalived runs `modprobe ip_vs` and retries
    /// once when the family is missing; so does this, unless `loadModule` is false.
    public init(loadModule: Bool = true) throws(IPVSKernelError) {
        guard let sk = nl_socket_alloc() else { throw .system(operation: "nl_socket_alloc", errno: ENOMEM) }
        socket = sk
        var status = nl_connect(sk, NETLINK_GENERIC)
        if status < 0 {
            nl_socket_free(sk)
            throw .system(operation: "netlink connect", errno: Self.errno(fromLibnl: status))
        }
        fd = nl_socket_get_fd(sk)
        var one: Int32 = 1
        // Error ACKs without a copy of the request, and with the kernel's explanation text.
        _ = setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        // A lost reply must not hang the daemon's only thread: receives give up after 5 s and
        // the caller re-reads the table instead.
        var patience = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        var size: Int32 = 4 * 1024 * 1024
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        status = genl_ctrl_resolve(sk, IPVSNetlink.familyName)
        if status < 0 && loadModule {
            Self.modprobeIPVS()
            status = genl_ctrl_resolve(sk, IPVSNetlink.familyName)
        }
        if status < 0 {
            let why = String(cString: nl_geterror(status))
            nl_socket_free(sk)
            throw .unavailable("generic netlink family \"IPVS\": \(why)")
        }
        familyID = UInt16(truncatingIfNeeded: status)
    }

    deinit { nl_socket_free(socket) }

    /// IPVS_CMD_GET_INFO: the kernel's IPVS version and connection table size. keepalived's
    /// start-up probe.
    public func info() throws(IPVSKernelError) -> (version: UInt32, connectionTableSize: UInt32) {
        let replies = try exchange(.getInfo)
        for message in replies {
            if case .info(let version, let size) = message.payload { return (version, size) }
        }
        throw .malformedReply("GET_INFO answered without IPVS_INFO attributes")
    }

    public func startSyncDaemon(_ daemon: IPVSSyncDaemon) throws(IPVSKernelError) {
        _ = try exchange(.startSyncDaemon(daemon))
    }

    public func stopSyncDaemon(_ state: IPVSSyncState, syncID: UInt32) throws(IPVSKernelError) {
        _ = try exchange(.stopSyncDaemon(state, syncID: syncID))
    }

    public func syncDaemons() throws(IPVSKernelError) -> [IPVSSyncDaemon] {
        try exchange(.dumpSyncDaemons).compactMap { message in
            if case .syncDaemon(let daemon) = message.payload { daemon } else { nil }
        }
    }

    public func timeouts() throws(IPVSKernelError) -> IPVSTimeouts {
        for message in try exchange(.getTimeouts) {
            if case .timeouts(let timeouts) = message.payload { return timeouts }
        }
        throw .malformedReply("GET_CONFIG answered without the timeout attributes")
    }

    public func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSKernelError) {
        _ = try exchange(.setTimeouts(timeouts))
    }

    /// The whole table: every service (Vigil's or not) with its destinations.
    public func dump() throws(IPVSKernelError) -> IPVSTable {
        var table: IPVSTable = [:]
        for message in try exchange(.dumpServices) {
            guard case .service(let service) = message.payload else { continue }
            var dests: [IPVSDestination] = []
            for reply in try exchange(.dumpDestinations(service.key), family: service.key.family) {
                if case .destination(let dest, _) = reply.payload { dests.append(dest) }
            }
            table[service] = dests
        }
        return table
    }

    /// Every service's and destination's traffic counters (STATS64), for status and metrics.
    public func statistics() throws(IPVSKernelError) -> [IPVSServiceKey: IPVSServiceStatistics] {
        var all: [IPVSServiceKey: IPVSServiceStatistics] = [:]
        for message in try exchange(.dumpServices) {
            guard case .service(let service) = message.payload else { continue }
            var entry = IPVSServiceStatistics(service: message.statistics ?? IPVSStatistics())
            let replies = try exchange(.dumpDestinations(service.key), family: service.key.family)
            entry.destinations.reserveCapacity(replies.count)
            for reply in replies {
                if case .destination(let dest, _) = reply.payload { entry.destinations[dest.key] = reply.statistics ?? IPVSStatistics() }
            }
            all[service.key] = entry
        }
        return all
    }

    /// Carries out `operations` in order with keepalived's error policy (EEXIST on add and
    /// ENOENT on delete are success, SET_DEST of a missing destination becomes NEW_DEST).
    /// Returns the ones that really failed; an I/O or decode failure aborts the rest.
    public func apply(_ operations: [IPVSOperation]) throws(IPVSKernelError) -> [IPVSOperationFailure] {
        var failures: [IPVSOperationFailure] = []
        var pending = operations[...]
        while !pending.isEmpty {
            let batch = Array(pending.prefix(Self.batchSize))
            pending = pending.dropFirst(batch.count)
            var retries: [IPVSOperation] = []
            for (operation, errno) in try sendBatch(batch) {
                switch IPVSErrorPolicy.disposition(of: operation, errno: errno) {
                case .success: break
                case .retryAsNew(let replacement): retries.append(replacement)
                case .failure(let message): failures.append(IPVSOperationFailure(operation: operation, errno: errno, message: message))
                }
            }
            if !retries.isEmpty {
                for (operation, errno) in try sendBatch(retries) where errno != 0 {
                    if case .failure(let message) = IPVSErrorPolicy.disposition(of: operation, errno: errno) {
                        failures.append(IPVSOperationFailure(operation: operation, errno: errno, message: message))
                    }
                }
            }
        }
        return failures
    }

    // MARK: wire

    /// Sends the batch in one datagram and returns each operation with its errno (0 = ACK).
    private func sendBatch(_ batch: [IPVSOperation]) throws(IPVSKernelError) -> [(IPVSOperation, Int32)] {
        var bytes: [UInt8] = []
        var bySequence: [UInt32: Int] = [:]
        for (index, operation) in batch.enumerated() {
            let seq = nextSequence()
            bySequence[seq] = index
            do { bytes += try IPVSNetlink.encode(.operation(operation), familyID: familyID, seq: seq) } catch {
                throw .malformedReply("cannot encode \(operation): \(error)")
            }
        }
        try send(bytes)
        var results = batch.map { ($0, Int32(-1)) }
        var outstanding = batch.count
        while outstanding > 0 {
            for message in try receive(family: nil) {
                guard let index = bySequence[message.seq], results[index].1 == -1 else { continue }
                switch message.payload {
                case .ack: results[index].1 = 0
                case .error(let errno, _): results[index].1 = errno
                default: continue
                }
                outstanding -= 1
            }
        }
        return results
    }

    /// One request and all its replies: up to NLMSG_DONE for dumps, up to the ACK otherwise.
    private func exchange(_ request: IPVSRequest, family: AddressFamily? = nil) throws(IPVSKernelError) -> [IPVSNetlinkMessage] {
        let seq = nextSequence()
        do { try send(IPVSNetlink.encode(request, familyID: familyID, seq: seq)) } catch let error as IPVSKernelError {
            throw error
        } catch {
            throw .malformedReply("cannot encode \(request): \(error)")
        }
        var replies: [IPVSNetlinkMessage] = []
        while true {
            for message in try receive(family: family) where message.seq == seq {
                switch message.payload {
                case .done(let errno):
                    if errno != 0 { throw .refused(request: "\(request.command)", errno: errno) }
                    return replies
                case .error(let errno, _):
                    if errno != 0 { throw .refused(request: "\(request.command)", errno: errno) }
                    return replies
                case .ack:
                    return replies
                default:
                    replies.append(message)
                    // GET_INFO is answered by one reply and then the ACK: keep reading.
                }
            }
        }
    }

    private func nextSequence() -> UInt32 {
        sequence &+= 1
        if sequence == 0 { sequence = 1 }
        return sequence
    }

    private func send(_ bytes: [UInt8]) throws(IPVSKernelError) {
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        if sent < 0 { throw .system(operation: "netlink send", errno: Glibc.errno) }
    }

    private func receive(family: AddressFamily?) throws(IPVSKernelError) -> [IPVSNetlinkMessage] {
        while true {
            let count = receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if Glibc.errno == EINTR { continue }
                throw .system(operation: "netlink receive", errno: Glibc.errno)
            }
            do {
                return try IPVSNetlink.decode(Array(receiveBuffer[0..<count]), ipvsFamilyID: familyID,
                                              destinationFamilyFallback: family)
            } catch {
                throw .malformedReply("\(error)")
            }
        }
    }

    /// libnl returns negative NLE_* codes; the ones a connect can produce map onto errno.
    private static func errno(fromLibnl status: Int32) -> Int32 {
        switch -status {
        case NLE_PERM: EPERM
        case NLE_NOMEM: ENOMEM
        case NLE_PROTO_MISMATCH, NLE_OPNOTSUPP: EPROTONOSUPPORT
        default: EIO
        }
    }

    /// keepalived's `keepalived_modprobe("ip_vs")`: ask the kernel's module loader (the path
    /// in /proc/sys/kernel/modprobe) to load IPVS. Failure is fine: the retry then reports it.
    private static func modprobeIPVS() {
        var program = "/sbin/modprobe"
        if let file = fopen("/proc/sys/kernel/modprobe", "r") {
            var line = [CChar](repeating: 0, count: 256)
            if fgets(&line, Int32(line.count), file) != nil {
                let text = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !text.isEmpty { program = text }
            }
            fclose(file)
        }
        guard access(program, X_OK) == 0 else { return }
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(program), strdup("-q"), strdup("ip_vs"), nil]
        if posix_spawn(&pid, program, &actions, nil, argv, environ) == 0 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && Glibc.errno == EINTR {}
        }
        posix_spawn_file_actions_destroy(&actions)
        for p in argv { free(p) }
    }
}
