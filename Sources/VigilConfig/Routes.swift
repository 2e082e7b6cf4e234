import Addressing

/// iproute2's name files as keepalived reads them (`/etc/iproute2/rt_tables`, `rt_protos`,
/// `rt_scopes`, `rt_realms`, `rt_dsfield`; the `.d` directories are not read, as in keepalived
/// 2.2.7): a name resolves to the number on its line, a number is itself.
public struct RoutingNames: Sendable {
    var tables: [String: UInt32] = [:]
    var protocols: [String: UInt32] = [:]
    var scopes: [String: UInt32] = [:]
    var realms: [String: UInt32] = [:]
    var dsfields: [String: UInt32] = [:]

    static let defaultTables: [String: UInt32] = ["default": 253, "main": 254, "local": 255]
    static let defaultProtocols: [String: UInt32] = ["none": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8,
                                                     "ra": 9, "mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14,
                                                     "ntk": 15, "dhcp": 16, "babel": 42, "keepalived": 18]
    static let defaultScopes: [String: UInt32] = ["global": 0, "nowhere": 255, "host": 254, "link": 253, "site": 200]

    /// Only the built-in names (a host that cannot be read, tests).
    public init() {
        self.init(files: { _ in nil })
    }

    /// `files` gives a file's text by its name in /etc/iproute2, nil when it cannot be read.
    public init(files: (String) -> String?) {
        tables = Self.read(files("rt_tables"), max: UInt32.max, defaults: Self.defaultTables)
        protocols = Self.read(files("rt_protos"), max: 255, defaults: Self.defaultProtocols)
        scopes = Self.read(files("rt_scopes"), max: 255, defaults: Self.defaultScopes)
        realms = Self.read(files("rt_realms"), max: 255, defaults: [:])
        dsfields = Self.read(files("rt_dsfield"), max: 255, defaults: [:])
    }

    /// keepalived's read_file: a line of exactly two words, a number (decimal, 0x hex or 0
    /// octal) not above `max` and a name; anything else is skipped. A default whose number the
    /// file does not name is added.
    static func read(_ text: String?, max: UInt32, defaults: [String: UInt32]) -> [String: UInt32] {
        var names: [String: UInt32] = [:]
        for line in (text ?? "").split(separator: "\n") {
            let words = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard words.count == 2, let id = number(String(words[0]), max: max) else { continue }
            if names[String(words[1])] == nil { names[String(words[1])] = id }
        }
        let numbered = Set(names.values)
        for (name, id) in defaults where !numbered.contains(id) && names[name] == nil { names[name] = id }
        return names
    }

    /// strtoul with base 0, as keepalived and iproute2 read numbers.
    static func number(_ text: String, max: UInt32) -> UInt32? {
        let value: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") { value = UInt64(text.dropFirst(2), radix: 16) }
        else if text.count > 1 && text.hasPrefix("0") { value = UInt64(text.dropFirst(), radix: 8) }
        else { value = UInt64(text) }
        guard let value, value <= UInt64(max) else { return nil }
        return UInt32(value)
    }

    static func find(_ text: String, _ names: [String: UInt32], max: UInt32) -> UInt32? {
        number(text, max: max) ?? names[text]
    }

    public func table(_ text: String) -> UInt32? { Self.find(text, tables, max: UInt32.max) }
    public func routeProtocol(_ text: String) -> UInt8? { Self.find(text, protocols, max: 255).map { UInt8($0) } }
    public func scope(_ text: String) -> UInt8? { Self.find(text, scopes, max: 255).map { UInt8($0) } }
    public func dsfield(_ text: String) -> UInt8? { Self.find(text, dsfields, max: 255).map { UInt8($0) } }

    /// `realms [FROM/]TO`: FROM << 16 | TO.
    public func realms(_ text: String) -> UInt32? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { return nil }
        let ids = parts.map { Self.find($0, realms, max: 255) }
        guard ids.allSatisfy({ $0 != nil }) else { return nil }
        return ids.count == 2 ? ids[0]! << 16 | ids[1]! : ids[0]!
    }
}

