@preconcurrency import Glibc
import HealthCheck

/// One request datagram and how to read the answers: UDP_CHECK, DNS_CHECK (UDP) and
/// PING_CHECK (a raw ICMP/ICMPv6 socket).
public struct DatagramRequest {
    public enum Transport: Sendable { case udp, icmp }
    public var transport: Transport
    public var target: SocketAddress
    public var options: ProbeOptions
    public var payload: [UInt8]
    /// What a received datagram means; `.notOurs` keeps waiting.
    public var judge: (ArraySlice<UInt8>) -> DatagramVerdict
    /// No answer within the timeout passes (UDP_CHECK without require_reply).
    public var timeoutPasses: Bool
    public var timeout: Int64

    public init(transport: Transport, target: SocketAddress, options: ProbeOptions = ProbeOptions(), payload: [UInt8],
                judge: @escaping (ArraySlice<UInt8>) -> DatagramVerdict, timeoutPasses: Bool = false, timeout: Int64) {
        self.transport = transport
        self.target = target
        self.options = options
        self.payload = payload
        self.judge = judge
        self.timeoutPasses = timeoutPasses
        self.timeout = timeout
    }
}

/// Request/answer checks over datagrams behind one epoll descriptor: a connected socket per
/// check (so the kernel filters other peers and reports ICMP errors as ECONNREFUSED), one
/// request, answers read as they come (at most a few per wake) until one decides or the
/// deadline passes.
public final class DatagramProber<ID: Sendable> {
    struct Probe {
        let id: ID
        let request: DatagramRequest
    }

    private let epoll: EpollSet
    public var descriptor: Int32 { epoll.descriptor }
    private var probes: [Int32: Probe] = [:]
    private var deadlines = ProbeTable<ID>()
    private let buffer: UnsafeMutableRawBufferPointer
    /// Datagrams read per probe per wake, so a flood of foreign answers cannot hold the loop.
    static var readsPerWake: Int { 8 }

    public init?(batch: Int = 256) {
        guard let epoll = EpollSet(batch: batch) else { return nil }
        self.epoll = epoll
        buffer = .allocate(byteCount: 65_536, alignment: 8)
    }

    deinit {
        cancelAll()
        buffer.deallocate()
    }

    public var count: Int { probes.count }
    public var nextDeadline: Int64? { deadlines.nextDeadline }

    /// Sends the request; a result now when it could not be sent.
    public func start(id: ID, _ request: DatagramRequest, now: Int64) -> ExchangeResult<ID>? {
        let ipv6 = request.target.family == .ipv6
        let type = Int32(request.transport == .udp ? SOCK_DGRAM.rawValue : SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let proto: Int32 = request.transport == .udp ? Int32(IPPROTO_UDP) : (ipv6 ? Int32(IPPROTO_ICMPV6) : Int32(IPPROTO_ICMP))
        let fd = socket(request.target.addressFamily, type, proto)
        guard fd >= 0 else { return ExchangeResult(id: id, outcome: .notRun(errno: errno)) }
        func abandon(_ e: Int32) -> ExchangeResult<ID> {
            close(fd)
            return ExchangeResult(id: id, outcome: .notRun(errno: e))
        }
        if let e = ProbeIO.markAndBind(fd, request.options) { return abandon(e) }
        if let local = request.options.bindTo, local.withSockAddr({ bind(fd, $0, $1) }) != 0 { return abandon(errno) }
        var target = request.target
        if request.transport == .icmp { target.port = 0 }
        if target.withSockAddr({ connect(fd, $0, $1) }) != 0 {
            let e = errno
            close(fd)
            return ExchangeResult(id: id, outcome: ProbeIO.serverFaults.contains(e) ? .failed(String(cString: strerror(e))) : .notRun(errno: e))
        }
        let sent = request.payload.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent < 0 {
            let e = errno
            close(fd)
            return ExchangeResult(id: id, outcome: ProbeIO.serverFaults.contains(e) || e == ECONNREFUSED ? .failed(String(cString: strerror(e))) : .notRun(errno: e))
        }
        guard Epoll.add(epoll.descriptor, fd: fd, events: Epoll.inbound) == 0 else { return abandon(errno) }
        probes[fd] = Probe(id: id, request: request)
        deadlines.insert(fd: fd, id: id, deadline: now + request.timeout)
        return nil
    }

    public func ready(now: Int64) -> [ExchangeResult<ID>] {
        var results: [ExchangeResult<ID>] = []
        epoll.forEachReady { fd, _ in
            guard let probe = probes[fd], let outcome = read(fd, probe) else { return }
            results.append(finish(fd, probe.id, outcome, fromDeadline: false))
        }
        return results + expire(now: now)
    }

    public func expire(now: Int64) -> [ExchangeResult<ID>] {
        deadlines.popExpired(now: now).compactMap { fd, _ in
            guard let probe = probes[fd] else { return nil }
            return finish(fd, probe.id, probe.request.timeoutPasses ? .passed : .failed("no reply within the timeout"), fromDeadline: true)
        }
    }

    public func cancelAll() {
        for (fd, probe) in probes { _ = finish(fd, probe.id, .notRun(errno: ECANCELED), fromDeadline: false) }
    }

    private func read(_ fd: Int32, _ probe: Probe) -> ExchangeOutcome? {
        for _ in 0..<Self.readsPerWake {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
                return .failed(String(cString: strerror(errno)))   // ECONNREFUSED: port unreachable
            }
            let bytes = Array(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            switch probe.request.judge(bytes[...]) {
            case .pass: return .passed
            case .fail(let why): return .failed(why)
            case .notOurs: continue
            }
        }
        return nil
    }

    private func finish(_ fd: Int32, _ id: ID, _ outcome: ExchangeOutcome, fromDeadline: Bool) -> ExchangeResult<ID> {
        probes[fd] = nil
        if !fromDeadline { _ = deadlines.remove(fd: fd) }
        _ = Epoll.delete(epoll.descriptor, fd: fd)
        close(fd)
        return ExchangeResult(id: id, outcome: outcome)
    }
}
