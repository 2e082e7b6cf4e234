import Addressing
import Foundation
import Testing
import VRRP
import VRRPSpecs
import VigilConfig

private func setup(_ text: String) -> VRRPSetup {
    let (config, diagnostics) = ConfigLoader.load(text: text)
    let errors = diagnostics.all.filter { $0.severity == .error }
    #expect(errors.isEmpty, "\(errors)")
    let (setup, problems) = VRRPSetupBuilder.build(config)
    #expect(problems.isEmpty, "\(problems)")
    return setup
}

private func instance(_ name: String = "VI_1", vrid: Int = 51, interface: String = "eth0", priority: Int = 100,
                      vips: [String] = ["10.0.0.100/24"], body: String = "") -> String {
    """
    vrrp_instance \(name) {
        interface \(interface)
        virtual_router_id \(vrid)
        priority \(priority)
        virtual_ipaddress {
            \(vips.joined(separator: "\n        "))
        }
        \(body)
    }

    """
}

@Suite struct InstanceIdentityTests {
    @Test func identityIsVRIDFamilyInterfaceAndTransportNotTheName() {
        let a = setup(instance("A")).instances[0], b = setup(instance("B")).instances[0]
        #expect(a.identity == b.identity)
        #expect(setup(instance(vrid: 52)).instances[0].identity != a.identity)
        #expect(setup(instance(interface: "eth1")).instances[0].identity != a.identity)
        #expect(setup(instance(vips: ["2001:db8::1/64"])).instances[0].identity.family == .ipv6)
        let unicast = setup(instance(body: "unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.2\n    }")).instances[0]
        #expect(unicast.identity != a.identity)
        #expect(unicast.identity.transport == .unicast(source: IPAddress("10.0.0.1")!))
        // The priority, VIPs and every other setting can change without changing the router.
        #expect(setup(instance(priority: 50, vips: ["10.0.0.9/32"], body: "advert_int 3")).instances[0].identity == a.identity)
    }

    @Test func vipSpecsCarryWhatRemovalMustRepeat() {
        let v4 = setup(instance(vips: ["10.0.0.100/24 brd + dev eth1 label eth1:vip scope link"])).instances[0].virtualAddresses[0]
        let v6 = setup(instance(vips: ["2001:db8::5"])).instances[0].virtualAddresses[0]
        #expect(v4.prefixLength == 24 && v4.device == "eth1" && v4.label == "eth1:vip" && v4.scope == 253)
        #expect(v4.broadcast == IPv4Address(10, 0, 0, 255))
        #expect(v6.prefixLength == 128 && v6.noDAD && v6.device == "eth0")
    }

    @Test func problemsAreNamedWithTheirLocation() {
        let (config, _) = ConfigLoader.load(text: instance(vips: ["10.0.0.100/24", "2001:db8::1/64"]))
        let problems = VRRPSetupBuilder.build(config).problems
        #expect(problems.count == 1 && problems[0].message.contains("mixes") && problems[0].location.line == 1)
        let (ah, _) = ConfigLoader.load(text: instance(body: "authentication {\n        auth_type AH\n        auth_pass x\n    }"))
        #expect(VRRPSetupBuilder.build(ah).setup.instances.first?.core.authentication == .ah("x"), "AH runs")
    }
}

@Suite struct TrackerWeighingTests {
    static let text = """
    vrrp_script up { script "/bin/true"
        weight 10 }
    vrrp_script down { script "/bin/false"
        weight -20 }
    vrrp_script zero { script "/bin/false" }
    """ + instance(body: "track_script {\n        up\n        down\n        zero\n    }\n    track_interface {\n        eth1 weight -5\n    }")

    @Test func weightsFollowKeepalived() {
        let spec = setup(Self.text).instances[0]
        #expect(spec.trackers.map(\.name) == ["interface eth0", "interface eth1", "script up", "script down", "script zero"])
        let results: [String: ScriptVerdict] = ["up": .result(up: true), "down": .result(up: false), "zero": .result(up: true)]
        let trackers = TrackerWeighing.trackers(spec.trackers, interfaceUp: { $0 == "eth0" }, script: { results[$0]! })
        var machine = VRRPStateMachine(config: VRRPInstanceConfig(name: "t", vrid: 1, priority: 100, sourceAddress: .v4(.any)))
        _ = machine.handle(.trackersChanged(trackers), at: .zero)
        #expect(machine.effectivePriority == 100 + 10 - 20 - 5)
        #expect(!machine.isFaulted)
    }

