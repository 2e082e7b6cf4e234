import Foundation
import Testing

/// keepalived's top-level `net_namespace` and `instance`, against keepalived 2.2.7 on the same
/// file: each daemon is started in one namespace of this test's (`a`) and runs its VRRP in
/// another (`b`), whose link `vnsonly` exists nowhere else. `-t` looks for the link in
/// `b`; the VIP appears there; the pid file is in a directory of the namespace's name, named
/// after the instance (keepalived's /run/keepalived/NS/keepalived_INST.pid, Vigil's
/// /run/vigil/NS/vigil_INST.pid beside its control socket).
@Suite(.serialized) struct NetNamespaceLabTests {
    @Test func bothDaemonsRunInTheNamedNamespace() throws {
        guard requireLab() else { return }
        let pair = try ExtrasPair("netns")
        // A veth with both ends in b (this kernel has no dummy links).
        try pair.must(["ip", "-n", pair.b, "link", "add", "vnsonly", "type", "veth", "peer", "name", "vnspeer"])
        for link in ["vnsonly", "vnspeer"] { try pair.must(["ip", "-n", pair.b, "link", "set", link, "up"]) }
        try pair.must(["ip", "-n", pair.b, "addr", "add", "10.61.0.1/24", "dev", "vnsonly"])
        let instance = "t\(getpid())"
        let config = """
            net_namespace \(pair.b)
            instance \(instance)
            vrrp_instance VI_NS {
                state MASTER
                interface vnsonly
                virtual_router_id 61
                priority 150
                advert_int 1
                virtual_ipaddress {
                    10.61.0.100/24
                }
            }

            """
        let path = "\(pair.directory)/netns.conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let elsewhere = "\(pair.directory)/elsewhere.conf"
        try config.replacingOccurrences(of: "net_namespace \(pair.b)\n", with: "").write(toFile: elsewhere, atomically: true, encoding: .utf8)
        let vigilRun = "/run/vigil/\(pair.b)", keepalivedRun = "/run/keepalived/\(pair.b)"
        defer {
            try? FileManager.default.removeItem(atPath: vigilRun)
            try? FileManager.default.removeItem(atPath: keepalivedRun)
        }

        // -t: the link is looked for in b, as keepalived looks for it; without the keyword it is missing.
        for program in ["keepalived", vigilBinary] {
            let inB = run(["ip", "netns", "exec", pair.a, program, "-t", "-f", path])
            #expect(inB.status == 0, "\(program) -t with net_namespace: \(inB.status)\n\(inB.output)")
            let inA = run(["ip", "netns", "exec", pair.a, program, "-t", "-f", elsewhere])
            #expect(inA.status != 0, "\(program) -t without net_namespace finds no vnsonly in a")
        }

        for (program, pidFile) in [("keepalived", "\(keepalivedRun)/keepalived_\(instance).pid"), ("vigil", "\(vigilRun)/vigil_\(instance).pid")] {
            let binary = program == "vigil" ? vigilBinary : "keepalived"
            let extra = program == "keepalived" ? " -P" : ""
            let log = "\(pair.directory)/\(program).log"
            let started = run(["ip", "netns", "exec", pair.a, "sh", "-c", "'\(binary)' -n -l -D\(extra) -f '\(path)' > '\(log)' 2>&1 < /dev/null & echo $!"])
            let launched = Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            defer { if launched > 0 { kill(launched, SIGKILL) } }
            let up = ExtrasPair.wait(8) { pair.holds(pair.b, "10.61.0.100/24") }
            let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            #expect(up, "\(program): no VIP in \(pair.b)\n\(text())")
            #expect(!pair.holds(pair.a, "10.61.0.100/24"), "\(program): the VIP is in the launching namespace")
            let pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            #expect(pid == launched, "\(program): pid file \(pidFile) holds \(pid.map(String.init) ?? "nothing"), started \(launched)")
            if program == "vigil" {
                #expect(text().contains("Changing syslog ident to Vigil_\(pair.b)_\(instance)"), "\(text())")
                let status = run([vigilBinary, "status", "--json", "--control", "\(vigilRun)/vigil_\(instance).sock"])
                #expect(status.status == 0 && status.output.contains("\"MASTER\""), "\(status.output)")
            }
            kill(launched, SIGTERM)
            let gone = ExtrasPair.wait(5) { !pair.holds(pair.b, "10.61.0.100/24") && kill(launched, 0) != 0 }
            #expect(gone, "\(program): still running or VIP left after SIGTERM\n\(text())")
        }

        // A namespace that is not there: keepalived exits; Vigil does too, and says why at -t.
        let missing = "\(pair.directory)/missing.conf"
        try config.replacingOccurrences(of: "net_namespace \(pair.b)", with: "net_namespace \(pair.b)-missing").write(toFile: missing, atomically: true, encoding: .utf8)
        let test = run(["ip", "netns", "exec", pair.a, vigilBinary, "-t", "-f", missing])
        #expect(test.status == 4 && test.output.contains("net_namespace \(pair.b)-missing: cannot enter it"), "\(test.output)")
        let daemon = run(["ip", "netns", "exec", pair.a, "timeout", "10", vigilBinary, "-n", "-l", "-f", missing])
        #expect(daemon.status == 2 && daemon.output.contains("cannot enter it"), "\(daemon.status)\n\(daemon.output)")
    }
}
