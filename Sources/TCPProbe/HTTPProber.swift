@preconcurrency import Glibc
import HealthCheck

/// One step of a TLS session over a non-blocking socket.
public enum TLSStep: Sendable, Equatable {
    case done
    case wantRead
    case wantWrite
    /// The peer closed the session (or the connection) cleanly.
    case closed
    case failed(String)
}

/// A TLS client session on a connected non-blocking socket (OpenSSL in VigilSystem; the
/// prober needs nothing else of it).
public protocol TLSSession: AnyObject {
    func handshake() -> TLSStep
    /// Bytes written (0 with a step other than `.done`).
    func write(_ bytes: UnsafeRawBufferPointer) -> (Int, TLSStep)
    /// Bytes read (0 with a step other than `.done`).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> (Int, TLSStep)
    /// Ends the session; what it negotiated may be kept for the next fetch of the same server.
    func shutDown()
    /// Whether the handshake resumed an earlier session rather than making a full one.
    var resumed: Bool { get }
}

/// An MD5 of the body, fed as it arrives (OpenSSL's EVP in VigilSystem).
public protocol BodyDigest: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    func finish() -> [UInt8]
}

/// Matches the body as it streams in (HTTP_GET's `regex`); told when it has ended.
public protocol BodyMatcher: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    func finish() -> Bool
}

/// What one fetch needs: where, how, the request bytes, TLS, and whether to digest the body.
public struct HTTPFetchRequest {
    public var target: SocketAddress
    public var options: ProbeOptions
    public var request: [UInt8]
    /// Made once the TCP handshake completed: TLS over the connected socket.
    public var tls: ((Int32) -> (any TLSSession)?)?
    public var digest: (() -> any BodyDigest)?
    public var matcher: (() -> any BodyMatcher)?
    /// Each phase (connect, TLS handshake, write, read) gets this long, as in keepalived.
    public var timeout: Int64
    /// Keep the body in the response (genhash -v).
    public var keepsBody = false

    public init(target: SocketAddress, options: ProbeOptions = ProbeOptions(), request: [UInt8],
                tls: ((Int32) -> (any TLSSession)?)? = nil, digest: (() -> any BodyDigest)? = nil, timeout: Int64) {
        self.target = target
        self.options = options
        self.request = request
        self.tls = tls
        self.digest = digest
        self.timeout = timeout
    }
}

public enum HTTPFetchOutcome {
    /// The server answered and closed: what it said, for the url block to judge.
    case response(HTTPResponseReader, digest: [UInt8]?, regexMatched: Bool? = nil)
    /// The fetch failed before a complete answer, in keepalived's words ("Timeout connecting",
    /// "SSL handshake/communication error connecting to", "Timeout WEB read", ...) and why.
    case failed(reason: String, detail: String?)
    /// It could not be attempted (socket, bind, SO_MARK): no verdict, as in keepalived.
    case notRun(errno: Int32)
}

public struct HTTPFetchResult<ID: Sendable> {
    public var id: ID
    public var outcome: HTTPFetchOutcome
    public init(id: ID, outcome: HTTPFetchOutcome) {
        self.id = id
        self.outcome = outcome
    }
}

/// HTTP_GET / SSL_GET fetches through one epoll descriptor, like `EpollTCPProber`: each phase
/// is a non-blocking step taken when the socket is ready, each has its own deadline, and one
/// wake-up reads at most `readChunk` bytes per ready fetch, so a fast server streaming a large
/// page cannot hold the loop (the rest is read on the next turn; epoll is level-triggered).
public final class HTTPProber<ID: Sendable> {
    enum Phase { case connecting, handshaking, writing, reading }

    final class Fetch {
        let id: ID
        let fd: Int32
        var phase = Phase.connecting
        var request: HTTPFetchRequest
        var written = 0
        var session: (any TLSSession)?
        var reader = HTTPResponseReader()
        var digest: (any BodyDigest)?
        var matcher: (any BodyMatcher)?
        /// What the socket waits for now (EPOLLIN or EPOLLOUT).
        var interest: UInt32 = Epoll.out

        init(id: ID, fd: Int32, request: HTTPFetchRequest) {
            self.id = id
            self.fd = fd
            self.request = request
            reader = HTTPResponseReader(keepsBody: request.keepsBody)
        }
    }

