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
}
