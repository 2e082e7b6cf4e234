import Foundation
import Testing

/// SIGHUP on the lvs01/lvs02 lab: what a reload may and may not do on the wire, read back
/// from tcpdump on the bridge and from the directors' interfaces.
@Suite(.serialized) struct ReloadLabTests {
    static let vip2 = "172.16.10.45"

    /// Writes NODE.conf in the lab's config directory, changed by `edit` from etc/keepalived.
    static func write(_ directory: String, _ node: String, _ edit: (String) -> String) throws {
        let text = try String(contentsOfFile: "\(repositoryRoot)/etc/keepalived/\(node).conf", encoding: .utf8)
        try edit(text).write(toFile: "\(directory)/\(node).conf", atomically: true, encoding: .utf8)
    }

    static func addresses(_ node: String) -> String {
        run(["ip", "-n", "vlab-\(node)", "-4", "addr", "show", "dev", "eth0"]).output
    }

    /// Adverts only from lvs01, about one a second, none with priority 0, and no GARP.
    static func onlyTheMastersRegularAdverts(_ packets: [CapturedPacket]) -> (ok: Bool, why: String) {
        let adverts = packets.filter(\.isAdvert)
        if let foreign = adverts.first(where: { $0.source != "172.16.10.41" }) { return (false, "advert from \(foreign.source): \(foreign.raw)") }
        if let goodbye = adverts.first(where: { $0.priority == 0 }) { return (false, "priority-0 advert: \(goodbye.raw)") }
        if let garp = packets.first(where: { !$0.isAdvert }) { return (false, "gratuitous ARP: \(garp.raw)") }
        let gaps = zip(adverts, adverts.dropFirst()).map { $1.time - $0.time }
        if let odd = gaps.first(where: { abs($0 - 1) > 0.05 }) { return (false, "advert gap \(odd) s") }
        return (true, "\(adverts.count) adverts, gaps \(gaps.min() ?? 0)...\(gaps.max() ?? 0) s")
    }

    /// The lab with Vigil on both directors, editable configs in a fresh directory (removed by
    /// the caller), lvs01 master and past its second GARP burst, which comes
    /// garp_master_delay (5 s) after it won.
    static func settledPair(_ tag: String) throws -> (Lab, String) {
        let directory = try variantConfigs(tag) { $0 }
        let lab = try Lab(confDir: directory)
        try lab.start("lvs01", "vigil")
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
        try lab.start("lvs02", "vigil")
        usleep(7_000_000)
        #expect(lab.holders() == ["lvs01"])
        return (lab, directory)
    }

