@preconcurrency import Glibc
import Logging

/// Where log lines go: the console with `-l` (as keepalived's `--log-console`), syslog otherwise.
/// A LogHandler for swift-log, so the rest of the daemon logs through the standard Logger API.
public struct VigilLogHandler: LogHandler {
    public enum Destination: Sendable { case console, syslog }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let destination: Destination

    public init(destination: Destination, level: Logger.Level) {
        self.destination = destination
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = event.message.description
        switch destination {
        case .console:
            // keepalived prints `Sun Nov 22 00:30:00 2026: message`; we add milliseconds, which
            // failover timing needs.
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var seconds = now.tv_sec
            var parts = tm()
            localtime_r(&seconds, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let length = strftime(&buffer, buffer.count, "%a %b %e %H:%M:%S", &parts)
            let stamp = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let millis = now.tv_nsec / 1_000_000
            let line = "\(stamp).\(millis < 10 ? "00" : millis < 100 ? "0" : "")\(millis): \(text)\n"
            _ = line.withCString { fputs($0, stderr) }
        case .syslog:
            let priority: Int32
            switch event.level {
            case .trace, .debug: priority = LOG_DEBUG
            case .info: priority = LOG_INFO
            case .notice: priority = LOG_NOTICE
            case .warning: priority = LOG_WARNING
            case .error: priority = LOG_ERR
            case .critical: priority = LOG_CRIT
            }
            text.withCString { message in
                withVaList([message]) { vsyslog(priority, "%s", $0) }
            }
        }
    }
}