    @Test func beforeTheirFirstResultWeightedScriptsAddNothingAndWeightZeroFaults() {
        let spec = setup(Self.text).instances[0]
        let trackers = TrackerWeighing.trackers(spec.trackers, interfaceUp: { _ in true }, script: { _ in .pending })
        #expect(trackers.map(\.priorityContribution).reduce(0, +) == 0)
        #expect(trackers.contains { $0.causesFault })
        let disabled = TrackerWeighing.trackers(spec.trackers, interfaceUp: { _ in true }, script: { _ in .disabled })
        #expect(disabled.count == 2, "a disabled script neither adds nor faults")
        let missing = TrackerWeighing.trackers(spec.trackers, interfaceUp: { _ in nil }, script: { _ in .disabled })
        #expect(missing.first!.causesFault, "a vanished interface is down")
    }

    /// As keepalived 2.2.7 runs it (checked in a namespace: a group's `track_script` weight 20
    /// took both members from 100 to 120, a group's `track_file` weight 10 with 5 in the file to
    /// 150, without sync_group_tracking_weight; `-t` exits 5 on the interface tracked twice).
    @Test func theOwnInterfaceTrackedAgainIsIgnoredAsKeepalivedDoes() {
        let text = instance(body: "track_interface {\n        eth0 weight 10\n        eth1 weight 5\n    }")
        let (config, diagnostics) = ConfigLoader.load(text: text)
        #expect(diagnostics.all.contains { $0.message == "(VI_1) Ignoring track_interface eth0 since own interface" && $0.klass == .general })
        let spec = VRRPSetupBuilder.build(config).setup.instances[0]
        #expect(spec.trackers == [TrackerRule(.interface("eth0")), TrackerRule(.interface("eth1"), weight: 5)])
    }

    @Test func aGroupsTrackersKeepTheirWeightsAndAreTrackedOnce() throws {
        let group = """
        vrrp_script s { script "/bin/false"
            weight -30 }
        track_file f {
            file /tmp/f
            weight 10
        }
        vrrp_sync_group G {
            group {
                VI_1
            }
            track_script {
                s
            }
            track_file {
                f
            }
            track_interface {
                eth0 weight 5
                eth1 weight 7
            }
        }
        """
        let spec = setup(instance() + group).instances[0]
        #expect(spec.trackers.contains(TrackerRule(.script("s"), weight: -30, fromGroup: true)))
        #expect(spec.trackers.contains(TrackerRule(.file("f"), weight: 10, fromGroup: true)))
        #expect(spec.trackers.contains(TrackerRule(.interface("eth1"), weight: 7, fromGroup: true)))
        #expect(spec.trackers.filter { $0.source == .interface("eth0") } == [TrackerRule(.interface("eth0"))],
                "the member's own interface once, unweighted as the member has it")
        let (config, diagnostics) = ConfigLoader.load(text: instance() + group)
        #expect(diagnostics.all.contains { $0.message == "(VI_1) track_interface eth0 is configured on VRRP instance and sync group. Remove vrrp instance or sync group config" && $0.klass == .general })
        #expect(config.syncGroups.first?.trackFiles.map(\.name) == ["f"])
        let owner = setup(instance(priority: 255) + group).instances[0]
        #expect(owner.trackers.filter(\.fromGroup).allSatisfy { $0.weight == 0 }, "a group with an owner has no weights")
        let (_, ownerDiagnostics) = ConfigLoader.load(text: instance(priority: 255) + group)
        #expect(ownerDiagnostics.all.contains { $0.message == "(G) Cannot have weighted track script 's' with member having priority 255 - clearing weight" })
        #expect(ownerDiagnostics.all.contains { $0.message == "(G) Cannot have weighted track file 'f' with member having priority 255 - setting weight 0" })
    }
}

@Suite struct VIPRestoreTests {
    @Test func onlyMissingVIPsComeBack() {
        let spec = setup(instance(vips: ["10.0.0.100/24", "10.0.0.101/24 dev eth1"])).instances[0]
        let present: [String: Set<IPAddress>] = ["eth0": [IPAddress("10.0.0.100")!], "eth1": []]
        #expect(VIPRestore.missing(spec.virtualAddresses, present: present).map(\.address) == [IPAddress("10.0.0.101")!])
        #expect(VIPRestore.missing(spec.virtualAddresses, present: ["eth0": [IPAddress("10.0.0.100")!], "eth1": [IPAddress("10.0.0.101")!]]).isEmpty)
    }
}

