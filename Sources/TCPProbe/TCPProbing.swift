@preconcurrency import Glibc

/// What the daemon needs from either prober, so it can fall back from epoll to poll(2)
/// without caring which one it got.
public protocol TCPProbing<ID>: AnyObject {
    associatedtype ID: Sendable
    var count: Int { get }
    var nextDeadline: Int64? { get }
    func start(id: ID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<ID>
    func wait(maxWait: Int64) -> [ProbeResult<ID>]
    func expire(now: Int64) -> [ProbeResult<ID>]
    @discardableResult func cancel(fd: Int32) -> ID?
    func cancelAll()
}

extension TCPProber: TCPProbing {}
extension EpollTCPProber: TCPProbing {}

extension TCPProbing {
    /// Text form, as the config gives it. An unparsable address cannot be checked at all, so
    /// it is `.notRun(EINVAL)` rather than a failure blamed on the server.
    public func start(id: ID, address: String, port: UInt16, bindTo: String? = nil, bindPort: UInt16? = nil, timeout: Int64, now: Int64) -> ProbeStart<ID> {
        guard let target = SocketAddress(address, port: port) else {
            return .finished(ProbeResult(id: id, outcome: .notRun(errno: EINVAL)))
        }
        var local: SocketAddress?
        if let text = bindTo {
            guard let parsed = SocketAddress(text) else { return .finished(ProbeResult(id: id, outcome: .notRun(errno: EINVAL))) }
            local = parsed
        }
        let options = ProbeOptions(bindTo: ProbeOptions.localAddress(bindTo: local, bindPort: bindPort, target: target))
        return start(id: id, target: target, options: options, timeout: timeout, now: now)
    }
}
