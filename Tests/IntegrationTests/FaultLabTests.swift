import Foundation
import Testing

/// The fault matrix on the lab pair (issue 12): what must hold when the network splits, the
/// master freezes or loses its link. Both directors run Vigil on the sample configurations
/// (lvs01 priority 100, lvs02 95, nopreempt, advert_int 1).
@Suite(.serialized) struct FaultLabTests {
    /// The lab with both directors up and lvs01 the master.
    static func settledPair() throws -> Lab? {
        guard requireLab() else { return nil }
        let lab = try Lab()
        try lab.start("lvs01", "vigil")
        guard lab.wait(8, { lab.holders() == ["lvs01"] }) else { throw LabError(message: "lvs01 never became the only master: \(lab.holders())") }
        try lab.start("lvs02", "vigil")
        usleep(1_500_000)
        guard lab.holders() == ["lvs01"] else { throw LabError(message: "lvs02 took the VIP at start: \(lab.holders())") }
        return lab
    }

    static func daemonPid(_ node: String) -> Int32? {
        let text = (try? String(contentsOfFile: "\(Lab.state)/pids/daemon-\(node).pid", encoding: .utf8)) ?? ""
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }

    /// "Entering ... STATE" lines of a node's log so far.
    static func transitions(_ lab: Lab, _ node: String) -> [String] {
        lab.log(node).split(separator: "\n").filter { $0.contains("Entering") }.map(String.init)
    }

    /// The master's port leaves the bridge with its carrier up: both sides are master (a true
    /// split brain). When it comes back, one master remains within one advert interval (the
    /// lower priority yields to the first advert it hears) and the survivor sends gratuitous
    /// ARPs, so the switch and the hosts learn where the VIP is again.
    @Test func aPartitionHealsToOneMasterThatSendsGARPs() throws {
        guard let lab = try Self.settledPair() else { return }
        lab.lab(["capture", "start"])
        #expect(run(["ip", "-n", "vlab-sw", "link", "set", "lvs01", "nomaster"]).status == 0)
        #expect(lab.wait(6) { lab.holders().sorted() == ["lvs01", "lvs02"] }, "split brain: both masters, \(lab.holders())")
        #expect(run(["ip", "-n", "vlab-sw", "link", "show", "lvs01"]).output.contains("LOWER_UP"), "the carrier stayed up")
        let healed = Date()
        #expect(run(["ip", "-n", "vlab-sw", "link", "set", "lvs01", "master", "vlab-br"]).status == 0)
        let converged = lab.wait(1.5) { lab.holders() == ["lvs01"] }
        let took = Date().timeIntervalSince(healed)
        print("partition heal: one master after \(String(format: "%.3f", took)) s")
        #expect(converged && took <= 1.0 + 0.3, "one master within one advert interval (+0.3 s slack): \(took) s, \(lab.holders())")
        usleep(1_500_000)
        lab.lab(["capture", "stop"])
        let healTime = healed.timeIntervalSince1970
        let garps = lab.capture().filter { $0.isGARP && $0.time >= healTime }
        #expect(!garps.isEmpty, "the surviving master announces the VIP after the heal")
        #expect(lab.holders() == ["lvs01"], "and stays the only one")
        #expect(lab.log("lvs01").contains("lower priority"), "lvs01 heard lvs02's adverts and forced the election")
    }