@Suite struct VRRPReloadPlanTests {
    @Test func theSameFileGivesAnEmptyPlan() {
        let text = instance() + instance("VI_2", vrid: 52, vips: ["10.0.0.200/24"])
        let plan = VRRPReloadPlan.plan(old: setup(text), new: setup(text))
        #expect(plan.isEmpty && plan.kept.count == 2)
        // Moving blocks around (new line numbers) is no change either.
        let moved = "\n\n! a comment\n" + instance("VI_2", vrid: 52, vips: ["10.0.0.200/24"]) + instance()
        #expect(VRRPReloadPlan.plan(old: setup(text), new: setup(moved)).isEmpty)
    }

    @Test func keptAddedRemovedAndWhatChanged() {
        let old = setup(instance() + instance("VI_2", vrid: 52))
        let new = setup(instance(priority: 90, vips: ["10.0.0.100/24", "10.0.0.101/24"]) + instance("VI_3", vrid: 53))
        let plan = VRRPReloadPlan.plan(old: old, new: new)
        #expect(plan.kept.count == 1 && plan.kept[0].changes == ["priority 100→90", "VIPs +1 -0"])
        #expect(plan.added == [1] && plan.removed == [1])
        #expect(plan.vipsAdded == 1 && plan.vipsRemoved == 0)
    }

    @Test func aRenameIsAKeptRouter() {
        let plan = VRRPReloadPlan.plan(old: setup(instance("A")), new: setup(instance("B")))
        #expect(plan.kept.count == 1 && plan.kept[0].changes == ["renamed from A"])
        #expect(plan.added.isEmpty && plan.removed.isEmpty)
    }

    /// keepalived #2364: swapping two instances' VRIDs is two changed routers, each keeping
    /// the state of the router it now is, never a loss of both.
    @Test func swappedVRIDsMatchByVRID() {
        let old = setup(instance("A", vrid: 51, vips: ["10.0.0.1/24"]) + instance("B", vrid: 52, vips: ["10.0.0.2/24"]))
        let new = setup(instance("A", vrid: 52, vips: ["10.0.0.1/24"]) + instance("B", vrid: 51, vips: ["10.0.0.2/24"]))
        let plan = VRRPReloadPlan.plan(old: old, new: new)
        #expect(plan.kept.map { [$0.old, $0.new] } == [[1, 0], [0, 1]])
        #expect(plan.kept.allSatisfy { $0.changes.contains { $0.hasPrefix("renamed") } && $0.changes.contains("VIPs +1 -1") })
    }

    @Test func trackScriptsByName() {
        func scripts(_ body: String) -> String {
            body + instance(body: "track_script {\n        a\n        b\n        c\n    }")
        }
        let old = setup(scripts("vrrp_script a { script \"/bin/true\" }\nvrrp_script b { script \"/bin/true\" }\nvrrp_script c { script \"/bin/true\" }\n"))
        let new = setup(scripts("vrrp_script a { script \"/bin/true\" }\nvrrp_script b { script \"/bin/true\"\n    rise 3 }\nvrrp_script c { script \"/bin/false\" }\n"))
        let plan = VRRPReloadPlan.plan(old: old, new: new).scripts
        #expect(plan.unchanged == ["a"] && plan.retimed == ["b"] && plan.replaced == ["c"])
        #expect(!plan.isEmpty)
    }
}

/// keepalived's track_file arithmetic.
@Suite struct TrackFileWeighingTests {
    @Test(arguments: [("12", 12), (" -3\n", -3), ("0x1f", 31), ("010", 8), ("abc", 0), ("", 0), ("5 apples", 5), ("2147483647", 2147483647)])
    func numbersAsStrtolReadsThem(text: String, value: Int) {
        #expect(trackFileValue(Array(text.utf8)) == value)
    }

    @Test func weightedContributions() {
        #expect(VRRPTracker.file("f", value: 2, weight: -10, reverse: false).priorityContribution == -20)
        #expect(VRRPTracker.file("f", value: 2, weight: -10, reverse: true).priorityContribution == 20)
        let faulting = VRRPTracker.file("f", value: 100, weight: -10, reverse: false)
        #expect(faulting.causesFault && faulting.priorityContribution == 0)
        #expect(!VRRPTracker.file("f", value: 25, weight: -10, reverse: false).causesFault, "-250 is a priority change")
    }
}

