import Addressing
import VRRP

/// Old setup × new setup: which virtual routers continue (matched by identity, so a renamed
/// instance is the same router), which stop, which start, and what changed in each. The host
/// carries it out; this type only decides, so every combination is testable as values.
public struct VRRPReloadPlan: Hashable, Sendable {
    public struct Kept: Hashable, Sendable {
        public var old: Int
        public var new: Int
        /// The settings that differ, for the reload's log line ("priority 100→90", "VIPs +1").
        public var changes: [String]
        public var isUnchanged: Bool { changes.isEmpty }
    }

    /// Instances present in both, by index into the old and the new setup.
    public var kept: [Kept] = []
    /// New instances (indices into the new setup): they start as at start-up.
    public var added: [Int] = []
    /// Old instances with no counterpart: they leave as on stop.
    public var removed: [Int] = []
    public var scripts = TrackScriptPlan()
    /// Sync groups whose membership or notify scripts differ, or that appear or vanish.
    public var groupsChanged: [String] = []
    /// VIPs added and removed across all kept instances.
    public var vipsAdded = 0
    public var vipsRemoved = 0
    /// static_ipaddress, static_routes or static_rules differ, or the mail or GARP pacing settings.
    public var staticChanged = false

    public init() {}

    public var isEmpty: Bool {
        added.isEmpty && removed.isEmpty && kept.allSatisfy(\.isUnchanged) && scripts.isEmpty && groupsChanged.isEmpty && !staticChanged
    }

    public static func plan(old: VRRPSetup, new: VRRPSetup) -> VRRPReloadPlan {
        var plan = VRRPReloadPlan()
        var oldByIdentity: [InstanceIdentity: Int] = [:]
        for (index, spec) in old.instances.enumerated() { oldByIdentity[spec.identity] = index }
        var matched = Set<Int>()
        for (newIndex, spec) in new.instances.enumerated() {
            guard let oldIndex = oldByIdentity[spec.identity], !matched.contains(oldIndex) else {
                plan.added.append(newIndex)
                continue
            }
            matched.insert(oldIndex)
            let before = old.instances[oldIndex]
            let (changes, added, removed) = differences(before, spec)
            plan.vipsAdded += added
            plan.vipsRemoved += removed
            plan.kept.append(Kept(old: oldIndex, new: newIndex, changes: changes))
        }
        plan.removed = old.instances.indices.filter { !matched.contains($0) }
        plan.scripts = TrackScriptPlan.plan(old: old.trackScripts, new: new.trackScripts)
        let oldGroups = Dictionary(old.groups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newGroups = Dictionary(new.groups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        plan.groupsChanged = Set(oldGroups.keys).union(newGroups.keys).filter { oldGroups[$0] != newGroups[$0] }.sorted()
        plan.staticChanged = old.staticAddresses != new.staticAddresses || old.staticRoutes != new.staticRoutes || old.staticRules != new.staticRules
            || old.mail != new.mail || old.garpInterval != new.garpInterval || old.gnaInterval != new.gnaInterval
        return plan
    }

    /// What differs between two specs of one router, in words, and the VIP counts.
    static func differences(_ a: InstanceSpec, _ b: InstanceSpec) -> (changes: [String], vipsAdded: Int, vipsRemoved: Int) {
        var changes: [String] = []
        if a.name != b.name { changes.append("renamed from \(a.name)") }
        if a.core.priority != b.core.priority { changes.append("priority \(a.core.priority)→\(b.core.priority)") }
        if a.core.advertInterval != b.core.advertInterval {
            changes.append("advert_int \(Double(a.core.advertInterval) / 1e6)→\(Double(b.core.advertInterval) / 1e6) s")
        }
        if a.core.version != b.core.version { changes.append("version \(a.core.version.rawValue)→\(b.core.version.rawValue)") }
        if a.core.authentication != b.core.authentication { changes.append("authentication") }
        let oldVIPs = Set(a.virtualAddresses), newVIPs = Set(b.virtualAddresses)
        let added = newVIPs.subtracting(oldVIPs).count, removed = oldVIPs.subtracting(newVIPs).count
        if added > 0 || removed > 0 {
            changes.append("VIPs +\(added) -\(removed)")
        } else if a.virtualAddresses != b.virtualAddresses {
            changes.append("VIP order")
        }
        let oldExcluded = Set(a.excludedAddresses), newExcluded = Set(b.excludedAddresses)
        if oldExcluded != newExcluded {
            changes.append("excluded VIPs +\(newExcluded.subtracting(oldExcluded).count) -\(oldExcluded.subtracting(newExcluded).count)")
        }
        if a.virtualRoutes != b.virtualRoutes { changes.append("virtual_routes") }
        if a.virtualRules != b.virtualRules { changes.append("virtual_rules") }
        if a.trackers != b.trackers { changes.append("trackers") }
        if a.unicastPeers != b.unicastPeers { changes.append("unicast peers") }
        if a.unicastTTL != b.unicastTTL { changes.append("unicast_ttl") }
        if a.notify != b.notify { changes.append("notify scripts") }
        // Everything else the core holds (preemption, GARP pacing, receive options); the name
        // and VIP list were reported above.
        var coreA = a.core, coreB = b.core
        coreA.name = ""; coreB.name = ""
        coreA.priority = 0; coreB.priority = 0
        coreA.advertInterval = 0; coreB.advertInterval = 0
        coreA.version = .v2; coreB.version = .v2
        coreA.authentication = .none; coreB.authentication = .none
        coreA.virtualAddresses = []; coreB.virtualAddresses = []
        coreA.excludedAddresses = []; coreB.excludedAddresses = []
        coreA.unicastPeers = []; coreB.unicastPeers = []
        if coreA != coreB { changes.append("protocol settings") }
        return (changes, added, removed)
    }
}

/// Track scripts by name: a kept script keeps its verdict and schedule; one whose command
/// changed keeps its verdict (keepalived maps the old result onto the new rise/fall) but is a
/// new script otherwise; a new one starts as at start-up.
public struct TrackScriptPlan: Hashable, Sendable {
    /// Identical in every setting.
    public var unchanged: [String] = []
    /// Same command and user; interval, timeout, rise, fall or init_fail differ.
    public var retimed: [String] = []
    /// Same name, different command or user.
    public var replaced: [String] = []
    public var added: [String] = []
    public var removed: [String] = []

    public init() {}

    public var isEmpty: Bool { retimed.isEmpty && replaced.isEmpty && added.isEmpty && removed.isEmpty }

    public static func plan(old: [TrackScriptSpec], new: [TrackScriptSpec]) -> TrackScriptPlan {
        var plan = TrackScriptPlan()
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in after.keys.sorted() {
            let spec = after[name]!
            guard let previous = before[name] else { plan.added.append(name); continue }
            if previous == spec { plan.unchanged.append(name) }
            else if previous.runsTheSameCommand(as: spec) { plan.retimed.append(name) }
            else { plan.replaced.append(name) }
        }
        plan.removed = before.keys.filter { after[$0] == nil }.sorted()
        return plan
    }
}
