import Addressing

/// Keywords keepalived acts on that Vigil accepts and does not act on yet. Accepting them keeps
/// a keepalived.conf loadable unchanged; saying so keeps the promise that nothing is ignored
/// without a word: each one present gets a warning naming it and its line, in `vigil -t`
/// (without `-D`) and in the daemon's log at start and at each reload. The warnings are of
/// class note, so `-t`'s exit status stays keepalived's.
///
/// The interpreter records where each of these keywords was written (`notActedOn` of the scope);
/// the keywords it stores into the model without Vigil using them yet are listed here too, so
/// that acting on one is one line removed from a list.
public enum NotActedOn {
    /// Parsed into the model, not acted on: recorded by the interpreter with their location.
    static let modelledGlobals: Set<String> = []
    static let modelledInstance: Set<String> = []

    /// What the user loses, by keyword: the part of the warning after the colon.
    static let consequences: [String: String] = {
        var table: [String: String] = [:]
        func set(_ keywords: [String], _ text: String) { for k in keywords { table[k] = text } }
        set(["track_bfd", "bfd_instance"], "BFD is not run")
        set(["use_vmac_addr", "vmac_addr_prefix"], "the VMAC's addresses are not exported to the parent interface")
        set(["use_ipvlan"], "no ipvlan interface is made: use use_vmac")
        set(["vrrp_iptables"], "no iptables rules are added: give nftables for no_accept's drop rules")
        set(["nftables_counters", "nftables_ifindex"], "the nftables rules carry no counters and match interfaces by name")
        set(["nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark"], "no nftables rules are added for IPVS")
        set(["snmp_socket", "enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_checker", "enable_snmp_rfc",
             "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps", "snmp_name"], "there is no SNMP agent; see vigil status and --metrics")
        set(["enable_dbus", "dbus_service_name"], "there is no DBus interface; see vigil status")
        set(["bfd_priority", "bfd_rt_priority", "bfd_rlimit_rttime", "bfd_rlimit_rtime", "bfd_cpu_affinity", "bfd_no_swap"],
            "there is no BFD process to schedule")
        set(["process_names", "process_name", "vrrp_process_name", "checker_process_name", "bfd_process_name"],
            "Vigil runs as one process and does not rename it")
        set(["net_namespace_ipvs"], "IPVS is driven in Vigil's own network namespace")
        set(["vrf"], "adverts are not bound to the VRF")
        set(["garp_group"], "the group's garp_interval and gna_interval are not applied to its interfaces")
        set(["debug"], "use vigil -D")
        set(["data_use_instance"],
            "the dumps are written as keepalived 2.2.7 writes them, in $TMPDIR or /tmp")
        set(["vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
             "vrrp_netlink_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
             "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
             "process_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "kernel_rx_buf_size"],
            "Vigil's sockets keep the kernel's default buffer sizes")
        return table
    }()

    /// Appends one warning per keyword present that Vigil does not act on.
    public static func report(_ config: Configuration, _ diagnostics: inout DiagnosticSink) {
        // The scope is named only when there is a warning: 4,000 real servers mostly have none.
        func warn(_ scope: @autoclosure () -> String, _ keywords: [String: SourceLocation]) {
            guard !keywords.isEmpty else { return }
            let scope = scope()
            for (keyword, location) in keywords.sorted(by: { ($0.value.line, $0.value.column) < ($1.value.line, $1.value.column) }) {
                let consequence = consequences[keyword] ?? "Vigil does not act on it yet"
                diagnostics.warning(location, "\(scope)'\(keyword)' is not acted on by Vigil yet: \(consequence)", klass: .note)
            }
        }
        warn("", config.globals.notActedOn)
        for group in config.syncGroups { warn("vrrp_sync_group \(group.name): ", group.notActedOn) }
        for instance in config.instances {
            warn("(\(instance.name)) ", instance.notActedOn)
        }
        for vs in config.virtualServers {
            warn("virtual_server \(vs.key): ", vs.notActedOn)
            // Keywords of checkers Vigil does not run are covered by the warning that their real
            // server is not health-checked.
            for rs in vs.realServers {
                warn("real_server \(rs.address):\(rs.port): ", rs.notActedOn)
                for c in rs.checkers where c.kind != .bfd { warn("\(c.kind.rawValue) of \(rs.address):\(rs.port): ", c.notActedOn) }
            }
        }
    }
}