    private let epoll: EpollSet
    public var descriptor: Int32 { epoll.descriptor }
    private var fetches: [Int32: Fetch] = [:]
    private var deadlines = ProbeTable<ID>()
    private let buffer: UnsafeMutableRawBufferPointer
    public static var readChunk: Int { 16 * 1024 }

    public init?(batch: Int = 256) {
        guard let epoll = EpollSet(batch: batch) else { return nil }
        self.epoll = epoll
        buffer = .allocate(byteCount: Self.readChunk, alignment: 8)
    }

    deinit {
        cancelAll()
        buffer.deallocate()
    }

    public var count: Int { fetches.count }
    public var nextDeadline: Int64? { deadlines.nextDeadline }

    /// Starts a fetch; a result now when it could not even start.
    public func start(id: ID, _ request: HTTPFetchRequest, now: Int64) -> HTTPFetchResult<ID>? {
        switch epoll.openWatched(request.target, request.options) {
        case .done(let outcome):
            switch outcome {
            case .notRun(let e): return HTTPFetchResult(id: id, outcome: .notRun(errno: e))
            case .failed(let e): return HTTPFetchResult(id: id, outcome: .failed(reason: "Connection failed", detail: String(cString: strerror(e))))
            case .timedOut: return HTTPFetchResult(id: id, outcome: .failed(reason: "Timeout connecting", detail: nil))
            case .connected: return nil   // not reported by open when asked to keep the socket
            }
        case .pending(let fd):
            let fetch = Fetch(id: id, fd: fd, request: request)
            fetches[fd] = fetch
            deadlines.insert(fd: fd, id: id, deadline: now + request.timeout)
            return nil
        }
    }

    /// Steps every ready fetch (the descriptor was readable), then expires overdue ones.
    public func ready(now: Int64) -> [HTTPFetchResult<ID>] {
        var results: [HTTPFetchResult<ID>] = []
        epoll.forEachReady { fd, flags in
            guard let fetch = fetches[fd], let outcome = step(fetch, flags: flags, now: now) else { return }
            results.append(finish(fetch, outcome))
        }
        return results + expire(now: now)
    }

    public func expire(now: Int64) -> [HTTPFetchResult<ID>] {
        deadlines.popExpired(now: now).compactMap { fd, _ in
            guard let fetch = fetches[fd] else { return nil }
            let reason: String
            switch fetch.phase {
            case .connecting, .handshaking: reason = "Timeout connecting"
            case .writing: reason = "Timeout WEB write"
            case .reading: reason = fetch.reader.receivedAny ? "Timeout HTTP read" : "Timeout WEB read"
            }
            return finish(fetch, .failed(reason: reason, detail: nil), fromDeadline: true)
        }
    }

    public func cancelAll() {
        for fetch in Array(fetches.values) { _ = finish(fetch, .notRun(errno: ECANCELED)) }
    }

    /// One step; an outcome when the fetch is over.
    private func step(_ fetch: Fetch, flags: UInt32, now: Int64) -> HTTPFetchOutcome? {
        switch fetch.phase {
        case .connecting:
            let clean = flags & (Epoll.error | Epoll.hangUp) == 0
            guard let outcome = clean ? .connected : ProbeIO.finish(fetch.fd) else { return nil }
            switch outcome {
            case .connected: break
            case .timedOut: return .failed(reason: "Timeout connecting", detail: nil)
            case .failed(let e), .notRun(let e): return .failed(reason: "Error connecting", detail: String(cString: strerror(e)))
            }
            if let makeTLS = fetch.request.tls {
                guard let session = makeTLS(fetch.fd) else {
                    return .failed(reason: "SSL handshake/communication error connecting to", detail: "no TLS session")
                }
                fetch.session = session
                fetch.phase = .handshaking
                advance(fetch, now: now)
                return handshake(fetch, now: now)
            }
            fetch.phase = .writing
            advance(fetch, now: now)
            return write(fetch, now: now)
        case .handshaking:
            return handshake(fetch, now: now)
        case .writing:
            return write(fetch, now: now)
        case .reading:
            return read(fetch)
        }
    }

