import Addressing

/// Builds the definitions from the words the interpreter has already checked for keepalived's
/// errors. An option keepalived acts on and Vigil does not yet is a warning naming it; the
/// route or rule is installed without it.
enum RouteBuilder {
    static let routeTypes: [String: UInt8] = ["unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
                                              "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9]
    static let scopes: [String: UInt8] = ["global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255]
    static let protocols: [String: UInt8] = ["redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18]
    static let tables: [String: UInt32] = ["default": 253, "main": 254, "local": 255]

    static func number<T: FixedWidthInteger>(_ text: String, _ names: [String: T]) -> T? {
        names[text] ?? (text.hasPrefix("0x") ? T(text.dropFirst(2), radix: 16) : T(text))
    }

    /// The table named at `words[at]`: a number or main, local, default. Names from
    /// /etc/iproute2/rt_tables are not read, so the line is warned about and not installed.
    static func table(_ words: [Token], _ at: Int, _ what: String, _ diagnostics: inout DiagnosticSink) -> UInt32? {
        guard at < words.count else { return nil }
        if let table = number(words[at].text, tables) { return table }
        diagnostics.warning(words[at].location, "\(what) table '\(words[at].text)' is not acted on by Vigil yet: only numbers and main, local, default are known (not /etc/iproute2/rt_tables); the \(what) is not added", klass: .note)
        return nil
    }

    static func route(_ words: [Token], _ diagnostics: inout DiagnosticSink) -> RouteDefinition? {
        var route = RouteDefinition(family: .ipv4, destination: nil, prefixLength: 0)
        var haveDestination = false
        var family: AddressFamily?
        func notActedOn(_ word: Token) {
            diagnostics.warning(word.location, "route option '\(word.text)' is not acted on by Vigil yet: the route is added without it", klass: .note)
        }
        var index = 0
        while index < words.count {
            let word = words[index]
            let value = index + 1 < words.count ? words[index + 1].text : nil
            switch word.text {
            case "inet": family = .ipv4
            case "inet6": family = .ipv6
            case "no_track", "add", "prepend":
                break
            case "onlink": route.onlink = true
            case "src":
                route.source = value.flatMap { IPAddress($0) }; index += 1
            case "via", "gw":
                var text = value
                if text == "inet" || text == "inet6" { index += 1; text = index + 1 < words.count ? words[index + 1].text : nil }
                route.gateway = text.flatMap { IPAddress($0) }; index += 1
            case "dev", "oif": route.device = value; index += 1
            case "table":
                guard let t = table(words, index + 1, "route", &diagnostics) else { return nil }
                route.table = t
                index += 1
            case "scope":
                route.scope = value.flatMap { number($0, scopes) }; index += 1
            case "metric", "priority", "preference":
                route.metric = value.flatMap { UInt32($0) }; index += 1
            case "protocol", "proto":
                // keepalived resets any other protocol to its own so it can track the route.
                index += 1
            case "mtu":
                var at = index + 1
                if at < words.count, words[at].text == "lock" { notActedOn(words[at]); at += 1 }
                route.mtu = at < words.count ? UInt32(words[at].text) : nil
                index = at
            case "to":
                break
            case let text where routeTypes[text] != nil:
                route.type = routeTypes[text]!
            case "nexthop", "or", "encap", "vrf", "track_group":
                notActedOn(word)
                return nil
            case "tos", "dsfield", "advmss", "rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms", "rto_min",
                 "initcwnd", "initrwnd", "features", "quickack", "congctl", "pref", "ttl-propagate", "fastopen_no_cookie",
                 "hoplimit", "expires", "from", "as", "append", "weight":
                notActedOn(word)
                if !["append"].contains(word.text) {
                    index += 1
                    if value == "lock", index + 1 < words.count { index += 1 }
                }
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
        route.family = family ?? route.destination?.family ?? route.gateway?.family ?? route.source?.family ?? .ipv4
        if route.destination == nil { route.prefixLength = 0 }
        return route
    }

    static let ruleActions: [String: UInt8] = ["blackhole": 6, "unreachable": 7, "prohibit": 8]

    static func rule(_ words: [Token], _ diagnostics: inout DiagnosticSink) -> RuleDefinition? {
        var rule = RuleDefinition(family: .ipv4)
        func invalid(_ word: Token, _ value: String?) -> RuleDefinition? {
            diagnostics.error(word.location, "invalid rule \(word.text) '\(value ?? "")': the rule is not added")
            return nil
        }
        var family: AddressFamily?
        func prefix(_ text: String?) -> (IPAddress, UInt8)? {
            guard let text, text != "all", let (address, length, valid) = parsePrefix(text), valid else { return nil }
            return (address, UInt8(length ?? address.maxPrefixLength))
        }
        var index = 0
        while index < words.count {
            let word = words[index]
            let value = index + 1 < words.count ? words[index + 1].text : nil
            switch word.text {
            case "inet": family = .ipv4
            case "inet6": family = .ipv6
            case "from": rule.from = prefix(value).map { ($0.0, $0.1) }; index += 1
            case "to": rule.to = prefix(value).map { ($0.0, $0.1) }; index += 1
            case "table", "lookup":
                guard let t = table(words, index + 1, "rule", &diagnostics) else { return nil }
                rule.table = t
                index += 1
            case "preference", "prio", "priority", "pref", "order":
                guard let value, let priority = UInt32(value) else { return invalid(word, value) }
                rule.priority = priority
                index += 1
            case "fwmark":
                // MARK or MARK/MASK, each decimal or 0x hex; anything else would match all traffic.
                guard let value else { return invalid(word, value) }
                let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                guard parts.count <= 2, let mark = number(parts[0], [String: UInt32]()) else { return invalid(word, value) }
                rule.fwmark = mark
                if parts.count == 2 {
                    guard let mask = number(parts[1], [String: UInt32]()) else { return invalid(word, value) }
                    rule.fwmask = mask
                }
                index += 1
            case "iif", "dev": rule.inputInterface = value; index += 1
            case "oif": rule.outputInterface = value; index += 1
            case "no_track":
                break
            case let text where ruleActions[text] != nil:
                rule.action = ruleActions[text]!
            default:
                diagnostics.warning(word.location, "rule option '\(word.text)' is not acted on by Vigil yet: the rule is not added", klass: .note)
                return nil
            }
            index += 1
        }
        rule.family = family ?? rule.from?.address.family ?? rule.to?.address.family ?? .ipv4
        return rule
    }
}
