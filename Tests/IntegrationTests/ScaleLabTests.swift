import Foundation
import Testing

/// The fault matrix's scale rows: 255 instances on one interface, and VRRPv3 at advert_int
/// 0.05 s while both cores are busy, between two Vigil daemons in namespaces of our own; what
/// must hold is zero false failovers (no backup ever becomes master).
@Suite(.serialized) struct ScaleLabTests {
    /// `make test` soaks for 60 s; `make faults` (which CI also runs) for the matrix's
    /// 10 minutes, through VIGIL_SOAK_SECONDS.
    static var soakSeconds: Double { Double(ProcessInfo.processInfo.environment["VIGIL_SOAK_SECONDS"] ?? "") ?? 60 }

    static func instances(_ count: Int, priority: Int, version: Int = 2, advert: String = "1") -> String {
        (1...count).map { vrid in
            """
            vrrp_instance VI_\(vrid) {
                state BACKUP
                interface vx0
                virtual_router_id \(vrid)
                priority \(priority)
                advert_int \(advert)
                version \(version)
                virtual_ipaddress {
                    10.98.\(vrid / 256).\(vrid % 256)/32
                }
            }
            """
        }.joined(separator: "\n")
    }

    /// How many times a daemon's log says an instance became MASTER.
    static func masterTransitions(_ pair: ExtrasPair, _ name: String) -> Int {
        pair.log(name).split(separator: "\n").filter { $0.contains("Entering MASTER STATE") }.count
    }

    static func instanceStates(_ pair: ExtrasPair, _ name: String) -> [String: Int] {
        let status = run([vigilBinary, "status", "--control", "\(pair.directory)/\(name).sock"]).output
        var counts: [String: Int] = [:]
        for line in status.split(separator: "\n") where line.hasPrefix("VI_") {
            let columns = line.split(separator: " ")
            if columns.count > 1 { counts[String(columns[1]), default: 0] += 1 }
        }
        return counts
    }

    @Test func twoHundredFiftyFiveInstancesOnOneInterfaceNeverFailOver() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run under CI: \(reason)") }
            return
        }
        let pair = try ExtrasPair("scale255")
        try pair.start(pair.a, "a", config: Self.instances(255, priority: 150))
        try pair.start(pair.b, "b", config: Self.instances(255, priority: 100))
        let settled = ExtrasPair.wait(20) { Self.instanceStates(pair, "a")["MASTER"] == 255 && Self.instanceStates(pair, "b")["BACKUP"] == 255 }
        #expect(settled, "a: \(Self.instanceStates(pair, "a")), b: \(Self.instanceStates(pair, "b"))\n\(pair.log("b").suffix(2000))")
        let before = Self.masterTransitions(pair, "b")
        usleep(UInt32(min(Self.soakSeconds, 60) * 1_000_000))
        #expect(Self.masterTransitions(pair, "b") == before, "a backup became master: \(pair.log("b").split(separator: "\n").filter { $0.contains("MASTER") }.suffix(5))")
        #expect(Self.instanceStates(pair, "a")["MASTER"] == 255 && Self.instanceStates(pair, "b")["BACKUP"] == 255)
        print("255 instances: \(Int(min(Self.soakSeconds, 60))) s, \(Self.masterTransitions(pair, "b") - before) false failovers")
    }

    @Test func vrrpv3AtFiftyMillisecondsWithBothCoresBusyNeverFailsOver() throws {
        if let reason = labUnavailableReason() {
            if isCI { Issue.record("cannot run under CI: \(reason)") }
            return
        }
        let pair = try ExtrasPair("soak50ms")
        try pair.start(pair.a, "a", config: Self.instances(1, priority: 150, version: 3, advert: "0.05"))
        try pair.start(pair.b, "b", config: Self.instances(1, priority: 100, version: 3, advert: "0.05"))
        #expect(ExtrasPair.wait(5) { pair.holds(pair.a, "10.98.0.1/32") && Self.instanceStates(pair, "b")["BACKUP"] == 1 })
        let before = Self.masterTransitions(pair, "b")
        // Both cores busy: one spinning process per core, at the daemons' own priority.
        var spinners: [Int32] = []
        for _ in 0..<2 {
            let started = run(["sh", "-c", "sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & echo $!"])
            if let pid = Int32(started.output.trimmingCharacters(in: .whitespacesAndNewlines)) { spinners.append(pid) }
        }
        defer { for pid in spinners { kill(pid, SIGKILL) } }
        #expect(spinners.count == 2)
        let seconds = Self.soakSeconds
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { usleep(1_000_000) }
        for pid in spinners { kill(pid, SIGKILL) }
        print("VRRPv3 at 0.05 s, both cores busy for \(Int(seconds)) s: \(Self.masterTransitions(pair, "b") - before) false failovers")
        #expect(Self.masterTransitions(pair, "b") == before, "false failovers: \(pair.log("b").split(separator: "\n").filter { $0.contains("MASTER") }.suffix(5))")
        #expect(pair.holds(pair.a, "10.98.0.1/32") && !pair.holds(pair.b, "10.98.0.1/32"))
    }
}
