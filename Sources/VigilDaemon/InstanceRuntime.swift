import Addressing
import VRRP
import VigilConfig
import VigilSystem

/// One vrrp_instance at run time: the pure state machine plus the handles its actions need.
final class InstanceRuntime {
    let model: VigilConfig.VRRPInstance
    var machine: VRRPStateMachine
    let interface: String
    let ifindex: Int32
    /// IPv4 instances: the raw socket, GARP sender, advert source and unicast peers.
    let socket: VRRPSocket?
    let garp: GratuitousARP?
    let source: IPv4Address
    let peers: [IPv4Address]
    /// IPv6 instances (VRRPv3 only): the socket, the unsolicited NA sender, the advert
    /// source (normally the interface's link-local address) and unicast peers.
    var socket6: VRRPSocket6?
    var unsolicitedNA: UnsolicitedNA?
    var source6: IPv6Address?
    var peers6: [IPv6Address] = []
    /// The vrrp_sync_group this instance belongs to, and its index among the group's members.
    var group: GroupRuntime?
    var groupMember = 0
    /// How each VIP is put on an interface (prefix, label, scope, broadcast, device).
    let vipSpecs: [IPAddress: AddressSpec]
    var interfaceUp = true
    var counters: [String: Int] = [:]

    init(model: VigilConfig.VRRPInstance, machine: VRRPStateMachine, interface: String, ifindex: Int32,
         socket: VRRPSocket?, garp: GratuitousARP?, source: IPv4Address, peers: [IPv4Address],
         vipSpecs: [IPAddress: AddressSpec]) {
        self.model = model
        self.machine = machine
        self.interface = interface
        self.ifindex = ifindex
        self.socket = socket
        self.garp = garp
        self.source = source
        self.peers = peers
        self.vipSpecs = vipSpecs
    }

    var name: String { model.name }
    var isIPv6: Bool { socket6 != nil }
    var vrid: UInt8 { machine.config.vrid }

    func count(_ counter: String) { counters[counter, default: 0] += 1 }
}

/// Builds the protocol core's view of an instance from the configuration model. The instance's
/// own GARP settings fall back to global_defs where the instance kept keepalived's default.
enum InstanceMapping {
    /// True when the instance's VIPs are IPv6 (keepalived takes the family of the first VIP).
    /// Mixing families in one instance is refused.
    static func isIPv6(_ i: VigilConfig.VRRPInstance) throws(DaemonError) -> Bool {
        let families = Set(i.virtualAddresses.map { $0.address.isV6 })
        if families.count > 1 {
            throw DaemonError("(\(i.name)) mixes IPv4 and IPv6 virtual addresses; use one instance per family")
        }
        return families.first ?? false
    }

    static func coreConfig(_ i: VigilConfig.VRRPInstance, globals: GlobalDefs, source: IPv4Address) throws(DaemonError) -> VRRPInstanceConfig {
        try coreConfig(i, globals: globals, sourceAddress: .v4(IPv4Address(source.value)))
    }

    static func coreConfig(_ i: VigilConfig.VRRPInstance, globals: GlobalDefs, sourceAddress: IPAddress) throws(DaemonError) -> VRRPInstanceConfig {
        guard let vrid = i.virtualRouterID else { throw DaemonError("(\(i.name)) has no virtual_router_id") }
        let authentication: VRRPAuthentication
        switch i.authType {
        case .none: authentication = .none
        case .pass: authentication = .password(i.authPass ?? "")
        case .ah: throw DaemonError("(\(i.name)) auth_type AH is not supported by Vigil yet; use PASS or none")
        }
        let ipv6 = try isIPv6(i)
        var vips: [IPAddress] = []
        for address in i.virtualAddresses {
            guard let inet = Optional(address.address) else {
                throw DaemonError("(\(i.name)) bad virtual address \(address.address)")
            }
            vips.append(inet)
        }
        let defaults = GARPSettings()
        var garp = VRRPGARPConfig()
        garp.masterDelay = i.garp.masterDelay != defaults.masterDelay ? i.garp.masterDelay : globals.garp.masterDelay
        garp.masterRepeat = i.garp.masterRepeat != defaults.masterRepeat ? i.garp.masterRepeat : globals.garp.masterRepeat
        garp.masterRefresh = i.garp.masterRefresh != defaults.masterRefresh ? i.garp.masterRefresh : globals.garp.masterRefresh
        garp.masterRefreshRepeat = i.garp.masterRefreshRepeat != defaults.masterRefreshRepeat ? i.garp.masterRefreshRepeat : globals.garp.masterRefreshRepeat
        garp.lowerPrioDelay = i.garp.lowerPrioDelay ?? globals.garp.lowerPrioDelay
        garp.lowerPrioRepeat = i.garp.lowerPrioRepeat ?? globals.garp.lowerPrioRepeat
        return VRRPInstanceConfig(
            name: i.name, vrid: UInt8(vrid), version: (ipv6 || i.version == 3) ? .v3 : .v2,
            priority: UInt8(i.effectivePriority), advertInterval: i.advertInterval,
            initialState: i.state.map { $0 == .master ? .master : .backup },
            nopreempt: i.nopreempt, preemptDelay: i.preemptDelay, authentication: authentication,
            virtualAddresses: vips, sourceAddress: sourceAddress,
            unicastPeers: i.unicastPeers.map(\.address),
            downTimerAdverts: i.downTimerAdverts ?? globals.downTimerAdverts,
            lowerPrioNoAdvert: i.lowerPrioNoAdvert ?? globals.lowerPrioNoAdvert,
            higherPrioSendAdvert: i.higherPrioSendAdvert ?? globals.higherPrioSendAdvert,
            skipCheckAdvAddr: i.skipCheckAdvAddr ?? globals.vrrpSkipCheckAdvAddr,
            v3ChecksumAsV2: i.v3ChecksumAsV2, garp: garp
        ).normalized()
    }

    /// keepalived's address defaults: /32 (IPv6: /128, always IFA_F_NODAD), the instance interface, scope global.
    static func addressSpec(_ a: VirtualAddress, instanceInterface: String) throws(DaemonError) -> AddressSpec {
        let device = a.device ?? instanceInterface
        let ifindex: Int32
        do { ifindex = try InterfaceInfo.index(of: device) } catch {
            throw DaemonError("interface \(device) for address \(a.address) does not exist")
        }
        let address = a.address
        var broadcast: IPv4Address?
        if let brd = a.broadcast, case .v4(let v4) = a.address {
            let value = v4.value
            let mask: UInt32 = a.prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(a.prefixLength))
            switch brd {
            case "+": broadcast = IPv4Address(value | ~mask)
            case "-": broadcast = IPv4Address(value & mask)
            default: broadcast = IPv4Address(brd)
            }
        }
        let scopes: [String: UInt8] = ["global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255]
        let scope = a.scope.flatMap { scopes[$0] ?? UInt8($0) } ?? 0
        return AddressSpec(ifindex: ifindex, address: address, prefixLength: UInt8(a.prefixLength), label: a.label,
                           scope: scope, broadcast: broadcast, noDAD: a.noDAD || a.address.isV6)
    }
}
