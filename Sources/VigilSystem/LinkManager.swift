@preconcurrency import Glibc
import CNetlink
import Synchronization

/// What holds a link name, as far as a VMAC cares.
public enum LinkKind: Equatable, Sendable {
    /// A macvlan: its parent's index, its MAC, and whether it is in private mode.
    case macvlan(parent: Int32, mac: [UInt8], privateMode: Bool)
    /// Any other kind of link: never touched.
    case other(String)
}

public enum LinkError: Error, Equatable, Sendable, CustomStringConvertible {
    case netlink(code: Int32, message: String, operation: String)

    public var description: String {
        switch self {
        case .netlink(let code, let message, let op): "\(op): \(message) (libnl error \(code))"
        }
    }
}

/// keepalived's VMACs through libnl-route: private-mode macvlans created, brought up without
/// an automatic IPv6 link-local address, and deleted; and the /proc/sys settings that make
/// them work. Requests are short and answered at once by the kernel (no dumps on the VRRP
/// path: they run at start, reload and stop).
public final class LinkManager: Sendable {
    nonisolated(unsafe) private let sk: OpaquePointer
    private let lock = Mutex(())
    /// Where the sysctls live; a test points it elsewhere.
    private let sysctlRoot: String

    public init(sysctlRoot: String = "/proc/sys") throws(LinkError) {
        self.sysctlRoot = sysctlRoot
        switch RouteNetlink.connect() {
        case .success(let sk): self.sk = sk
        case .failure(let failure): throw .netlink(code: failure.code, message: failure.message, operation: failure.operation)
        }
    }

    deinit { nl_socket_free(sk) }

    /// nil when no link has the name.
    public func kind(of name: String) throws(LinkError) -> LinkKind? {
        try lock.withLock { _ throws(LinkError) -> LinkKind? in
            guard let link = try kernelLink(name) else { return nil }
            defer { rtnl_link_put(link) }
            let type = rtnl_link_get_type(link).map { String(cString: $0) } ?? ""
            guard rtnl_link_is_macvlan(link) != 0 else { return .other(type.isEmpty ? "device" : type) }
            var mac: [UInt8] = []
            if let addr = rtnl_link_get_addr(link), let bytes = nl_addr_get_binary_addr(addr) {
                mac = Array(UnsafeRawBufferPointer(start: bytes, count: Int(nl_addr_get_len(addr))))
            }
            return .macvlan(parent: rtnl_link_get_link(link), mac: mac,
                            privateMode: rtnl_link_macvlan_get_mode(link) == UInt32(MACVLAN_MODE_PRIVATE.rawValue))
        }
    }

    /// A private-mode macvlan on the parent, down; `bringUp` finishes it.
    public func createMacvlan(name: String, parent: Int32, mac: [UInt8]) throws(LinkError) {
        try lock.withLock { _ throws(LinkError) in
            guard let link = rtnl_link_macvlan_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_link_macvlan_alloc") }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            rtnl_link_set_link(link, parent)
            var rc = rtnl_link_macvlan_set_mode(link, UInt32(MACVLAN_MODE_PRIVATE.rawValue))
            if rc < 0 { throw Self.error(rc, "rtnl_link_macvlan_set_mode") }
            guard let addr = mac.withUnsafeBytes({ nl_addr_build(AF_LLC, $0.baseAddress, $0.count) }) else {
                throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "nl_addr_build")
            }
            defer { nl_addr_put(addr) }
            rtnl_link_set_addr(link, addr)
            rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL)
            if rc < 0 { throw Self.error(rc, "rtnl_link_add(\(name))") }
        }
    }

    /// No EUI-64 link-local address (RFC 5798 §7.4: a VMAC must not make one), then up. Two
    /// requests, as keepalived sends them: the kernel adds the address as the link comes up,
    /// before a combined request's address mode would apply.
    public func bringUp(_ name: String) throws(LinkError) {
        try lock.withLock { _ throws(LinkError) in
            guard let current = try kernelLink(name) else { throw Self.error(-NLE_NODEV, "rtnl_link_get_kernel(\(name))") }
            defer { rtnl_link_put(current) }
            var rc: Int32 = 0
            for step in 0..<2 {
                guard let change = rtnl_link_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_link_alloc") }
                defer { rtnl_link_put(change) }
                if step == 0 {
                    rc = rtnl_link_inet6_set_addr_gen_mode(change, UInt8(IN6_ADDR_GEN_MODE_NONE.rawValue))
                    if rc < 0 { throw Self.error(rc, "rtnl_link_inet6_set_addr_gen_mode") }
                } else {
                    rtnl_link_set_flags(change, UInt32(IFF_UP))
                }
                rc = rtnl_link_change(sk, current, change, 0)
                if rc < 0 { throw Self.error(rc, step == 0 ? "addrgenmode none on \(name)" : "link up \(name)") }
            }
        }
    }

    public func delete(_ name: String) throws(LinkError) {
        try lock.withLock { _ throws(LinkError) in
            guard let link = rtnl_link_alloc() else { throw .netlink(code: NLE_NOMEM, message: "out of memory", operation: "rtnl_link_alloc") }
            defer { rtnl_link_put(link) }
            rtnl_link_set_name(link, name)
            let rc = rtnl_link_delete(sk, link)
            if rc < 0 { throw Self.error(rc, "rtnl_link_delete(\(name))") }
        }
    }

    /// `net/ipv4/conf/eth0/arp_ignore` and the like; nil when it cannot be read.
    public func sysctl(_ key: String) -> Int? {
        let fd = open("\(sysctlRoot)/\(key)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer.prefix(count), as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).first
        return text.flatMap { Int($0) }
    }

    public func setSysctl(_ key: String, _ value: Int) -> Bool {
        let fd = open("\(sysctlRoot)/\(key)", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let text = Array("\(value)\n".utf8)
        return text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.count
    }

    /// Every link's name (the rp_filter settings go over all of them).
    public func linkNames() -> [String] {
        let dir = opendir("\(sysctlRoot)/net/ipv4/conf")
        guard let dir else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != ".", name != "..", name != "all", name != "default" { names.append(name) }
        }
        return names.sorted()
    }

    /// The kernel's link of that name (the caller puts it); nil when there is none. Called
    /// with the lock held.
    private func kernelLink(_ name: String) throws(LinkError) -> OpaquePointer? {
        var found: OpaquePointer?
        let rc = rtnl_link_get_kernel(sk, 0, name, &found)
        if rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND { return nil }
        guard rc >= 0, let link = found else { throw Self.error(rc, "rtnl_link_get_kernel(\(name))") }
        return link
    }

    private static func error(_ rc: Int32, _ operation: String) -> LinkError {
        .netlink(code: -rc, message: String(cString: nl_geterror(rc)), operation: operation)
    }
}
