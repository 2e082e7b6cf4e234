@preconcurrency import Glibc
import Addressing
import Logging
import SMTP
import VRRPSpecs
import VigilSystem

/// keepalived's state-change mail: one SMTP connection per message, driven by the loop (no
/// blocking connect, no thread), each bounded by smtp_connect_timeout for the whole dialogue.
/// A server that is down or slow costs a log line, never a delayed advert.
final class MailHost: LoopHost {
    private struct Delivery {
        var session: SMTPSession
        let connection: any StreamConnection
        let deadline: Int64
        var outgoing: [UInt8] = []
    }

    private let loop: EventLoop
    private let clock: any DaemonClock
    private let connect: (IPAddress, UInt16) throws(SystemError) -> any StreamConnection
    private let hostName: String
    /// Asked only for a mail without notification_email_from: the lookup loads the NSS modules
    /// (in a dynamically linked build Debian's libnss_systemd, 0.3 MB resident) into a daemon
    /// that may never send one.
    private let userName: () -> String
    private var logger: Logger
    private var deliveries: [Int32: Delivery] = [:]
    var settings: MailSettings?
    /// The last 16 messages handed to a server: subject and outcome.
    private(set) var outcomes: [(subject: String, outcome: SMTPSession.Outcome)] = []

    init(loop: EventLoop, clock: any DaemonClock, connect: @escaping (IPAddress, UInt16) throws(SystemError) -> any StreamConnection,
         hostName: String, userName: @escaping () -> String, logger: Logger) {
        self.loop = loop
        self.clock = clock
        self.connect = connect
        self.hostName = hostName
        self.userName = userName
        self.logger = logger
    }

    /// keepalived's subject: "[router_id] VRRP Instance VI_1 - Entering MASTER state".
    func send(about what: String, _ subject: String, body: String) {
        guard let settings else { return }
        let routerID = settings.routerID ?? hostName
        let message = SMTPMessage(helo: settings.helo ?? hostName, from: settings.from ?? "\(userName())@\(hostName)", to: settings.to,
                                  subject: "[\(routerID)] \(what) - \(subject)", body: body, date: Self.rfc822(clock.wallClock()))
        let server = "\(settings.server.isV6 ? "[\(settings.server)]" : "\(settings.server)"):\(settings.port)"
        do {
            let connection = try connect(settings.server, settings.port)
            deliveries[connection.fd] = Delivery(session: SMTPSession(message: message), connection: connection,
                                                 deadline: clock.now() + settings.timeout)
            loop.watch(connection.fd, for: .readable) { [unowned self] _ in self.read(connection.fd) }
        } catch {
            logger.error("Error connecting SMTP server \(server): \(error)")
            outcomes.append((message.subject, .failed("\(error)")))
        }
    }

    private func read(_ fd: Int32) {
        guard var delivery = deliveries[fd] else { return }
        var actions: [SMTPSession.Action] = []
        switch delivery.connection.read(max: 4096) {
        case .wouldBlock: return
        case .closed: actions = delivery.session.closed()
        case .data(let bytes): actions = delivery.session.received(bytes)
        }
        for action in actions {
            switch action {
            case .send(let bytes): delivery.outgoing += bytes
            case .finish(let outcome):
                finish(fd, delivery.session.message.subject, outcome)
                return
            }
        }
        deliveries[fd] = delivery
        flush(fd)
    }

    /// Writes what is pending; waits for room when the socket is full.
    private func flush(_ fd: Int32) {
        guard var delivery = deliveries[fd], !delivery.outgoing.isEmpty else { return }
        guard let n = delivery.connection.write(delivery.outgoing[...]) else {
            finish(fd, delivery.session.message.subject, .failed("the connection failed while sending"))
            return
        }
        delivery.outgoing.removeFirst(n)
        deliveries[fd] = delivery
        loop.unwatch(fd)
        if delivery.outgoing.isEmpty {
            loop.watch(fd, for: .readable) { [unowned self] _ in self.read(fd) }
        } else {
            loop.watch(fd, for: .writable) { [unowned self] _ in self.flush(fd) }
        }
    }

    private func finish(_ fd: Int32, _ subject: String, _ outcome: SMTPSession.Outcome) {
        loop.unwatch(fd)
        deliveries[fd]?.connection.close()
        deliveries[fd] = nil
        outcomes.append((subject, outcome))
        if outcomes.count > 16 { outcomes.removeFirst(outcomes.count - 16) }
        switch outcome {
        case .sent: logger.info("SMTP alert successfully sent: \(subject)")
        case .failed(let why): logger.error("SMTP alert not sent (\(subject)): \(why)")
        }
    }

    /// The stop's mails (omega's "Shutting down") after the loop has ended: these connections
    /// alone are waited on, until each is delivered or `deadline` (smtp_connect_timeout bounds
    /// each one anyway). A bounded number of rounds, so a waiter that never blocks cannot spin.
    func deliverPending(waiter: any DescriptorWaiter, until deadline: Int64) {
        var rounds = 0
        while !deliveries.isEmpty && rounds < 10_000 {
            rounds += 1
            let now = clock.now()
            runDueWork(at: now)
            guard now < deadline, !deliveries.isEmpty else { break }
            let wait = min(deadline, nextDeadline ?? deadline) - now
            guard let ready = try? waiter.wait(readable: Array(deliveries.keys), writable: [], timeout: max(0, wait)) else { break }
            for fd in ready { read(fd) }
        }
        for (fd, delivery) in deliveries {
            finish(fd, delivery.session.message.subject, .failed("not delivered before the stop"))
        }
    }

    // MARK: LoopHost

    var nextDeadline: Int64? { deliveries.values.map(\.deadline).min() }

    func runDueWork(at now: Int64) {
        for (fd, delivery) in deliveries where delivery.deadline <= now {
            finish(fd, delivery.session.message.subject, .failed("timed out after \((settings?.timeout ?? 0) / 1_000_000) s"))
        }
    }

    /// "Tue, 01 Dec 2026 12:00:00 +0000", local time, as keepalived writes it.
    static func rfc822(_ seconds: Double) -> String {
        var time = time_t(seconds)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 80)
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S %z", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