    private func handshake(_ fetch: Fetch, now: Int64) -> HTTPFetchOutcome? {
        guard let session = fetch.session else { return .failed(reason: "SSL handshake/communication error connecting to", detail: nil) }
        switch session.handshake() {
        case .done:
            fetch.phase = .writing
            advance(fetch, now: now)
            return write(fetch, now: now)
        case .wantRead: watch(fetch, Epoll.inbound)
        case .wantWrite: watch(fetch, Epoll.out)
        case .closed: return .failed(reason: "SSL handshake/communication error connecting to", detail: "closed by the server")
        case .failed(let why): return .failed(reason: "SSL handshake/communication error connecting to", detail: why)
        }
        return nil
    }

    private func write(_ fetch: Fetch, now: Int64) -> HTTPFetchOutcome? {
        while fetch.written < fetch.request.request.count {
            let (sent, blocked): (Int, TLSStep?) = fetch.request.request.withUnsafeBytes { all in
                let rest = UnsafeRawBufferPointer(rebasing: all[fetch.written...])
                if let session = fetch.session {
                    let (n, step) = session.write(rest)
                    return (n, step == .done ? nil : step)
                }
                let n = send(fetch.fd, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
                if n >= 0 { return (n, nil) }
                return (0, errno == EAGAIN || errno == EWOULDBLOCK ? .wantWrite : .failed(String(cString: strerror(errno))))
            }
            fetch.written += sent
            switch blocked {
            case nil: continue
            case .wantWrite?: watch(fetch, Epoll.out); return nil
            case .wantRead?: watch(fetch, Epoll.inbound); return nil
            case .failed(let why)?: return .failed(reason: "Cannot send get request to", detail: why)
            case .closed?, .done?: return .failed(reason: "Cannot send get request to", detail: "closed by the server")
            }
        }
        fetch.phase = .reading
        if fetch.request.digest != nil { fetch.digest = fetch.request.digest!() }
        if fetch.request.matcher != nil { fetch.matcher = fetch.request.matcher!() }
        watch(fetch, Epoll.inbound)
        advance(fetch, now: now)
        return nil
    }

    /// One read per wake: the rest waits for the next turn.
    private func read(_ fetch: Fetch) -> HTTPFetchOutcome? {
        let n: Int
        var step = TLSStep.done
        if let session = fetch.session {
            (n, step) = session.read(into: buffer)
        } else {
            let r = recv(fetch.fd, buffer.baseAddress, buffer.count, 0)
            if r > 0 { n = r }
            else if r == 0 { n = 0; step = .closed }
            else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            else { n = 0; step = .failed(String(cString: strerror(errno))) }
        }
        switch step {
        case .done:
            do {
                try fetch.reader.consume(UnsafeRawBufferPointer(rebasing: buffer[..<n])) { body in
                    fetch.digest?.update(body)
                    fetch.matcher?.update(body)
                }
            } catch {
                return .failed(reason: "Read error with", detail: error.description)
            }
            return nil
        case .wantRead: watch(fetch, Epoll.inbound); return nil
        case .wantWrite: watch(fetch, Epoll.out); return nil
        case .closed: return .response(fetch.reader, digest: fetch.digest?.finish(), regexMatched: fetch.matcher?.finish())
        case .failed(let why): return .failed(reason: "Read error with", detail: why)
        }
    }

    /// A new phase: a new deadline, as each of keepalived's threads gets connect_timeout.
    private func advance(_ fetch: Fetch, now: Int64) {
        deadlines.insert(fd: fetch.fd, id: fetch.id, deadline: now + fetch.request.timeout)
    }

    private func watch(_ fetch: Fetch, _ events: UInt32) { epoll.watch(fetch.fd, events, interest: &fetch.interest) }

    private func finish(_ fetch: Fetch, _ outcome: HTTPFetchOutcome, fromDeadline: Bool = false) -> HTTPFetchResult<ID> {
        fetches[fetch.fd] = nil
        if !fromDeadline { _ = deadlines.remove(fd: fetch.fd) }
        fetch.session?.shutDown()
        _ = Epoll.delete(epoll.descriptor, fd: fetch.fd)
        // An answered fetch was closed by the server first; any other is reset, so no
        // TIME_WAIT socket is left per failed check.
        if case .response = outcome { close(fetch.fd) } else { ProbeIO.closeAfterCheck(fetch.fd, .connected) }
        return HTTPFetchResult(id: fetch.id, outcome: outcome)
    }
}
