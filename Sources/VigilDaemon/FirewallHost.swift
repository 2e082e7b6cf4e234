import Addressing
import Logging
import ScriptRunner
import VRRPSpecs

/// keepalived's nftables rules (`FirewallRules`), applied by running `nft` as a child process:
/// the rule set is rendered whole. On transitions it runs in the background, one run at a
/// time, and a change that comes while one runs is applied when it ends (the last one wins).
/// At start, reload and stop it is waited for: a VMAC's rule must hold before the VMAC exists
/// (its first IGMP or MLD report leaves within a second of its socket joining the advert
/// group), and the tables must be gone when the daemon is. Vigil's static executable cannot
/// link libnftables (Debian ships no static build of it).
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
    /// The rule set wanted (nil: no table), and the one nft was last given (nil: none ever).
    private var wanted: String?
    private var applying: String?
    private var running = false
    private var warnedMissing = false
    private var serial = 0
    /// Set at stop: changes are only recorded, `removeAll` settles them.
    var stopping = false
    private let runNow: (ScriptSpec, Int64) -> (success: Bool, output: String)

    init(scripts: ScriptHost, nft: String?, runNow: @escaping (ScriptSpec, Int64) -> (success: Bool, output: String), logger: Logger) {
        self.scripts = scripts
        self.nft = nft
        self.runNow = runNow
        self.logger = logger
    }

    /// A VMAC about to be made: its rule is in place when this returns (or a failure is logged).
    func addVMAC(_ vmac: FirewallRules.VMAC) {
        guard !vmacs.contains(vmac) else { return }
        vmacs.append(vmac)
        wanted = render()
        applyNow(wanted!, why: "\(vmac.name)'s IGMP and MLD reports would carry the virtual MAC")
    }

    func configure(table: String?, priority: Int) {
        let name = table ?? "keepalived"
        if name != self.table, applying != nil {
            // The old table goes before the new one is made.
            applyNow(FirewallRules.removal(table: self.table), why: "table \(self.table) stays")
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

    /// The addresses a no_accept instance holds now (none when it holds none).
    func setDropped(_ addresses: [IPAddress], for instance: String) {
        guard dropRulesAsked, dropped[instance] ?? [] != addresses else { return }
        logger.info("(\(instance)) \(addresses.isEmpty ? "removing" : "setting") firewall drop rule")
        dropped[instance] = addresses.isEmpty ? nil : addresses
        update()
    }

    /// After a reload: instances gone or renamed drop nothing any more.
    func keepDropped(for instances: Set<String>) {
        let before = dropped.count
        dropped = dropped.filter { instances.contains($0.key) }
        if dropped.count != before { update() }
    }

    /// At stop, or after a failed start: the tables go, waited for.
    func removeAll() {
        vmacs = []
        dropped = [:]
        wanted = nil
        if applying != nil { applyNow(FirewallRules.removal(table: table), why: "table \(table) stays") }
    }

    private func render() -> String? {
        vmacs.isEmpty && dropped.isEmpty ? nil
            : FirewallRules.script(table: table, priority: priority, vmacs: vmacs, dropped: dropped.values.flatMap { $0 })
    }

    private var desiredText: String { wanted ?? FirewallRules.removal(table: table) }

    private func update() {
        let next = render()
        guard next != wanted else { return }
        wanted = next
        if !running && !stopping { launch(desiredText) }
    }

    private func applyNow(_ script: String, why: String) {
        guard let nft else { return warnMissing() }
        let (success, output) = runNow(ScriptSpec(nft, arguments: [script]), 5_000_000)
        // A run in flight ends with older rules: `finished` applies the wanted ones again.
        if !running { applying = script }
        if !success {
            logger.error("nft refused Vigil's rules for table \(table) (\(why)): \(output.split(separator: "\n").prefix(3).joined(separator: " | "))")
        }
    }

    private func launch(_ script: String) {
        guard let nft else { return warnMissing() }
        serial += 1
        do {
            try scripts.runFirewall(nft, script: script, serial: serial)
            running = true
            applying = script
        } catch {
            logger.error("nft cannot be started: \(error)")
        }
    }

    private func warnMissing() {
        guard !warnedMissing else { return }
        logger.warning("nftables (nft) is not installed: no firewall rules for VMAC IGMP reports or no_accept (apt-get install nftables)")
        warnedMissing = true
    }

    /// A background run of nft ended: report a refusal, and apply what changed meanwhile.
    func finished(success: Bool) {
        running = false
        if !success { logger.error("nft refused Vigil's rules for table \(table): the firewall is as it was before") }
        if applying != desiredText && !stopping { launch(desiredText) }
    }
}
