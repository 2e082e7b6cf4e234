import Addressing

/// One /proc/sys value, by its path under /proc/sys (`net/ipv4/conf/eth0/arp_ignore`).
public struct SysctlSetting: Hashable, Sendable, CustomStringConvertible {
    public var key: String
    public var value: Int

    public init(_ key: String, _ value: Int) {
        self.key = key
        self.value = value
    }

    /// As sysctl(8) names it: `net.ipv4.conf.eth0.arp_ignore`.
    public var name: String { key.split(separator: "/").joined(separator: ".") }
    /// `all` or `default`: every link's, not one link's.
    public var isMachineWide: Bool { key.hasPrefix("net/ipv4/conf/all/") || key.hasPrefix("net/ipv4/conf/default/") }
    public var description: String { "\(name) = \(value)" }
}

/// The interface settings keepalived makes so that VMACs work (vrrp_if_config.c), as values.
public enum VMACKernelSettings {
    /// On an IPv4 VMAC: hear the other director's adverts from our own address (accept_local),
    /// answer ARP only for its own addresses (arp_ignore), accept packets while it has no
    /// address (rp_filter 0), keep VIPs when the first one goes (promote_secondaries). An
    /// IPv4 VMAC without IPv6 eVIPs runs no IPv6; an IPv6 one keeps it.
    public static func onVMAC(_ name: String, family: AddressFamily, otherFamilyAddresses: Bool) -> [SysctlSetting] {
        var settings: [SysctlSetting] = []
        if family == .ipv4 {
            for (key, value) in [("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0), ("promote_secondaries", 1)] {
                settings.append(SysctlSetting("net/ipv4/conf/\(name)/\(key)", value))
            }
        }
        settings.append(SysctlSetting("net/ipv6/conf/\(name)/disable_ipv6", family == .ipv4 && !otherFamilyAddresses ? 1 : 0))
        return settings
    }

    /// On the parent of an IPv4 VMAC: it must not answer ARP for the VIPs the VMAC holds.
    public static func onParent(_ parent: String) -> [SysctlSetting] {
        [SysctlSetting("net/ipv4/conf/\(parent)/arp_ignore", 1), SysctlSetting("net/ipv4/conf/\(parent)/arp_filter", 1)]
    }

    /// keepalived's clear_rp_filter: a VMAC's rp_filter 0 only counts with all.rp_filter 0,
    /// so every link (and the default for new ones) first takes all's value, then all goes
    /// to 0: the other links keep the filtering they had in effect.
    public static func rpFilterClearance(read: (String) -> Int?, links: [String]) -> [SysctlSetting] {
        guard let all = read("net/ipv4/conf/all/rp_filter"), all != 0 else { return [] }
        var settings: [SysctlSetting] = []
        if let current = read("net/ipv4/conf/default/rp_filter"), current < all {
            settings.append(SysctlSetting("net/ipv4/conf/default/rp_filter", all))
        }
        for link in links {
            let key = "net/ipv4/conf/\(link)/rp_filter"
            if let current = read(key), current < all { settings.append(SysctlSetting(key, all)) }
        }
        settings.append(SysctlSetting("net/ipv4/conf/all/rp_filter", 0))
        return settings
    }
}

/// The machine-wide values Vigil changed, with what they were, so that stop puts them back.
/// A value someone changed since is left alone (keepalived's rule for rp_filter). keepalived
/// 2.2.7 never restores the parent's arp_ignore and arp_filter; Vigil does.
public struct SysctlLedger: Sendable {
    public struct Change: Sendable, Equatable {
        public var key: String
        public var previous: Int
        public var set: Int
    }

    public private(set) var changes: [Change] = []

    public init() {}

    /// What to write for the setting given its current value: nil when it already holds it.
    /// The first change of a key is recorded; a later one keeps the first previous value.
    public mutating func change(_ setting: SysctlSetting, current: Int?) -> SysctlSetting? {
        guard let current, current != setting.value else { return nil }
        if let at = changes.firstIndex(where: { $0.key == setting.key }) {
            changes[at].set = setting.value
        } else {
            changes.append(Change(key: setting.key, previous: current, set: setting.value))
        }
        return setting
    }

    /// The writes that undo the changes, last first, skipping values changed since.
    public mutating func restorations(read: (String) -> Int?) -> [SysctlSetting] {
        defer { changes = [] }
        return changes.reversed().compactMap { change in
            read(change.key) == change.set ? SysctlSetting(change.key, change.previous) : nil
        }
    }
}
