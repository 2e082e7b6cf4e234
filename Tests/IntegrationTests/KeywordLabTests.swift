import Foundation
import Testing

/// Keywords Vigil acts on since the "no silent gaps" work, on the wire against keepalived
/// 2.2.7 in both roles: vrrp_mcast_group4, vrrp_garp_interval, virtual_ipaddress_excluded,
/// virtual_routes and virtual_rules with multipath, metrics, tos, realms, selectors and goto
/// (the kernel's tables compared between the two daemons).
@Suite(.serialized) struct KeywordLabTests {
    static let excluded = "172.16.10.60"

    static func edit(_ text: String) -> String {
        text.replacingOccurrences(of: "    script_user nobody\n", with: "    script_user nobody\n    vrrp_mcast_group4 224.0.0.19\n    vrrp_garp_interval 0.1\n")
                .replacingOccurrences(of: "    track_script {", with: """
                    virtual_ipaddress_excluded {
                        \(excluded)/24
                    }
                    virtual_routes {
                        10.9.0.0/16 via 172.16.10.254 dev eth0 table 100
                        blackhole 192.0.2.0/24 table 100
                        10.10.0.0/16 table 100 nexthop via 172.16.10.43 dev eth0 weight 2 nexthop via 172.16.10.44 dev eth0
                        10.11.0.0/16 via 172.16.10.254 dev eth0 table 100 tos 0x10 advmss lock 1200 rtt 300ms initcwnd 12 features ecn realms 3/4 quickack 1 metric 7
                    }
                    virtual_rules {
                        from 172.16.10.40 table 100 priority 100
                        from 172.16.10.40 ipproto tcp dport 80-90 tos 0x10 table 100 priority 101
                        from 172.16.10.41 goto 103 priority 102
                    }
                    track_script {
                """)
    }

    /// The master's table 100 and its rules, as iproute2 lists them.
    func routing(_ node: String) -> String {
        run(["ip", "-n", "vlab-\(node)", "route", "show", "table", "100"]).output
            + run(["ip", "-n", "vlab-\(node)", "rule", "show"]).output.split(separator: "\n")
                .filter { $0.hasPrefix("10") }.joined(separator: "\n")
    }

    func holds(_ lab: Lab, _ node: String, _ address: String) -> Bool {
        run(["ip", "-n", "vlab-\(node)", "-4", "addr", "show", "dev", "eth0"]).output.contains("\(address)/")
    }

    @Test(arguments: [("keepalived", "vigil"), ("vigil", "keepalived")])
    func aMixedPairOnAnotherGroupWithExcludedAddresses(first: String, second: String) throws {
        try withVariantLab("keywords", Self.edit) { lab in
            lab.lab(["capture", "start"])
            try lab.start("lvs01", first)
            #expect(lab.wait(8) { lab.holders() == ["lvs01"] && holds(lab, "lvs01", Self.excluded) }, "\(first) on lvs01 holds the VIP and the excluded address")
            let firstRouting = routing("lvs01")
            #expect(firstRouting.contains("10.9.0.0/16 via 172.16.10.254 dev eth0 proto keepalived")
                    && firstRouting.contains("blackhole 192.0.2.0/24 proto keepalived")
                    && firstRouting.contains("from 172.16.10.40 lookup 100")
                    && firstRouting.contains("nexthop via 172.16.10.43 dev eth0 weight 2")
                    && firstRouting.contains("advmss lock 1200")
                    && firstRouting.contains("ipproto tcp dport 80-90")
                    && firstRouting.contains("goto 103"), "\(first) as master: \(firstRouting)")
            try lab.start("lvs02", second)
            usleep(3_000_000)
            #expect(!routing("lvs02").contains("10.9.0.0"), "a backup has no virtual routes")
            #expect(lab.holders() == ["lvs01"], "\(second) hears \(first) on 224.0.0.19: \(lab.holders())")
            #expect(!holds(lab, "lvs02", Self.excluded))
            lab.lab(["kill", "lvs01"])
            #expect(lab.wait(6) { lab.holders().contains("lvs02") && holds(lab, "lvs02", Self.excluded) },
                    "\(second) takes over the VIP and the excluded address")
            usleep(1_500_000)
            #expect(routing("lvs02") == firstRouting, "\(second) installs what \(first) installed")
            lab.lab(["capture", "stop"])
            let packets = lab.capture()
            let adverts = packets.filter(\.isAdvert)
            #expect(adverts.contains { $0.source == "172.16.10.41" } && adverts.contains { $0.source == "172.16.10.42" })
            #expect(adverts.allSatisfy { $0.raw.contains("> 224.0.0.19") }, "\(adverts.map(\.raw).prefix(3))")
            #expect(adverts.allSatisfy { $0.raw.contains("addrs: 172.16.10.40") && !$0.raw.contains(Self.excluded) },
                    "the excluded address is never advertised")
            // Both announce it, keepalived as Vigil does, whichever holds it.
            #expect(packets.contains { $0.garpTarget == Self.excluded }, "the excluded address is announced")
            // vrrp_garp_interval 0.1: each sender's gratuitous ARPs at least 0.1 s apart; lvs01's
            // burst comes first. Vigil sends the whole burst (garp_master_repeat 5 for 2 addresses);
            // keepalived 2.2.7 stops early with an interval set (3 of 10 here), so only its pacing
            // is checked.
            let bySender = Dictionary(grouping: packets.filter { $0.garpTarget != nil }) { $0.raw.split(separator: " ").dropFirst().first ?? "" }
            let bursts = bySender.values.sorted { $0[0].time < $1[0].time }
            #expect(bursts.count == 2)
            for (garps, daemon) in zip(bursts, [first, second]) {
                let gaps = zip(garps, garps.dropFirst()).map { $1.time - $0.time }
                print("\(daemon): \(garps.count) gratuitous ARPs, gaps \(gaps.map { String(format: "%.3f", $0) })")
                #expect(gaps.allSatisfy { $0 >= 0.095 }, "\(daemon) paces its gratuitous ARPs")
                if daemon == "vigil" { #expect(garps.count >= 10, "Vigil sends the whole burst") }
            }
            #expect(!packets.contains { $0.raw.contains("bad") })
        }
    }
}

