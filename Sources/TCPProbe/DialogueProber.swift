@preconcurrency import Glibc
import HealthCheck

/// One conversational check: where, how long each step may take, and the conversation.
public struct DialogueRequest {
    public var target: SocketAddress
    public var options: ProbeOptions
    public var dialogue: any StreamDialogue
    /// Connect, and then each read and each write, get this long, as each of keepalived's
    /// SMTP threads gets connect_timeout.
    public var timeout: Int64

    public init(target: SocketAddress, options: ProbeOptions = ProbeOptions(), dialogue: any StreamDialogue, timeout: Int64) {
        self.target = target
        self.options = options
        self.dialogue = dialogue
        self.timeout = timeout
    }
}

/// SMTP_CHECK conversations behind one epoll descriptor, like `HTTPProber`: a non-blocking
/// connect, then what the server sends is fed to the dialogue and what it answers is written,
/// each step with its own deadline. One wake reads at most 512 bytes per conversation (a
/// server that streams cannot hold the loop; the dialogue fails a line longer than that).
public final class DialogueProber<ID: Sendable> {
    final class Conversation {
        let id: ID
        let fd: Int32
        var request: DialogueRequest
        var connected = false
        var unsent: [UInt8] = []
        var interest: UInt32 = Epoll.out

        init(id: ID, fd: Int32, request: DialogueRequest) {
            self.id = id
            self.fd = fd
            self.request = request
        }
    }

    private let epoll: EpollSet
    public var descriptor: Int32 { epoll.descriptor }
    private var conversations: [Int32: Conversation] = [:]
    private var deadlines = ProbeTable<ID>()
    private let buffer: UnsafeMutableRawBufferPointer
    static var readChunk: Int { 512 }

    public init?(batch: Int = 256) {
        guard let epoll = EpollSet(batch: batch) else { return nil }
        self.epoll = epoll
        buffer = .allocate(byteCount: Self.readChunk, alignment: 8)
    }

    deinit {
        cancelAll()
        buffer.deallocate()
    }

    public var count: Int { conversations.count }
    public var nextDeadline: Int64? { deadlines.nextDeadline }

    /// Starts the connect; a result now when it could not start.
    public func start(id: ID, _ request: DialogueRequest, now: Int64) -> ExchangeResult<ID>? {
        switch epoll.openWatched(request.target, request.options) {
        case .done(let outcome):
            switch outcome {
            case .notRun(let e): return ExchangeResult(id: id, outcome: .notRun(errno: e))
            case .failed(let e): return ExchangeResult(id: id, outcome: .failed("Error connecting to server (\(String(cString: strerror(e))))"))
            case .timedOut: return ExchangeResult(id: id, outcome: .failed("Connection timeout to server"))
            case .connected: return nil
            }
        case .pending(let fd):
            conversations[fd] = Conversation(id: id, fd: fd, request: request)
            deadlines.insert(fd: fd, id: id, deadline: now + request.timeout)
            return nil
        }
    }

    public func ready(now: Int64) -> [ExchangeResult<ID>] {
        var results: [ExchangeResult<ID>] = []
        epoll.forEachReady { fd, flags in
            guard let conversation = conversations[fd], let outcome = step(conversation, flags: flags, now: now) else { return }
            results.append(finish(conversation, outcome, fromDeadline: false))
        }
        return results + expire(now: now)
    }

    public func expire(now: Int64) -> [ExchangeResult<ID>] {
        deadlines.popExpired(now: now).compactMap { fd, _ in
            guard let conversation = conversations[fd] else { return nil }
            let why = !conversation.connected ? "Connection timeout to server"
                : conversation.unsent.isEmpty ? "Read timeout from server" : "Write timeout to server"
            return finish(conversation, .failed(why), fromDeadline: true)
        }
    }

    public func cancelAll() {
        for conversation in conversations.values { _ = finish(conversation, .notRun(errno: ECANCELED), fromDeadline: false) }
    }

    private func step(_ conversation: Conversation, flags: UInt32, now: Int64) -> ExchangeOutcome? {
        if !conversation.connected {
            let clean = flags & (Epoll.error | Epoll.hangUp) == 0
            guard let outcome = clean ? .connected : ProbeIO.finish(conversation.fd) else { return nil }
            switch outcome {
            case .connected: break
            case .timedOut: return .failed("Connection timeout to server")
            case .failed(let e), .notRun(let e): return .failed("Error connecting to server (\(String(cString: strerror(e))))")
            }
            conversation.connected = true
            watch(conversation, Epoll.inbound)
            restartDeadline(conversation, now: now)
            return nil
        }
        if !conversation.unsent.isEmpty { return write(conversation, now: now) }
        let n = recv(conversation.fd, buffer.baseAddress, buffer.count, 0)
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
            return .failed("Read failure from server (\(String(cString: strerror(errno))))")
        }
        if n == 0 { return .failed("Read failure from server (closed by the server)") }
        switch conversation.request.dialogue.received(UnsafeRawBufferPointer(rebasing: buffer[..<n])) {
        case .wait: return nil
        case .pass: return .passed
        case .fail(let why): return .failed(why)
        case .send(let bytes):
            conversation.unsent = bytes
            restartDeadline(conversation, now: now)
            return write(conversation, now: now)
        }
    }

    private func write(_ conversation: Conversation, now: Int64) -> ExchangeOutcome? {
        let sent = conversation.unsent.withUnsafeBytes { send(conversation.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                watch(conversation, Epoll.out)
                return nil
            }
            return .failed("Write failure to server (\(String(cString: strerror(errno))))")
        }
        conversation.unsent.removeFirst(sent)
        if !conversation.unsent.isEmpty {
            watch(conversation, Epoll.out)
            return nil
        }
        watch(conversation, Epoll.inbound)
        restartDeadline(conversation, now: now)
        return nil
    }

    private func restartDeadline(_ conversation: Conversation, now: Int64) {
        deadlines.insert(fd: conversation.fd, id: conversation.id, deadline: now + conversation.request.timeout)
    }

    private func watch(_ conversation: Conversation, _ events: UInt32) {
        epoll.watch(conversation.fd, events, interest: &conversation.interest)
    }

    private func finish(_ conversation: Conversation, _ outcome: ExchangeOutcome, fromDeadline: Bool) -> ExchangeResult<ID> {
        conversations[conversation.fd] = nil
        if !fromDeadline { _ = deadlines.remove(fd: conversation.fd) }
        _ = Epoll.delete(epoll.descriptor, fd: conversation.fd)
        // A passed conversation ended with QUIT: close it cleanly. Any other is reset, so no
        // TIME_WAIT socket is left per failed check.
        if outcome == .passed { close(conversation.fd) } else { ProbeIO.closeAfterCheck(conversation.fd, .connected) }
        return ExchangeResult(id: conversation.id, outcome: outcome)
    }
}
