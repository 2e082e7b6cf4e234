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
    /// `vrf NAME`: no such link, or it is not a VRF.
    case noVRF(String)
    case netlink(code: Int32, message: String, operation: String)

    public var description: String {
        switch self {
        case .exists: "already present"
        case .notFound: "not present"
        case .noDevice(let name): "no interface \(name)"
        case .noVRF(let name): "no VRF \(name)"
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
        // EXCL: without it the kernel adds a second, identical rule instead of saying it exists.
        try send(rule, "rtnl_rule_add") { sk, r in rtnl_rule_add(sk, r, NLM_F_EXCL) }
    }

    public func remove(_ rule: RuleDefinition) throws(RouteError) {
        try send(rule, "rtnl_rule_delete") { sk, r in rtnl_rule_delete(sk, r, 0) }
    }

    /// The routes of `table` marked with `protocolNumber`, both families: what a previous run
    /// announced, and what is still there. Only family, destination, prefix, table and protocol
    /// are filled in: that is what identifies them.
    public func routes(table: UInt32, protocolNumber: UInt8) throws(RouteError) -> [RouteDefinition] {
        var cache: OpaquePointer?
        let rc = lock.withLock { _ in rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &cache) }
        if rc < 0 { throw Self.error(rc, "dump routes") }
        defer { nl_cache_free(cache) }
        var result: [RouteDefinition] = []
        var object = nl_cache_get_first(cache)
        while let route = object {
            object = nl_cache_get_next(route)
            guard rtnl_route_get_table(route) == table, rtnl_route_get_protocol(route) == protocolNumber,
                  let dst = rtnl_route_get_dst(route) else { continue }
            let length = UInt8(clamping: nl_addr_get_prefixlen(dst))
            let family: AddressFamily = rtnl_route_get_family(route) == UInt8(AF_INET6) ? .ipv6 : .ipv4
            // A default route's destination is an empty address.
            let destination = AddressManager.ipAddr(dst) ?? (family == .ipv4 ? .v4(IPv4Address(0, 0, 0, 0)) : .v6(IPv6Address(high: 0, low: 0)))
            var found = RouteDefinition(family: family, destination: destination, prefixLength: length)
            found.table = table
            found.protocolNumber = protocolNumber
            result.append(found)
        }
        return result
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
        rtnl_route_set_table(r, try route.vrf.map(vrfTable) ?? route.table)
        rtnl_route_set_type(r, route.type)
        rtnl_route_set_scope(r, route.effectiveScope)
        rtnl_route_set_protocol(r, route.protocolNumber)
        if let metric = route.metric { rtnl_route_set_priority(r, metric) }
        for (rtax, value) in route.metrics { _ = rtnl_route_set_metric(r, Int32(rtax), value) }
        if let tos = route.tos { rtnl_route_set_tos(r, tos) }
        if let ttlPropagate = route.ttlPropagate { rtnl_route_set_ttl_propagate(r, ttlPropagate ? 1 : 0) }
        if let source = route.source {
            let src = try Self.nlAddr(source, prefix: UInt8(source.maxPrefixLength))
            defer { nl_addr_put(src) }
            rc = rtnl_route_set_pref_src(r, src)
            if rc < 0 { throw Self.error(rc, "rtnl_route_set_pref_src") }
        }
        if let prefix = route.sourcePrefix {
            let src = try Self.nlAddr(prefix, prefix: route.sourcePrefixLength)
            defer { nl_addr_put(src) }
            rc = rtnl_route_set_src(r, src)
            if rc < 0 { throw Self.error(rc, "rtnl_route_set_src") }
        }
        var single = Nexthop(gateway: route.gateway, device: route.device)
        single.onlink = route.onlink
        single.realms = route.realms
        let hops = route.nexthops.isEmpty ? [single] : route.nexthops
        for hop in hops where hop.gateway != nil || hop.device != nil || hop.realms != nil || hop.weight != nil {
            rtnl_route_add_nexthop(r, try Self.nexthop(hop))   // the route owns it now
        }
        rc = lock.withLock { _ in body(sk, r) }
        try Self.check(rc, operation)
    }

    private static func nexthop(_ hop: Nexthop) throws(RouteError) -> OpaquePointer {
        guard let nh = rtnl_route_nh_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_route_nh_alloc") }
        if let device = hop.device {
            let index = if_nametoindex(device)
            guard index != 0 else { rtnl_route_nh_free(nh); throw .noDevice(device) }
            rtnl_route_nh_set_ifindex(nh, Int32(index))
        }
        if let gateway = hop.gateway {
            guard let gw = RouteNetlink.address(gateway, prefix: UInt8(gateway.maxPrefixLength)) else {
                rtnl_route_nh_free(nh)
                throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "nl_addr_build")
            }
            rtnl_route_nh_set_gateway(nh, gw)   // takes its own reference
            nl_addr_put(gw)
        }
        // The kernel counts hops: weight W is sent as W − 1, as iproute2 and keepalived send it.
        if let weight = hop.weight { rtnl_route_nh_set_weight(nh, UInt8(weight - 1)) }
        if hop.onlink { rtnl_route_nh_set_flags(nh, UInt32(RTNH_F_ONLINK)) }
        if let realms = hop.realms { rtnl_route_nh_set_realms(nh, realms) }
        return nh
    }

    /// The routing table of VRF `name`, asked of the kernel when the route is added.
    private func vrfTable(_ name: String) throws(RouteError) -> UInt32 {
        try lock.withLock { _ throws(RouteError) -> UInt32 in
            var found: OpaquePointer?
            let rc = rtnl_link_get_kernel(sk, 0, name, &found)
            guard rc >= 0, let link = found else { throw .noVRF(name) }
            defer { rtnl_link_put(link) }
            var table: UInt32 = 0
            guard rtnl_link_is_vrf(link) != 0, rtnl_link_vrf_get_tableid(link, &table) >= 0 else { throw .noVRF(name) }
            return table
        }
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
        if let target = rule.gotoTarget { rtnl_rule_set_goto(r, target) }
        if let tos = rule.tos { rtnl_rule_set_dsfield(r, tos) }
        if let realms = rule.realms { rtnl_rule_set_realms(r, realms) }
        if rule.l3mdev { _ = rtnl_rule_set_l3mdev(r, 1) }
        if let ipProtocol = rule.ipProtocol { _ = rtnl_rule_set_ipproto(r, ipProtocol) }
        if let ports = rule.sourcePorts { _ = rtnl_rule_set_sport_range(r, ports.lowerBound, ports.upperBound) }
        if let ports = rule.destinationPorts { _ = rtnl_rule_set_dport_range(r, ports.lowerBound, ports.upperBound) }
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
