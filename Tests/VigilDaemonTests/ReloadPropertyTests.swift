import Addressing
import Foundation
import Testing
import VigilTestSupport
@testable import VigilDaemon


/// Random keepalived.conf files over a space small enough that two of them overlap a lot:
/// instances that keep, change or swap their VRID, VIPs that come and go, track scripts that
/// pass or fail, virtual servers whose real servers, weights, schedulers and checkers change.
struct ConfigGenerator {
    var random: SeededRandom

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &random)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }
    mutating func count(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    mutating func config() -> String {
        var text = "global_defs {\n    router_id sim\n    enable_script_security\n    script_user nobody\n}\n"
        text += """
        vrrp_script passes {
            script "/bin/true"
            interval 1
        }
        vrrp_script fails {
            script "/etc/keepalived/check.sh"
            interval 1
            fall \(count(1...2))
            rise \(count(1...2))
        }

        """
        var vrids = Set<Int>()
        var names: [String] = []
        for index in 0..<3 where chance(0.75) {
            let name = "VI_\(index)"
            names.append(name)
            var vrid = pick([10, 11, 12, 13])
            while vrids.contains(vrid) { vrid = pick([10, 11, 12, 13]) }
            vrids.insert(vrid)
            let vips = (100...104).filter { _ in chance(0.5) }.prefix(3)
            let vipLines = (vips.isEmpty ? [100] : Array(vips)).map { "10.0.\(index).\($0)/\(pick(["24", "32"]))\(chance(0.2) ? " label eth0:v\(index)" : "")" }
            let priority = chance(0.1) ? 255 : count(50...200)
            var block = """
            vrrp_instance \(name) {
                interface eth0
                virtual_router_id \(vrid)
                priority \(priority)
                advert_int \(pick([1, 2]))
                \(chance(0.3) && priority != 255 ? "nopreempt" : "")
                virtual_ipaddress {
                    \(vipLines.joined(separator: "\n        "))
                }

            """
            if chance(0.2) { block += "    unicast_src_ip 10.0.0.41\n    unicast_peer {\n        10.0.0.99\n    }\n" }
            if chance(0.5) {
                let script = pick(["passes", "fails"])
                block += "    track_script {\n        \(script)\(chance(0.5) ? " weight \(pick([-20, 10]))" : "")\n    }\n"
            }
            if chance(0.3) { block += "    garp_master_repeat \(count(1...5))\n" }
            text += block + "}\n"
        }
        if chance(0.2) {
            text += """
            vrrp_instance V6 {
                interface eth0
                virtual_router_id \(pick([20, 21]))
                priority \(count(50...200))
                virtual_ipaddress {
                    2001:db8::\(pick([100, 101]))/64
                }
            }

            """
        }
        if names.count >= 2 && chance(0.3) {
            text += "vrrp_sync_group G {\n    group {\n        \(names[0])\n        \(names[1])\n    }\n}\n"
        }
        for v in 1...4 where chance(0.5) {
            let method = pick(["DR", "NAT"])
            text += """
            virtual_server 192.168.0.\(v) 80 {
                delay_loop \(count(1...3))
                lb_algo \(pick(["rr", "wlc"]))
                lb_kind \(method)
                protocol TCP
                \(chance(0.3) ? "persistence_timeout \(pick([60, 300]))" : "")
                \(chance(0.3) ? "quorum \(count(1...3))" : "")
                \(chance(0.2) ? "sorry_server 192.168.9.\(v) 80" : "")
                \(chance(0.2) ? "inhibit_on_failure" : "")

            """
            for r in 1...6 where chance(0.5) {
                text += """
                    real_server 192.168.\(v).\(r) 80 {
                        weight \(count(1...3))
                        \(chance(0.15) ? "alpha" : "")
                        TCP_CHECK {
                            connect_timeout \(count(1...2))
                            retry \(count(0...1))
                            delay_before_retry 1
                        }
                    }

                """
            }
            text += "    real_server 192.168.\(v).7 80 {\n        weight 1\n    }\n}\n"
        }
        return text
    }
}

/// The property the reload design rests on: starting on A and reloading to B leaves the
/// kernel-visible state (addresses on the links, the IPVS table) exactly as starting on B
/// does, and reloading a file onto itself plans nothing and sends nothing.
@Suite struct ReloadPropertyTests {
    static let pairs = Int(ProcessInfo.processInfo.environment["VIGIL_RELOAD_PAIRS"] ?? "") ?? 1000

    /// One director alone on its LAN, so every instance that is not in FAULT ends as MASTER
    /// and the end state depends only on the file: real servers with an odd last octet
    /// answer, track script "passes" passes and "fails" fails.
    static func director(_ sim: Simulation) -> Director {
        let director = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        director.prober.alive = { $0.address.bytes.last! % 2 == 1 }
        director.processes.behaviour = { command in (!command.contains("check.sh"), 5_000) }
        return director
    }

    static func kernelState(_ director: Director) -> [String] { director.node.addressState + director.ipvs.state }

    @Test func reloadingAToBEndsWhereStartingOnBDoes() throws {
        var generator = ConfigGenerator(random: SeededRandom(seed: 20_261_201))
        var applied = 0, identical = 0
        for pair in 0..<Self.pairs {
            let a = generator.config(), b = generator.config()
            let reloaded = Simulation()
            let first = Self.director(reloaded)
            try first.start(a)
            reloaded.run(4)
            first.hangUp(with: b)
            reloaded.run(16)
            let outcome = try #require(first.daemon!.reloads.last)
            #expect(outcome.result != .refused, "pair \(pair): \(outcome.summary)\n\(b)")
            if outcome.result == .applied { applied += 1 }

            let fresh = Simulation()
            let second = Self.director(fresh)
            try second.start(b)
            fresh.run(16)
            let (got, want) = (Self.kernelState(first), Self.kernelState(second))
            if got != want {
                Issue.record("pair \(pair): after reload \(got.filter { !want.contains($0) }) extra, \(want.filter { !got.contains($0) }) missing\n--- A\n\(a)\n--- B\n\(b)")
                return
            }
            // The same file again: an empty plan, no request, no address change.
            let requests = first.ipvs.requests.count, addresses = first.node.addressLog.count
            first.hangUp()
            reloaded.run(0.5)
            let again = try #require(first.daemon!.reloads.last)
            if again.result == .unchanged { identical += 1 }
            #expect(again.result == .unchanged && again.vrrpPlan.isEmpty && again.ipvsOperations.isEmpty, "pair \(pair): \(again.summary)")
            #expect(first.ipvs.requests.count == requests && first.node.addressLog.count == addresses, "pair \(pair)")
        }
        print("reload property: \(Self.pairs) pairs, \(applied) applied a change, \(identical) re-reloads planned nothing")
        #expect(applied > Self.pairs / 2, "the generator should mostly produce different files")
    }
}
