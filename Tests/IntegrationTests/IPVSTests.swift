import Foundation
import Testing

/// IPVS needs a kernel that has it; this machine's does not, so the scenarios run in one boot
/// of Debian's kernel under QEMU (contrib/kernel-lab) and report one TAP-style line per case.
@Suite(.serialized) struct IPVSKernelLabTests {
    @Test func ipvsScenariosPassInARealKernel() throws {
        if getuid() != 0 || !FileManager.default.isExecutableFile(atPath: vigilBinary) {
            let why = getuid() != 0 ? "needs root" : "\(vigilBinary) is not built"
            if isCI { Issue.record("cannot run under CI: \(why)") }
            return
        }
        let result = run(["env", "VIGIL_BIN_DIR=\(URL(fileURLWithPath: vigilBinary).deletingLastPathComponent().path)",
                          repositoryRoot + "/contrib/kernel-lab/ipvs-suite.sh"])
        let lines = result.output.split(separator: "\n")
        let passed = lines.filter { $0.hasPrefix("ok ") }
        let failed = lines.filter { $0.hasPrefix("not ok ") }
        for line in failed { Issue.record("\(line)") }
        #expect(result.status == 0, "kernel lab run failed:\n\(result.output)")
        // Every scenario reported, so a guest that died half-way cannot pass.
        #expect(passed.count >= 171, "only \(passed.count) cases passed:\n\(result.output)")
        #expect(result.output.contains("kernel-lab: PASS"))
    }
}

/// On a kernel without IPVS (this host's), virtual servers cannot be installed: Vigil must say
/// what to do about it and keep VRRP running, where keepalived's checker exits and takes the
/// whole daemon down (reference §4.1).
@Suite(.serialized) struct NoIPVSTests {
    /// A pid file that cannot be written (its directory gone, the disk full) is logged and the
    /// daemon runs on: a failover daemon must not stay down for want of a pid file.
    @Test func anUnwritablePidFileIsLoggedAndVRRPRuns() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run under CI: \(reason)") }
            return
        }
        let pair = try ExtrasPair("nopid")
        try pair.start(pair.a, "a", config: """
        vrrp_instance VI_1 {
            state MASTER
            interface vx0
            virtual_router_id 62
            priority 150
            advert_int 1
            virtual_ipaddress {
                10.99.0.62/24
            }
        }
        """, pidFile: "/nonexistent-vigil-dir/vigil.pid")
        #expect(ExtrasPair.wait(6) { pair.holds(pair.a, "10.99.0.62/24") }, "VIP not taken:\n\(pair.log("a"))")
        #expect(pair.log("a").contains("cannot write pid file /nonexistent-vigil-dir/vigil.pid"), "\(pair.log("a"))")
    }

    @Test func vrrpKeepsRunningAndTheLogSaysModprobe() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run under CI: \(reason)") }
            return
        }
        let pair = try ExtrasPair("noipvs")
        try pair.start(pair.a, "a", config: """
        vrrp_instance VI_1 {
            state MASTER
            interface vx0
            virtual_router_id 61
            priority 150
            advert_int 1
            virtual_ipaddress {
                10.99.0.61/24
            }
        }
        virtual_server 10.99.0.61 80 {
            delay_loop 1
            lb_algo rr
            lb_kind DR
            protocol TCP
            real_server 10.99.0.2 80 {
                TCP_CHECK {
                    connect_timeout 1
                }
            }
        }
        """)
        #expect(ExtrasPair.wait(6) { pair.holds(pair.a, "10.99.0.61/24") }, "VIP not taken:\n\(pair.log("a"))")
        let log = pair.log("a")
        #expect(log.contains("modprobe ip_vs"), "\(log)")
        #expect(log.contains("VRRP keeps running"), "\(log)")
        #expect(log.contains("Entering MASTER STATE"), "\(log)")
    }

    @Test func withoutVRRPThereIsNothingToRunAndVigilSaysSo() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run under CI: \(reason)") }
            return
        }
        let ns = try Namespace("noipvs-only", interfaces: [])
        let path = NSTemporaryDirectory() + "vigil-noipvs-\(getpid()).conf"
        try """
        virtual_server 10.99.0.61 80 {
            lb_algo rr
            lb_kind NAT
            protocol TCP
            real_server 10.99.0.2 80 {
            }
        }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let result = ns.exec([vigilBinary, "-n", "-l", "-f", path, "-p", path + ".pid", "--control", path + ".sock"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("modprobe ip_vs"), "\(result.output)")
        #expect(result.output.contains("nothing left to run"), "\(result.output)")
    }
}