/// smtp_alert against a real SMTP server (Python's smtpd in the lab's client namespace), from
/// keepalived 2.2.7 and from Vigil in the same run: the same messages but for the date and the
/// mailer.
@Suite(.serialized) struct MailLabTests {
    @Test func keepalivedAndVigilSendTheSameStateMail() throws {
        guard requireLab() else { return }
        let directory = try variantConfigs("mail") { text in
            text.replacingOccurrences(of: "    script_user nobody\n", with: """
                    script_user nobody
                    notification_email {
                        ops@example.com
                    }
                    notification_email_from director@example.com
                    smtp_server 172.16.10.50 2525
                    smtp_alert

                """)
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lab = try Lab(confDir: directory)
        let log = "\(directory)/smtpd.log"
        let started = run(["ip", "netns", "exec", "vlab-client", "sh", "-c",
                           "python3 -u -m smtpd -n -c DebuggingServer 172.16.10.50:2525 > '\(log)' 2>&1 < /dev/null & echo $!"])
        let server = Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        try #require(server > 0, "smtpd: \(started.output)")
        defer { kill(server, SIGTERM) }
        usleep(500_000)
        try lab.start("lvs01", "keepalived")
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
        try lab.start("lvs02", "vigil")
        usleep(2_000_000)
        lab.lab(["kill", "lvs01"])
        #expect(lab.wait(6) { lab.holders().contains("lvs02") })
        func messages() -> [[String]] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "---------- MESSAGE FOLLOWS ----------").dropFirst().map {
                $0.components(separatedBy: "------------ END MESSAGE ------------")[0]
                    .split(separator: "\n").map { line -> String in
                        // smtpd prints each line as a bytes literal: b'Subject: ...'
                        var text = String(line)
                        if text.hasPrefix("b'") || text.hasPrefix("b\"") { text = String(text.dropFirst(2).dropLast()) }
                        return text
                    }
                    .filter { !$0.hasPrefix("Date: ") && !$0.hasPrefix("X-Peer: ") && !$0.hasPrefix("X-Mailer: ") }
            }
        }
        #expect(lab.wait(5) { messages().count >= 4 }, "\(messages())")
        let all = messages()
        let subjects = all.compactMap { $0.first { $0.hasPrefix("Subject: ") } }
        #expect(subjects.contains("Subject: [lvs01] VRRP Instance VI_1 - Entering MASTER state"), "keepalived: \(subjects)")
        #expect(subjects.contains("Subject: [lvs02] VRRP Instance VI_1 - Entering MASTER state"), "Vigil: \(subjects)")
        let fromKeepalived = try #require(all.first { $0.contains("Subject: [lvs01] VRRP Instance VI_1 - Entering MASTER state") })
        let fromVigil = try #require(all.first { $0.contains("Subject: [lvs02] VRRP Instance VI_1 - Entering MASTER state") })
        #expect(fromVigil.map { $0.replacingOccurrences(of: "lvs02", with: "lvs01") } == fromKeepalived, "keepalived \(fromKeepalived)\nVigil \(fromVigil)")
        #expect(lab.log("lvs02").contains("SMTP alert successfully sent"))
    }
}

