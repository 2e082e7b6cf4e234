/// What the daemon needs from either prober, so it can fall back from epoll to poll(2)
/// without caring which one it got.
public protocol TCPProbing<ID>: AnyObject {
    associatedtype ID: Sendable
    var count: Int { get }
    var nextDeadline: Int64? { get }
    func start(id: ID, target: SocketAddress, options: ProbeOptions, timeout: Int64, now: Int64) -> ProbeStart<ID>
    func start(id: ID, address: String, port: UInt16, bindTo: String?, bindPort: UInt16?, timeout: Int64, now: Int64) -> ProbeStart<ID>
    func wait(maxWait: Int64) -> [ProbeResult<ID>]
    func expire(now: Int64) -> [ProbeResult<ID>]
    @discardableResult func cancel(fd: Int32) -> ID?
    func cancelAll()
}

extension TCPProber: TCPProbing {}
extension EpollTCPProber: TCPProbing {}

extension TCPProbing {
    /// The config's common case: no bindto / bind_port.
    public func start(id: ID, address: String, port: UInt16, timeout: Int64, now: Int64) -> ProbeStart<ID> {
        start(id: id, address: address, port: port, bindTo: nil, bindPort: nil, timeout: timeout, now: now)
    }
}
