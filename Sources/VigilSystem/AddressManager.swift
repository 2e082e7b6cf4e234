@preconcurrency import Glibc
import Addressing
import CNetlink
import Synchronization

/// What to add or remove. Removal must repeat prefix length and label: the kernel matches the
/// address on them, as `ip addr del` does.
public struct AddressSpec: Sendable, Equatable {
    public var ifindex: Int32
    public var address: IPAddress
    public var prefixLength: UInt8
    /// IPv4 only (`eth0:vip` style); the kernel ignores it for IPv6.
    public var label: String?
    /// RT_SCOPE_* value: 0 global (keepalived's default), 253 link, 254 host.
    public var scope: UInt8
    public var broadcast: IPv4Address?
    /// IPv6 only. keepalived sets IFA_F_NODAD by default: a VIP that sits in DAD "tentative"
    /// state cannot be used as a source and would delay the takeover.
    public var noDAD: Bool

    public init(ifindex: Int32, address: IPAddress, prefixLength: UInt8? = nil, label: String? = nil,
                scope: UInt8 = 0, broadcast: IPv4Address? = nil, noDAD: Bool = true) {
        self.ifindex = ifindex
        self.address = address
        self.prefixLength = prefixLength ?? UInt8(address.maxPrefixLength)
        self.label = label
        self.scope = scope
        self.broadcast = broadcast
        self.noDAD = noDAD
    }
}

/// One address as rtnetlink reports it.
public struct InterfaceAddress: Sendable, Equatable {
    public let ifindex: Int32
    public let address: IPAddress
    public let prefixLength: UInt8
    public let label: String?
    public let scope: UInt8
    /// IFA_F_* bits.
    public let flags: UInt32
    public let broadcast: IPv4Address?

    public init(ifindex: Int32, address: IPAddress, prefixLength: UInt8, label: String? = nil, scope: UInt8 = 0,
                flags: UInt32 = 0, broadcast: IPv4Address? = nil) {
        self.ifindex = ifindex
        self.address = address
        self.prefixLength = prefixLength
        self.label = label
        self.scope = scope
        self.flags = flags
        self.broadcast = broadcast
    }

    public var isSecondary: Bool { flags & UInt32(IFA_F_SECONDARY) != 0 }
    public var isTentative: Bool { flags & UInt32(IFA_F_TENTATIVE) != 0 }
    public var isNoDAD: Bool { flags & UInt32(IFA_F_NODAD) != 0 }
}

public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The address is already on the interface (keepalived logs and carries on).
    case exists(IPAddress, ifindex: Int32)
    /// Remove of an address that is not there (EADDRNOTAVAIL).
    case notFound(IPAddress, ifindex: Int32)
    /// No such interface on add (ENODEV).
    case noDevice(ifindex: Int32)
    /// Any other libnl failure; `code` is libnl's positive NLE_* number.
    case netlink(code: Int32, message: String, operation: String)

    public var description: String {
        switch self {
        case .exists(let a, let i): "address \(a) already exists on ifindex \(i)"
        case .notFound(let a, let i): "address \(a) not present on ifindex \(i)"
        case .noDevice(let i): "no interface with ifindex \(i)"
        case .netlink(let code, let message, let op): "\(op): \(message) (libnl error \(code))"
        }
    }
}

/// VIP add/remove over rtnetlink via libnl-route. Like keepalived the add carries no
/// NLM_F_EXCL/REPLACE (libnl adds NLM_F_CREATE, which the kernel ignores for addresses), so a
/// duplicate comes back as `.exists` rather than silently replacing the entry.
/// The netlink socket belongs to the network namespace current when `init` ran.
public final class AddressManager: Sendable {
    /// libnl sockets are not thread-safe; every use goes through `lock`.
    nonisolated(unsafe) private let sk: OpaquePointer
    private let lock = Mutex(())

    public init() throws(AddressError) {
        switch RouteNetlink.connect() {
        case .success(let sk): self.sk = sk
        case .failure(let failure): throw .netlink(code: failure.code, message: failure.message, operation: failure.operation)
        }
    }

    deinit {
        nl_socket_free(sk)
    }

    public func add(_ spec: AddressSpec) throws(AddressError) {
        let rc = try withRequest(spec) { sk, addr in rtnl_addr_add(sk, addr, 0) }
        switch -rc {
        case 0: return
        case NLE_EXIST: throw .exists(spec.address, ifindex: spec.ifindex)
        case NLE_NODEV: throw .noDevice(ifindex: spec.ifindex)
        default: throw AddressManager.error(rc, "add \(spec.address)/\(spec.prefixLength) on ifindex \(spec.ifindex)")
        }
    }

    /// ENODEV is swallowed as keepalived does: the interface is gone, so is the address.
    public func remove(_ spec: AddressSpec) throws(AddressError) {
        let rc = try withRequest(spec) { sk, addr in rtnl_addr_delete(sk, addr, 0) }
        switch -rc {
        case 0, NLE_NODEV: return
        case NLE_NOADDR: throw .notFound(spec.address, ifindex: spec.ifindex)
        default: throw AddressManager.error(rc, "remove \(spec.address)/\(spec.prefixLength) on ifindex \(spec.ifindex)")
        }
    }