@Suite struct TrackFileValueLimitsTests {
    @Test(arguments: ["9223372036854775809", "99999999999", "-2147483649", "0x100000000"])
    func numbersBeyond32BitsAreInvalid(text: String) {
        #expect(trackFileValue(Array(text.utf8)) == nil)
    }

    @Test func extremesClampToKeepalivedsRange() {
        #expect(VRRPTracker.file("f", value: 2_000_000_000, weight: 254, reverse: false).priorityContribution == 253)
        #expect(VRRPTracker.file("f", value: 2_000_000_000, weight: -254, reverse: false).causesFault)
    }
}

/// keepalived's use_vmac as specs: the name (create_vmac_name), the RFC 5798 MAC, where the
/// VIPs and adverts go, and the interface settings keepalived makes for it.
@Suite struct VMACSpecTests {
    @Test func namesFollowKeepalivedsSequence() {
        #expect(VMACSpec.defaultName(prefix: "vrrp", vrid: 51, family: .ipv4, taken: []) == "vrrp.51")
        #expect(VMACSpec.defaultName(prefix: "vrrp", vrid: 51, family: .ipv4, taken: ["vrrp.51"]) == "vrrp1.51")
        #expect(VMACSpec.defaultName(prefix: "vrrp", vrid: 51, family: .ipv6, taken: ["vrrp.51"]) == "vrrp6.51")
        #expect(VMACSpec.defaultName(prefix: "vrrp", vrid: 51, family: .ipv6, taken: ["vrrp.51", "vrrp6.51"]) == "vrrp1.51")
        let sixTaken: Set = ["vrrp.51", "vrrp6.51", "vrrp1.51", "vrrp2.51", "vrrp3.51", "vrrp4.51", "vrrp5.51"]
        #expect(VMACSpec.defaultName(prefix: "vrrp", vrid: 51, family: .ipv6, taken: sixTaken) == "vrrp7.51")
        #expect(VMACSpec.defaultName(prefix: "averyverylongprefix", vrid: 255, family: .ipv4, taken: []) == "averyverylo.255", "15 characters")
    }

    @Test func theVMACCarriesTheVIPsAndTheAdverts() throws {
        let text = instance(body: "use_vmac") + instance("VI_2", vrid: 52, vips: ["10.0.0.101/24", "10.0.0.102/24 dev eth0"], body: "use_vmac\n vmac_xmit_base")
            + instance("VI_6", vrid: 51, vips: ["fe80::51/64"], body: "use_vmac")
        let specs = setup(text).instances
        let vi1 = specs[0], vi2 = specs[1], vi6 = specs[2]
        #expect(vi1.vmac == VMACSpec(name: "vrrp.51", parent: "eth0", mac: [0, 0, 0x5e, 0, 1, 51]))
        #expect(vi1.channelInterface == "vrrp.51" && vi1.addressInterface == "vrrp.51" && vi1.interface == "eth0")
        #expect(vi1.virtualAddresses.map(\.device) == ["vrrp.51"])
        #expect(vi2.vmac?.transmitOnParent == true && vi2.channelInterface == "eth0" && vi2.addressInterface == "vrrp.52")
        #expect(vi2.virtualAddresses.map(\.device) == ["vrrp.52", "eth0"], "a VIP with its own dev stays there")
        #expect(vi6.vmac == VMACSpec(name: "vrrp6.51", parent: "eth0", mac: [0, 0, 0x5e, 0, 2, 51]), "IPv6: 00:00:5e:00:02:VRID, the next name")
        #expect(vi1.identity != setup(instance()).instances[0].identity, "moving onto a VMAC is a new router")
        let mac = setup(instance(body: "use_vmac 02:11:22:33:44")).instances[0].vmac?.mac
        #expect(mac == [0x02, 0x11, 0x22, 0x33, 0x44, 51])
        let prefixed = setup("global_defs {\n vmac_prefix vm\n}\n" + instance(body: "use_vmac")).instances[0]
        #expect(prefixed.vmac?.name == "vm.51")
    }