    @Test func reloadsOnTheMasterChangeOnlyWhatChanged() throws {
        guard requireLab() else { return }
        let (lab, directory) = try Self.settledPair("reload-master")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // 20 reloads in a row of an unchanged file, on both directors: nothing on the wire.
        lab.lab(["capture", "start"])
        usleep(1_500_000)
        for _ in 0..<20 {
            lab.lab(["reload", "lvs01"])
            lab.lab(["reload", "lvs02"])
            usleep(250_000)
        }
        usleep(1_500_000)
        lab.lab(["capture", "stop"])
        let unchanged = Self.onlyTheMastersRegularAdverts(lab.capture())
        #expect(unchanged.ok, "20 unchanged reloads: \(unchanged.why)")
        print("20 unchanged reloads on each director: \(unchanged.why)")
        #expect(lab.log("lvs01").components(separatedBy: "nothing changed").count - 1 == 20)
        #expect(lab.log("lvs02").components(separatedBy: "nothing changed").count - 1 == 20)

        // A VIP added on the master: added and announced, no transition, no priority 0, and
        // the backup says nothing.
        let entering = lab.log("lvs01").components(separatedBy: "Entering").count
        lab.lab(["capture", "start"])
        usleep(1_000_000)
        try Self.write(directory, "lvs01") { $0.replacingOccurrences(of: "172.16.10.40/24\n", with: "172.16.10.40/24\n        \(Self.vip2)/24\n") }
        lab.lab(["reload", "lvs01"])
        #expect(lab.wait(3) { Self.addresses("lvs01").contains("\(Self.vip2)/24") }, "the new VIP should appear on lvs01")
        usleep(2_000_000)
        lab.lab(["capture", "stop"])
        var packets = lab.capture()
        #expect(!packets.contains { $0.isAdvert && $0.source != "172.16.10.41" }, "no advert from the backup")
        #expect(!packets.contains { $0.priority == 0 }, "no priority-0 advert")
        #expect(packets.contains { $0.garpTarget == Self.vip2 }, "the new VIP is announced")
        #expect(!packets.contains { $0.garpTarget == "172.16.10.40" }, "the old VIP is not re-announced")
        #expect(lab.log("lvs01").components(separatedBy: "Entering").count == entering, "no state transition")
        #expect(lab.holders() == ["lvs01"] && Self.addresses("lvs02").contains(Self.vip2) == false)
        #expect(lab.log("lvs01").contains("VIPs +1 -0"))

        // A broken file is refused and nothing changes.
        lab.lab(["capture", "start"])
        usleep(1_000_000)
        try Self.write(directory, "lvs01") { $0.replacingOccurrences(of: "priority 100", with: "priorty 100") + "\nvrrp_instance {\n" }
        lab.lab(["reload", "lvs01"])
        usleep(2_500_000)
        lab.lab(["capture", "stop"])
        #expect(lab.log("lvs01").contains("refused"), "the refusal is logged")
        #expect(lab.log("lvs01").contains("lvs01.conf:"), "with file:line:column")
        let refused = Self.onlyTheMastersRegularAdverts(lab.capture())
        #expect(refused.ok, "refused reload: \(refused.why)")
        #expect(Self.addresses("lvs01").contains("\(Self.vip2)/24") && lab.holders() == ["lvs01"], "the running configuration stays")

        // Removing a VIP releases only it.
        lab.lab(["capture", "start"])
        usleep(1_000_000)
        try Self.write(directory, "lvs01") { $0 }
        lab.lab(["reload", "lvs01"])
        #expect(lab.wait(3) { !Self.addresses("lvs01").contains(Self.vip2) }, "the removed VIP is released")
        usleep(1_500_000)
        lab.lab(["capture", "stop"])
        packets = lab.capture()
        #expect(lab.holders() == ["lvs01"], "the other VIP stays")
        #expect(!packets.contains { $0.isAdvert && $0.source != "172.16.10.41" } && !packets.contains { $0.priority == 0 })
        #expect(lab.log("lvs01").components(separatedBy: "Entering").count == entering, "still no state transition")
    }

    @Test func aPriorityChangeOnTheBackupMovesNothing() throws {
        guard requireLab() else { return }
        let (lab, directory) = try Self.settledPair("reload-backup")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        lab.lab(["capture", "start"])
        usleep(1_000_000)
        try Self.write(directory, "lvs02") { $0.replacingOccurrences(of: "priority 95", with: "priority 90") }
        lab.lab(["reload", "lvs02"])
        usleep(2_000_000)
        // Higher than the master's now: with nopreempt the backup must still not move.
        try Self.write(directory, "lvs02") { $0.replacingOccurrences(of: "priority 95", with: "priority 110") }
        lab.lab(["reload", "lvs02"])
        usleep(5_000_000)
        lab.lab(["capture", "stop"])
        let result = Self.onlyTheMastersRegularAdverts(lab.capture())
        #expect(result.ok, "priority changes on the backup: \(result.why)")
        #expect(lab.holders() == ["lvs01"])
        #expect(lab.log("lvs02").contains("priority 95→90") && lab.log("lvs02").contains("priority 90→110"))
        #expect(lab.log("lvs02").components(separatedBy: "Entering").count == 2, "BACKUP once at start, nothing since")
    }
}
