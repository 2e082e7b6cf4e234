import Foundation
import Testing

/// keepalived's auth_type AH on the wire against keepalived 2.2.7 in both roles: each
/// verifies the other's ICV and sequence numbers, a takeover continues above the old
/// master's numbers, and the old master, back, listens again without an authentication error.
@Suite(.serialized) struct AHLabTests {
    @Test(arguments: [("keepalived", "vigil"), ("vigil", "keepalived")])
    func aMixedPairWithAH(first: String, second: String) throws {
        try withVariantLab("ah", { $0.replacingOccurrences(of: "auth_type PASS", with: "auth_type AH") }) { lab in
            lab.lab(["capture", "start"])
            try lab.start("lvs01", first)
            #expect(lab.wait(8) { lab.holders() == ["lvs01"] }, "\(first) on lvs01 is master")
            try lab.start("lvs02", second)
            usleep(3_500_000)
            #expect(lab.holders() == ["lvs01"], "\(second) verifies \(first)'s adverts: \(lab.holders())")
            lab.lab(["stop", "lvs01"])
            #expect(lab.wait(6) { lab.holders() == ["lvs02"] }, "\(second) takes over")
            try lab.start("lvs01", first)
            usleep(4_000_000)
            #expect(lab.holders() == ["lvs02"], "nopreempt: \(first), back, hears \(second)'s higher numbers: \(lab.holders())")
            lab.lab(["capture", "stop"])
            let adverts = lab.capture().filter(\.isAdvert)
            #expect(adverts.contains { $0.source == "172.16.10.41" } && adverts.contains { $0.source == "172.16.10.42" })
            #expect(adverts.allSatisfy { $0.raw.contains(": AH(length=4(24-bytes),spi=") && $0.raw.contains("authtype ah") && $0.link.contains("proto AH (51)") }, "\(adverts.map(\.raw).prefix(2))")
            for node in ["lvs01", "lvs02"] {
                #expect(!lab.log(node).contains("IPSEC-AH : invalid") && !lab.log(node).contains("already processed"),
                        "\(node): \(lab.log(node).split(separator: "\n").filter { $0.contains("IPSEC") }.prefix(3))")
            }
        }
    }
}