/// keepalived's notify FIFO against keepalived 2.2.7: the same director (lvs01, alone), the same
/// events (election, the track script failing and recovering), the same lines, in order.
@Suite(.serialized) struct NotifyFIFOLabTests {
    static let fifo = "\(Lab.state)/vrrp.fifo"

    /// What is waiting in the FIFO, read without blocking while the daemon still holds it.
    func drain() -> [String] {
        let fd = open(Self.fifo, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return ["(cannot open \(Self.fifo): errno \(errno))"] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func keepalivedAndVigilWriteTheSameLines() throws {
        try withVariantLab("fifo", { text in
            text.replacingOccurrences(of: "    script_user nobody\n", with: """
                    script_user nobody
                    vrrp_notify_fifo \(Self.fifo)
                    vrrp_notify_priority_changes

                """)
        }) { lab in
            var lines: [String: [String]] = [:]
            for daemon in ["keepalived", "vigil"] {
                try lab.start("lvs01", daemon)
                #expect(lab.wait(8) { lab.holders() == ["lvs01"] }, "\(daemon): \(lab.holders())")
                lab.lab(["haproxy-down", "lvs01"])
                #expect(lab.wait(6) { lab.log("lvs01").components(separatedBy: "Changing effective priority from 100 to 90").count > lines.count + 1 })
                lab.lab(["haproxy-up", "lvs01"])
                #expect(lab.wait(6) { lab.log("lvs01").components(separatedBy: "Changing effective priority from 90 to 100").count > lines.count + 1 })
                usleep(300_000)
                lines[daemon] = drain()
                lab.lab(["stop", "lvs01"])
                // Made by the daemon, so removed by it at stop.
                #expect(lab.wait(3) { access(Self.fifo, F_OK) != 0 }, "\(daemon) left \(Self.fifo) behind")
            }
            let expected = ["INSTANCE \"VI_1\" BACKUP 100", "INSTANCE \"VI_1\" MASTER 100",
                            "INSTANCE \"VI_1\" MASTER_PRIORITY 90", "INSTANCE \"VI_1\" MASTER_PRIORITY 100"]
            #expect(lines["keepalived"] == expected, "keepalived: \(lines["keepalived"] ?? [])")
            #expect(lines["vigil"] == lines["keepalived"], "vigil: \(lines["vigil"] ?? [])\n\(lab.log("lvs01").suffix(3000))")
        }
    }
}

/// keepalived's old unicast VRRPv3 checksum against keepalived 2.2.7: lvs01 (keepalived) sends
/// it because its configuration says so; Vigil on lvs02 follows it, stays backup, and takes
/// over when lvs01 dies.
@Suite(.serialized) struct OldChecksumLabTests {
    static func edit(_ text: String) -> String {
        let lvs01 = text.contains("router_id lvs01")
        return text.replacingOccurrences(of: "    advert_int 1\n", with: """
                advert_int 1
                version 3
                unicast_src_ip 172.16.10.\(lvs01 ? 41 : 42)
                unicast_peer {
                    172.16.10.\(lvs01 ? 42 : 41)
                }
            \(lvs01 ? "    old_unicast_checksum\n" : "")
            """).replacingOccurrences(of: "    authentication {\n        auth_type PASS\n        auth_pass 11111\n    }\n", with: "")
    }

    @Test func vigilFollowsKeepalivedsOldChecksum() throws {
        try withVariantLab("oldsum", Self.edit) { lab in
            try lab.start("lvs01", "keepalived")
            #expect(lab.wait(8) { lab.holders() == ["lvs01"] }, "\(lab.holders())")
            try lab.start("lvs02", "vigil")
            #expect(lab.wait(5) { lab.log("lvs02").contains("(VI_1) Setting unicast VRRPv3 checksum to old version") }, "\(lab.log("lvs02").suffix(2000))")
            usleep(3_000_000)
            #expect(lab.holders() == ["lvs01"], "one master: \(lab.holders())\n\(lab.log("lvs02").suffix(2000))")
            #expect(!lab.log("lvs02").contains("Entering MASTER STATE"))
            lab.lab(["kill", "lvs01"])
            #expect(lab.wait(6) { lab.holders().contains("lvs02") }, "\(lab.holders())")
        }
    }
}
