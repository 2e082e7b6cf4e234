import Foundation
import Testing

/// Two namespaces of our own, `vgx-<pid>-a` and `vgx-<pid>-b`, joined by a veth pair named
/// `vx0` on both ends, with Vigil daemons started in them in the background. Everything is
/// removed when the value goes away; no host interface is touched.
final class ExtrasPair {
    let a: String
    let b: String
    let directory: String
    private var daemons: [Int32] = []

    init(_ tag: String) throws {
        a = "vgx-\(getpid())-a"
        b = "vgx-\(getpid())-b"
        directory = NSTemporaryDirectory() + "vigil-extras-\(tag)-\(getpid())"
        for ns in [a, b] { run(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for ns in [a, b] { try must(["ip", "netns", "add", ns]) }
        try must(["ip", "-n", a, "link", "add", "vx0", "type", "veth", "peer", "name", "vx0", "netns", b])
        for (index, ns) in [a, b].enumerated() {
            // No DAD: the link-local source must be usable as soon as the link is up.
            try must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.vx0.accept_dad=0"])
            try must(["ip", "-n", ns, "link", "set", "lo", "up"])
            try must(["ip", "-n", ns, "addr", "add", "10.99.0.\(index + 1)/24", "dev", "vx0"])
            try must(["ip", "-n", ns, "link", "set", "vx0", "up"])
        }
        // Wait for both link-local addresses.
        _ = ExtrasPair.wait(5) {
            [self.a, self.b].allSatisfy { self.addresses($0, family: "-6").contains("fe80::") }
        }
    }

    deinit {
        for pid in daemons { kill(pid, SIGKILL) }
        usleep(200_000)
        for ns in [a, b] { run(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func must(_ arguments: [String]) throws {
        let result = run(arguments)
        guard result.status == 0 else { throw LabError(message: "\(arguments.joined(separator: " ")): \(result.output)") }
    }

    /// Starts `vigil -n -l -D` with `config` in `ns`; returns its pid.
    @discardableResult
    func start(_ ns: String, _ name: String, config: String) throws -> Int32 {
        let path = "\(directory)/\(name).conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let command = "'\(vigilBinary)' -n -l -D -f '\(path)' -p '\(directory)/\(name).pid' > '\(directory)/\(name).log' 2>&1 < /dev/null & echo $!"
        let result = run(["ip", "netns", "exec", ns, "sh", "-c", command])
        guard result.status == 0, let pid = Int32(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw LabError(message: "cannot start vigil in \(ns): \(result.output)")
        }
        daemons.append(pid)
        return pid
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? "" }

    func addresses(_ ns: String, family: String) -> String {
        run(["ip", "-n", ns, family, "addr", "show"]).output
    }

    func holds(_ ns: String, _ address: String, family: String = "-4") -> Bool {
        addresses(ns, family: family).contains(" \(address) ")
    }

    static func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }
}

@Suite(.serialized) struct DaemonExtrasTests {
    static func ipv6Config(priority: Int) -> String {
        """
        global_defs {
            router_id vgx\(priority)
        }
        vrrp_instance V6 {
            state BACKUP
            interface vx0
            virtual_router_id 42
            priority \(priority)
            advert_int 1
            virtual_ipaddress {
                fe80::4242/64
                2001:db8::42/64
            }
        }
        """
    }

    /// VRRPv3 over IPv6: one master, adverts to ff02::12, takeover after SIGKILL.
    @Test func ipv6InstanceElectsOneMasterAndFailsOver() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("v6")
        let masterPid = try pair.start(pair.a, "a", config: Self.ipv6Config(priority: 150))
        try pair.start(pair.b, "b", config: Self.ipv6Config(priority: 100))
        func holders() -> [String] {
            [pair.a, pair.b].filter { pair.holds($0, "fe80::4242/64", family: "-6") }
        }
        let elected = ExtrasPair.wait(10) { holders() == [pair.a] && pair.holds(pair.a, "2001:db8::42/64", family: "-6") }
        #expect(elected, "a should be the only master: \(holders())\n--- a\n\(pair.log("a"))\n--- b\n\(pair.log("b"))")
        guard elected else { return }
        usleep(1_000_000)
        #expect(holders() == [pair.a], "b took the VIP too: \(pair.log("b"))")

        let capture = run(["ip", "netns", "exec", pair.b, "timeout", "5", "tcpdump", "-l", "-n", "-v", "-i", "vx0", "-c", "2", "ip6 proto 112"])
        let adverts = capture.output.split(separator: "\n").filter { $0.contains("VRRPv3") }
        #expect(adverts.count >= 2, "no VRRPv3 adverts seen: \(capture.output)")
        #expect(adverts.allSatisfy { $0.contains("> ff02::12") && $0.contains("vrid 42") && $0.contains("prio 150") },
                "unexpected adverts: \(capture.output)")

        kill(masterPid, SIGKILL)
        let moved = ExtrasPair.wait(8) {
            pair.holds(pair.b, "fe80::4242/64", family: "-6") && pair.holds(pair.b, "2001:db8::42/64", family: "-6")
        }
        #expect(moved, "b did not take the IPv6 VIPs: \(pair.addresses(pair.b, family: "-6"))\n\(pair.log("b"))")
        #expect(pair.log("b").contains("Entering MASTER STATE"))
        #expect(pair.log("b").contains("Unsolicited Neighbour Adverts"), "no NA sent: \(pair.log("b"))")
    }

    static func syncConfig(priority: Int, track: Bool, notify: String) -> String {
        """
        global_defs {
            router_id vgx\(priority)
            script_user root
        }
        vrrp_sync_group G {
            group {
                S10
                S11
            }
            notify "\(notify)"
        }
        vrrp_instance S10 {
            state BACKUP
            interface vx0
            virtual_router_id 10
            priority \(priority)
            advert_int 1
            virtual_ipaddress {
                10.99.0.10/24
            }
        }
        vrrp_instance S11 {
            state BACKUP
            interface vx0
            virtual_router_id 11
            priority \(priority)
            advert_int 1
            \(track ? "track_interface {\n        vxd\n    }" : "")
            virtual_ipaddress {
                10.99.0.11/24
            }
        }
        """
    }

    /// A fault of one member (its tracked interface goes down) moves both members' VIPs.
    @Test func syncGroupMovesAllMembersTogether() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("sync")
        // A second veth, inside a only, that S11 tracks (no dummy module needed).
        try pair.must(["ip", "-n", pair.a, "link", "add", "vxd", "type", "veth", "peer", "name", "vxe"])
        try pair.must(["ip", "-n", pair.a, "link", "set", "vxe", "up"])
        try pair.must(["ip", "-n", pair.a, "link", "set", "vxd", "up"])
        let notify = "\(pair.directory)/notify.sh"
        try "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/notify-$(cat /proc/sys/kernel/hostname)-$$.out\"\n"
            .write(toFile: notify, atomically: true, encoding: .utf8)
        chmod(notify, 0o755)
        try pair.start(pair.a, "a", config: Self.syncConfig(priority: 150, track: true, notify: notify))
        try pair.start(pair.b, "b", config: Self.syncConfig(priority: 100, track: false, notify: notify))
        func holding(_ ns: String) -> [String] { ["10.99.0.10/24", "10.99.0.11/24"].filter { pair.holds(ns, $0) } }

        let elected = ExtrasPair.wait(10) { holding(pair.a).count == 2 && holding(pair.b).isEmpty }
        #expect(elected, "a should hold both VIPs: a \(holding(pair.a)) b \(holding(pair.b))\n--- a\n\(pair.log("a"))\n--- b\n\(pair.log("b"))")
        guard elected else { return }
        #expect(pair.log("a").contains("VRRP_Group(G) Syncing instances to MASTER state"))

        // Only S11 tracks vxd, yet the whole group must move.
        try pair.must(["ip", "-n", pair.a, "link", "set", "vxd", "down"])
        let moved = ExtrasPair.wait(10) { holding(pair.b).count == 2 && holding(pair.a).isEmpty }
        #expect(moved, "both VIPs should move to b: a \(holding(pair.a)) b \(holding(pair.b))\n--- a\n\(pair.log("a"))\n--- b\n\(pair.log("b"))")
        #expect(pair.log("a").contains("VRRP_Group(G) Syncing instances to FAULT state"))
        #expect(pair.log("b").contains("VRRP_Group(G) Syncing instances to MASTER state"))

        // Back up: a preempts with both members again.
        try pair.must(["ip", "-n", pair.a, "link", "set", "vxd", "up"])
        let back = ExtrasPair.wait(10) { holding(pair.a).count == 2 && holding(pair.b).isEmpty }
        #expect(back, "both VIPs should return to a: a \(holding(pair.a)) b \(holding(pair.b))\n--- a\n\(pair.log("a"))")

        // Group notify: `notify` gets GROUP G STATE 0.
        let outputs = (try? FileManager.default.contentsOfDirectory(atPath: pair.directory)) ?? []
        let notified = outputs.filter { $0.hasPrefix("notify-") }
            .compactMap { try? String(contentsOfFile: "\(pair.directory)/\($0)", encoding: .utf8) }.joined()
        #expect(notified.contains("GROUP G MASTER 0"), "group notify not run: \(notified)")
        #expect(notified.contains("GROUP G FAULT 0"), "group notify not run: \(notified)")
    }
}
