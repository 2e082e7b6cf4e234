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
    func start(_ ns: String, _ name: String, config: String, environment: [String: String] = [:], pidFile: String? = nil) throws -> Int32 {
        let path = "\(directory)/\(name).conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)='\($0.value)' " }.joined()
        // A control socket of its own: the default one belongs to a Vigil the machine may run.
        let command = assignments + "'\(vigilBinary)' -n -l -D -f '\(path)' -p '\(pidFile ?? "\(directory)/\(name).pid")' --control '\(directory)/\(name).sock'"
            + " > '\(directory)/\(name).log' 2>&1 < /dev/null & echo $!"
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

    /// systemd's side of Type=notify, played by a datagram socket of the test's own: what a
    /// real Vigil says from start to stop, the watchdog included. (An abstract socket name is
    /// per network namespace, so that case is VigilSystemTests'.)
    @Test func notifySocketHearsReadyStatusWatchdogReloadAndStop() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("notify")
        let name = "\(pair.directory)/notify.sock"
        let listener = try NotifyListener(name)
        let pid = try pair.start(pair.a, "a", config: Self.ipv6Config(priority: 150),
                                 environment: ["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"])
        var heard = listener.collect(for: 5)
        let ready = heard.first { $0.hasPrefix("READY=1") }
        #expect(ready?.contains("MAINPID=\(pid)") == true, "READY with the main pid: \(heard)\n\(pair.log("a"))")
        let status = heard.compactMap { m in m.split(separator: "\n").first { $0.hasPrefix("STATUS=") } }.last
        #expect(status == "STATUS=MASTER on V6", "\(heard)")
        let pings = heard.filter { $0 == "WATCHDOG=1" }.count
        #expect((8...12).contains(pings), "WATCHDOG=1 every 0.5 s for 5 s: \(pings)")
        kill(pid, SIGHUP)
        heard = listener.collect(for: 1.5)
        let reloading = heard.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }
        let readyAgain = heard.firstIndex { $0.hasPrefix("READY=1") }
        #expect(reloading != nil && readyAgain != nil && reloading! < readyAgain!, "\(heard)\n\(pair.log("a"))")
        kill(pid, SIGTERM)
        heard = listener.collect(for: 2)
        #expect(heard.contains { $0.hasPrefix("STOPPING=1") }, "\(heard)")
        #expect(!pair.log("a").contains("notification failed"), "\(pair.log("a"))")
    }
}

/// A Unix datagram socket the daemon under test notifies, as systemd's would be.
final class NotifyListener {
    let fd: Int32
    let path: String?

    init(_ name: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        path = abstract ? nil : name
        if let path { unlink(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard fd >= 0, bound == 0 else { throw LabError(message: "bind \(name): errno \(errno)") }
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// Every datagram that arrives within `seconds`.
    func collect(for seconds: Double) -> [String] {
        var messages: [String] = []
        let end = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, end.timeIntervalSinceNow * 1000))) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { messages.append(String(decoding: buffer.prefix(n), as: UTF8.self)) }
        }
        return messages
    }
}
