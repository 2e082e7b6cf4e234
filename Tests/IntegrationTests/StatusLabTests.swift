import Foundation
import Testing

/// `vigil status --json` and `/metrics` on the lvs01/lvs02 lab, against what the interfaces and
/// tcpdump on the bridge show: before and after a failover, a reload, and hostile clients.
@Suite(.serialized) struct StatusLabTests {
    static let vip = "172.16.10.40/24"
    static let lvs01 = "172.16.10.41", lvs02 = "172.16.10.42"
    static let instance = #"{iname="VI_1",intf="eth0",vrid="77"}"#
    static let vipState = #"keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="77",ip_address="172.16.10.40/24"}"#

    static func socket(_ node: String) -> String { "\(Lab.state)/run/\(node)/vigil.sock" }

    /// The status document of `node`'s daemon, and its VI_1 instance.
    static func status(_ node: String) throws -> (document: [String: Any], instance: [String: Any]) {
        let result = run([vigilBinary, "status", "--json", "--control", socket(node)])
        guard result.status == 0, let document = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let instance = (document["instances"] as? [[String: Any]])?.first(where: { $0["iname"] as? String == "VI_1" }) else {
            throw LabError(message: "vigil status --json on \(node): \(result.status) \(result.output)")
        }
        return (document, instance)
    }

    static func counter(_ instance: [String: Any], _ name: String) -> Int { (instance["stats"] as? [String: Any])?[name] as? Int ?? -1 }

    /// One scrape of `node`'s /metrics as `series → value`.
    static func metrics(_ lab: Lab, _ node: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in lab.lab(["metrics", node]).output.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    /// Adverts from `source` in the capture so far.
    static func adverts(_ lab: Lab, from source: String) -> [CapturedPacket] {
        lab.capture().filter { $0.isAdvert && $0.source == source }
    }

    /// Waits until `source` has just sent an advert and returns how many the capture holds:
    /// a counter read right then, and the capture read 0.3 s later (well before the next
    /// advert), must then agree exactly.
    static func justAfterAdvert(_ lab: Lab, from source: String) -> Int? {
        let before = adverts(lab, from: source).count
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            let now = adverts(lab, from: source).count
            if now > before { return now }
            usleep(10_000)
        }
        return nil
    }

