import Addressing
import Logging
import ScriptRunner
import VRRPSpecs

/// keepalived's nftables rules (`FirewallRules`), applied by running `nft` as a child process
/// rather than in the loop: the rule set is rendered whole, one run at a time, and a change
/// that comes while one runs is applied when it ends (the last one wins). Vigil's static
/// executable cannot link libnftables (Debian ships no static build of it).
final class FirewallHost {
    private let scripts: ScriptHost
    private let logger: Logger
    /// nft's path; nil when nftables is not installed (then a warning, once, when needed).
    private let nft: String?
    private var table = "keepalived"
    private var priority = -1
    /// `nftables` in global_defs: the no_accept drop rules are wanted.
    private(set) var dropRulesAsked = false
    private var vmacs: [FirewallRules.VMAC] = []
    private var dropped: [String: [IPAddress]] = [:]
    /// The rule set wanted (nil: no table), and the one nft was last given.
    private var wanted: String?
    private var applying: String?
    private var running = false
    private var warnedMissing = false
    private var serial = 0

    /// Runs nft to the end (start and reload only: a VMAC's rule must hold before its socket
    /// joins the advert group, whose first IGMP report leaves within a second).
    private let runNow: (ScriptSpec, Int64) -> (success: Bool, output: String)

    init(scripts: ScriptHost, nft: String?, runNow: @escaping (ScriptSpec, Int64) -> (success: Bool, output: String), logger: Logger) {
        self.scripts = scripts
        self.nft = nft
        self.runNow = runNow
        self.logger = logger
    }

    /// A VMAC about to be used: its rule is in place when this returns (or a failure is logged).
    func addVMAC(_ vmac: FirewallRules.VMAC) {
        guard !vmacs.contains(vmac) else { return }
        vmacs.append(vmac)
        let next = FirewallRules.script(table: table, priority: priority, vmacs: vmacs, dropped: dropped.values.flatMap { $0 })
        wanted = next
        guard let nft else { return launch(next) }
        let (success, output) = runNow(ScriptSpec(nft, arguments: [next]), 5_000_000)
        if success {
            // A run in flight ends with older rules: it is applied again then.
            if !running { applying = next }
        } else {
            logger.error("nft refused Vigil's rules for table \(table) (\(vmac.name)'s IGMP reports would carry the virtual MAC): \(output.split(separator: "\n").prefix(3).joined(separator: " | "))")
        }
    }

    func configure(table: String?, priority: Int) {
        let name = table ?? "keepalived"
        if name != self.table, wanted != nil {
            // The old table goes first; the next update makes the new one.
            launch(FirewallRules.removal(table: self.table))
        }
        self.table = name
        self.priority = priority
        dropRulesAsked = table != nil
        if !dropRulesAsked { dropped = [:] }
        update()
    }

    func setVMACs(_ vmacs: [FirewallRules.VMAC]) {
        self.vmacs = vmacs
        update()
    }

    /// The addresses of a no_accept instance while it holds them (empty when it does not).
    func setDropped(_ addresses: [IPAddress], for instance: String) {
        guard dropRulesAsked, dropped[instance] ?? [] != addresses else { return }
        logger.info("(\(instance)) \(addresses.isEmpty ? "removing" : "setting") firewall drop rule")
        dropped[instance] = addresses.isEmpty ? nil : addresses
        update()
    }

    /// At stop: the tables go.
    func removeAll() {
        vmacs = []
        dropped = [:]
        update()
    }

    private var desiredText: String { wanted ?? FirewallRules.removal(table: table) }

    private func update() {
        let next = vmacs.isEmpty && dropped.isEmpty ? nil
            : FirewallRules.script(table: table, priority: priority, vmacs: vmacs, dropped: dropped.values.flatMap { $0 })
        guard next != wanted else { return }
        wanted = next
        if !running { launch(desiredText) }
    }

    private func launch(_ script: String) {
        guard let nft else {
            if !warnedMissing {
                logger.warning("nftables (nft) is not installed: no firewall rules for VMAC IGMP reports or no_accept (apt-get install nftables)")
                warnedMissing = true
            }
            return
        }
        serial += 1
        do {
            try scripts.runFirewall(nft, script: script, serial: serial)
            running = true
            applying = script
        } catch {
            logger.error("nft cannot be started: \(error)")
        }
    }

    /// A run of nft ended: report a refusal, and apply what changed meanwhile.
    func finished(success: Bool) {
        running = false
        if !success { logger.error("nft refused Vigil's rules for table \(table): the firewall is as it was before") }
        if applying != desiredText { launch(desiredText) }
    }
}