    /// The master is frozen (SIGSTOP) for 5 s: the backup takes over; after SIGCONT the pair
    /// converges on one master and stays there, with no flapping.
    @Test func aFrozenMasterComesBackToOneMasterWithoutFlapping() throws {
        guard let lab = try Self.settledPair() else { return }
        let pid = try #require(Self.daemonPid("lvs01"))
        #expect(kill(pid, SIGSTOP) == 0)
        let frozen = Date()
        #expect(lab.wait(4.5) { lab.holders().contains("lvs02") }, "lvs02 takes over while lvs01 is frozen")
        let remaining = 5 - Date().timeIntervalSince(frozen)
        if remaining > 0 { usleep(UInt32(remaining * 1_000_000)) }
        #expect(kill(pid, SIGCONT) == 0)
        #expect(lab.wait(3) { lab.holders().count == 1 }, "one master after convergence: \(lab.holders())")
        let settled = (Self.transitions(lab, "lvs01").count, Self.transitions(lab, "lvs02").count)
        let holder = lab.holders()
        usleep(5_000_000)
        #expect(lab.holders() == holder, "the master stays: \(holder) then \(lab.holders())")
        #expect((Self.transitions(lab, "lvs01").count, Self.transitions(lab, "lvs02").count) == settled,
                "no transition in the 5 s after convergence:\n\(Self.transitions(lab, "lvs01").suffix(3))\n\(Self.transitions(lab, "lvs02").suffix(3))")
    }

    /// The master's link goes down: FAULT, the VIP is released, the backup takes over. The
    /// link comes back: the old master is BACKUP and, with nopreempt, leaves the VIP where it is.
    @Test func theMastersLinkGoesDownAndComesBack() throws {
        guard let lab = try Self.settledPair() else { return }
        #expect(run(["ip", "-n", "vlab-lvs01", "link", "set", "eth0", "down"]).status == 0)
        #expect(lab.wait(6) { lab.holders() == ["lvs02"] }, "lvs02 takes over, lvs01 no longer holds the VIP: \(lab.holders())")
        #expect(lab.wait(2) { lab.log("lvs01").contains("Entering FAULT STATE") }, "lvs01 is in FAULT: \(Self.transitions(lab, "lvs01"))")
        #expect(!run(["ip", "-n", "vlab-lvs01", "-4", "addr", "show"]).output.contains("172.16.10.40/"), "the VIP is released, not left on the down link")
        #expect(run(["ip", "-n", "vlab-lvs01", "link", "set", "eth0", "up"]).status == 0)
        #expect(lab.wait(4) { Self.transitions(lab, "lvs01").last?.contains("BACKUP") == true }, "lvs01 is BACKUP again: \(Self.transitions(lab, "lvs01"))")
        usleep(4_000_000)
        #expect(lab.holders() == ["lvs02"], "nopreempt: the VIP stays on lvs02")
    }

    /// Track scripts that never end: one hangs, one forks a child and waits for it. Each run is
    /// killed at the timeout with its whole process group (nothing is left behind), counted as
    /// a timeout, and the daemon meanwhile answers its control socket and keeps its adverts.
    @Test func hungTrackScriptsAreKilledAtTheTimeoutAndTheDaemonKeepsItsSecond() throws {
        guard requireLab() else { return }
        let directory = try variantConfigs("hung") { text in
            guard text.contains("router_id lvs01") else { return text }
            return text.replacingOccurrences(of: "vrrp_instance VI_1 {", with: """
                vrrp_script chk_hangs {
                    script "/bin/sleep 1000"
                    interval 1
                    timeout 1
                    weight -1
                }
                vrrp_script chk_forks {
                    script "/bin/sh -c 'sleep 1001 & wait'"
                    interval 1
                    timeout 1
                    weight -1
                }
                vrrp_instance VI_1 {
                """).replacingOccurrences(of: "    track_script {\n        chk_haproxy\n", with: "    track_script {\n        chk_haproxy\n        chk_hangs\n        chk_forks\n")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lab = try Lab(confDir: directory)
        try lab.start("lvs01", "vigil")
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
        try lab.start("lvs02", "vigil")
        func sleepers() -> [String] {
            run(["pgrep", "-a", "-f", "^(/bin/)?sleep 100[01]$"]).output.split(separator: "\n").map(String.init)
        }
        usleep(6_000_000)   // lvs02 settles as BACKUP, lvs01's second GARP burst has gone
        lab.lab(["capture", "start"])
        var slowest = 0.0
        var most = 0
        for _ in 0..<10 {
            let asked = Date()
            let status = lab.lab(["ask", "lvs01", "status"])
            slowest = max(slowest, Date().timeIntervalSince(asked))
            #expect(status.status == 0 && status.output.contains("MASTER"), "\(status.output)")
            most = max(most, sleepers().count)
            usleep(800_000)
        }
        lab.lab(["capture", "stop"])
        print("hung scripts: status answered within \(String(format: "%.3f", slowest)) s; at most \(most) sleepers alive")
        #expect(slowest < 2, "the control socket answers while scripts hang")
        #expect(most <= 4, "at most one run of each script alive (a sleep each), the killed ones gone: \(sleepers())")
        let metrics = lab.lab(["metrics", "lvs01"]).output
        for script in ["chk_hangs", "chk_forks"] {
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("vigil_track_script_runs_total{script=\"\(script)\",result=\"timeout\"}") }
            let timeouts = Double(line?.split(separator: " ").last ?? "") ?? 0
            #expect(timeouts >= 5, "\(script): each run ends at its timeout and is counted: \(line ?? "none")")
        }
        #expect(lab.holders() == ["lvs01"], "priority 100 - 2 still beats 95")
        let adverts = lab.capture().filter { $0.isAdvert && $0.source == "172.16.10.41" }
        let gaps = zip(adverts, adverts.dropFirst()).map { $1.time - $0.time }
        #expect(adverts.count >= 7 && gaps.allSatisfy { abs($0 - 1) <= 0.05 }, "adverts keep their second: \(gaps)")
        lab.lab(["stop", "lvs01"])
        #expect(lab.wait(3) { sleepers().isEmpty }, "nothing left behind at stop: \(sleepers())")
    }

    /// The disk full under the master: its run directory (pid file, control socket, the
    /// dumps of SIGUSR1, SIGUSR2 and SIGJSON) has no block and no inode left. Each failure is
    /// logged by name; the VIP, the adverts and a failover are not affected. (keepalived exits
    /// when it cannot write its pid file.)
    @Test func aFullDiskIsLoggedAndNothingElseIsAffected() throws {
        guard requireLab() else { return }
        let lab = try Lab()
        lab.lab(["capture", "start"])
        try lab.start("lvs01", "vigil", fullDisk: true)
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] }, "lvs01 on a full disk did not become master: \(lab.holders())\n\(lab.log("lvs01"))")
        try lab.start("lvs02", "vigil")
        usleep(1_500_000)
        let pid = try #require(Self.daemonPid("lvs01"))
        for signal in [SIGUSR1, SIGUSR2, __libc_current_sigrtmin() + 2] { kill(pid, signal); usleep(300_000) }
        usleep(1_000_000)
        let log = lab.log("lvs01")
        #expect(log.contains("lab: /run/vigil-lab/run/lvs01 is full"), "the disk was not filled:\n\(log)")
        #expect(log.contains("cannot write pid file"), "\(log)")
        #expect(log.contains("control socket") && log.contains("vigil status and vigil reload are not available"), "\(log)")
        for dump in ["keepalived.data", "keepalived.stats", "keepalived.json"] {
            #expect(log.contains("Cannot write /run/vigil-lab/run/lvs01/\(dump)"), "no error line for \(dump):\n\(log)")
        }
        #expect(kill(pid, 0) == 0, "the daemon on the full disk died")
        #expect(lab.holders() == ["lvs01"], "the full disk moved the VIP: \(lab.holders())")
        // The master's adverts kept their second through the signals and the failed writes.
        let adverts = lab.capture().filter { $0.isAdvert && $0.source == "172.16.10.41" }.map(\.time).suffix(5)
        #expect(adverts.count >= 4 && zip(adverts, adverts.dropFirst()).allSatisfy { $1 - $0 < 1.2 }, "\(adverts)")
        lab.lab(["kill", "lvs01"])
        #expect(lab.wait(6) { lab.holders().contains("lvs02") }, "no failover from the full-disk master: \(lab.holders())")
    }

    /// SIGKILL leaves the VIP on the dead master; the backup takes over; the restarted daemon
    /// removes the leftover at once (two holders would split the traffic) and, with nopreempt,
    /// stays BACKUP.
    @Test func aRestartAfterSIGKILLCleansTheLeftoverVIP() throws {
        guard let lab = try Self.settledPair() else { return }
        lab.lab(["kill", "lvs01"])
        #expect(lab.wait(6) { lab.holders().sorted() == ["lvs01", "lvs02"] }, "lvs02 took over; the VIP is still on dead lvs01: \(lab.holders())")
        let restarted = Date()
        try lab.start("lvs01", "vigil")
        let cleaned = lab.wait(3) { lab.holders() == ["lvs02"] }
        print("SIGKILL restart: leftover VIP removed \(String(format: "%.3f", Date().timeIntervalSince(restarted))) s after the start")
        #expect(cleaned, "the restarted lvs01 removed the leftover VIP: \(lab.holders())")
        usleep(4_000_000)
        #expect(lab.holders() == ["lvs02"], "nopreempt: lvs02 keeps it")
        #expect(Self.transitions(lab, "lvs01").last?.contains("BACKUP") == true, "\(Self.transitions(lab, "lvs01"))")
    }

    /// The flood of the fault matrix: from the client, 10,000 malformed or foreign VRRP packets
    /// a second for 10 s (bad checksum, TTL 64, wrong password, wrong VRID, wrong version,
    /// truncated, random bytes). No state changes, both daemons live, every packet read is in
    /// a counter (or in the kernel's drops of the socket), and the master's adverts keep their
    /// second on the wire.
    @Test func aFloodOfBadAdvertsChangesNothingAndIsCountedInFull() throws {
        guard let lab = try Self.settledPair() else { return }
        usleep(6_000_000)   // past lvs01's second GARP burst (garp_master_delay 5 s)
        let directory = NSTemporaryDirectory() + "vigil-flood-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = directory + "/flood.py"
        try Self.flooder.write(toFile: script, atomically: true, encoding: .utf8)
        let capture = directory + "/adverts.txt"
        let tcpdump = try Self.background(["ip", "netns", "exec", "vlab-sw", "tcpdump", "-l", "-n", "-tt", "-i", "vlab-br",
                                           "ip proto 112 and src host 172.16.10.41"], output: capture)
        defer { kill(tcpdump, SIGTERM); var status: Int32 = 0; waitpid(tcpdump, &status, 0) }
        usleep(1_000_000)
        let before = (Self.accounted(lab, "lvs01"), Self.accounted(lab, "lvs02"))
        let transitions = (Self.transitions(lab, "lvs01").count, Self.transitions(lab, "lvs02").count)
        let started = Date().timeIntervalSince1970
        let flood = run(["ip", "netns", "exec", "vlab-client", "/usr/bin/python3", script, "10", "10000"])
        let ended = Date().timeIntervalSince1970
        usleep(1_500_000)
        #expect(flood.status == 0, "\(flood.output)")
        let sent = Int(flood.output.split(separator: "\n").last { $0.hasPrefix("sent ") }?.split(separator: " ").last ?? "") ?? 0
        print("flood: \(sent) packets in \(String(format: "%.1f", ended - started)) s; \(flood.output.split(separator: "\n").first ?? "")")
        #expect(Double(sent) / (ended - started) >= 9_000, "at least ~10,000 packets a second: \(sent)")
        #expect(Self.daemonPid("lvs01").map { kill($0, 0) == 0 } == true && Self.daemonPid("lvs02").map { kill($0, 0) == 0 } == true, "both alive")
        #expect(lab.holders() == ["lvs01"])
        #expect((Self.transitions(lab, "lvs01").count, Self.transitions(lab, "lvs02").count) == transitions, "no state change")
        for (node, start) in [("lvs01", before.0), ("lvs02", before.1)] {
            let end = Self.accounted(lab, node)
            let counted = end.counted - start.counted, dropped = end.dropped - start.dropped
            print("flood: \(node) counted \(counted), kernel drops \(dropped), of \(sent) sent")
            #expect(counted + dropped == sent, "\(node): every packet is in a counter or the kernel's drops: \(counted) + \(dropped) of \(sent)")
            #expect(dropped * 100 <= sent, "\(node) kept up with the flood (at most 1% dropped by the kernel): \(dropped)")
        }
        kill(tcpdump, SIGTERM)
        usleep(300_000)
        let times = ((try? String(contentsOfFile: capture, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.flatMap { Double($0) } }.filter { $0 >= started && $0 <= ended }
        let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
        print("flood: lvs01's adverts during it: \(times.count), gaps \(gaps.min() ?? 0)...\(gaps.max() ?? 0) s")
        #expect(times.count >= 9 && gaps.allSatisfy { abs($0 - 1) <= 0.05 }, "the master's adverts keep their second: \(gaps)")
    }

    /// Σ of a node's receive errors and unmatched packets, and its VRRP socket's kernel drops.
    static func accounted(_ lab: Lab, _ node: String) -> (counted: Int, dropped: Int) {
        let metrics = lab.lab(["metrics", node]).output
        var counted = 0
        for line in metrics.split(separator: "\n") where line.hasPrefix("vigil_vrrp_receive_errors_total{") || line.hasPrefix("vigil_vrrp_unmatched_packets_total{") {
            counted += Int(Double(line.split(separator: " ").last ?? "") ?? 0)
        }
        // /proc/net/raw: the last column of the protocol-112 socket (local address ...:0070).
        let raw = run(["ip", "netns", "exec", "vlab-\(node)", "cat", "/proc/net/raw"]).output
        let dropped = raw.split(separator: "\n").filter { $0.contains(":0070 ") }.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
        return (counted, dropped)
    }

    static func background(_ arguments: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        guard withDefaultSignals({ posix_spawnp(&pid, arguments[0], &actions, $0, argv, environ) }) == 0 else { throw LabError(message: "cannot start \(arguments[0])") }
        return pid
    }

    /// Sends SECONDS x RATE frames round-robin over seven kinds of bad VRRP, paced per 10 ms.
    static let flooder = #"""
    import socket, struct, sys, time, random
    seconds, rate = float(sys.argv[1]), int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    src_mac = open("/sys/class/net/eth0/address").read().strip()
    ether = bytes.fromhex("01005e000012") + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\0"
    def checksum(data):
        if len(data) % 2: data += b"\0"
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        while total >> 16: total = (total & 0xFFFF) + (total >> 16)
        return (~total) & 0xFFFF
    def ip(payload, ttl=255):
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, 112, 0,
                             socket.inet_aton("172.16.10.50"), socket.inet_aton("224.0.0.18"))
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        return ether + header + payload
    def vrrp(vrid=77, version=2, password=b"11111", good_checksum=True):
        body = struct.pack("!BBBBBBH", (version << 4) | 1, vrid, 200, 1, 1, 1, 0) + socket.inet_aton("172.16.10.40")
        body += password.ljust(8, b"\0")[:8]
        value = checksum(body) if good_checksum else 0x1234
        return body[:6] + struct.pack("!H", value) + body[8:]
    kinds = [
        ip(vrrp(good_checksum=False)),          # bad checksum
        ip(vrrp(), ttl=64),                     # TTL 64 on a multicast advert
        ip(vrrp(password=b"guessed")),          # wrong password
        ip(vrrp(vrid=12)),                      # a VRID nobody here runs
        ip(vrrp(version=4)),                    # no such version
        ip(vrrp()[:1]),                         # truncated: no VRID
    ]
    frames = kinds + [None]                     # random bytes, made afresh each time
    total, start = 0, time.time()
    while time.time() - start < seconds:
        slot_end = start + (total + rate // 100) / rate
        for _ in range(rate // 100):
            frame = frames[total % len(frames)]
            if frame is None:
                frame = ip(bytes([random.randrange(256)]) + bytes([77]) + bytes(random.randrange(256) for _ in range(38)))
            s.send(frame)
            total += 1
        pause = slot_end - time.time()
        if pause > 0: time.sleep(pause)
    print("rate %.0f/s" % (total / (time.time() - start)))
    print("sent", total)
    """#
}
