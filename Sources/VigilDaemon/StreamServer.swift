import Logging
import VigilSystem

/// Short request/response exchanges on a listening socket, inside the event loop (the control
/// socket and the metrics endpoint). Nothing a client does can hold the loop: every socket is
/// non-blocking, a request is at most `maxRequest` bytes, a client has `timeout` to send its
/// request and read the answer, and at most `maxClients` are served at once (more are told so
/// and closed).
final class StreamServer: LoopHost {
    struct Limits {
        var maxRequest = 8 * 1024
        var timeout: Int64 = 5_000_000
        var maxClients = 16
    }

    /// What the bytes received so far amount to.
    enum Verdict {
        case incomplete
        case respond([UInt8])
    }

    private final class Client {
        let connection: any StreamConnection
        let deadline: Int64
        var received: [UInt8] = []
        var response: [UInt8]?
        var sent = 0
        init(connection: any StreamConnection, deadline: Int64) {
            self.connection = connection
            self.deadline = deadline
        }
    }

    private let loop: EventLoop
    private let listener: any StreamListener
    private let limits: Limits
    private let name: String
    private var logger: Logger
    private var clients: [Int32: Client] = [:]
    private let handle: ([UInt8]) -> Verdict
    private let overLimit: (String) -> [UInt8]
    /// Connections turned away, requests too large, clients that timed out: for metrics.
    private(set) var rejected = 0

    /// `handle` looks at the request bytes so far; `overLimit` builds the answer to a client
    /// that is refused (too many clients, a request too large).
    init(name: String, listener: any StreamListener, loop: EventLoop, limits: Limits = Limits(), logger: Logger,
         overLimit: @escaping (String) -> [UInt8], handle: @escaping ([UInt8]) -> Verdict) {
        self.name = name
        self.listener = listener
        self.loop = loop
        self.limits = limits
        self.logger = logger
        self.overLimit = overLimit
        self.handle = handle
        loop.watch(listener.fd) { [unowned self] now in self.acceptAll(at: now) }
    }

    var clientCount: Int { clients.count }

    private func acceptAll(at now: Int64) {
        while let connection = listener.accept() {
            guard clients.count < limits.maxClients else {
                rejected += 1
                _ = connection.write(overLimit("too many clients (\(limits.maxClients)): try again")[...])
                connection.close()
                continue
            }
            let client = Client(connection: connection, deadline: now + limits.timeout)
            clients[connection.fd] = client
            loop.watch(connection.fd, for: .readable) { [unowned self] now in self.read(client, at: now) }
        }
    }

    private func read(_ client: Client, at now: Int64) {
        while client.response == nil {
            switch client.connection.read(max: limits.maxRequest + 1 - client.received.count) {
            case .wouldBlock:
                return
            case .closed:
                drop(client)
                return
            case .data(let bytes):
                client.received += bytes
                if client.received.count > limits.maxRequest {
                    rejected += 1
                    respond(client, overLimit("request larger than \(limits.maxRequest) bytes"))
                    return
                }
                if case .respond(let answer) = handle(client.received) { respond(client, answer) }
            }
        }
    }

    private func respond(_ client: Client, _ answer: [UInt8]) {
        client.response = answer
        loop.unwatch(client.connection.fd)
        loop.watch(client.connection.fd, for: .writable) { [unowned self] _ in self.write(client) }
        write(client)
    }

    private func write(_ client: Client) {
        guard let response = client.response else { return }
        while client.sent < response.count {
            guard let n = client.connection.write(response[client.sent...]) else { drop(client); return }
            if n == 0 { return } // the client's buffer is full: wait for it to read
            client.sent += n
        }
        drop(client)
    }

    private func drop(_ client: Client) {
        loop.unwatch(client.connection.fd)
        client.connection.close()
        clients[client.connection.fd] = nil
    }

    // MARK: LoopHost

    var nextDeadline: Int64? { clients.values.lazy.map(\.deadline).min() }

    func runDueWork(at now: Int64) {
        for client in clients.values where client.deadline <= now {
            rejected += 1
            logger.debug("\(name): a client timed out \(client.response == nil ? "before its request was complete" : "before reading the answer")")
            drop(client)
        }
    }

    func close() {
        for client in clients.values { drop(client) }
        loop.unwatch(listener.fd)
        listener.close()
    }
}
