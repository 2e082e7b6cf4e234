import Foundation
import Testing

/// Active-active directors (contrib/ecmp-lab, `make demo-ecmp`) in one boot of the kernel lab:
/// three Vigil directors announce 10.95.0.1/32 through FRR to a router doing BGP ECMP; health
/// withdraws and restores a director's path as the router's FRR RIB shows; with mh and
/// lvs_sync_daemon the loss of a director drops no established connection, without sync it
/// drops some.
@Suite(.serialized) struct ECMPLabTests {
    @Test func connectionsSurviveADirectorsLossWithSyncAndNotWithout() throws {
        let tools = ["/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"]
        if getuid() != 0 || !FileManager.default.isExecutableFile(atPath: vigilBinary) || !tools.allSatisfy(FileManager.default.isExecutableFile) {
            let why = getuid() != 0 ? "needs root" : "vigil or FRR missing (make deps installs frr)"
            if isCI { Issue.record("cannot run under CI: \(why)") }
            return
        }
        let result = run(["env", "VIGIL_BIN_DIR=\(URL(fileURLWithPath: vigilBinary).deletingLastPathComponent().path)",
                          repositoryRoot + "/contrib/ecmp-lab/run.sh"])
        #expect(result.status == 0, "ECMP lab failed:\n\(result.output)")
        var values: [String: String] = [:]
        for line in result.output.split(separator: "\n") where line.hasPrefix("RESULT ") {
            let pair = line.dropFirst(7).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { values[String(pair[0])] = String(pair[1]) }
        }
        func number(_ key: String) -> Double? { values[key].flatMap(Double.init) }
        let context = result.output.split(separator: "\n").filter { !$0.contains("Connection reset") }.joined(separator: "\n")
        print(context.split(separator: "\n").filter { $0.hasPrefix("# ") || $0.hasPrefix("RESULT ") }.joined(separator: "\n"))
        for round in ["sync", "baseline"] {
            #expect(values["\(round).frr_nexthops"] == "3", "\(round): the router's RIB has 3 paths\n\(context)")
            #expect(values["\(round).d1_imports_table_198"] == "yes", "\(round): d1's zebra imports table 198")
            // BGP hold time 3 s (timers 1 3), then bgpd's and zebra's work on the guest's emulated
            // CPU: 3.1-7.8 s in the rounds of 2026-12-02 (5.25 s in the CI run that failed at 5).
            #expect((number("\(round).converged_s") ?? 99) <= 10, "\(round): converged in \(values["\(round).converged_s"] ?? "-") s")
            // Every connection lives until the loss, and every new one after it: the router hashes
            // each packet's 5-tuple, so a flow stays on its director (the lab's earlier L4 policy
            // reused the client socket's hash, which TCP redraws on a retransmission timeout, and
            // reset one to nine connections a run on a director that did not know them).
            #expect(values["\(round).alive_before"] == "24", "\(round): connections established before the loss\n\(context)")
            #expect(values["\(round).new_alive"] == "12", "\(round): new connections after the loss (all echoed after \(values["\(round).new_echoed_s"] ?? "-") s)\n\(context)")
            #expect((number("\(round).before.d1") ?? 0) > 0, "\(round): the router sent some of the first connections to d1")
            #expect((number("\(round).new.d2") ?? 0) > 0 && (number("\(round).new.d3") ?? 0) > 0, "\(round): new connections spread over d2 and d3")
        }
        #expect(values["sync.lost"] == "0", "with connection sync no established connection is lost\n\(context)")
        // Without sync every connection d1 had is lost, and with it those the router moves between
        // d2 and d3 when its nexthops go from three to two (hash-threshold ECMP re-divides the hash
        // space: 1 and 8 more than d1's 8 in the first two runs).
        #expect((number("baseline.lost") ?? 0) >= (number("baseline.before.d1") ?? 99), "without sync d1's connections are lost\n\(context)")
        // Health: d3's real servers unreachable, its route withdrawn (delay_loop 1, retry 1).
        #expect((number("health.withdrawn_s") ?? 99) <= 8, "withdrawn in \(values["health.withdrawn_s"] ?? "-") s")
        #expect(values["health.d3_rib_without_table_route"] == "yes")
        #expect((number("health.restored_s") ?? 99) <= 8, "restored in \(values["health.restored_s"] ?? "-") s")
    }
}