    @Test func theSettingsKeepalivedMakes() {
        #expect(VMACKernelSettings.onVMAC("vrrp.51", family: .ipv4, otherFamilyAddresses: false).map(\.description) == [
            "net.ipv4.conf.vrrp.51.arp_ignore = 1", "net.ipv4.conf.vrrp.51.accept_local = 1", "net.ipv4.conf.vrrp.51.rp_filter = 0",
            "net.ipv4.conf.vrrp.51.promote_secondaries = 1", "net.ipv6.conf.vrrp.51.disable_ipv6 = 1",
        ])
        #expect(VMACKernelSettings.onVMAC("vrrp6.51", family: .ipv6, otherFamilyAddresses: false) == [SysctlSetting("net/ipv6/conf/vrrp6.51/disable_ipv6", 0)])
        let values = ["net/ipv4/conf/all/rp_filter": 2, "net/ipv4/conf/default/rp_filter": 0,
                      "net/ipv4/conf/eth0/rp_filter": 0, "net/ipv4/conf/eth1/rp_filter": 2]
        #expect(VMACKernelSettings.rpFilterClearance(read: { values[$0] }, links: ["eth0", "eth1"]) == [
            SysctlSetting("net/ipv4/conf/default/rp_filter", 2), SysctlSetting("net/ipv4/conf/eth0/rp_filter", 2),
            SysctlSetting("net/ipv4/conf/all/rp_filter", 0),
        ], "every link keeps the filtering in effect; all goes to 0")
        #expect(VMACKernelSettings.rpFilterClearance(read: { $0.contains("/all/") ? 0 : 1 }, links: ["eth0"]).isEmpty)
    }

    @Test func theLedgerPutsBackOnlyWhatNobodyChangedSince() {
        var values = ["a": 0, "b": 1, "c": 2]
        var ledger = SysctlLedger()
        #expect(ledger.change(SysctlSetting("a", 1), current: values["a"]) == SysctlSetting("a", 1))
        #expect(ledger.change(SysctlSetting("b", 1), current: values["b"]) == nil, "already so: nothing to write or restore")
        #expect(ledger.change(SysctlSetting("c", 0), current: values["c"]) != nil)
        values["a"] = 1
        values["c"] = 5 // changed by someone else
        #expect(ledger.restorations(read: { values[$0] }) == [SysctlSetting("a", 0)])
        #expect(ledger.changes.isEmpty)
    }
}

/// keepalived's native_ipv6 (deprecated: the VIPs decide the family) and a sync group's
/// global_tracking (deprecated: sync_group_tracking_weight), with keepalived 2.2.7's errors.
@Suite struct DeprecatedFamilyAndTrackingTests {
    @Test func nativeIPv6MakesTheInstanceIPv6() {
        let text = "vrrp_instance V6 {\n    interface eth0\n    virtual_router_id 61\n    priority 100\n    native_ipv6\n    no_virtual_ipaddress\n}\n"
        let made = setup(text).instances[0]
        #expect(made.family == .ipv6 && made.core.version == .v3)
        #expect(setup(text.replacingOccurrences(of: "    native_ipv6\n", with: "")).instances[0].family == .ipv4)
    }

    @Test func nativeIPv6AndIPv4AddressesAreKeepalivedsErrors() {
        let after = ConfigLoader.load(text: instance(body: "native_ipv6"))
        #expect(after.1.all.contains { $0.severity == .error && $0.message == "(VI_1) Cannot specify native_ipv6 with IPv4 addresses" && $0.location.line == 8 })
        #expect(!after.0.instances[0].nativeIPv6)
        let before = ConfigLoader.load(text: "vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    native_ipv6\n    virtual_ipaddress {\n        fd00::2/64\n        10.0.0.101/24\n    }\n}\n")
        #expect(before.1.all.contains { $0.severity == .error && $0.message == "(B): address family must match VRRP instance [10.0.0.101/24] - ignoring" && $0.location.line == 7 })
        #expect(before.0.instances[0].virtualAddresses.map(\.address) == [IPAddress("fd00::2")!])
    }

    @Test func globalTrackingIsSyncGroupTrackingWeight() {
        let text = instance("A", vrid: 1) + instance("B", vrid: 2, vips: ["10.0.0.101/24"])
            + "vrrp_sync_group G {\n    group {\n        A\n        B\n    }\n    global_tracking\n}\n"
        let (config, diagnostics) = ConfigLoader.load(text: text)
        #expect(config.syncGroups[0].trackingWeight)
        #expect(diagnostics.all.contains { $0.severity == .error && $0.message == "(G) global_tracking is deprecated. Use track_interface/script/file on the sync group" })
        #expect(!diagnostics.all.contains { $0.message.contains("not acted on") })
    }
}
