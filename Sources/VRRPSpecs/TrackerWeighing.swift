import Addressing
import VRRP

/// What a track script's runs have shown so far.
public enum ScriptVerdict: Hashable, Sendable {
    /// Not run at all (missing, or insecure under enable_script_security): it neither adds
    /// nor subtracts, as in keepalived.
    case disabled
    /// Running, but no run has finished yet.
    case pending
    case result(up: Bool)
}

/// The rule the state machine's effective priority starts from: which trackers an instance
/// has and whether each is up, given what the interfaces and scripts report.
public enum TrackerWeighing {
    /// `interfaceUp` is nil for an interface that does not exist (down, as keepalived treats it).
    public static func trackers(_ rules: [TrackerRule], interfaceUp: (String) -> Bool?,
                                script: (String) -> ScriptVerdict) -> [VRRPTracker] {
        var trackers: [VRRPTracker] = []
        trackers.reserveCapacity(rules.count)
        for rule in rules {
            let isUp: Bool
            switch rule.source {
            case .interface(let name):
                isUp = interfaceUp(name) ?? false
            case .script(let name):
                switch script(name) {
                case .disabled: continue
                case .result(let up): isUp = up
                case .pending:
                    // Before its first result a weight-0 script holds the instance in FAULT
                    // and a weighted one adds nothing, as in keepalived.
                    isUp = rule.weight == 0 ? rule.reverse : (rule.weight < 0) != rule.reverse
                }
            }
            trackers.append(VRRPTracker(name: rule.name, weight: rule.weight, reverse: rule.reverse, isUp: isUp))
        }
        return trackers
    }
}

/// keepalived drops to BACKUP and re-elects when someone deletes a VIP from a MASTER's
/// interface (`ip addr del`, a network restart), which leaves the address unserved for a whole
/// master-down interval when there is no better router. Vigil keeps the same owner: the
/// address is put back at once and announced with one gratuitous ARP / unsolicited NA.
public enum VIPRestore {
    /// The VIPs of a MASTER instance that are missing from their devices. `present` lists the
    /// addresses each device holds right now.
    public static func missing(_ vips: [VIPSpec], present: [String: Set<IPAddress>]) -> [VIPSpec] {
        vips.filter { !(present[$0.device]?.contains($0.address) ?? false) }
    }
}