/// Builds the definitions from the words the interpreter has already checked for keepalived's
/// errors, reading values as keepalived 2.2.7 reads them. An option keepalived acts on and
/// Vigil cannot set (libnl-route has no setter for it) is a warning naming it: the route is
/// installed without it, or not at all when that would route other traffic.
enum RouteBuilder {
    static let routeTypes: [String: UInt8] = ["unicast": 1, "local": 2, "broadcast": 3, "brd": 3, "anycast": 4, "multicast": 5,
                                              "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10, "xresolve": 11]

    /// How a metric's value reads: a count up to a maximum, or keepalived's rtt time (a raw
    /// kernel value, or `Nms` / `N.NNNs` converted at `perMillisecond` units).
    enum MetricValue { case count(UInt32), time(perMillisecond: UInt32) }
    struct Metric { var rtax: UInt32; var lockable: Bool; var value: MetricValue }
    static let metrics: [String: Metric] = [
        "mtu": Metric(rtax: 2, lockable: true, value: .count(.max)), "window": Metric(rtax: 3, lockable: false, value: .count(.max)),
        "rtt": Metric(rtax: 4, lockable: true, value: .time(perMillisecond: 8)),
        "rttvar": Metric(rtax: 5, lockable: true, value: .time(perMillisecond: 4)),
        "ssthresh": Metric(rtax: 6, lockable: true, value: .count(.max)), "cwnd": Metric(rtax: 7, lockable: true, value: .count(.max)),
        "advmss": Metric(rtax: 8, lockable: true, value: .count(.max)), "reordering": Metric(rtax: 9, lockable: true, value: .count(.max)),
        "hoplimit": Metric(rtax: 10, lockable: false, value: .count(255)), "initcwnd": Metric(rtax: 11, lockable: false, value: .count(.max)),
        "rto_min": Metric(rtax: 13, lockable: true, value: .time(perMillisecond: 1)),
        "initrwnd": Metric(rtax: 14, lockable: false, value: .count(.max)), "quickack": Metric(rtax: 15, lockable: false, value: .count(1)),
        "fastopen_no_cookie": Metric(rtax: 17, lockable: false, value: .count(1)),
    ]
    static let featuresRTAX: UInt32 = 12

    /// keepalived's get_time_rtt: without a unit the kernel's own units; `ms` or `s` (up to
    /// three decimals) converted; then held within the kernel's 200 ms ... 120 s.
    static func rtt(_ text: String, perMillisecond: UInt32) -> UInt32? {
        var digits = Substring(text)
        var milliseconds: UInt64?
        if let s = digits.lastIndex(where: { $0 == "s" || $0 == "S" }) {
            guard ["s", "sec", "secs"].contains(digits[s...].lowercased()) else { return nil }
            digits = digits[..<s]
            if digits.last == "m" || digits.last == "M" {
                digits = digits.dropLast()
                milliseconds = UInt64(digits)
            } else {
                let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                guard let whole = UInt64(parts[0].isEmpty && parts.count == 2 ? "0" : parts[0]) else { return nil }
                var fraction: UInt64 = 0
                if parts.count == 2 {
                    guard parts[1].count <= 3, parts[1].allSatisfy(\.isNumber) else { return nil }
                    fraction = (UInt64(parts[1]) ?? 0) * [1, 100, 10, 1][parts[1].count]
                }
                milliseconds = whole * 1000 + fraction
            }
            guard let milliseconds else { return nil }
            return UInt32(min(max(milliseconds, 200), 120_000)) * perMillisecond
        }
        guard let raw = UInt64(digits), raw <= 120_000 * UInt64(perMillisecond) else { return nil }
        return UInt32(min(max(raw, 200 * UInt64(perMillisecond)), 120_000 * UInt64(perMillisecond)))
    }

    static func route(_ words: [Token], names: RoutingNames, _ diagnostics: inout DiagnosticSink) -> RouteDefinition? {
        var route = RouteDefinition(family: .ipv4, destination: nil, prefixLength: 0)
        var haveDestination = false
        var family: AddressFamily?
        var configuredProtocol: (UInt8, Token)?
        var tracked = true
        func notActedOn(_ word: Token) {
            diagnostics.warning(word.location, "route option '\(word.text)' is not acted on by Vigil yet: the route is added without it", klass: .note)
        }
        func invalid(_ word: Token, _ value: Token?) -> RouteDefinition? {
            diagnostics.error(value?.location ?? word.location, "invalid route \(word.text) '\(value?.text ?? "")': the route is not added")
            return nil
        }
        var index = 0
        func next() -> Token? {
            index += 1
            return index < words.count ? words[index] : nil
        }
        while index < words.count {
            let word = words[index]
            switch word.text {
            case "inet": family = .ipv4
            case "inet6": family = .ipv6
            case "add", "prepend":
                break
            case "no_track": tracked = false
            case "onlink": route.onlink = true
            case "src":
                route.source = next().flatMap { IPAddress($0.text) }
            case "via", "gw":
                var value = next()
                if value?.text == "inet" || value?.text == "inet6" { value = next() }
                route.gateway = value.flatMap { IPAddress($0.text) }
            case "dev", "oif": route.device = next()?.text
            case "table":
                let value = next()
                guard let value, let table = names.table(value.text) else {
                    diagnostics.error(value?.location ?? word.location, "Routing table \(value?.text ?? "") not found for route: the route is not added")
                    return nil
                }
                route.table = table
            case "vrf":
                route.vrf = next()?.text
            case "scope":
                let value = next()
                guard let scope = value.flatMap({ names.scope($0.text) }) else {
                    diagnostics.error(value?.location ?? word.location, "Scope \(value?.text ?? "") not found or invalid for route: the route is not added")
                    return nil
                }
                route.scope = scope
            case "metric", "priority", "preference":
                let value = next()
                guard let metric = value.flatMap({ RoutingNames.number($0.text, max: .max) }) else { return invalid(word, value) }
                route.metric = metric
            case "protocol", "proto":
                let value = next()
                guard let value, let number = names.routeProtocol(value.text) else {
                    diagnostics.error(value?.location ?? word.location, "Protocol \(value?.text ?? "") not found or invalid for route: the route is not added")
                    return nil
                }
                configuredProtocol = (number, word)
            case "tos", "dsfield":
                let value = next()
                guard let tos = value.flatMap({ names.dsfield($0.text) }) else {
                    diagnostics.error(value?.location ?? word.location, "TOS value \(value?.text ?? "") is invalid: the route is not added")
                    return nil
                }
                route.tos = tos
            case "realms":
                let value = next()
                guard let realms = value.flatMap({ names.realms($0.text) }) else { return invalid(word, value) }
                route.realms = realms
            case "from":
                let value = next()
                guard let value, let (address, length, valid) = parsePrefix(value.text), valid, address.isV6 else {
                    diagnostics.error(value?.location ?? word.location, "route from address only supported with IPv6 (\(value?.text ?? "")): the route is not added")
                    return nil
                }
                route.sourcePrefix = address
                route.sourcePrefixLength = UInt8(length ?? address.maxPrefixLength)
            case let name where metrics[name] != nil:
                let metric = metrics[name]!
                var value = next()
                if metric.lockable, value?.text == "lock" {
                    route.metrics[RouteDefinition.metricLock, default: 0] |= 1 << metric.rtax
                    value = next()
                }
                let number: UInt32? = switch metric.value {
                case .count(let max): value.flatMap { RoutingNames.number($0.text, max: max) }
                case .time(let perMillisecond): value.flatMap { rtt($0.text, perMillisecond: perMillisecond) }
                }
                guard let number else { return invalid(word, value) }
                route.metrics[metric.rtax] = number
            case "features":
                let value = next()
                if value?.text == "ecn" { route.metrics[featuresRTAX, default: 0] |= 1 }
                else { diagnostics.warning(value?.location ?? word.location, "feature \(value?.text ?? "") not supported") }
            case "ttl-propagate":
                let value = next()
                switch value?.text {
                case "enabled": route.ttlPropagate = true
                case "disabled": route.ttlPropagate = false
                default: diagnostics.warning(value?.location ?? word.location, "ttl-propagate value \(value?.text ?? "") not recognised")
                }
            case "as":
                // keepalived: '"as to" for MPLS only - ignoring'.
                if next()?.text == "to" { _ = next() }
                diagnostics.warning(word.location, "\"as to\" for MPLS only - ignoring")
            case "or":
                guard route.nexthops.isEmpty else { _ = next(); break }
                let value = next()
                guard let alternative = value.flatMap({ IPAddress($0.text) }) else { return invalid(word, value) }
                route.nexthops = [Nexthop(gateway: route.gateway), Nexthop(gateway: alternative)]
                route.gateway = nil
            case "nexthop":
                guard route.nexthops.isEmpty, let hops = nexthops(words, from: index, names: names, &diagnostics) else { return nil }
                route.nexthops = hops
                index = words.count
                continue
            case "congctl":
                notActedOn(word)
                if next()?.text == "lock" { _ = next() }
            case "expires", "pref":
                notActedOn(word)
                _ = next()
            case "append":
                notActedOn(word)
            case "encap":
                diagnostics.warning(word.location, "route option 'encap' is not acted on by Vigil yet: the route is not added", klass: .note)
                return nil
            case "track_group":
                diagnostics.warning(word.location, "route option 'track_group' is not acted on by Vigil yet: the route is added without it", klass: .note)
                _ = next()
            case "to":
                break
            case let text where routeTypes[text] != nil && !haveDestination:
                route.type = routeTypes[text]!
            default:
                guard !haveDestination else { break }
                haveDestination = true
                if word.text == "default" { break }
                guard let (address, length, valid) = parsePrefix(word.text), valid else { return nil }
                route.destination = address
                route.prefixLength = UInt8(length ?? address.maxPrefixLength)
            }
            index += 1
        }
        guard haveDestination else { return nil }
        route.family = family ?? route.destination?.family ?? route.gateway?.family ?? route.nexthops.first?.gateway?.family
            ?? route.source?.family ?? route.sourcePrefix?.family ?? .ipv4
        if route.destination == nil { route.prefixLength = 0 }
        route.tracked = tracked && route.device != nil
        // keepalived tracks a route by its protocol, so a tracked route is always its own.
        if let (number, word) = configuredProtocol {
            if !tracked { route.protocolNumber = number }
            else if number != 18 {
                diagnostics.warning(word.location, "Route cannot be tracked if protocol is not RTPROT_KEEPALIVED(18), resetting protocol")
            }
        }
        return route
    }

    /// `nexthop via ADDR dev IF weight W onlink realms R`, repeated, to the end of the line.
    static func nexthops(_ words: [Token], from start: Int, names: RoutingNames, _ diagnostics: inout DiagnosticSink) -> [Nexthop]? {
        var hops: [Nexthop] = []
        var index = start
        func fail(_ at: Token, _ message: String) -> [Nexthop]? {
            diagnostics.error(at.location, "\(message): the route is not added")
            return nil
        }
        while index < words.count, words[index].text == "nexthop" {
            var hop = Nexthop()
            index += 1
            hopWords: while index < words.count {
                let word = words[index]
                let value = index + 1 < words.count ? words[index + 1] : nil
                switch word.text {
                case "via":
                    var address = value
                    if address?.text == "inet" || address?.text == "inet6" {
                        index += 1
                        address = index + 1 < words.count ? words[index + 1] : nil
                    }
                    guard let gateway = address.flatMap({ IPAddress($0.text) }) else { return fail(address ?? word, "invalid nexthop address \(address?.text ?? "")") }
                    hop.gateway = gateway
                    index += 1
                case "dev":
                    guard let value else { return fail(word, "nexthop 'dev' is missing its value") }
                    hop.device = value.text
                    index += 1
                case "weight":
                    guard let value, let weight = RoutingNames.number(value.text, max: 256), weight > 0 else {
                        return fail(value ?? word, "Invalid weight \(value?.text ?? "") specified for route")
                    }
                    hop.weight = UInt16(weight)
                    index += 1
                case "onlink": hop.onlink = true
                case "realms":
                    guard let value, let realms = names.realms(value.text) else { return fail(value ?? word, "Invalid realms \(value?.text ?? "") for route") }
                    hop.realms = realms
                    index += 1
                case "encap":
                    diagnostics.warning(word.location, "route option 'encap' is not acted on by Vigil yet: the route is not added", klass: .note)
                    return nil
                default:
                    break hopWords
                }
                index += 1
            }
            hops.append(hop)
        }
        if index < words.count { return fail(words[index], "Route has trailing nonsense after nexthops - \(words[index].text)") }
        return hops
    }

    static let ruleActions: [String: UInt8] = ["blackhole": 6, "unreachable": 7, "prohibit": 8, "nop": 3]
    static let ipProtocols: [String: UInt8] = ["icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "gre": 47, "esp": 50,
                                               "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136]

    /// `N` or `N-M`, as keepalived reads `sport`/`dport`.
    static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let low = UInt16(parts[0]), let high = UInt16(parts.last!), low <= high else { return nil }
        return low...high
    }

    static func rule(_ words: [Token], names: RoutingNames, _ diagnostics: inout DiagnosticSink) -> RuleDefinition? {
        var rule = RuleDefinition(family: .ipv4)
        func invalid(_ word: Token, _ value: Token?) -> RuleDefinition? {
            diagnostics.error(value?.location ?? word.location, "invalid rule \(word.text) '\(value?.text ?? "")': the rule is not added")
            return nil
        }
        var family: AddressFamily?
        var actions: [Token] = []
        var tableOption = false
        func prefix(_ text: String?) -> (IPAddress, UInt8)? {
            guard let text, text != "all", let (address, length, valid) = parsePrefix(text), valid else { return nil }
            return (address, UInt8(length ?? address.maxPrefixLength))
        }
        var index = 0
        func next() -> Token? {
            index += 1
            return index < words.count ? words[index] : nil
        }
        while index < words.count {
            let word = words[index]
            switch word.text {
            case "inet": family = .ipv4
            case "inet6": family = .ipv6
            case "from": rule.from = prefix(next()?.text).map { ($0.0, $0.1) }
            case "to": rule.to = prefix(next()?.text).map { ($0.0, $0.1) }
            case "table", "lookup":
                let value = next()
                guard let value, let table = names.table(value.text) else {
                    diagnostics.error(value?.location ?? word.location, "Routing table \(value?.text ?? "") not found for rule: the rule is not added")
                    return nil
                }
                rule.table = table
                actions.append(word)
            case "preference", "prio", "priority", "pref", "order":
                let value = next()
                guard let priority = value.flatMap({ UInt32($0.text) }) else { return invalid(word, value) }
                rule.priority = priority
            case "fwmark":
                // MARK or MARK/MASK, each decimal or 0x hex; anything else would match all traffic.
                let value = next()
                let parts = (value?.text ?? "").split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                guard parts.count <= 2, let mark = RoutingNames.number(parts[0], max: .max) else { return invalid(word, value) }
                rule.fwmark = mark
                if parts.count == 2 {
                    guard let mask = RoutingNames.number(parts[1], max: .max) else { return invalid(word, value) }
                    rule.fwmask = mask
                }
            case "tos", "dsfield":
                let value = next()
                guard let tos = value.flatMap({ names.dsfield($0.text) }) else { return invalid(word, value) }
                rule.tos = tos
            case "realms":
                let value = next()
                guard let realms = value.flatMap({ names.realms($0.text) }) else { return invalid(word, value) }
                rule.realms = realms
                tableOption = true
            case "iif", "dev": rule.inputInterface = next()?.text
            case "oif": rule.outputInterface = next()?.text
            case "l3mdev":
                rule.l3mdev = true
                actions.append(word)
            case "protocol":
                let value = next()
                guard let number = value.flatMap({ RoutingNames.number($0.text, max: 255) }) else { return invalid(word, value) }
                rule.protocolNumber = UInt8(number)
            case "ipproto":
                let value = next()
                guard let text = value?.text, let number = ipProtocols[text] ?? RoutingNames.number(text, max: 255).map({ UInt8($0) }) else {
                    return invalid(word, value)
                }
                rule.ipProtocol = number
            case "sport", "dport":
                let value = next()
                guard let range = value.flatMap({ portRange($0.text) }) else { return invalid(word, value) }
                if word.text == "sport" { rule.sourcePorts = range } else { rule.destinationPorts = range }
            case "goto":
                let value = next()
                guard let target = value.flatMap({ RoutingNames.number($0.text, max: .max) }) else { return invalid(word, value) }
                rule.gotoTarget = target
                rule.action = 2
                actions.append(word)
            case "no_track": rule.tracked = false
            case "type":
                break
            case "track_group":
                diagnostics.warning(word.location, "rule option 'track_group' is not acted on by Vigil yet: the rule is added without it", klass: .note)
                _ = next()
            case let text where ruleActions[text] != nil:
                rule.action = ruleActions[text]!
                actions.append(word)
            default:
                diagnostics.warning(word.location, "rule option '\(word.text)' is not acted on by Vigil yet: the rule is not added", klass: .note)
                return nil
            }
            index += 1
        }
        if actions.count > 1 {
            diagnostics.error(actions[1].location, "Cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable/l3mdev for rule: the rule is not added")
            return nil
        }
        if let target = rule.gotoTarget {
            guard let priority = rule.priority, priority < target else {
                diagnostics.error(actions[0].location, rule.priority == nil
                                  ? "Invalid rule - goto target \(target) specified without preference: the rule is not added"
                                  : "Invalid rule - preference \(rule.priority!) >= goto target \(target): the rule is not added")
                return nil
            }
        }
        if actions.isEmpty {
            diagnostics.error(words.first?.location ?? .unknown(""), "No action specified for rule - ignoring")
            return nil
        }
        if tableOption && rule.action != 1 {
            diagnostics.error(words.first?.location ?? .unknown(""), "suppressor/realm specified for non table action - skipping")
            return nil
        }
        rule.family = family ?? rule.from?.address.family ?? rule.to?.address.family ?? .ipv4
        return rule
    }
}
