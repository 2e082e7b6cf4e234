import Addressing
import Logging
import VRRPSpecs
import VigilSystem

/// keepalived's use_vmac carried out: the VRRP host asks for an instance's VMAC before it
/// opens the instance's socket on it, and lets go of the ones no instance uses. The settings
/// changed on the machine (the parent's ARP behaviour, rp_filter) are put back at stop.
final class VMACHost {
    private let links: (any LinkControl)?
    private let addresses: any AddressControl
    private let logger: Logger
    private var ledger = SysctlLedger()
    /// The VMACs made or taken over, by name.
    private(set) var active: [String: VMACSpec] = [:]

    init(links: (any LinkControl)?, addresses: any AddressControl, logger: Logger) {
        self.links = links
        self.addresses = addresses
        self.logger = logger
    }

    /// Makes the instance's VMAC, or takes over the one a crashed run left with the same
    /// parent, MAC and mode; one that differs is made again. A link of another kind under
    /// the name is never touched: the instance cannot start (keepalived would pick another
    /// name silently, and the VIPs would land somewhere nobody looks).
    func ensure(_ vmac: VMACSpec, family: AddressFamily, otherFamilyAddresses: Bool, instance: String) throws(DaemonError) {
        if active[vmac.name] == vmac { return }
        if let running = active[vmac.name] {
            // Remaking it now would take the running instance's VIPs and socket with it.
            throw DaemonError("(\(instance)) VMAC \(vmac.name) is in use on \(running.parent) with \(running.macText); it cannot move to \(vmac.parent) with \(vmac.macText) at a reload: restart Vigil, or give it another name")
        }
        guard let links else { throw DaemonError("(\(instance)) use_vmac: the rtnetlink link socket could not be opened") }
        let parent: Int32
        do { parent = try addresses.interface(named: vmac.parent).index } catch {
            throw DaemonError("(\(instance)) interface \(vmac.parent) for VMAC \(vmac.name): \(error)")
        }
        do {
            switch try links.kind(of: vmac.name) {
            case .none:
                try create(vmac, parent: parent, links, instance)
            case .macvlan(let onParent, let mac, let privateMode) where onParent == parent && mac == vmac.mac && privateMode:
                logger.info("(\(instance)) Found matching interface \(vmac.name)")
            case .macvlan:
                logger.info("(\(instance)) VMAC \(vmac.name) already exists but is incompatible. It will be deleted/updated")
                try links.delete(vmac.name)
                try create(vmac, parent: parent, links, instance)
            case .other(let kind):
                throw DaemonError("(\(instance)) interface \(vmac.name) already exists as a \(kind) link, not a VMAC: not touched")
            }
        } catch let error as LinkError {
            throw DaemonError("(\(instance)) VMAC \(vmac.name) on \(vmac.parent): \(error)")
        } catch let error as DaemonError {
            throw error
        } catch {
            throw DaemonError("(\(instance)) VMAC \(vmac.name): \(error)")
        }
        if family == .ipv4 {
            var machineWide = VMACKernelSettings.onParent(vmac.parent)
            if !ledger.changes.contains(where: { $0.key == "net/ipv4/conf/all/rp_filter" }) {
                // The VMACs themselves are left out: theirs is 0, and they go at stop.
                let others = links.linkNames().filter { $0 != vmac.name && active[$0] == nil }
                machineWide += VMACKernelSettings.rpFilterClearance(read: links.sysctl, links: others)
            }
            for setting in machineWide {
                let current = links.sysctl(setting.key)
                guard let write = ledger.change(setting, current: current) else { continue }
                if write.isMachineWide { logger.info("NOTICE: setting sysctl \(write.name) from \(current ?? 0) to \(write.value)") }
                if !links.setSysctl(write.key, write.value) { logger.warning("(\(instance)) cannot set sysctl \(write)") }
            }
        }
        // Before the link comes up, so an IPv4 VMAC never makes an IPv6 address.
        for setting in VMACKernelSettings.onVMAC(vmac.name, family: family, otherFamilyAddresses: otherFamilyAddresses)
        where links.sysctl(setting.key) != setting.value {
            if !links.setSysctl(setting.key, setting.value) { logger.warning("(\(instance)) cannot set sysctl \(setting)") }
        }
        do { try links.bringUp(vmac.name) } catch {
            throw DaemonError("(\(instance)) VMAC \(vmac.name): \(error)")
        }
        active[vmac.name] = vmac
    }

    private func create(_ vmac: VMACSpec, parent: Int32, _ links: any LinkControl, _ instance: String) throws(LinkError) {
        try links.createMacvlan(name: vmac.name, parent: parent, mac: vmac.mac)
        logger.info("(\(instance)) Success creating VMAC interface \(vmac.name) (\(vmac.macText) on \(vmac.parent))")
    }

    /// keepalived's promote_secondaries: with it off (the kernel's default), deleting an
    /// interface's first address of a subnet deletes the VIPs of that subnet with it. Set once
    /// per interface and put back at stop, unless it was already on (then left alone, as
    /// keepalived does) or someone changed it since. An instance removed by a reload leaves it
    /// on until the stop.
    func promoteSecondaries(on interface: String, instance: String) {
        holdUntilStop(SysctlSetting("net/ipv4/conf/\(interface)/promote_secondaries", 1), warning: "(\(instance)) ")
    }

    /// keepalived's disable_local_igmp: the kernel sends no IGMP reports for link-local groups
    /// (224.0.0.18) while Vigil runs; the value it had comes back at stop.
    func disableLocalIGMP() {
        holdUntilStop(SysctlSetting("net/ipv4/igmp_link_local_mcast_reports", 0), warning: "")
    }

    /// Sets a value through the ledger, so `removeAll` puts the old one back; nothing is
    /// written (or recorded) when it already holds.
    private func holdUntilStop(_ setting: SysctlSetting, warning prefix: String) {
        guard let links, let write = ledger.change(setting, current: links.sysctl(setting.key)) else { return }
        if !links.setSysctl(write.key, write.value) { logger.warning("\(prefix)cannot set sysctl \(write)") }
    }

    /// An IPv6 VMAC sends from the parent's link-local address, which must then be its own
    /// too (keepalived adds it the same way).
    func addSource(_ source: IPAddress, to vmac: VMACSpec, instance: String) {
        guard source.family == .ipv6, let index = try? addresses.interface(named: vmac.name).index else { return }
        do { try addresses.add(AddressSpec(ifindex: index, address: source, prefixLength: 64, scope: 253, noDAD: true)) } catch {
            if case .exists = error { return }
            logger.warning("(\(instance)) adding link-local address \(source) to \(vmac.name) failed: \(error)")
        }
    }

    /// Deletes the VMACs no instance uses any more (after a reload, or a refused one).
    func prune(keeping names: Set<String>) {
        for name in active.keys.sorted() where !names.contains(name) { delete(name) }
    }

    /// At stop: every VMAC goes (their addresses with them), then the machine's settings
    /// come back, each one only if nobody changed it since.
    func removeAll() {
        prune(keeping: [])
        guard let links else { return }
        for setting in ledger.restorations(read: links.sysctl) {
            if setting.isMachineWide { logger.info("NOTICE: resetting sysctl \(setting.name) to \(setting.value)") }
            if !links.setSysctl(setting.key, setting.value) { logger.warning("cannot reset sysctl \(setting)") }
        }
    }

    private func delete(_ name: String) {
        active[name] = nil
        do {
            try links?.delete(name)
            logger.info("Success removing VMAC interface \(name)")
        } catch {
            logger.error("Error removing VMAC interface \(name): \(error)")
        }
    }
}
