import Foundation
import Testing

/// Keywords Vigil acts on since the "no silent gaps" work, on the wire against keepalived
/// 2.2.7 in both roles: vrrp_mcast_group4 and virtual_ipaddress_excluded.
@Suite(.serialized) struct KeywordLabTests {
    static let excluded = "172.16.10.50"

    static func configs() throws -> String {
        try variantConfigs("keywords") { text in
            text.replacingOccurrences(of: "    script_user nobody\n", with: "    script_user nobody\n    vrrp_mcast_group4 224.0.0.19\n")
                .replacingOccurrences(of: "    track_script {", with: """
                    virtual_ipaddress_excluded {
                        \(excluded)/24
                    }
                    track_script {
                """)
        }
    }

    func holds(_ lab: Lab, _ node: String, _ address: String) -> Bool {
        run(["ip", "-n", "vlab-\(node)", "-4", "addr", "show", "dev", "eth0"]).output.contains("\(address)/")
    }

    @Test(arguments: [("keepalived", "vigil"), ("vigil", "keepalived")])
    func aMixedPairOnAnotherGroupWithExcludedAddresses(first: String, second: String) throws {
        guard requireLab() else { return }
        let directory = try Self.configs()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lab = try Lab(confDir: directory)
        lab.lab(["capture", "start"])
        try lab.start("lvs01", first)
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] && holds(lab, "lvs01", Self.excluded) }, "\(first) on lvs01 holds the VIP and the excluded address")
        try lab.start("lvs02", second)
        usleep(3_000_000)
        #expect(lab.holders() == ["lvs01"], "\(second) hears \(first) on 224.0.0.19: \(lab.holders())")
        #expect(!holds(lab, "lvs02", Self.excluded))
        lab.lab(["kill", "lvs01"])
        #expect(lab.wait(6) { lab.holders().contains("lvs02") && holds(lab, "lvs02", Self.excluded) },
                "\(second) takes over the VIP and the excluded address")
        usleep(1_500_000)
        lab.lab(["capture", "stop"])
        let packets = lab.capture()
        let adverts = packets.filter(\.isAdvert)
        #expect(adverts.contains { $0.source == "172.16.10.41" } && adverts.contains { $0.source == "172.16.10.42" })
        #expect(adverts.allSatisfy { $0.raw.contains("> 224.0.0.19") }, "\(adverts.map(\.raw).prefix(3))")
        #expect(adverts.allSatisfy { $0.raw.contains("addrs: 172.16.10.40") && !$0.raw.contains(Self.excluded) },
                "the excluded address is never advertised")
        // Both announce it, keepalived as Vigil does, whichever holds it.
        #expect(packets.contains { $0.garpTarget == Self.excluded }, "the excluded address is announced")
        #expect(!packets.contains { $0.raw.contains("bad") })
    }
}