    @Test func statusAndMetricsMatchTheWireThroughAFailover() throws {
        guard requireLab() else { return }
        let lab = try Lab()
        lab.lab(["capture", "start"])
        defer { lab.lab(["capture", "stop"]) }
        try lab.start("lvs01", "vigil")
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
        try lab.start("lvs02", "vigil")
        usleep(7_000_000) // past lvs01's second GARP burst

        // Before: lvs01 MASTER with the VIP set, lvs02 BACKUP hearing it.
        var (one, two) = (try Self.status("lvs01").instance, try Self.status("lvs02").instance)
        #expect(one["state"] as? Int == 2 && one["vipset"] as? Bool == true)
        #expect((one["vips"] as? [String])?.first == "\(Self.vip) dev eth0 scope global set")
        #expect(two["state"] as? Int == 1 && two["vipset"] as? Bool == false)
        #expect(two["master_address"] as? String == Self.lvs01)
        #expect(one["auth_data"] as? String == "********")
        #expect(Self.metrics(lab, "lvs01")[Self.vipState] == 2)
        #expect(Self.metrics(lab, "lvs02")[Self.vipState] == 1)
        #expect(Self.counter(one, "become_master") == 1 && Self.counter(two, "become_master") == 0)

        // Adverts: lvs01's count is the wire's, exactly; lvs02 counts each one it hears.
        let k1 = try #require(Self.justAfterAdvert(lab, from: Self.lvs01))
        one = try Self.status("lvs01").instance
        let heard1 = Self.counter(try Self.status("lvs02").instance, "advert_rcvd")
        usleep(300_000)
        #expect(Self.adverts(lab, from: Self.lvs01).count == k1)
        #expect(Self.counter(one, "advert_sent") == k1, "lvs01 says \(Self.counter(one, "advert_sent")), the wire \(k1)")
        let k2 = try #require(Self.justAfterAdvert(lab, from: Self.lvs01))
        let sentMetric = Self.metrics(lab, "lvs01")["keepalived_advertisements_sent_total" + Self.instance]
        let heard2 = Self.counter(try Self.status("lvs02").instance, "advert_rcvd")
        #expect(sentMetric == Double(k2))
        #expect(heard2 - heard1 == k2 - k1, "lvs02 heard \(heard2 - heard1) of \(k2 - k1)")
        #expect(Self.metrics(lab, "lvs02")["keepalived_advertisements_received_total" + Self.instance] == Double(heard2))

        // Failover: lvs01 stops (one priority-0 advert), lvs02 takes over and announces.
        lab.lab(["stop", "lvs01"])
        #expect(lab.wait(5) { lab.holders() == ["lvs02"] })
        usleep(7_000_000) // past lvs02's second GARP burst
        let goodbye = lab.capture().filter { $0.isAdvert && $0.priority == 0 }
        #expect(goodbye.count == 1 && goodbye.first?.source == Self.lvs01, "\(goodbye.map(\.raw))")
        let garps = lab.capture().filter { $0.isGARP && $0.time > (goodbye.first?.time ?? 0) }.count
        two = try Self.status("lvs02").instance
        let m2 = Self.metrics(lab, "lvs02")
        #expect(two["state"] as? Int == 2 && two["vipset"] as? Bool == true)
        #expect(two["last_transition_from"] as? String == "BACKUP")
        #expect(Self.counter(two, "become_master") == 1 && Self.counter(two, "pri_zero_rcvd") == 1)
        #expect(m2[Self.vipState] == 2)
        #expect(m2["keepalived_become_master_total" + Self.instance] == 1)
        #expect(m2[#"vigil_vrrp_transitions_total{iname="VI_1",from="BACKUP",to="MASTER"}"#] == 1)
        #expect(m2["keepalived_priority_zero_received_total" + Self.instance] == 1)
        #expect(m2[#"vigil_vrrp_gratuitous_announcements_sent_total{iname="VI_1"}"#] == Double(garps), "the wire shows \(garps) GARPs")
        let k3 = try #require(Self.justAfterAdvert(lab, from: Self.lvs02))
        two = try Self.status("lvs02").instance
        usleep(300_000)
        #expect(Self.counter(two, "advert_sent") == k3 && Self.adverts(lab, from: Self.lvs02).count == k3)

        // A daemon that is not running: vigil status says so, with a non-zero status.
        let gone = run([vigilBinary, "status", "--control", Self.socket("lvs01")])
        #expect(gone.status == 3 && gone.output.contains("not running"), "\(gone)")

        // lvs01 comes back: BACKUP (nopreempt), and its status says so.
        try lab.start("lvs01", "vigil")
        usleep(5_000_000)
        #expect(lab.holders() == ["lvs02"])
        one = try Self.status("lvs01").instance
        #expect(one["state"] as? Int == 1 && one["master_address"] as? String == Self.lvs02)
        #expect(Self.metrics(lab, "lvs01")[Self.vipState] == 1)

        // A reload through the control socket is answered and counted.
        let reload = lab.lab(["ask", "lvs02", "reload"])
        #expect(reload.status == 0 && reload.output.contains("nothing changed"), "\(reload.output)")
        let reloads = try Self.status("lvs02").document["vigil"] as? [String: Any]
        #expect((reloads?["reloads"] as? [String: Any])?["unchanged"] as? Int == 1)
        #expect(Self.metrics(lab, "lvs02")[#"vigil_reloads_total{result="unchanged"}"#] == 1)
        let table = lab.lab(["ask", "lvs02", "status"])
        #expect(table.status == 0 && table.output.contains("MASTER") && table.output.contains("172.16.10.40/24"), "\(table.output)")
    }