    /// Addresses in kernel dump order (an interface's primary IPv4 comes before its
    /// secondaries); nil lists every interface.
    public func list(ifindex: Int32? = nil) throws(AddressError) -> [InterfaceAddress] {
        var cache: OpaquePointer?
        let rc = lock.withLock { _ in rtnl_addr_alloc_cache(sk, &cache) }
        if rc < 0 { throw AddressManager.error(rc, "dump addresses") }
        defer { nl_cache_free(cache) }

        var result: [InterfaceAddress] = []
        var object = nl_cache_get_first(cache)
        while let current = object {
            object = nl_cache_get_next(current)
            let addr = current // struct nl_object * is the rtnl_addr itself
            let index = rtnl_addr_get_ifindex(addr)
            if let wanted = ifindex, wanted != index { continue }
            guard let local = AddressManager.ipAddr(rtnl_addr_get_local(addr)) else { continue }
            let label = rtnl_addr_get_label(addr).map { String(cString: $0) }
            var broadcast: IPv4Address?
            if case .v4(let b)? = AddressManager.ipAddr(rtnl_addr_get_broadcast(addr)) { broadcast = b }
            result.append(InterfaceAddress(
                ifindex: index, address: local, prefixLength: UInt8(clamping: rtnl_addr_get_prefixlen(addr)),
                label: label, scope: UInt8(clamping: rtnl_addr_get_scope(addr)),
                flags: rtnl_addr_get_flags(addr), broadcast: broadcast))
        }
        return result
    }

    private func withRequest(_ spec: AddressSpec,
                             _ body: (OpaquePointer, OpaquePointer) -> Int32) throws(AddressError) -> Int32 {
        guard let addr = rtnl_addr_alloc() else {
            throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_addr_alloc")
        }
        defer { rtnl_addr_put(addr) }
        rtnl_addr_set_ifindex(addr, spec.ifindex)
        rtnl_addr_set_family(addr, spec.address.socketFamily)

        let local = try AddressManager.nlAddr(spec.address, prefix: spec.prefixLength)
        defer { nl_addr_put(local) }
        var rc = rtnl_addr_set_local(addr, local)   // takes its own reference
        if rc < 0 { throw AddressManager.error(rc, "rtnl_addr_set_local") }
        rtnl_addr_set_prefixlen(addr, Int32(spec.prefixLength))
        rtnl_addr_set_scope(addr, Int32(spec.scope))

        if let label = spec.label, case .v4 = spec.address {
            rc = rtnl_addr_set_label(addr, label)
            if rc < 0 { throw AddressManager.error(rc, "label \(label)") }
        }
        if let broadcast = spec.broadcast, case .v4 = spec.address {
            let brd = try AddressManager.nlAddr(.v4(broadcast), prefix: 32)
            defer { nl_addr_put(brd) }
            rc = rtnl_addr_set_broadcast(addr, brd)
            if rc < 0 { throw AddressManager.error(rc, "broadcast \(broadcast)") }
        }
        if spec.noDAD, case .v6 = spec.address {
            rtnl_addr_set_flags(addr, UInt32(IFA_F_NODAD))
        }
        return lock.withLock { _ in body(sk, addr) }
    }

    private static func nlAddr(_ address: IPAddress, prefix: UInt8) throws(AddressError) -> OpaquePointer {
        guard let nl = RouteNetlink.address(address, prefix: prefix) else {
            throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "nl_addr_build")
        }
        return nl
    }

    static func ipAddr(_ nl: OpaquePointer?) -> IPAddress? {
        guard let nl, let raw = nl_addr_get_binary_addr(nl) else { return nil }
        let bytes = UnsafeRawBufferPointer(start: raw, count: Int(nl_addr_get_len(nl)))
        switch nl_addr_get_family(nl) {
        case AF_INET, AF_INET6: return IPAddress(bytes: bytes)
        default: return nil
        }
    }

    private static func error(_ rc: Int32, _ operation: String) -> AddressError {
        .netlink(code: -rc, message: String(cString: nl_geterror(rc)), operation: operation)
    }
}

/// What AddressManager and RouteManager share: an rtnetlink socket of libnl, and libnl's
/// address objects.
enum RouteNetlink {
    struct Failure: Error { var code: Int32; var message: String; var operation: String }

    static func connect() -> Result<OpaquePointer, Failure> {
        guard let sk = nl_socket_alloc() else { return .failure(Failure(code: NLE_NOMEM, message: "out of memory", operation: "nl_socket_alloc")) }
        let rc = nl_connect(sk, NETLINK_ROUTE)
        guard rc >= 0 else {
            nl_socket_free(sk)
            return .failure(Failure(code: -rc, message: String(cString: nl_geterror(rc)), operation: "nl_connect(NETLINK_ROUTE)"))
        }
        return .success(sk)
    }

    /// A libnl address with its prefix length (the caller puts it); nil when out of memory.
    static func address(_ address: IPAddress, prefix: UInt8) -> OpaquePointer? {
        let bytes = address.bytes
        guard let nl = bytes.withUnsafeBytes({ nl_addr_build(address.socketFamily, $0.baseAddress, $0.count) }) else { return nil }
        nl_addr_set_prefixlen(nl, Int32(prefix))
        return nl
    }
}
