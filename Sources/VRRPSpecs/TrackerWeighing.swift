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
    /// `fileValue` is the number a track file holds (0 when missing or unreadable, as keepalived).
    public static func trackers(_ rules: [TrackerRule], interfaceUp: (String) -> Bool?,
                                script: (String) -> ScriptVerdict, fileValue: (String) -> Int = { _ in 0 },
                                processUp: (String) -> Bool = { _ in false },
                                sourcePresent: (IPAddress) -> Bool = { _ in true }) -> [VRRPTracker] {
        var trackers: [VRRPTracker] = []
        trackers.reserveCapacity(rules.count)
        for rule in rules {
            let isUp: Bool
            switch rule.source {
            case .interface(let name):
                isUp = interfaceUp(name) ?? false
            case .process(let name):
                isUp = processUp(name)
            case .configuration:
                isUp = false
            case .sourceAddress(let address):
                isUp = sourcePresent(address)
            case .file(let name):
                let value = fileValue(name)
                if rule.weight == 0 {
                    // Unweighted: any non-zero number is a failure (reversed: zero is, as the
                    // tracker's reverse flips which state faults).
                    isUp = value == 0
                } else {
                    trackers.append(.file(rule.name, value: value, weight: rule.weight, reverse: rule.reverse))
                    continue
                }
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

/// The number in a track file as keepalived reads it: `strtol(text, NULL, 0)`, so leading
/// blanks, a sign, `0x` for hex and a leading 0 for octal; what does not parse is 0. nil for
/// a number outside 32 bits, which keepalived logs as invalid and ignores.
public func trackFileValue(_ bytes: [UInt8]) -> Int? {
    var index = 0
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(bytes[index]) { index += 1 }
    var negative = false
    if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
        negative = bytes[index] == UInt8(ascii: "-")
        index += 1
    }
    var radix = 10
    if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "0"), bytes[index + 1] | 0x20 == UInt8(ascii: "x") {
        radix = 16
        index += 2
    } else if index < bytes.count, bytes[index] == UInt8(ascii: "0") {
        radix = 8
    }
    var value = 0
    while index < bytes.count {
        let c = bytes[index] | 0x20
        let digit: Int
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(c - UInt8(ascii: "a")) + 10
        default: digit = radix
        }
        guard digit < radix else { break }
        value = value * radix + digit
        guard value <= Int(Int32.max) + 1 else { return nil }
        index += 1
    }
    let signed = negative ? -value : value
    return signed >= Int(Int32.min) && signed <= Int(Int32.max) ? signed : nil
}