    /// Clients that connect and never send, never read, send megabytes or come forty at once,
    /// on the control socket and on /metrics: the master's adverts keep their second.
    @Test func hostileClientsDoNotDelayAdverts() throws {
        guard requireLab() else { return }
        let (lab, directory) = try ReloadLabTests.settledPair("hostile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = directory + "/hostile.py"
        try """
        import socket, sys, time
        control, port = sys.argv[1], int(sys.argv[2])
        held = []
        def unix():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(control); return s
        def tcp():
            s = socket.create_connection(("127.0.0.1", port)); return s
        for make, request in ((unix, b"status json\\n"), (tcp, b"GET /metrics HTTP/1.1\\r\\n\\r\\n")):
            for _ in range(40):
                try: held.append(make())                      # silent, and more than the cap
                except OSError: pass
            deaf = make(); deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024); held.append(deaf)
            try: deaf.sendall(request)
            except OSError: pass                              # over the cap: refused and closed
            flood = make(); flood.setblocking(False); held.append(flood)
            sent, end = 0, time.time() + 2
            while sent < 10 * 1024 * 1024 and time.time() < end:
                try: sent += flood.send(b"A" * 65536)
                except BlockingIOError: time.sleep(0.01)
                except OSError: break
        time.sleep(6)
        print("held", len(held))
        """.write(toFile: script, atomically: true, encoding: .utf8)
        lab.lab(["capture", "start"])
        usleep(1_500_000)
        let hostile = run(["ip", "netns", "exec", "vlab-lvs01", "/usr/bin/python3", script, Self.socket("lvs01"), "9165"])
        usleep(1_000_000)
        lab.lab(["capture", "stop"])
        #expect(hostile.status == 0 && hostile.output.contains("held"), "\(hostile.output)")
        let regular = ReloadLabTests.onlyTheMastersRegularAdverts(lab.capture())
        #expect(regular.ok, "with hostile clients: \(regular.why)")
        print("hostile clients on lvs01's control socket and /metrics: \(regular.why)")
        // And both still answer.
        #expect((try? Self.status("lvs01").instance["state"] as? Int) == 2)
        #expect(Self.metrics(lab, "lvs01")[Self.vipState] == 2)
    }

    /// The kind of each top-level value of every object in a JSON text: bool, number, string, array.
    static func kinds(_ json: String) -> [String: String] {
        var kinds: [String: String] = [:]
        let pattern = try! NSRegularExpression(pattern: #""([a-z_]+)":\s*(true|false|-?[0-9]|"|\[|\{)"#)
        for match in pattern.matches(in: json, range: NSRange(json.startIndex..., in: json)) {
            let key = String(json[Range(match.range(at: 1), in: json)!])
            let start = json[Range(match.range(at: 2), in: json)!]
            kinds[key] = start == "true" || start == "false" ? "bool" : start == "\"" ? "string" : start == "[" ? "array" : start == "{" ? "object" : "number"
        }
        return kinds
    }

    /// keepalived 2.2.7 and Vigil side by side, each asked for its three dumps with the same
    /// signals: the JSON has the same fields of the same types, the stats file the same lines,
    /// the data file the lines the exporters parse; Vigil masks the password.
    @Test func dumpsHaveKeepalivedsShape() throws {
        guard requireLab() else { return }
        let lab = try Lab()
        try lab.start("lvs01", "keepalived")
        #expect(lab.wait(8) { lab.holders() == ["lvs01"] })
        try lab.start("lvs02", "vigil")
        usleep(3_000_000)
        var files: [String: [String: String]] = [:]
        for node in ["lvs01", "lvs02"] {
            let record = try String(contentsOfFile: "\(Lab.state)/pids/daemon-\(node).pid", encoding: .utf8)
            let pid = try #require(Int32(record.split(separator: " ")[0]))
            let directory = "\(Lab.state)/run/\(node)"
            for name in ["keepalived.data", "keepalived.stats", "keepalived.json"] { unlink("\(directory)/\(name)") }
            // --signum gives each its numbers, as an exporter asks them.
            for function in ["DATA", "STATS", "JSON"] {
                let program = node == "lvs01" ? "keepalived" : vigilBinary
                let number = run([program, "--signum=\(function)"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
                kill(pid, try #require(Int32(number), "\(program) --signum=\(function): \(number)"))
            }
            _ = lab.wait(3) { ["keepalived.data", "keepalived.stats", "keepalived.json"].allSatisfy { access("\(directory)/\($0)", R_OK) == 0 } }
            var texts: [String: String] = [:]
            for name in ["keepalived.data", "keepalived.stats", "keepalived.json"] {
                texts[name] = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
                let mode = ((try FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)"))[.posixPermissions] as? Int) ?? -1
                #expect(mode == 0o600, "\(node) \(name) mode \(String(mode, radix: 8))")
            }
            files[node] = texts
        }
        let keepalived = try #require(files["lvs01"]), vigil = try #require(files["lvs02"])

        let referenceJSON = try #require(keepalived["keepalived.json"]), vigilJSON = try #require(vigil["keepalived.json"])
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(referenceJSON.utf8)) as? [[String: [String: Any]]])
        let ours = try #require(try JSONSerialization.jsonObject(with: Data(vigilJSON.utf8)) as? [[String: [String: Any]]])
        #expect(Set(reference[0]["data"]!.keys) == Set(ours[0]["data"]!.keys), "keepalived \(referenceJSON)\nvigil \(vigilJSON)")
        #expect(Set(reference[0]["stats"]!.keys) == Set(ours[0]["stats"]!.keys))
        let (referenceKinds, ourKinds) = (Self.kinds(referenceJSON), Self.kinds(vigilJSON))
        for (key, kind) in referenceKinds { #expect(ourKinds[key] == kind, "\(key): keepalived \(kind), vigil \(ourKinds[key] ?? "none")") }
        #expect(reference[0]["data"]!["auth_data"] as? String == "11111", "keepalived 2.2.7 shows the password")
        #expect(ours[0]["data"]!["auth_data"] as? String == "********")
        #expect(ours[0]["data"]!["track_script"] as? [String] == reference[0]["data"]!["track_script"] as? [String])
        #expect(ours[0]["data"]!["state"] as? Int == 1 && reference[0]["data"]!["state"] as? Int == 2)

        func digitless(_ text: String?) -> String { (text ?? "").replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression) }
        #expect(digitless(keepalived["keepalived.stats"]) == digitless(vigil["keepalived.stats"]))

        // The lines mehdy/keepalived-exporter's and gen2brain's text parsers read.
        let parsed = [" VRRP Instance = VI_1", "   State = ", "   Wantstate = ", "   Last transition = ", "   Interface = eth0",
                      "   Virtual Router ID = 77", "   Priority = ", "   Effective priority = ", "   Virtual IP (1):",
                      "     172.16.10.40/24 dev eth0 scope global", " VRRP Script = chk_haproxy",
                      "   Command = '/etc/keepalived/check_haproxy.sh'", "   Status = GOOD", "   State = idle"]
        for prefix in parsed {
            let inReference = keepalived["keepalived.data"]!.split(separator: "\n").contains { $0.hasPrefix(prefix) }
            let inOurs = vigil["keepalived.data"]!.split(separator: "\n").contains { $0.hasPrefix(prefix) }
            #expect(inReference && inOurs, "'\(prefix)': keepalived \(inReference), vigil \(inOurs)")
        }
        let transition = #"   Last transition = [0-9]+\.[0-9]{6} \([A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}\.[0-9]{6} [0-9]{4}\)"#
        for (node, text) in [("keepalived", keepalived["keepalived.data"]!), ("vigil", vigil["keepalived.data"]!)] {
            #expect(text.range(of: transition, options: .regularExpression) != nil, "\(node)'s Last transition line")
        }
        #expect(vigil["keepalived.data"]!.contains("   Master router = 172.16.10.41\n"))
        #expect(!vigil["keepalived.data"]!.contains("11111"))
    }
}
