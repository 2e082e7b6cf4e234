@preconcurrency import Glibc
import Addressing
import CNetlink
import Synchronization

public enum RouteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Already in the table (EEXIST): it serves the same purpose, as keepalived treats it.
    case exists
    /// Not in the table on removal (ESRCH/ENOENT).
    case notFound
    case noDevice(String)
    case netlink(code: Int32, message: String, operation: String)

    public var description: String {
        switch self {
        case .exists: "already present"
        case .notFound: "not present"
        case .noDevice(let name): "no interface \(name)"
        case .netlink(let code, let message, let op): "\(op): \(message) (libnl error \(code))"
        }
    }
}

/// Routes and policy rules over rtnetlink through libnl-route (keepalived's static_routes,
/// virtual_routes, static_rules, virtual_rules). Devices are named in the definitions and
/// looked up here, at the moment of the request, as `ip route` does.
public final class RouteManager: Sendable {
    nonisolated(unsafe) private let sk: OpaquePointer
    private let lock = Mutex(())

    public init() throws(RouteError) {
        switch RouteNetlink.connect() {
        case .success(let sk): self.sk = sk
        case .failure(let failure): throw .netlink(code: failure.code, message: failure.message, operation: failure.operation)
        }
    }

    deinit { nl_socket_free(sk) }

    public func add(_ route: RouteDefinition) throws(RouteError) {
        try send(route, "rtnl_route_add") { sk, r in rtnl_route_add(sk, r, 0) }
    }

    public func remove(_ route: RouteDefinition) throws(RouteError) {
        try send(route, "rtnl_route_delete") { sk, r in rtnl_route_delete(sk, r, 0) }
    }

    public func add(_ rule: RuleDefinition) throws(RouteError) {
        try send(rule, "rtnl_rule_add") { sk, r in rtnl_rule_add(sk, r, 0) }
    }

    public func remove(_ rule: RuleDefinition) throws(RouteError) {
        try send(rule, "rtnl_rule_delete") { sk, r in rtnl_rule_delete(sk, r, 0) }
    }

    private func send(_ route: RouteDefinition, _ operation: String,
                      _ body: (OpaquePointer, OpaquePointer) -> Int32) throws(RouteError) {
        guard let r = rtnl_route_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_route_alloc") }
        defer { rtnl_route_put(r) }
        let family = route.family == .ipv4 ? AF_INET : AF_INET6
        rtnl_route_set_family(r, UInt8(family))
        let zero: IPAddress = route.family == .ipv4 ? .v4(IPv4Address(0, 0, 0, 0)) : .v6(IPv6Address(high: 0, low: 0))
        let destination = try Self.nlAddr(route.destination ?? zero, prefix: route.prefixLength)
        defer { nl_addr_put(destination) }
        var rc = rtnl_route_set_dst(r, destination)
        if rc < 0 { throw Self.error(rc, "rtnl_route_set_dst") }
        rtnl_route_set_table(r, route.table)
        rtnl_route_set_type(r, route.type)
        rtnl_route_set_scope(r, route.effectiveScope)
        rtnl_route_set_protocol(r, route.protocolNumber)
        if let metric = route.metric { rtnl_route_set_priority(r, metric) }
        if let mtu = route.mtu { _ = rtnl_route_set_metric(r, Int32(RTAX_MTU), mtu) }
        if let source = route.source {
            let src = try Self.nlAddr(source, prefix: UInt8(source.maxPrefixLength))
            defer { nl_addr_put(src) }
            rc = rtnl_route_set_pref_src(r, src)
            if rc < 0 { throw Self.error(rc, "rtnl_route_set_pref_src") }
        }
        if route.gateway != nil || route.device != nil {
            guard let nh = rtnl_route_nh_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_route_nh_alloc") }
            if let device = route.device {
                let index = if_nametoindex(device)
                guard index != 0 else { rtnl_route_nh_free(nh); throw .noDevice(device) }
                rtnl_route_nh_set_ifindex(nh, Int32(index))
            }
            if let gateway = route.gateway {
                let gw = try Self.nlAddr(gateway, prefix: UInt8(gateway.maxPrefixLength))
                rtnl_route_nh_set_gateway(nh, gw)   // takes its own reference
                nl_addr_put(gw)
            }
            if route.onlink { rtnl_route_nh_set_flags(nh, UInt32(RTNH_F_ONLINK)) }
            rtnl_route_add_nexthop(r, nh)           // the route owns it now
        }
        rc = lock.withLock { _ in body(sk, r) }
        try Self.check(rc, operation)
    }

    private func send(_ rule: RuleDefinition, _ operation: String,
                      _ body: (OpaquePointer, OpaquePointer) -> Int32) throws(RouteError) {
        guard let r = rtnl_rule_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_rule_alloc") }
        defer { rtnl_rule_put(r) }
        rtnl_rule_set_family(r, rule.family == .ipv4 ? AF_INET : AF_INET6)
        rtnl_rule_set_action(r, rule.action)
        _ = rtnl_rule_set_protocol(r, rule.protocolNumber)
        if let table = rule.table { rtnl_rule_set_table(r, table) }
        if let priority = rule.priority { rtnl_rule_set_prio(r, priority) }
        if let mark = rule.fwmark { rtnl_rule_set_mark(r, mark) }
        if let mask = rule.fwmask { rtnl_rule_set_mask(r, mask) }
        for (prefix, set) in [(rule.from, rtnl_rule_set_src), (rule.to, rtnl_rule_set_dst)] {
            guard let prefix else { continue }
            let address = try Self.nlAddr(prefix.address, prefix: prefix.prefixLength)
            defer { nl_addr_put(address) }
            let rc = set(r, address)
            if rc < 0 { throw Self.error(rc, "rtnl_rule_set_src/dst") }
        }
        if let iif = rule.inputInterface { _ = rtnl_rule_set_iif(r, iif) }
        if let oif = rule.outputInterface { _ = rtnl_rule_set_oif(r, oif) }
        let rc = lock.withLock { _ in body(sk, r) }
        try Self.check(rc, operation)
    }

    private static func check(_ rc: Int32, _ operation: String) throws(RouteError) {
        guard rc < 0 else { return }
        switch -rc {
        case NLE_EXIST: throw .exists
        case NLE_OBJ_NOTFOUND, NLE_NOADDR: throw .notFound
        default: throw error(rc, operation)
        }
    }

    private static func nlAddr(_ address: IPAddress, prefix: UInt8) throws(RouteError) -> OpaquePointer {
        guard let nl = RouteNetlink.address(address, prefix: prefix) else {
            throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "nl_addr_build")
        }
        return nl
    }

    private static func error(_ rc: Int32, _ operation: String) -> RouteError {
        .netlink(code: -rc, message: String(cString: nl_geterror(rc)), operation: operation)
    }
}
