import Addressing
import BodyRegex
/// Gives meaning to the statement tree: one function per block, each a switch over the block's
/// keywords. Keywords keepalived 2.2.7 knows but Vigil does not act on yet are accepted and listed
/// as notes (so `-t` stays quiet about them but `--dump-conf` and the docs are honest);
/// anything else is an error with the nearest known keyword suggested.
struct Interpreter {
    var reader = Reader()
    var config = Configuration()
    /// The first vrrp_instance read: a later global_defs cannot reach it here (instances are
    /// completed as they are read), while keepalived applies vrrp_strict and vrrp_version to it.
    var firstInstance: Token?
    /// iproute2's table, protocol, scope, realm and dsfield names (the host's, when there is one).
    var routingNames = RoutingNames()

    // MARK: top level

    static let topLevel = ["SSL", "global_defs", "vrrp_script", "track_file", "vrrp_track_file", "vrrp_track_process", "track_process", "vrrp_instance", "vrrp_sync_group",
                           "virtual_server_group", "virtual_server", "static_ipaddress", "static_routes",
                           "static_rules", "net_namespace", "instance", "use_pid_dir", "child_wait_time", "interface_up_down_delays",
                           "linkbeat_use_polling", "linkbeat_interfaces"]
    static let topLevelAccepted = ["net_namespace_ipvs", "namespace_with_ipsets",
                                   "bfd_instance", "garp_group", "track_group"]

    mutating func interpret(_ statements: [Statement]) {
        for s in statements {
            switch s.keyword {
            case "global_defs":
                if let block = reader.requireBlock(s) { globalDefs(block) }
            case "vrrp_script":
                if let name = reader.argument(s, expecting: "a script name"), let block = reader.requireBlock(s) {
                    vrrpScript(name, block)
                }
            case "vrrp_track_process", "track_process":
                if let name = reader.argument(s, expecting: "a track process name"), let block = reader.requireBlock(s) {
                    trackProcess(name, block)
                }
            case "track_file", "vrrp_track_file":
                if let name = reader.argument(s, expecting: "a track file name"), let block = reader.requireBlock(s) {
                    trackFile(name, block)
                }
            case "vrrp_instance":
                if let name = reader.argument(s, expecting: "an instance name"), let block = reader.requireBlock(s) {
                    vrrpInstance(name, block)
                }
            case "vrrp_sync_group":
                if let name = reader.argument(s, expecting: "a group name"), let block = reader.requireBlock(s) {
                    syncGroup(name, block)
                }
            case "virtual_server_group":
                if let name = reader.argument(s, expecting: "a group name"), let block = reader.requireBlock(s) {
                    virtualServerGroup(name, block)
                }
            case "virtual_server":
                if let block = reader.requireBlock(s) { virtualServer(s, block) }
            case "static_ipaddress":
                if let block = reader.requireBlock(s) {
                    config.staticAddresses += block.compactMap { virtualAddress($0, instanceInterface: nil) }
                }
            case "static_routes":
                if let block = reader.requireBlock(s) { config.staticRoutes += routeLines(block) }
            case "static_rules":
                if let block = reader.requireBlock(s) { config.staticRules += ruleLines(block) }
            case "use_pid_dir": config.globals.usePidDir = true; reader.noExtra(s, after: 0)
            case "child_wait_time":
                // keepalived's child_wait_handler: 0...UINT_MAX seconds.
                let word = s.words.count > 1 ? s.words[1] : nil
                if let word, let seconds = UInt32(word.text) {
                    config.globals.childWaitTime = Int(seconds)
                    reader.noExtra(s, after: 1)
                } else {
                    reader.diagnostics.error(word?.location ?? s.location, "Invalid child_wait_time \(word?.text ?? "(null)")", klass: .general)
                }
            case "net_namespace", "instance":
                // keepalived's net_namespace_handler and instance_handler: the first one wins.
                let what = s.keyword == "instance" ? "an instance name" : "a network namespace name"
                guard let name = reader.string(s, expecting: what) else { break }
                if s.keyword == "instance" {
                    if config.instanceName == nil { config.instanceName = name; break }
                } else if config.netNamespace == nil {
                    config.netNamespace = name
                    config.netNamespaceLocation = s.location
                    break
                }
                reader.diagnostics.error(s.location, "Duplicate \(s.keyword == "instance" ? "instance" : "net_namespace") definition \(name) - ignoring", klass: .general)
            case "SSL":
                if let block = reader.requireBlock(s) { sslBlock(s, block) }
            case "interface_up_down_delays":
                if let block = reader.requireBlock(s) { interfaceDelays(block) }
            case "linkbeat_use_polling":
                reader.noExtra(s, after: 0)
                config.globals.linkbeatUsePolling = true
            case "linkbeat_interfaces":
                if let block = reader.requireBlock(s) { linkbeatInterfaces(block) }
            default:
                if Self.topLevelAccepted.contains(s.keyword) {
                    config.globals.notActedOn[s.keyword] = s.location
                } else {
                    reader.unknown(s, in: "the top level", known: Self.topLevel + Self.topLevelAccepted)
                }
            }
        }
    }

    // MARK: global_defs

    static let globalKeywords = [
        "router_id", "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout",
        "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "no_checker_emails", "no_email_faults",
        "enable_script_security", "script_user", "notify_fifo", "notify_fifo_script", "vrrp_notify_fifo",
        "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script", "fifo_write_vrrp_states_on_reload",
        "vrrp_notify_priority_changes", "log_unknown_vrids", "umask", "rs_init_notifies", "checker_log_all_failures", "max_auto_priority", "min_auto_priority_delay", "random_seed", "startup_script", "startup_script_timeout",
        "shutdown_script", "shutdown_script_timeout", "vrrp_version", "vrrp_strict", "vrrp_garp_master_delay",
        "vrrp_garp_master_repeat", "vrrp_garp_master_refresh", "vrrp_garp_master_refresh_repeat",
        "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "vrrp_garp_interval", "vrrp_gna_interval",
        "vrrp_min_garp", "vrrp_garp_extra_if", "vrrp_vmac_garp_intvl", "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_skip_check_adv_addr",
        "vrrp_check_unicast_src", "vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert",
        "vrrp_down_timer_adverts", "vrrp_startup_delay", "default_interface",
        "dynamic_interfaces", "lvs_flush", "lvs_flush_on_stop", "lvs_timeouts", "disable_local_igmp", "reload_check_config", "reload_file",
        "reload_time_file", "reload_repeat", "vmac_prefix", "nftables", "nftables_priority", "lvs_sync_daemon",
        "vigil_announce_table", "vigil_announce_protocol",
        "vrrp_priority", "checker_priority", "vrrp_no_swap", "checker_no_swap", "vrrp_cpu_affinity",
        "checker_cpu_affinity", "vrrp_rt_priority", "checker_rt_priority", "vrrp_rlimit_rttime",
        "checker_rlimit_rttime", "vrrp_rlimit_rtime", "checker_rlimit_rtime",
    ]
    static let globalAccepted = [
        "tmp_config_directory", "config_save_dir", "process_names", "process_name", "vrrp_process_name",
        "checker_process_name", "bfd_process_name",
        "nftables_counters", "nftables_ifindex", "nftables_ipvs",
        "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "vrrp_iptables",
        "bfd_priority", "bfd_no_swap", "bfd_cpu_affinity", "bfd_rt_priority", "bfd_rlimit_rttime",
        "bfd_rlimit_rtime", "snmp_socket", "enable_snmp_vrrp", "enable_snmp_keepalived",
        "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps",
        "enable_dbus", "dbus_service_name",
        "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
        "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
        "process_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
        "vmac_addr_prefix",
        "include_check",
        "data_use_instance",
    ]

    /// keepalived's `lvs_syncd_handler`, its messages and its leniency: a bad option is
    /// reported and the rest of the line still read.
    mutating func lvsSyncDaemon(_ s: Statement, into g: inout GlobalDefs) {
        if let existing = g.lvsSyncDaemon {
            reader.diagnostics.error(s.location, "lvs_sync_daemon has already been specified as \(existing.interface) \(existing.instance ?? "") (\(existing.location)) - ignoring")
            return
        }
        guard let interface = reader.argument(s, expecting: "an interface name") else { return }
        guard interface.text.utf8.count < 16 else {
            reader.diagnostics.error(interface.location, "lvs_sync_daemon interface name '\(interface.text)' too long - ignoring")
            return
        }
        var sync = LVSSyncDaemonSettings(interface: interface.text, location: s.location)
        let words = s.words
        var i = 2
        func value(_ option: String) -> Token? {
            guard i + 1 < words.count else {
                reader.diagnostics.error(words[i].location, "No value specified for lvs_sync_daemon \(option) - ignoring")
                return nil
            }
            return words[i + 1]
        }
        while i < words.count {
            let option = words[i].text
            switch option {
            case "inst":
                if let v = value("inst") {
                    if let named = sync.instance { reader.diagnostics.error(v.location, "lvs_sync_daemon vrrp instance has already been specified as \(named) - ignoring") }
                    else { sync.instance = v.text }
                }
                i += 2
            case "id", "maxlen", "port", "ttl":
                let range = switch option { case "id": 0...255; case "maxlen": 1...(65535 - 20 - 8); case "port": 1...65535; default: 1...255 }
                if let v = value(option) {
                    if let number = Int(v.text), range.contains(number) {
                        switch option {
                        case "id": sync.syncID = number
                        case "maxlen": sync.maxLength = number
                        case "port": sync.port = number
                        default: sync.ttl = number
                        }
                    } else {
                        reader.diagnostics.error(v.location, option == "id" ? "Invalid syncid (\(v.text)) - defaulting to vrid"
                                                 : "Invalid lvs_sync_daemon \(option) (\(v.text)): expected \(range.lowerBound)...\(range.upperBound) - ignoring")
                    }
                }
                i += 2
            case "group":
                if let v = value("group") {
                    if let address = IPAddress(v.text) {
                        if address.isMulticast { sync.group = address }
                        else { reader.diagnostics.error(v.location, "lvs_sync_daemon group address \(v.text) is not multicast - ignoring") }
                    } else {
                        reader.diagnostics.error(v.location, "Invalid lvs_sync_daemon group (\(v.text)) - ignoring")
                    }
                }
                i += 2
            default:
                // keepalived's old form: lvs_sync_daemon IF INSTANCE [SYNCID].
                if i == 2 {
                    sync.instance = option
                } else if i == 3 {
                    if let number = Int(option), (0...255).contains(number) {
                        reader.diagnostics.error(words[i].location, "Please use keyword \"id\" before lvs_sync_daemon SYNCID")
                        sync.syncID = number
                    } else {
                        reader.diagnostics.error(words[i].location, "Invalid syncid (\(option)) - defaulting to vrid")
                    }
                } else {
                    reader.diagnostics.error(words[i].location, "Unknown option \(option) specified for lvs_sync_daemon")
                }
                i += 1
            }
        }
        g.lvsSyncDaemon = sync
    }

    /// A setting keepalived applies to every instance, read after some were: said loudly, as a
    /// configuration problem, since the instances before it do not get it here.
    mutating func lateForInstances(_ s: Statement) {
        guard let first = firstInstance else { return }
        reader.diagnostics.warning(s.location, "\(s.keyword) comes after vrrp_instance \(first.text) (\(first.location)): keepalived applies it to every instance, Vigil only to those after it; put global_defs first")
    }

    mutating func globalDefs(_ block: [Statement]) {
        var g = config.globals
        for s in block {
            if s.keyword != "notification_email" { reader.forbidBlock(s) }
            if NotActedOn.modelledGlobals.contains(s.keyword) { g.notActedOn[s.keyword] = s.location }
            switch s.keyword {
            case "router_id": g.routerID = reader.string(s, expecting: "a router name")
            case "notification_email":
                if let b = reader.requireBlock(s) { g.notificationEmail += b.map { $0.words.map(\.text).joined(separator: " ") } }
            case "notification_email_from": g.notificationEmailFrom = reader.string(s, expecting: "an e-mail address")
            case "smtp_server":
                if let t = reader.argument(s, expecting: "an SMTP server address") {
                    g.smtpServer = t.text
                    g.smtpServerLocation = s.location
                    if s.words.count > 2 { g.smtpPort = reader.integer(s.words[2], keyword: "smtp_server", in: 1...65535, what: "a port 1...65535") ?? 25 }
                }
            case "smtp_helo_name": g.smtpHeloName = reader.string(s, expecting: "a host name")
            case "smtp_alert": g.smtpAlert = reader.boolean(s) ?? true
            case "smtp_alert_vrrp": g.smtpAlertVRRP = reader.boolean(s) ?? true
            case "smtp_alert_checker": g.smtpAlertChecker = reader.boolean(s) ?? true
            case "no_checker_emails": g.noCheckerEmails = reader.boolean(s) ?? g.noCheckerEmails
            case "no_email_faults": g.noEmailFaults = true
            case "smtp_connect_timeout":
                if let v = reader.timer(s, min: 0) { g.smtpConnectTimeout = v }
            case "enable_script_security": g.enableScriptSecurity = true; reader.noExtra(s, after: 0)
            case "script_user": g.scriptUser = reader.user(s)
            case "notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo":
                notifyFIFO(s, into: &g.notifyFIFOs)
            case "notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script":
                notifyFIFOScript(s, into: &g.notifyFIFOs)
            case "fifo_write_vrrp_states_on_reload": g.fifoWriteStatesOnReload = true; reader.noExtra(s, after: 0)
            case "log_unknown_vrids": g.logUnknownVRIDs = true; reader.noExtra(s, after: 0)
            case "umask": if let mask = fileCreationMask(s) { g.umask = mask }
            case "rs_init_notifies": g.rsInitNotifies = reader.boolean(s) ?? g.rsInitNotifies
            case "random_seed":
                // The preprocessor seeds ${_RANDOM} with it from this line on.
                if s.words.count < 2 || UInt32(s.words[1].text) == nil {
                    reader.diagnostics.error(s.location, "random_seed \(s.words.count > 1 ? s.words[1].text : "") invalid", klass: .general)
                }
                reader.noExtra(s, after: 1)
            case "checker_log_all_failures": g.checkerLogAllFailures = reader.boolean(s) ?? g.checkerLogAllFailures
            case "max_auto_priority":
                guard s.words.count > 1 else { g.maxAutoPriority = 99; break }
                guard let value = Int(s.words[1].text), (-1...99).contains(value) else {
                    reader.diagnostics.error(s.words[1].location, "max_auto_priority '\(s.words[1].text)' must be in [0, 99] (or -1 to disable) - ignoring", klass: .general)
                    break
                }
                reader.noExtra(s, after: 1)
                g.maxAutoPriority = max(0, value)
            case "min_auto_priority_delay":
                if let value = wholeNumber(s, in: 1...10_000_000, missing: "min_auto_priority_delay requires delay time") {
                    g.minAutoPriorityDelay = Int64(value)
                }
            case "startup_script", "shutdown_script":
                let type = s.keyword == "startup_script" ? "startup" : "shutdown"
                if (type == "startup" ? g.startupScript : g.shutdownScript) != nil {
                    reader.diagnostics.error(s.location, "\(type) script already specified", klass: .general)
                } else if s.words.count < 2 {
                    reader.diagnostics.error(s.location, "\(type) script missing", klass: .general)
                } else if let command = reader.command(s) {
                    if type == "startup" { g.startupScript = command } else { g.shutdownScript = command }
                }
            case "startup_script_timeout", "shutdown_script_timeout":
                guard let seconds = wholeNumber(s, in: 1...1000, missing: "\(s.keyword) requires value") else { break }
                if s.keyword == "startup_script_timeout" { g.startupScriptTimeout = Int64(seconds) * 1_000_000 } else { g.shutdownScriptTimeout = Int64(seconds) * 1_000_000 }
            case "vrrp_notify_priority_changes": g.notifyPriorityChanges = reader.boolean(s) ?? g.notifyPriorityChanges
            case "vrrp_version":
                if let v = reader.integer(s, in: 2...3, what: "2 or 3") { g.vrrpVersion = v }
                lateForInstances(s)
            case "vrrp_strict":
                g.vrrpStrict = reader.boolean(s) ?? g.vrrpStrict
                lateForInstances(s)
            case "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
                 "vrrp_garp_master_refresh_repeat", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat":
                garpSetting(s, name: String(s.keyword.dropFirst("vrrp_".count)), &g.garp)
            case "nftables":
                if g.nftablesTable != nil {
                    reader.diagnostics.warning(s.location, "nftables already specified - ignoring")
                } else if let name = s.arguments.first {
                    // nft's identifiers: an ASCII letter, then letters, digits, _ - .
                    let ascii = name.text.unicodeScalars.allSatisfy { $0.isASCII }
                    if name.text.utf8.count >= 256 || !ascii || !(name.text.first?.isLetter ?? false)
                        || !name.text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) {
                        reader.diagnostics.warning(name.location, "nftables table name '\(name.text)' too long or not a plain name - ignoring")
                    } else {
                        g.nftablesTable = name.text
                    }
                } else {
                    g.nftablesTable = "keepalived"
                }
            case "nftables_priority":
                if let v = reader.integer(s, in: Int(Int32.min)...Int(Int32.max), what: "a chain priority") { g.nftablesPriority = v }
            case "vmac_prefix":
                if let t = reader.argument(s, expecting: "a VMAC name prefix") {
                    if g.vmacPrefix != nil { reader.diagnostics.warning(s.location, "vmac_prefix already specified - replacing") }
                    g.vmacPrefix = t.text
                }
            case "vrrp_garp_interval":
                // keepalived rejects 0 (minimum 1 µs) even though its own sample uses it.
                if let v = reader.timer(s, min: 1, max: 1_000_000_000) { g.garpInterval = v }
            case "vrrp_gna_interval":
                if let v = reader.timer(s, min: 1, max: 1_000_000_000) { g.gnaInterval = v }
            case "vrrp_garp_extra_if", "vrrp_vmac_garp_intvl":
                let (all, seconds) = garpExtra(s, instance: nil)
                if all { g.garpExtraAll = true }
                if let seconds { g.garpExtraInterval = seconds }
            case "vrrp_min_garp":
                if reader.boolean(s) == true {
                    g.garp.masterRepeat = 1; g.garp.masterDelay = 0; g.garp.masterRefresh = 0
                }
            case "vrrp_mcast_group4", "vrrp_mcast_group6":
                if let a = reader.address(s) {
                    let wantV6 = s.keyword.hasSuffix("6")
                    if a.isV6 != wantV6 || !a.isMulticast {
                        reader.diagnostics.error(s.words[1].location, "'\(s.keyword)' needs an \(wantV6 ? "IPv6" : "IPv4") multicast address, got \(a)")
                    } else if wantV6 { g.vrrpMcastGroup6 = a } else { g.vrrpMcastGroup4 = a }
                }
            case "vrrp_skip_check_adv_addr": g.vrrpSkipCheckAdvAddr = reader.boolean(s) ?? false
            case "vrrp_check_unicast_src": g.vrrpCheckUnicastSrc = true
            case "vrrp_lower_prio_no_advert": g.lowerPrioNoAdvert = reader.boolean(s) ?? false
            case "vrrp_higher_prio_send_advert": g.higherPrioSendAdvert = reader.boolean(s) ?? false
            case "vrrp_down_timer_adverts":
                if let v = reader.integer(s, in: 1...100) { g.downTimerAdverts = v }
            case "vrrp_startup_delay":
                if let v = reader.timer(s) { g.startupDelay = v }
            case "default_interface": g.defaultInterface = reader.string(s, expecting: "an interface name") ?? g.defaultInterface
            case "dynamic_interfaces": g.dynamicInterfaces = true
            case "lvs_flush": g.lvsFlush = true
            case "lvs_sync_daemon": lvsSyncDaemon(s, into: &g)
            case "vigil_announce_table":
                // 253-255 are the kernel's default, main and local tables: the routes there
                // would route, and removing leftovers there would touch other programs' routes.
                if let v = reader.integer(s, in: 1...252, what: "a routing table 1...252 (not main, local or default)") { g.announceTable = UInt32(v) }
                reader.noExtra(s, after: 1)
            case "vigil_announce_protocol":
                // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
                if let v = reader.integer(s, in: 5...255, what: "a route protocol number 5...255") { g.announceProtocol = UInt8(v) }
                reader.noExtra(s, after: 1)
            case "lvs_flush_on_stop": g.lvsFlushOnStop = true
            case "lvs_timeouts": lvsTimeouts(s, into: &g)
            case "disable_local_igmp": g.disableLocalIGMP = true; reader.noExtra(s, after: 0)
            case "reload_check_config":
                g.reloadCheckConfigLog = s.words.count > 1 ? s.words[1].text : "/dev/null"
                reader.noExtra(s, after: 1)
            case "reload_file":
                g.reloadFile = s.words.count > 1 ? s.words[1].text : GlobalDefs.defaultReloadFile
                reader.noExtra(s, after: 1)
            case "vrrp_priority", "vrrp_no_swap", "vrrp_cpu_affinity", "vrrp_rt_priority", "vrrp_rlimit_rttime", "vrrp_rlimit_rtime":
                scheduling(s, process: "vrrp", into: &g.vrrpScheduling)
            case "checker_priority", "checker_no_swap", "checker_cpu_affinity", "checker_rt_priority", "checker_rlimit_rttime",
                 "checker_rlimit_rtime":
                scheduling(s, process: "checker", into: &g.checkerScheduling)
            case "reload_time_file", "reload_repeat":
                // Not silently: a user relying on a timed reload of both directors must know.
                if s.keyword == "reload_time_file" { _ = reader.string(s, expecting: "a file naming the reload time") }
                reader.diagnostics.warning(s.location, "'\(s.keyword)' is not acted on by Vigil yet: no reload is scheduled; send SIGHUP to each director instead", klass: .note)
            default:
                if Self.globalAccepted.contains(s.keyword) {
                    g.notActedOn[s.keyword] = s.location
                } else {
                    reader.unknown(s, in: "global_defs", known: Self.globalKeywords + Self.globalAccepted)
                }
            }
        }
        for (kind, fifo) in g.notifyFIFOs.sorted(by: { $0.key < $1.key }) where fifo.path.isEmpty {
            reader.diagnostics.warning(fifo.location, "\(kind.keyword)_script without \(kind.keyword): the script is not run (keepalived starts it only with its FIFO)", klass: .note)
            g.notifyFIFOs[kind] = nil
        }
        config.globals = g
    }

    /// One whole number in `range`, with keepalived's words for a missing or out-of-range value
    /// ("KEYWORD 'V' must be in [A, B] - ignoring").
    mutating func wholeNumber(_ s: Statement, in range: ClosedRange<Int>, missing: String) -> Int? {
        guard s.words.count > 1 else {
            reader.diagnostics.error(s.location, missing, klass: .general)
            return nil
        }
        let word = s.words[1]
        guard let value = Int(word.text), range.contains(value) else {
            reader.diagnostics.error(word.location, "\(s.keyword) '\(word.text)' must be in [\(range.lowerBound), \(range.upperBound)] - ignoring", klass: .general)
            return nil
        }
        reader.noExtra(s, after: 1)
        return value
    }

    /// keepalived's `lvs_timeouts` (global_parser.c), its messages word for word: each option
    /// with a value, a bad value or a missing one ignored, the others kept.
    mutating func lvsTimeouts(_ s: Statement, into g: inout GlobalDefs) {
        guard s.words.count >= 3 else {
            reader.diagnostics.error(s.location, "lvs_timeouts requires at least one option", klass: .general)
            return
        }
        var timeouts = g.lvsTimeouts ?? LVSTimeouts(location: s.location)
        timeouts.location = s.location
        var index = 1
        while index < s.words.count {
            let option = s.words[index]
            guard ["tcp", "tcpfin", "udp"].contains(option.text) else {
                reader.diagnostics.error(option.location, "Unknown option \(option.text) specified for lvs_timeouts", klass: .general)
                index += 1
                continue
            }
            guard index + 1 < s.words.count else {
                reader.diagnostics.error(option.location, "No value specified for lvs_timeout \(option.text) - ignoring", klass: .general)
                break
            }
            let word = s.words[index + 1]
            if let value = UInt32(word.text), value <= LVSTimeouts.maximum {
                switch option.text {
                case "tcp": timeouts.tcp = value
                case "tcpfin": timeouts.tcpFin = value
                default: timeouts.udp = value
                }
            } else {
                reader.diagnostics.error(word.location, "Invalid lvs_timeout \(option.text) (\(word.text)) - ignoring", klass: .general)
            }
            index += 2
        }
        g.lvsTimeouts = timeouts
    }

    /// keepalived's `umask`: a number (0177, 0x7f, 127) or bits joined by `|` (IWGRP|IWOTH),
    /// with keepalived's messages.
    mutating func fileCreationMask(_ s: Statement) -> UInt32? {
        guard s.words.count > 1 else {
            reader.diagnostics.error(s.location, "Missing parameter(s) to umask option", klass: .general)
            return nil
        }
        let first = s.words[1]
        if let lead = first.text.utf8.first, lead >= UInt8(ascii: "0") && lead <= UInt8(ascii: "9") {
            guard s.words.count == 2 else {
                reader.diagnostics.error(s.location, "Extra parameter(s) to umask option", klass: .general)
                return nil
            }
            guard let value = parseCInteger(first.text), value & ~0o777 == 0 else {
                reader.diagnostics.error(first.location, "invalid umask value \(first.text)", klass: .general)
                return nil
            }
            return UInt32(value)
        }
        let bits: [String: UInt32] = ["IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100, "IRGRP": 0o040, "IWGRP": 0o020,
                                      "IXGRP": 0o010, "IROTH": 0o004, "IWOTH": 0o002, "IXOTH": 0o001]
        var mask: UInt32 = 0, needOr = false
        for word in s.words.dropFirst() {
            var rest = Substring(word.text)
            while !rest.isEmpty {
                if needOr {
                    guard rest.first == "|" else {
                        reader.diagnostics.error(word.location, "Invalid umask syntax \(word.text)", klass: .general)
                        return nil
                    }
                    needOr = false
                    rest = rest.dropFirst()
                    continue
                }
                guard let bit = bits[String(rest.prefix(5))] else {
                    reader.diagnostics.error(word.location, "Unknown umask bit \(rest)", klass: .general)
                    return nil
                }
                mask |= bit
                rest = rest.dropFirst(5)
                needOr = true
            }
        }
        guard needOr else {
            reader.diagnostics.error(s.location, "umask missing bit value", klass: .general)
            return nil
        }
        return mask
    }

    /// `notify_fifo PATH [USER [GROUP]]` and its vrrp_/lvs_ forms; keepalived's messages.
    mutating func notifyFIFO(_ s: Statement, into fifos: inout [NotifyFIFO.Kind: NotifyFIFO]) {
        let kind = NotifyFIFO.Kind(rawValue: String(s.keyword.dropLast("notify_fifo".count)))!
        guard s.words.count > 1 else {
            reader.diagnostics.error(s.location, "No \(kind.rawValue)notify_fifo name specified", klass: .general)
            return
        }
        if let existing = fifos[kind], !existing.path.isEmpty {
            reader.diagnostics.error(s.location, "\(kind.rawValue)notify_fifo already specified - ignoring \(s.words[1].text)", klass: .general)
            return
        }
        reader.noExtra(s, after: 3)
        let owner = s.words.count > 2 ? ScriptUser(user: s.words[2].text, group: s.words.count > 3 ? s.words[3].text : nil,
                                                  location: s.words[2].location) : nil
        var fifo = fifos[kind] ?? NotifyFIFO(path: "", location: s.location)
        fifo.path = s.words[1].text
        fifo.owner = owner
        fifo.location = s.location
        fifos[kind] = fifo
    }

    /// `notify_fifo_script COMMAND [USER [GROUP]]`: run with the FIFO's path added.
    mutating func notifyFIFOScript(_ s: Statement, into fifos: inout [NotifyFIFO.Kind: NotifyFIFO]) {
        let kind = NotifyFIFO.Kind(rawValue: String(s.keyword.dropLast("notify_fifo_script".count)))!
        guard s.words.count > 1 else {
            reader.diagnostics.error(s.location, "No \(kind.rawValue)notify_fifo_script specified", klass: .general)
            return
        }
        if fifos[kind]?.script != nil {
            reader.diagnostics.error(s.location, "\(kind.rawValue)notify_fifo_script already specified - ignoring \(s.words[1].text)", klass: .general)
            return
        }
        guard let command = reader.command(s) else { return }
        var fifo = fifos[kind] ?? NotifyFIFO(path: "", location: s.location)
        fifo.script = command
        fifos[kind] = fifo
    }

    /// keepalived's process settings (global_parser.c's get_priority, get_realtime_priority,
    /// get_rt_rlimit and get_cpu_affinity), with its messages: a priority out of range is
    /// ignored, a real-time priority out of range is clamped, an invalid CPU empties the set.
    mutating func scheduling(_ s: Statement, process: String, into settings: inout SchedulingSettings) {
        let setting = String(s.keyword.dropFirst(process.count + 1))
        settings.locations[setting.hasPrefix("rlimit") ? "rlimit_rttime" : setting] = s.location
        let first = s.arguments.first
        switch setting {
        case "priority":
            guard let first else { reader.diagnostics.error(s.location, "No \(process) process priority specified"); return }
            guard let v = Int(first.text), (-20...19).contains(v) else {
                reader.diagnostics.error(first.location, "Invalid \(process) process priority specified")
                return
            }
            settings.nice = v
        case "no_swap":
            settings.noSwap = true
        case "rt_priority":
            guard let first else { reader.diagnostics.error(s.location, "No \(process) process real-time priority specified"); return }
            guard let v = Int(first.text), let clamped = Int32(exactly: v) else {
                reader.diagnostics.error(first.location, "\(process) process real-time priority '\(first.text)' invalid")
                return
            }
            if clamped < 1 {
                reader.diagnostics.error(first.location, "\(process) process real-time priority \(v) less than minimum 1 - setting to minimum")
                settings.realtimePriority = 1
            } else if clamped > 99 {
                reader.diagnostics.error(first.location, "\(process) process real-time priority \(v) greater than maximum 99 - setting to maximum")
                settings.realtimePriority = 99
            } else {
                settings.realtimePriority = v
            }
        case "rlimit_rtime", "rlimit_rttime":
            if setting == "rlimit_rtime" {
                reader.diagnostics.warning(s.location, "Keyword '\(s.keyword)' is deprecated - please use '\(process)_rlimit_rttime'", klass: .note)
            }
            guard let first, let v = UInt64(first.text), (1...UInt64(UInt32.max)).contains(v) else {
                reader.diagnostics.error(first?.location ?? s.location, "Invalid \(process) real-time limit - \(first?.text ?? "")")
                return
            }
            // keepalived halves it for the soft limit, which must not be 0.
            settings.realtimeLimit = max(v, 2)
        default: // cpu_affinity
            guard !s.arguments.isEmpty else { reader.diagnostics.error(s.location, "No \(process) cpu_id set specified"); return }
            var cpus: [Int] = []
            for word in s.arguments {
                // CPU_SETSIZE; the CPUs this host has online are checked with the host.
                guard let cpu = Int(word.text), (0..<1024).contains(cpu) else {
                    reader.diagnostics.error(word.location, "Invalid cpu_id:\(word.text) specified for \(process) process")
                    settings.cpus = []
                    return
                }
                if !cpus.contains(cpu) { cpus.append(cpu) }
            }
            settings.cpus = cpus
        }
    }

    /// The GARP settings global_defs (`vrrp_garp_*`) and instances (`garp_*`) share.
    mutating func garpSetting(_ s: Statement, name: String, _ garp: inout GARPSettings) {
        let seconds = "whole seconds 0...4294"
        switch name {
        case "garp_master_delay":
            if let v = reader.integer(s, in: 0...4294, what: seconds) { garp.masterDelay = Int64(v) * 1_000_000 }
        case "garp_master_repeat":
            if let v = reader.integer(s, in: 1...Int(Int32.max), what: "a count of at least 1") { garp.masterRepeat = v }
        case "garp_master_refresh":
            if let v = reader.integer(s, in: 0...Int(UInt32.max), what: "whole seconds, 0 for off") { garp.masterRefresh = Int64(v) * 1_000_000 }
        case "garp_master_refresh_repeat":
            if let v = reader.integer(s, in: 1...Int(Int32.max), what: "a count of at least 1") { garp.masterRefreshRepeat = v }
        case "garp_lower_prio_delay":
            if let v = reader.integer(s, in: 0...4294, what: seconds) { garp.lowerPrioDelay = Int64(v) * 1_000_000 }
        case "garp_lower_prio_repeat":
            if let v = reader.integer(s, in: 0...Int(Int32.max), what: "a count") { garp.lowerPrioRepeat = v }
        default:
            break
        }
    }

    // MARK: vrrp_script

    static let scriptKeywords = ["script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail"]

    mutating func vrrpScript(_ name: Token, _ block: [Statement]) {
        var script = VRRPScript(name: name.text, location: name.location)
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "script":
                if let t = reader.argument(s, expecting: "a command line (quote it if it has spaces)") {
                    script.script = ScriptCommand(command: s.arguments.map(\.text).joined(separator: " "), user: nil, location: t.location)
                }
            case "interval":
                if let v = reader.timer(s, min: 1000, max: 4_294_000_000) { script.interval = v }
            case "timeout":
                if let v = reader.timer(s, min: 1000, max: 4_294_000_000) { script.timeout = v }
            case "weight":
                if let v = reader.integer(s, in: -253...253) { script.weight = v }
                if s.words.count > 2 {
                    if s.words[2].text == "reverse" { script.weightReverse = true } else { reader.noExtra(s, after: 1) }
                }
            case "rise":
                if let v = reader.integer(s, in: 1...Int(Int32.max), what: "a count of at least 1") { script.rise = v }
            case "fall":
                if let v = reader.integer(s, in: 1...Int(Int32.max), what: "a count of at least 1") { script.fall = v }
            case "user": script.user = reader.user(s)
            case "init_fail": script.initFail = true
            default: reader.unknown(s, in: "vrrp_script \(name.text)", known: Self.scriptKeywords)
            }
        }
        if script.script == nil {
            reader.diagnostics.error(name.location, "vrrp_script \(name.text) has no 'script': it would never run, so it is removed")
        }
        if let other = config.scripts.first(where: { $0.name == script.name }) {
            reader.diagnostics.error(name.location, "vrrp_script \(name.text) is already defined at \(other.location)")
            return
        }
        config.scripts.append(script)
    }

    /// keepalived's alloc_if_up_down_delay: a missing delay, extra words and an unreadable
    /// delay are only logged there (-t exit 0), a delay out of 0...255 s is a config error.
    mutating func interfaceDelays(_ block: [Statement]) {
        for line in block {
            reader.forbidBlock(line)
            let name = line.keyword
            guard line.words.count >= 2 else {
                reader.diagnostics.warning(line.location, "No timeouts specified for \(name) up/down delays", klass: .note)
                continue
            }
            if line.words.count > 3 {
                reader.diagnostics.warning(line.words[3].location, "Too many parameters for \(name) up/down delays", klass: .note)
            }
            guard let down = reader.timer(line, 1, max: 255_000_000) else { continue }
            var up: Int64 = 0
            if line.words.count > 2 {
                guard let value = reader.timer(line, 2, max: 255_000_000) else { continue }
                up = value
            }
            config.interfaceDelays.removeAll { $0.interface == name }
            config.interfaceDelays.append(InterfaceDelays(interface: name, down: down, up: up, location: line.location))
        }
    }

    /// keepalived's linkbeat_interfaces: `IFNAME [MII|ETHTOOL|IOCTL]`, the links whose state is
    /// polled (Vigil asks the kernel's flags once a second; the method is keepalived's choice
    /// of ioctl and changes nothing here).
    mutating func linkbeatInterfaces(_ block: [Statement]) {
        for line in block {
            reader.forbidBlock(line)
            if line.words.count > 1, !["MII", "ETHTOOL", "IOCTL"].contains(line.words[1].text) || line.words.count > 2 {
                reader.diagnostics.error(line.words[1].location, "extra characters \(line.words[1].text) in linkbeat interface", klass: .general)
            }
            config.linkbeatInterfaces.append(LinkbeatInterface(interface: line.keyword, location: line.location))
        }
    }

    /// keepalived's garp_extra_if (an instance's: 0...86400, 0 turns it off) and
    /// vrrp_garp_extra_if (the global: 1...86400), `[all] SECS`, with their deprecated names
    /// and messages. `all` counts even when the line is then refused, as in keepalived.
    mutating func garpExtra(_ s: Statement, instance: String?) -> (all: Bool, seconds: Int?) {
        let owner = instance.map { "(\($0)): " } ?? ""
        if let current = ["vmac_garp_intvl": "garp_extra_if", "vrrp_vmac_garp_intvl": "vrrp_garp_extra_if"][s.keyword] {
            reader.diagnostics.error(s.location, "Keyword \"\(s.keyword)\" is deprecated - please use \"\(current)\"", klass: .general)
        }
        var all = false
        var delay: Int?
        for word in s.words.dropFirst() {
            if word.text == "all" { all = true; continue }
            guard let value = Int(word.text), ((instance == nil ? 1 : 0)...86400).contains(value) else {
                reader.diagnostics.error(word.location, "\(owner)\(s.keyword) '\(word.text)' invalid - ignoring", klass: .general)
                return (all, nil)
            }
            delay = value
        }
        guard let delay else {
            reader.diagnostics.error(s.location, "\(owner)\(s.keyword) specified without time - ignoring", klass: .general)
            return (all, nil)
        }
        return (all, delay)
    }

    // MARK: vrrp_instance

    static let instanceKeywords = [
        "smtp_alert", "lvs_sync_daemon_interface",
        "state", "interface", "virtual_router_id", "priority", "advert_int", "nopreempt", "preempt", "preempt_delay",
        "authentication", "virtual_ipaddress", "virtual_ipaddress_excluded", "virtual_routes", "virtual_rules",
        "track_interface", "track_script", "track_file", "mcast_src_ip", "unicast_src_ip", "unicast_peer", "unicast_ttl",
        "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
        "garp_lower_prio_delay", "garp_lower_prio_repeat", "notify_master", "notify_backup", "notify_fault",
        "notify_stop", "notify_deleted", "notify", "notify_master_rx_lower_pri", "version", "use_vmac",
        "dont_track_primary", "accept", "no_accept", "strict_mode", "lower_prio_no_advert", "higher_prio_send_advert",
        "skip_check_adv_addr", "check_unicast_src", "down_timer_adverts", "v3_checksum_as_v2", "no_virtual_ipaddress",
        "owner_ignore_adverts", "vmac_xmit_base", "garp_extra_if", "vmac_garp_intvl", "notify_priority_changes", "mcast_dst_ip", "unicast_fault_no_peer", "old_unicast_checksum",
        "native_ipv6", "linkbeat_use_polling",
    ]
    static let instanceAccepted = [
        "vrf", "use_vmac_addr", "use_ipvlan", "track_bfd",
        "debug", "kernel_rx_buf_size",
    ]

    /// keepalived's track_file block: `file`, `weight W [reverse]` (-254...254), `init_file
    /// [VALUE] [overwrite]` (VALUE -254...254).
    mutating func trackFile(_ name: Token, _ block: [Statement]) {
        var file = TrackFile(name: name.text, location: name.location)
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "file": file.path = reader.string(s, expecting: "the file to track")
            case "weight":
                if let w = reader.integer(s, in: -254...254) { file.weight = w }
                if s.words.count > 2 {
                    switch s.words[2].text {
                    case "reverse": file.reverse = true
                    case "noreverse": file.reverse = false
                    default: reader.diagnostics.error(s.words[2].location, "track_file \(name.text) unknown weight option \(s.words[2].text)")
                    }
                }
            case "init_file":
                file.initValue = 0
                for word in s.words.dropFirst() {
                    if word.text == "overwrite" { file.initOverwrite = true; continue }
                    guard let v = Int(word.text), (-254...254).contains(v) else {
                        reader.diagnostics.error(word.location, "Track file \(name.text) init value \(word.text) is invalid: -254...254 or overwrite")
                        continue
                    }
                    file.initValue = v
                }
            default:
                reader.unknown(s, in: "track_file \(name.text)", known: ["file", "weight", "init_file"])
            }
        }
        if file.path == nil { reader.diagnostics.error(name.location, "No file set for track_file \(name.text) - ignoring") }
        config.trackFiles.append(file)
    }

    /// keepalived's vrrp_track_process block, with its limits and words.
    mutating func trackProcess(_ name: Token, _ block: [Statement]) {
        var p = TrackProcess(name: name.text, location: name.location)
        var quorumSet = false
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "process":
                guard p.process == nil else {
                    reader.diagnostics.warning(s.location, "Process already set for track process \(name.text) - ignoring \(s.words.dropFirst().first?.text ?? "")")
                    continue
                }
                p.process = reader.argument(s, expecting: "the process name")?.text
                if s.words.count > 2 {
                    p.parameters = s.words.dropFirst(2).map(\.text)
                    if p.parameterMatch == .none { p.parameterMatch = .exact }
                    p.fullCommand = true
                }
            case "param_match":
                p.fullCommand = true
                switch s.words.count > 1 ? s.words[1].text : nil {
                case nil: p.parameterMatch = .exact
                case "initial": p.parameterMatch = .initial
                case "partial": p.parameterMatch = .partial
                case let other?: reader.diagnostics.warning(s.words[1].location, "Invalid param_match type \(other) - ignoring")
                }
            case "weight":
                if let w = reader.integer(s, in: -254...254) { p.weight = w }
                if s.words.count > 2 {
                    if s.words[2].text == "reverse" { p.reverse = true } else {
                        reader.diagnostics.warning(s.words[2].location, "vrrp_track_process \(name.text) unknown weight option \(s.words[2].text)")
                    }
                }
            case "quorum":
                if let q = reader.integer(s, in: 1...65535) {
                    if q > p.quorumMax { reader.diagnostics.warning(s.location, "Quorum is greater than quorum_max - ignoring") } else { p.quorum = q; quorumSet = true }
                }
            case "quorum_max":
                if let q = reader.integer(s, in: 0...65535) {
                    if (q > 0 || p.quorum > 1) && q < p.quorum && quorumSet {
                        reader.diagnostics.warning(s.location, "quorum_max is less than quorum - ignoring")
                    } else {
                        p.quorumMax = q
                        if q == 0 { p.quorum = 0 } else if p.quorum == 0 { p.quorum = 1 }
                    }
                }
            case "fork_delay", "terminate_delay", "delay":
                guard let d = reader.timer(s, min: 1, max: 3_600_000_000) else { continue }
                if s.keyword != "fork_delay" { p.terminateDelay = d }
                if s.keyword != "terminate_delay" { p.forkDelay = d }
            case "full_command": p.fullCommand = true
            default:
                reader.unknown(s, in: "vrrp_track_process \(name.text)",
                               known: ["process", "param_match", "weight", "quorum", "quorum_max", "fork_delay", "terminate_delay", "delay", "full_command"])
            }
        }
        if p.process == nil { reader.diagnostics.error(name.location, "track process '\(name.text)' process name not specified") }
        config.trackProcesses.append(p)
    }

    mutating func vrrpInstance(_ name: Token, _ block: [Statement]) {
        if firstInstance == nil { firstInstance = name }
        var i = VRRPInstance(name: name.text, location: name.location)
        let blockKeywords: Set<String> = ["authentication", "virtual_ipaddress", "virtual_ipaddress_excluded",
                                          "virtual_routes", "virtual_rules", "track_interface", "track_script",
                                          "track_file", "unicast_peer", "track_process", "track_bfd"]
        for s in block {
            if !blockKeywords.contains(s.keyword) { reader.forbidBlock(s) }
            if NotActedOn.modelledInstance.contains(s.keyword) { i.notActedOn[s.keyword] = s.location }
            switch s.keyword {
            case "state":
                guard let t = reader.argument(s, expecting: "MASTER or BACKUP") else { break }
                reader.noExtra(s, after: 1)
                // keepalived's vrrp_state_handler: exactly MASTER or BACKUP (`master` is not read).
                switch t.text {
                case "MASTER": i.state = .master
                case "BACKUP":
                    if i.state == .master {
                        reader.diagnostics.error(t.location, "(\(i.name)) state previously set as MASTER - ignoring BACKUP")
                    } else {
                        i.state = .backup
                    }
                default:
                    let upper = t.text.uppercased()
                    reader.diagnostics.error(t.location, "(\(i.name)) unknown state '\(t.text)', defaulting to BACKUP",
                                             suggestion: ["MASTER", "BACKUP"].contains(upper) ? upper : nearest(upper, in: ["MASTER", "BACKUP"]))
                    i.state = .backup
                }
            case "interface":
                if let t = reader.argument(s, expecting: "an interface name") {
                    i.interface = t.text; i.interfaceLocation = t.location
                    reader.noExtra(s, after: 1)
                }
            case "virtual_router_id": i.virtualRouterID = reader.integer(s, in: 1...255); reader.noExtra(s, after: 1)
            case "priority":
                if let v = reader.integer(s, in: 1...255) { i.priority = v }
                reader.noExtra(s, after: 1)
            case "advert_int":
                if let v = reader.timer(s, min: 10_000, max: 255_000_000) { i.advertInterval = v }
                reader.noExtra(s, after: 1)
            case "nopreempt": i.nopreempt = true
            case "preempt": i.nopreempt = false
            case "preempt_delay":
                if let v = reader.timer(s, min: 0, max: 1_000_000_000) { i.preemptDelay = v }
            case "authentication":
                if let b = reader.requireBlock(s) { authentication(b, &i) }
            case "virtual_ipaddress":
                if let b = reader.requireBlock(s) {
                    for vip in b.compactMap({ virtualAddress($0, instanceInterface: i.interface) }) {
                        // keepalived: after native_ipv6 the instance is IPv6, and an IPv4 VIP is dropped.
                        if i.nativeIPv6, vip.address.family == .ipv4 {
                            reader.diagnostics.error(vip.location, "(\(i.name)): address family must match VRRP instance [\(vip.address)/\(vip.prefixLength)] - ignoring", klass: .general)
                            continue
                        }
                        i.virtualAddresses.append(vip)
                    }
                }
            case "virtual_ipaddress_excluded":
                if let b = reader.requireBlock(s) { i.excludedAddresses += b.compactMap { virtualAddress($0, instanceInterface: i.interface) } }
            case "virtual_routes": if let b = reader.requireBlock(s) { i.virtualRoutes += routeLines(b) }
            case "virtual_rules": if let b = reader.requireBlock(s) { i.virtualRules += ruleLines(b) }
            case "track_interface": if let b = reader.requireBlock(s) { i.trackInterfaces += tracked(b, in: "track_interface") }
            case "track_script": if let b = reader.requireBlock(s) { i.trackScripts += tracked(b, in: "track_script") }
            case "track_file": if let b = reader.requireBlock(s) { i.trackFiles += tracked(b, in: "track_file") }
            case "track_process": if let b = reader.requireBlock(s) { i.trackProcesses += tracked(b, in: "track_process") }
            case "mcast_src_ip": i.mcastSourceIP = reader.address(s)
            case "unicast_src_ip": i.unicastSourceIP = reader.address(s); i.unicastConfigured = true
            case "unicast_peer": if let b = reader.requireBlock(s) { i.unicastPeers += unicastPeers(b) }; i.unicastConfigured = true
            case "unicast_fault_no_peer": i.unicastFaultNoPeer = true; i.unicastConfigured = true; reader.noExtra(s, after: 0)
            case "track_src_ip": i.trackSourceIP = true; reader.noExtra(s, after: 0)
            case "old_unicast_checksum":
                i.unicastConfigured = true
                if s.words.count < 2 { i.oldUnicastChecksum = .always; break }
                reader.noExtra(s, after: 1)
                if s.words[1].text == "never" { i.oldUnicastChecksum = .never } else {
                    reader.diagnostics.error(s.words[1].location, "(\(name.text)) Unknown old_unicast_chksum mode \(s.words[1].text) - ignoring")
                }
            case "mcast_dst_ip":
                guard let token = reader.argument(s, 1, expecting: "a multicast address") else { break }
                reader.noExtra(s, after: 1)
                guard let group = IPAddress(token.text) else {
                    reader.diagnostics.error(token.location, "(\(name.text)) malformed mcast dest address \(token.text). Skipping...")
                    break
                }
                let linkLocalMulticast: Bool
                switch group {
                case .v4(let v4): linkLocalMulticast = v4.isMulticast
                case .v6(let v6): linkLocalMulticast = v6.high >> 48 & 0xFF0F == 0xFF02
                }
                guard linkLocalMulticast else {
                    reader.diagnostics.error(token.location, "(\(name.text)) mcast_dst_ip \(token.text) not\(group.isV6 ? " link-local" : "") multicast. Skipping...")
                    break
                }
                i.multicastDestination = group
            case "unicast_ttl": i.unicastTTL = reader.integer(s, in: 0...255)
            case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
                 "garp_lower_prio_delay", "garp_lower_prio_repeat":
                garpSetting(s, name: s.keyword, &i.garp)
            case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify",
                 "notify_master_rx_lower_pri":
                notify(s, &i.notify, owner: "vrrp_instance \(name.text)")
            case "version":
                if let v = reader.integer(s, in: 2...3, what: "2 or 3") { i.version = v }
            case "use_vmac": useVMAC(s, &i)
            case "vmac_xmit_base": i.vmacTransmitOnParent = true
            case "garp_extra_if", "vmac_garp_intvl":
                let (all, seconds) = garpExtra(s, instance: i.name)
                if all { i.garpExtraAll = true }
                if let seconds { i.garpExtraInterval = seconds }
            case "promote_secondaries":
                i.promoteSecondaries = true
                i.promoteSecondariesLocation = s.location
            case "dont_track_primary": i.dontTrackPrimary = true
            case "accept": i.accept = true
            case "no_accept": i.accept = false
            case "strict_mode": i.strict = reader.boolean(s)
            case "lower_prio_no_advert": i.lowerPrioNoAdvert = reader.boolean(s)
            case "higher_prio_send_advert": i.higherPrioSendAdvert = reader.boolean(s)
            case "skip_check_adv_addr": i.skipCheckAdvAddr = reader.boolean(s)
            case "check_unicast_src": i.checkUnicastSource = true; i.unicastConfigured = true
            case "owner_ignore_adverts": i.ownerIgnoreAdverts = true
            case "smtp_alert": i.smtpAlert = reader.boolean(s) ?? true
            case "notify_priority_changes": i.notifyPriorityChanges = reader.boolean(s) ?? i.notifyPriorityChanges
            case "down_timer_adverts": i.downTimerAdverts = reader.integer(s, in: 1...100)
            case "v3_checksum_as_v2": i.v3ChecksumAsV2 = reader.boolean(s) ?? true
            case "no_virtual_ipaddress": i.noVirtualIPAddress = true
            case "linkbeat_use_polling":
                reader.noExtra(s, after: 0)
                reader.diagnostics.error(s.location, "(\(i.name)) 'linkbeat_use_polling' in vrrp instance deprecated - use linkbeat_interfaces block", klass: .general)
                i.linkbeatUsePolling = true
            case "native_ipv6":
                // keepalived's deprecated way to make an instance IPv6 (and so VRRPv3) whatever
                // its VIPs; refused once it has an IPv4 one.
                reader.noExtra(s, after: 0)
                if i.virtualAddresses.contains(where: { $0.address.family == .ipv4 }) {
                    reader.diagnostics.error(s.location, "(\(i.name)) Cannot specify native_ipv6 with IPv4 addresses", klass: .general)
                } else {
                    i.nativeIPv6 = true
                }
            case "lvs_sync_daemon_interface":
                reader.diagnostics.warning(s.location, "(\(name.text)) 'lvs_sync_daemon_interface' in a vrrp_instance is deprecated: use global_defs 'lvs_sync_daemon'")
                guard let interface = reader.string(s, expecting: "an interface name") else { break }
                if let existing = config.globals.lvsSyncDaemon {
                    reader.diagnostics.error(s.location, "(\(name.text)) lvs_sync_daemon_interface has already been specified as \(existing.interface) - ignoring")
                } else {
                    var sync = LVSSyncDaemonSettings(interface: interface, location: s.location)
                    sync.instance = name.text
                    config.globals.lvsSyncDaemon = sync
                }
            default:
                if Self.instanceAccepted.contains(s.keyword) {
                    i.notActedOn[s.keyword] = s.location
                } else {
                    reader.unknown(s, in: "vrrp_instance \(name.text)", known: Self.instanceKeywords + Self.instanceAccepted)
                }
            }
        }
        guard completeInstance(&i) else { return }
        if let other = config.instances.first(where: { $0.name == i.name }) {
            reader.diagnostics.error(name.location, "vrrp_instance \(name.text) is already defined at \(other.location)")
            return
        }
        config.instances.append(i)
    }

    /// keepalived's `vrrp_complete_instance`: derived defaults and the checks that need the
    /// whole block.
    /// False when keepalived drops the instance (strict mode without a VIP, or with unicast).
    @discardableResult
    mutating func completeInstance(_ i: inout VRRPInstance) -> Bool {
        let tag = "(\(i.name))"
        if i.virtualRouterID == nil {
            reader.diagnostics.error(i.location, "\(tag) virtual_router_id is not set: every vrrp_instance needs one (1...255)")
        }
        if i.interface == nil && !(i.unicastSourceIP != nil && !i.unicastPeers.isEmpty) {
            i.interface = config.globals.defaultInterface
            reader.diagnostics.warning(i.location, "\(tag) no 'interface' given: using default_interface \(config.globals.defaultInterface)")
        }
        let version = i.version ?? (i.virtualAddresses.first?.address.isV6 == true ? 3 : config.globals.vrrpVersion)
        i.version = version
        if i.unicastConfigured && i.unicastPeers.isEmpty && !i.unicastFaultNoPeer {
            reader.diagnostics.warning(i.location, "\(tag) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration.")
        }
        if let group = i.multicastDestination {
            if !i.unicastPeers.isEmpty {
                reader.diagnostics.error(i.location, "\(tag) multicast destination specified with unicast - ignoring")
                i.multicastDestination = nil
            } else if let family = i.virtualAddresses.first?.address.family, group.family != family {
                reader.diagnostics.error(i.location, "\(tag) mcast dest address \(group) MUST match VRRP instance family. Skipping...")
                i.multicastDestination = nil
            }
        }
        i.strict = i.strict ?? config.globals.vrrpStrict
        if i.strict == true && !applyStrictMode(&i) { return false }
        if i.effectivePriority == 255 && i.nopreempt {
            reader.diagnostics.warning(i.location, "\(tag) nopreempt is incompatible with priority 255: nopreempt cleared")
            i.nopreempt = false
        }
        if i.state == .master && i.nopreempt {
            reader.diagnostics.warning(i.location, "\(tag) nopreempt will not work with initial state MASTER: nopreempt cleared")
            i.nopreempt = false
        }
        if i.preemptDelay > 0 && (i.state == .master || i.nopreempt) {
            reader.diagnostics.warning(i.location, "\(tag) preempt_delay has no effect with state MASTER or nopreempt: cleared")
            i.preemptDelay = 0
        }
        if version == 2 && i.advertInterval % 1_000_000 != 0 {
            let rounded = max(1, (i.advertInterval + 500_000) / 1_000_000)
            reader.diagnostics.warning(i.location, "\(tag) VRRPv2 advert_int \(formatSeconds(i.advertInterval)) s must be a whole number of seconds: rounded to \(rounded)")
            i.advertInterval = rounded * 1_000_000
        }
        if version == 3 {
            if i.advertInterval > 40_950_000 {
                reader.diagnostics.error(i.location, "\(tag) VRRPv3 advert_int can be at most 40.95 s")
                i.advertInterval = 40_950_000
            }
            i.advertInterval = i.advertInterval / 10_000 * 10_000
            if i.authType != nil {
                reader.diagnostics.warning(i.location, "\(tag) VRRP version 3 does not support authentication: ignored")
                i.authType = nil
                i.authPass = nil
            }
        }
        if i.virtualAddresses.isEmpty && !i.noVirtualIPAddress {
            reader.diagnostics.warning(i.location, "\(tag) no virtual_ipaddress given: at least one is sensible (say 'no_virtual_ipaddress' if this is intended)")
        }
        if let family = i.virtualAddresses.first?.address.isV6,
           let odd = i.virtualAddresses.first(where: { $0.address.isV6 != family }) {
            reader.diagnostics.error(odd.location, "\(tag) virtual_ipaddress mixes IPv4 and IPv6: put \(odd.address) in virtual_ipaddress_excluded")
        }
        if i.authType == .ah && i.state == .master && i.effectivePriority != 255 {
            reader.diagnostics.warning(i.location, "\(tag) initial state MASTER is incompatible with AH authentication: starting as BACKUP")
            i.state = .backup
        }
        if i.authType == .pass && i.authPass == nil {
            reader.diagnostics.error(i.location, "\(tag) auth_type PASS needs an auth_pass")
        }
        if i.vmac != nil && !i.unicastPeers.isEmpty && !i.vmacTransmitOnParent {
            reader.diagnostics.warning(i.location, "\(tag) unicast with use_vmac requires vmac_xmit_base - setting")
            i.vmacTransmitOnParent = true
        }
        if i.vmacTransmitOnParent && i.vmac == nil {
            reader.diagnostics.warning(i.location, "\(tag) vmac_xmit_base is only valid with a vmac")
            i.vmacTransmitOnParent = false
        }
        if i.trackSourceIP && i.unicastSourceIP == nil && i.mcastSourceIP == nil {
            // keepalived clears it without a word; Vigil says so.
            reader.diagnostics.warning(i.location, "\(tag) track_src_ip has no effect without unicast_src_ip or mcast_src_ip: ignored", klass: .note)
            i.trackSourceIP = false
        }
        if i.promoteSecondaries && i.vmac != nil {
            reader.diagnostics.warning(i.promoteSecondariesLocation ?? i.location, "\(tag) promote_secondaries is automatically set for vmacs - ignoring")
            i.promoteSecondaries = false
        }
        if i.vmacTransmitOnParent && (i.strict ?? config.globals.vrrpStrict) {
            reader.diagnostics.warning(i.location, "\(tag) xmit_base is incompatible with strict mode - resetting")
            i.vmacTransmitOnParent = false
        }
        // keepalived adds nftables drop rules for the VIPs of a no_accept instance (strict mode's
        // default): its users' most reported trap. Vigil adds none unless asked, and says so.
        if config.globals.nftablesTable == nil, i.effectivePriority != 255, !i.acceptMode(strictByDefault: config.globals.vrrpStrict) {
            reader.diagnostics.warning(i.location, "\(tag) no_accept: Vigil adds no firewall rules unless global_defs says nftables, so the VIPs answer as with accept (keepalived would drop traffic to them with nftables rules)", klass: .note)
        }
        return true
    }

    /// keepalived's `use_vmac [NAME] [MAC]` (in either order), with its words for what it
    /// ignores: a MAC of five octets takes the VRID as the sixth.
    mutating func useVMAC(_ s: Statement, _ i: inout VRRPInstance) {
        var vmac = i.vmac ?? VMACSettings()
        for word in s.arguments.prefix(2) {
            let text = word.text
            if text.contains(":") {
                if vmac.mac != nil {
                    reader.diagnostics.warning(word.location, "VMAC interface address already specified")
                    continue
                }
                if text.contains(where: { !$0.isHexDigit && $0 != ":" }) {
                    reader.diagnostics.warning(word.location, "VMAC invalid MAC address \(text)")
                    continue
                }
                guard let parsed = VMACSettings.parseMAC(text) else {
                    reader.diagnostics.warning(word.location, "VMAC invalid MAC address \(text) - ignored")
                    continue
                }
                if parsed.octets[0] & 0x01 != 0 {
                    reader.diagnostics.warning(word.location, "VMAC MAC address is multicast \(text) - ignoring")
                } else if parsed.octets.prefix(4) == [0x00, 0x00, 0x5e, 0x00] && (parsed.octets[4] == 0x01 || parsed.octets[4] == 0x02) {
                    reader.diagnostics.warning(word.location, "VMAC MAC address not allowed to be RFC5798 address (\(text)) - ignoring")
                } else {
                    vmac.mac = parsed.octets
                    vmac.macTakesVRID = parsed.takesVRID
                }
            } else {
                if vmac.name != nil {
                    reader.diagnostics.warning(word.location, "VMAC interface name already specified")
                    continue
                }
                guard VMACSettings.isValidName(text) else {
                    reader.diagnostics.warning(word.location, "VMAC interface name '\(text)' too long or invalid characters - ignoring")
                    continue
                }
                if let other = config.instances.first(where: { $0.vmac?.name == text }) {
                    reader.diagnostics.warning(word.location, "(\(i.name)) VRRP instance \(other.name) is already using \(text) - ignoring name")
                    continue
                }
                vmac.name = text
            }
        }
        i.vmac = vmac
    }

    /// keepalived's strict mode (vrrp_strict / strict_mode), with its words: the settings RFC
    /// 3768/5798 forbid are reset. False when keepalived drops the instance.
    mutating func applyStrictMode(_ i: inout VRRPInstance) -> Bool {
        let tag = "(\(i.name))"
        if i.virtualAddresses.isEmpty {
            reader.diagnostics.error(i.location, "\(tag) No VIP specified; at least one is required")
            return false
        }
        if i.state != nil && (i.state == .master) != (i.effectivePriority == 255) {
            reader.diagnostics.warning(i.location, "\(tag) State MASTER must match being address owner")
            i.state = i.effectivePriority == 255 ? .master : .backup
        }
        if i.authType != nil {
            reader.diagnostics.warning(i.location, "\(tag) Strict mode does not support authentication. Ignoring.")
            i.authType = nil
            i.authPass = nil
        }
        if !i.unicastPeers.isEmpty && i.interface != nil {
            reader.diagnostics.error(i.location, "\(tag) Unicast peers are not supported in strict mode")
            return false
        }
        if let first = i.virtualAddresses.first?.address, case .v6(let v6) = first, !v6.isLinkLocal {
            reader.diagnostics.warning(i.location, "\(tag) the first IPv6 VIP address must be link local")
        }
        if i.preemptDelay > 0 {
            reader.diagnostics.warning(i.location, "\(tag) preempt_delay is incompatible with strict mode - resetting")
            i.preemptDelay = 0
        }
        if let adverts = i.downTimerAdverts, adverts != 3 {
            reader.diagnostics.warning(i.location, "\(tag) down_timer_adverts is incompatible with strict mode - resetting")
            i.downTimerAdverts = 3
        }
        if i.accept == true && i.effectivePriority != 255 && (i.version ?? 2) == 2 {
            reader.diagnostics.warning(i.location, "\(tag) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting")
            i.accept = false
        }
        if let repeats = i.garp.lowerPrioRepeat, repeats != 0 {
            reader.diagnostics.warning(i.location, "\(tag) Strict mode requires no repeat garps. resetting")
        }
        i.garp.lowerPrioRepeat = 0
        if let delay = i.garp.lowerPrioDelay, delay != 0 {
            reader.diagnostics.warning(i.location, "\(tag) Strict mode requires no repeat garp delay. resetting")
        }
        i.garp.lowerPrioDelay = 0
        if i.lowerPrioNoAdvert == false {
            reader.diagnostics.warning(i.location, "\(tag) Strict mode requires no lower priority advert. resetting")
        }
        i.lowerPrioNoAdvert = true
        if i.higherPrioSendAdvert == true {
            reader.diagnostics.warning(i.location, "\(tag) strict mode requires higher_prio_send_advert to be clear. resetting")
        }
        i.higherPrioSendAdvert = false
        return true
    }

    mutating func authentication(_ block: [Statement], _ i: inout VRRPInstance) {
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "auth_type":
                guard let t = reader.argument(s, expecting: "PASS or AH") else { break }
                // keepalived: exactly PASS or AH.
                switch t.text {
                case "PASS": i.authType = .pass
                case "AH": i.authType = .ah
                default:
                    reader.diagnostics.error(t.location, "(\(i.name)) unknown authentication type '\(t.text)'",
                                             suggestion: ["PASS", "AH"].contains(t.text.uppercased()) ? t.text.uppercased() : nil)
                }
            case "auth_pass":
                guard let t = reader.argument(s, expecting: "a password (at most 8 characters)") else { break }
                var pass = t.text
                if pass.utf8.count > 8 {
                    // The password is not echoed: -t output ends up in CI logs and tickets.
                    reader.diagnostics.warning(t.location, "auth_pass is \(pass.utf8.count) bytes long: only its first 8 are used (as keepalived)")
                    pass = String(decoding: pass.utf8.prefix(8), as: UTF8.self)
                }
                i.authPass = pass
            default:
                reader.unknown(s, in: "authentication", known: ["auth_type", "auth_pass"])
            }
        }
    }

    /// One `virtual_ipaddress` line: `ADDR[/LEN] [dev IF] [brd X] [scope S] [label L] …`.
    mutating func virtualAddress(_ s: Statement, instanceInterface: String?) -> VirtualAddress? {
        reader.forbidBlock(s)
        let first = s.words[0]
        guard let (address, length, lengthValid) = parsePrefix(first.text) else {
            reader.diagnostics.error(first.location, "invalid IP address '\(first.text)'",
                                     suggestion: nil)
            return nil
        }
        if !lengthValid {
            reader.diagnostics.error(first.location, "invalid prefix length in '\(first.text)': expected 0...\(address.maxPrefixLength)")
        }
        var v = VirtualAddress(address: address, prefixLength: length ?? address.maxPrefixLength, location: first.location)
        let valueOptions: Set<String> = ["dev", "brd", "broadcast", "scope", "label", "peer", "preferred_lft", "track_group"]
        let flagOptions: Set<String> = ["home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "use_vmac"]
        var index = 1
        while index < s.words.count {
            let option = s.words[index]
            if flagOptions.contains(option.text) {
                if option.text == "-nodad" { v.noDAD = false }
                if option.text == "no_track" { v.noTrack = true }
                v.options.append(option.text)
                index += 1
                continue
            }
            guard valueOptions.contains(option.text) else {
                reader.diagnostics.error(option.location, "unknown option '\(option.text)' for address \(first.text)",
                                         suggestion: nearest(option.text, in: valueOptions.union(flagOptions)))
                index += 1
                continue
            }
            guard index + 1 < s.words.count else {
                reader.diagnostics.error(option.location, "'\(option.text)' for address \(first.text) is missing its value")
                break
            }
            let value = s.words[index + 1]
            switch option.text {
            case "dev": v.device = value.text
            case "brd", "broadcast":
                if address.isV6 { reader.diagnostics.warning(option.location, "'brd' applies to IPv4 addresses only") }
                else if value.text != "+" && value.text != "-" && IPAddress(value.text) == nil {
                    reader.diagnostics.error(value.location, "invalid broadcast address '\(value.text)'")
                } else { v.broadcast = value.text }
            case "scope":
                let scopes = ["global", "site", "link", "host", "nowhere"]
                if scopes.contains(value.text) || Int(value.text).map({ (0...255).contains($0) }) == true {
                    v.scope = value.text
                } else {
                    reader.diagnostics.error(value.location, "unknown scope '\(value.text)'", suggestion: nearest(value.text, in: scopes))
                }
            case "label":
                if value.text.utf8.count >= 16 {
                    reader.diagnostics.error(value.location, "label '\(value.text)' is too long: at most 15 characters")
                } else { v.label = value.text }
            case "peer":
                v.peer = reader.address(value, keyword: "peer")
            default:
                v.options += [option.text, value.text]
            }
            index += 2
        }
        return v
    }

    /// `static_routes`/`virtual_routes` lines, checked as keepalived checks them (Vigil does not
    /// install routes yet: they are kept verbatim).
    mutating func routeLines(_ block: [Statement]) -> [RouteLine] {
        block.compactMap { s in
            reader.forbidBlock(s)
            let words = s.words
            let routeTypes: Set<String> = ["blackhole", "unreachable", "prohibit", "throw", "local", "broadcast", "anycast", "multicast", "unicast"]
            let valued: Set<String> = ["src", "via", "gw", "dev", "scope", "table", "metric", "preference", "proto", "protocol",
                                       "mtu", "advmss", "rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms",
                                       "initcwnd", "initrwnd", "features", "quickack", "congctl", "pref", "fastopen_no_cookie",
                                       "tos", "dsfield", "hoplimit", "expires", "vrf", "or", "rto_min", "from", "ttl-propagate",
                                       "track_group", "as"]
            var destination: Token?
            var hasDevice = false, tracked = true
            var index = 0
            while index < words.count {
                let word = words[index]
                if routeTypes.contains(word.text) { index += 1; continue }
                if word.text == "no_track" { tracked = false }
                if ["no_track", "onlink", "add", "prepend", "append"].contains(word.text) { index += 1; continue }
                // The hops and an encapsulation run to the end of the line: the builder reads them.
                if ["nexthop", "encap"].contains(word.text) { break }
                if valued.contains(word.text) {
                    guard index + 1 < words.count else {
                        reader.diagnostics.error(word.location, "route option '\(word.text)' is missing its value")
                        break
                    }
                    var value = words[index + 1]
                    if value.text == "lock", index + 2 < words.count, RouteBuilder.metrics[word.text]?.lockable == true || word.text == "congctl" {
                        index += 1
                        value = words[index + 1]
                    }
                    if (word.text == "via" || word.text == "gw") && (value.text == "inet" || value.text == "inet6"), index + 2 < words.count {
                        index += 1
                        value = words[index + 1]
                    }
                    switch word.text {
                    case "src", "via", "gw", "or":
                        if IPAddress(value.text) == nil { reader.diagnostics.error(value.location, "invalid address '\(value.text)' in route") }
                        if word.text == "or" { reader.diagnostics.warning(word.location, "'or' in routes is deprecated: use 'nexthop'") }
                    case "dev", "oif": hasDevice = true
                    default: break
                    }
                    index += 2
                    continue
                }
                if destination == nil {
                    destination = word
                    if word.text != "default" && parsePrefix(word.text) == nil {
                        reader.diagnostics.error(word.location, "invalid route destination '\(word.text)'")
                    }
                } else {
                    reader.diagnostics.error(word.location, "unknown route option '\(word.text)'", suggestion: nearest(word.text, in: valued))
                }
                index += 1
            }
            if destination == nil { reader.diagnostics.error(s.location, "route has no destination") }
            // keepalived's words: it watches a route through its interface only.
            if let destination, !hasDevice && tracked {
                reader.diagnostics.warning(s.location, "Warning - cannot track route \(destination.text) with no interface specified, not tracking")
            }
            var line = RouteLine(words: words.map(\.text), location: s.location)
            line.route = RouteBuilder.route(words, names: routingNames, &reader.diagnostics)
            return line
        }
    }

    /// `static_rules`/`virtual_rules` lines: addresses are checked and a missing preference is
    /// flagged, as keepalived does.
    mutating func ruleLines(_ block: [Statement]) -> [RouteLine] {
        block.compactMap { s in
            reader.forbidBlock(s)
            var hasPreference = false
            var index = 0
            while index < s.words.count {
                let word = s.words[index]
                if ["preference", "prio", "priority", "pref", "order"].contains(word.text) { hasPreference = true }
                if ["from", "to"].contains(word.text), index + 1 < s.words.count {
                    let value = s.words[index + 1]
                    if value.text != "all" && parsePrefix(value.text) == nil {
                        reader.diagnostics.error(value.location, "invalid rule \(word.text) address '\(value.text)'")
                    }
                    index += 2
                    continue
                }
                index += 1
            }
            if !hasPreference {
                reader.diagnostics.warning(s.location, "rule has no preference: keepalived picks one (16384 and below), which is probably not what you want")
            }
            var line = RouteLine(words: s.words.map(\.text), location: s.location)
            line.rule = RouteBuilder.rule(s.words, names: routingNames, &reader.diagnostics)
            return line
        }
    }

    /// `track_interface`/`track_script` entries: `NAME [weight W [reverse|noreverse]]`.
    mutating func tracked(_ block: [Statement], in what: String) -> [Tracked] {
        block.compactMap { s in
            reader.forbidBlock(s)
            var t = Tracked(name: s.keyword, location: s.location)
            var index = 1
            while index < s.words.count {
                let word = s.words[index]
                switch word.text {
                case "weight":
                    if index + 1 < s.words.count {
                        t.weight = reader.integer(s.words[index + 1], keyword: "weight", in: -254...254, what: "an integer in -253...253")
                        if let w = t.weight, abs(w) == 254 {
                            reader.diagnostics.warning(s.words[index + 1].location, "weight \(w) clamped to \(w > 0 ? 253 : -253)")
                            t.weight = w > 0 ? 253 : -253
                        }
                        index += 2
                    } else {
                        reader.diagnostics.error(word.location, "'weight' in \(what) is missing its value")
                        index += 1
                    }
                case "reverse": t.reverse = true; index += 1
                case "noreverse": t.reverse = false; index += 1
                default:
                    reader.diagnostics.error(word.location, "unexpected '\(word.text)' in \(what) entry \(s.keyword): expected 'weight N [reverse]'")
                    index += 1
                }
            }
            return t
        }
    }

    mutating func unicastPeers(_ block: [Statement]) -> [UnicastPeer] {
        block.compactMap { s in
            reader.forbidBlock(s)
            guard let address = reader.address(s.words[0], keyword: "unicast_peer") else { return nil }
            var peer = UnicastPeer(address: address)
            var index = 1
            while index + 1 < s.words.count {
                let key = s.words[index]
                let value = reader.integer(s.words[index + 1], keyword: key.text, in: 0...255, what: "a TTL 0...255")
                switch key.text {
                case "min_ttl": peer.minTTL = value
                case "max_ttl": peer.maxTTL = value
                default: reader.diagnostics.error(key.location, "unknown unicast_peer option '\(key.text)'", suggestion: nearest(key.text, in: ["min_ttl", "max_ttl"]))
                }
                index += 2
            }
            if index < s.words.count {
                reader.diagnostics.error(s.words[index].location, "unicast_peer option '\(s.words[index].text)' is missing its value")
            }
            return peer
        }
    }

    mutating func notify(_ s: Statement, _ n: inout NotifyScripts, owner: String) {
        guard let command = reader.command(s) else { return }
        func set(_ slot: inout ScriptCommand?) {
            if slot != nil {
                reader.diagnostics.warning(s.location, "\(owner): '\(s.keyword)' already specified: this one is ignored")
            } else { slot = command }
        }
        switch s.keyword {
        case "notify_master": set(&n.master)
        case "notify_backup": set(&n.backup)
        case "notify_fault": set(&n.fault)
        case "notify_stop": set(&n.stop)
        case "notify_deleted": set(&n.deleted)
        case "notify_master_rx_lower_pri": set(&n.masterRxLowerPri)
        default: set(&n.generic)
        }
    }

    // MARK: vrrp_sync_group

    static let syncGroupKeywords = ["group", "smtp_alert", "notify_master", "notify_backup", "notify_fault", "notify_stop",
                                    "notify_deleted", "notify", "track_interface", "track_script",
                                    "sync_group_tracking_weight", "track_file", "track_process", "notify_priority_changes", "global_tracking"]
    static let syncGroupAccepted = ["track_bfd"]

    mutating func syncGroup(_ name: Token, _ block: [Statement]) {
        var g = SyncGroup(name: name.text, location: name.location)
        for s in block {
            switch s.keyword {
            case "group":
                if let b = reader.requireBlock(s) {
                    for member in b {
                        reader.forbidBlock(member)
                        for word in member.words { g.members.append((word.text, word.location)) }
                    }
                }
            case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify":
                reader.forbidBlock(s)
                notify(s, &g.notify, owner: "vrrp_sync_group \(name.text)")
            case "track_interface": if let b = reader.requireBlock(s) { g.trackInterfaces += tracked(b, in: "track_interface") }
            case "track_script": if let b = reader.requireBlock(s) { g.trackScripts += tracked(b, in: "track_script") }
            case "track_file": if let b = reader.requireBlock(s) { g.trackFiles += tracked(b, in: "track_file") }
            case "track_process": if let b = reader.requireBlock(s) { g.trackProcesses += tracked(b, in: "track_process") }
            case "sync_group_tracking_weight": g.trackingWeight = true
            case "global_tracking":
                // keepalived 2.2.7: deprecated, an error in -t, and sync_group_tracking_weight.
                reader.diagnostics.error(s.location, "(\(name.text)) global_tracking is deprecated. Use track_interface/script/file on the sync group", klass: .general)
                g.trackingWeight = true
            case "smtp_alert": g.smtpAlert = reader.boolean(s) ?? true
            case "notify_priority_changes": g.notifyPriorityChanges = reader.boolean(s) ?? g.notifyPriorityChanges
            default:
                if Self.syncGroupAccepted.contains(s.keyword) { g.notActedOn[s.keyword] = s.location; continue }
                reader.unknown(s, in: "vrrp_sync_group \(name.text)", known: Self.syncGroupKeywords + Self.syncGroupAccepted)
            }
        }
        config.syncGroups.append(g)
    }

    // MARK: virtual_server_group

    mutating func virtualServerGroup(_ name: Token, _ block: [Statement]) {
        var group = VirtualServerGroup(name: name.text, location: name.location)
        for s in block {
            reader.forbidBlock(s)
            if s.keyword == "fwmark" {
                if let mark = reader.integer(s, in: 0...Int(UInt32.max), what: "a firewall mark 0...4294967295") {
                    group.entries.append(.fwmark(UInt32(mark)))
                }
                continue
            }
            // `ADDR[-LAST] [PORT]` or `ADDR/LEN [PORT]`.
            let text = s.keyword
            var rangeEnd: Int?
            var addressText = text
            if let dash = text.lastIndex(of: "-") {
                addressText = String(text[..<dash])
                rangeEnd = Int(text[text.index(after: dash)...])
                if rangeEnd == nil {
                    reader.diagnostics.error(s.location, "invalid address range '\(text)' in virtual_server_group \(name.text)")
                    continue
                }
            }
            guard let (address, _, _) = parsePrefix(addressText) else {
                reader.diagnostics.error(s.location, "invalid address '\(text)' in virtual_server_group \(name.text)")
                continue
            }
            var port = 0
            if s.words.count > 1 {
                port = reader.integer(s.words[1], keyword: "port", in: 0...65535, what: "a port 0...65535") ?? 0
            }
            group.entries.append(.address(address, lastOctetRange: rangeEnd, port: port))
        }
        config.virtualServerGroups.append(group)
    }

    // MARK: virtual_server

    static let virtualServerKeywords = [
        "delay_loop", "lb_algo", "lvs_sched", "lb_kind", "lvs_method", "persistence_timeout",
        "persistence_granularity", "persistence_engine", "protocol", "quorum", "hysteresis", "quorum_up",
        "quorum_down", "sorry_server", "sorry_server_inhibit", "alpha", "omega", "inhibit_on_failure",
        "ha_suspend", "virtualhost", "connect_timeout", "retry", "delay_before_retry", "warmup", "weight",
        "real_server", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback",
        "hashed", "vigil_announce", "smtp_alert", "ip_family",
    ]
    static let virtualServerAccepted = ["snmp_name"]
    static let schedulers = ["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"]

    mutating func virtualServer(_ s: Statement, _ block: [Statement]) {
        guard let first = reader.argument(s, expecting: "an IP address and port, 'fwmark N' or 'group NAME'") else { return }
        var key: VirtualServerKey
        switch first.text {
        case "fwmark":
            guard let mark = reader.integer(s, 2, in: 0...Int(UInt32.max), what: "a firewall mark 0...4294967295") else { return }
            key = .fwmark(UInt32(mark))
        case "group":
            guard let name = reader.argument(s, 2, expecting: "a virtual_server_group name") else { return }
            key = .group(name.text)
        default:
            guard let address = reader.address(first, keyword: "virtual_server") else { return }
            var port = 0
            if s.words.count > 2 {
                port = reader.integer(s.words[2], keyword: "virtual_server", in: 0...65535, what: "a port 0...65535") ?? 0
            }
            key = .address(address, port: port)
        }
        reader.noExtra(s, after: 2)
        var vs = VirtualServer(key: key, location: s.location)
        for s in block {
            if s.keyword != "real_server" { reader.forbidBlock(s) }
            switch s.keyword {
            case "delay_loop": if let v = reader.timer(s, min: 1) { vs.delayLoop = v }
            case "ip_family":
                guard let t = reader.argument(s, 1, expecting: "inet or inet6") else { break }
                reader.noExtra(s, after: 1)
                let family: AddressFamily
                switch t.text {
                case "inet": family = .ipv4
                case "inet6": family = .ipv6
                default:
                    reader.diagnostics.error(t.location, "unknown address family \(t.text)")
                    continue
                }
                if case .address(let address, _) = vs.key, address.family != family {
                    reader.diagnostics.error(t.location, "Virtual server specified family \(t.text) conflicts with server family")
                    continue
                }
                vs.ipFamily = family
            case "lb_algo", "lvs_sched":
                guard let t = reader.argument(s, expecting: "a scheduler (\(Self.schedulers.joined(separator: " ")))") else { break }
                if Self.schedulers.contains(t.text) { vs.scheduler = t.text; vs.schedulerSet = true }
                else { reader.diagnostics.error(t.location, "invalid scheduler '\(t.text)'", suggestion: nearest(t.text, in: Self.schedulers)) }
            case "lb_kind", "lvs_method":
                if let (method, tunnel) = forwarding(s, of: "virtual", tunnel: vs.tunnel) {
                    vs.method = method
                    vs.methodSet = true
                    vs.tunnel = tunnel
                }
            case "sorry_server_lvs_method":
                guard vs.sorryServer != nil else {
                    reader.diagnostics.error(s.location, "sorry_server forwarding used without sorry_server", klass: .general)
                    break
                }
                if let (method, tunnel) = forwarding(s, of: "sorry", tunnel: vs.sorryTunnel ?? vs.tunnel) {
                    vs.sorryMethod = method
                    vs.sorryTunnel = tunnel
                }
            case "persistence_timeout":
                if s.words.count == 1 { vs.persistenceTimeout = 360 }
                else if let v = reader.integer(s, in: 1...2_678_400, what: "seconds 1...2678400") { vs.persistenceTimeout = v }
            case "persistence_granularity": vs.persistenceGranularity = reader.string(s, expecting: "a netmask or prefix length")
            case "persistence_engine": vs.persistenceEngine = reader.string(s, expecting: "a persistence engine name")
            case "protocol":
                guard let t = reader.argument(s, expecting: "TCP, UDP or SCTP") else { break }
                if let p = TransportProtocol(rawValue: t.text.uppercased()) { vs.proto = p; vs.protoSet = true }
                else { reader.diagnostics.error(t.location, "unknown protocol '\(t.text)': expected TCP, UDP or SCTP") }
            case "quorum": if let v = reader.integer(s, in: 1...Int(UInt32.max)) { vs.quorum = v }
            case "hysteresis": if let v = reader.integer(s, in: 0...Int(UInt32.max)) { vs.hysteresis = v }
            case "quorum_up": vs.quorumUp = reader.command(s)
            case "quorum_down": vs.quorumDown = reader.command(s)
            case "sorry_server":
                if let a = reader.address(s) {
                    let port = s.words.count > 2 ? reader.integer(s.words[2], keyword: "sorry_server", in: 0...65535, what: "a port") : nil
                    vs.sorryServer = (a, port)
                }
            case "sorry_server_inhibit": vs.sorryServerInhibit = true
            case "alpha": vs.alpha = true
            case "omega": vs.omega = true
            case "smtp_alert": vs.smtpAlert = reader.boolean(s) ?? vs.smtpAlert
            case "inhibit_on_failure": vs.inhibitOnFailure = reader.boolean(s) ?? true
            case "ha_suspend": vs.haSuspend = true
            case "virtualhost": vs.virtualhost = reader.string(s, expecting: "a host name")
            case "connect_timeout": vs.connectTimeout = reader.timer(s, min: 1)
            case "retry": vs.retry = reader.integer(s, in: 0...Int(UInt32.max))
            case "delay_before_retry": vs.delayBeforeRetry = reader.timer(s)
            case "warmup": vs.warmup = reader.timer(s)
            case "weight": if let v = reader.integer(s, in: 1...Int(Int32.max)) { vs.weight = v }
            case "ops", "flag-1", "flag-2", "flag-3", "hashed":
                vs.flags.append(s.keyword)
            case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
                schedulerFlag(s, into: &vs)
            case "vigil_announce":
                if let announcement = announcement(s, key: key) { vs.announcements.append(announcement) }
            case "real_server":
                if let b = reader.requireBlock(s) { if let rs = realServer(s, b, inheritedTunnel: vs.tunnel) { vs.realServers.append(rs) } }
                else if let rs = realServer(s, [], inheritedTunnel: vs.tunnel) { vs.realServers.append(rs) }
            default:
                if Self.virtualServerAccepted.contains(s.keyword) { vs.notActedOn[s.keyword] = s.location }
                else { reader.unknown(s, in: "virtual_server \(key)", known: Self.virtualServerKeywords + Self.virtualServerAccepted) }
            }
        }
        completeVirtualServer(&vs)
        if let vs = Optional(vs), !vs.realServers.isEmpty || vs.sorryServer != nil {
            config.virtualServers.append(vs)
        }
    }

    /// keepalived's `lbflags_handler`: the flag is read against the scheduler set so far, so
    /// `lvs_sched` must come first (otherwise keepalived's error, and the flag is not set). An
    /// sh flag under mh (or the reverse) keepalived drops without a word: Vigil says so, as a
    /// note, since the flag the user meant is one letter away.
    mutating func schedulerFlag(_ s: Statement, into vs: inout VirtualServer) {
        let family = s.keyword.hasPrefix("sh-") ? "sh" : "mh"
        let scheduler = vs.schedulerSet ? vs.scheduler : ""
        if scheduler == family {
            vs.flags.append(s.keyword)
        } else if scheduler == "sh" || scheduler == "mh" {
            let meant = scheduler + s.keyword.dropFirst(2)
            reader.diagnostics.note(s.location, "'\(s.keyword)' does nothing under lvs_sched \(scheduler) (keepalived ignores it too): did you mean '\(meant)'?")
        } else {
            reader.diagnostics.error(s.location, "\(s.keyword) only applies to sh scheduler - ignoring"
                + (vs.schedulerSet ? "" : " (give 'lvs_sched \(family)' before it: keepalived reads the flag against the scheduler set so far)"))
        }
    }

    /// Vigil's own `vigil_announce [ADDRESS[/LEN]] [master NAME]`.
    mutating func announcement(_ s: Statement, key: VirtualServerKey) -> RouteAnnouncementSettings? {
        var result = RouteAnnouncementSettings(location: s.location)
        var i = 1
        while i < s.words.count {
            let word = s.words[i]
            if word.text == "master" {
                guard let name = reader.argument(s, i + 1, expecting: "a vrrp_instance or vrrp_sync_group name") else { return nil }
                result.master = name.text
                i += 2
                continue
            }
            guard result.address == nil, i == 1 else {
                reader.diagnostics.error(word.location, "unexpected '\(word.text)' in vigil_announce: expected [ADDRESS[/LEN]] [master NAME]")
                return nil
            }
            guard let (address, length, lengthValid) = parsePrefix(word.text), lengthValid else {
                reader.diagnostics.error(word.location, "invalid prefix '\(word.text)' for vigil_announce: expected an address with an optional /length")
                return nil
            }
            result.address = address
            result.prefixLength = length
            i += 1
        }
        if result.address == nil, case .fwmark = key {
            reader.diagnostics.error(s.location, "vigil_announce in a fwmark virtual_server needs the address to announce")
            return nil
        }
        return result
    }

    /// keepalived's `validate_check_config` rules for one virtual server.
    mutating func completeVirtualServer(_ vs: inout VirtualServer) {
        // Only messages need the name; building it for every server showed in the profile.
        var name: String { "virtual_server \(vs.key)" }
        if case .fwmark = vs.key, vs.protoSet {
            reader.diagnostics.warning(vs.location, "\(name): 'protocol' is ignored for fwmark services")
        }
        if case .address = vs.key, !vs.protoSet {
            reader.diagnostics.warning(vs.location, "\(name): no protocol set, defaulting to UDP (as keepalived); say 'protocol TCP' if you meant TCP")
        }
        if !vs.schedulerSet {
            reader.diagnostics.warning(vs.location, "\(name): no lb_algo set, using 'wlc'")
        }
        if !vs.methodSet {
            reader.diagnostics.warning(vs.location, "\(name): no lb_kind set, using NAT")
        }
        if vs.persistenceGranularity != nil && vs.persistenceTimeout == 0 { vs.persistenceTimeout = 360 }
        if case .address(_, let port) = vs.key, port == 0, vs.persistenceTimeout == 0 {
            reader.diagnostics.warning(vs.location, "\(name): port 0 is valid only for persistent services: persistence_timeout 360 set")
            vs.persistenceTimeout = 360
        }
        if vs.realServers.isEmpty {
            reader.diagnostics.warning(vs.location, "\(name) has no real_server: ignored")
        }
        let totalWeight = vs.realServers.reduce(0) { $0 + ($1.weight ?? vs.weight) }
        if !vs.realServers.isEmpty && vs.quorum > max(totalWeight, 1) {
            reader.diagnostics.warning(vs.location, "\(name): quorum \(vs.quorum) is more than the total weight \(totalWeight) of its real servers: reduced")
            vs.quorum = max(totalWeight, 1)
        }
        if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
            reader.diagnostics.warning(vs.location, "\(name): hysteresis must be less than quorum: set to \(vs.quorum - 1)")
            vs.hysteresis = vs.quorum - 1
        }
        struct Endpoint: Hashable { var address: IPAddress; var port: Int }
        var seen: [Endpoint: SourceLocation] = [:]
        vs.realServers.removeAll { rs in
            let id = Endpoint(address: rs.address, port: rs.port)
            if let earlier = seen[id] {
                reader.diagnostics.error(rs.location, "\(name): real_server \(rs.address):\(rs.port) is already listed at \(earlier)")
                return true
            }
            seen[id] = rs.location
            return false
        }
    }

    // MARK: real_server and checkers

    static let realServerKeywords = ["weight", "inhibit_on_failure", "lvs_method", "notify_up", "notify_down",
                                     "uthreshold", "lthreshold", "alpha", "connect_timeout", "retry",
                                     "delay_before_retry", "warmup", "delay_loop", "virtualhost", "smtp_alert"]
    static let realServerAccepted = ["snmp_name"]

    /// keepalived's svr_forwarding_handler, for a virtual, real or sorry server: `NAT`, `DR`
    /// or `TUN` exactly as written (keepalived does not read `dr`), then TUN's options. A bad
    /// method changes nothing; a bad option keeps the method and the encapsulation it had
    /// (a real server's is the virtual server's until its own lvs_method).
    mutating func forwarding(_ s: Statement, of server: String, tunnel current: TunnelOptions) -> (ForwardingMethod, TunnelOptions)? {
        guard let t = reader.argument(s, expecting: "NAT, DR or TUN") else { return nil }
        guard let method = ForwardingMethod(rawValue: t.text) else {
            reader.diagnostics.error(t.location, "PARSER : unknown [\(t.text)] routing method for \(server) server.",
                                     suggestion: ForwardingMethod(rawValue: t.text.uppercased())?.rawValue, klass: .general)
            return nil
        }
        // Each line says it all (keepalived starts from IPIP, no port, no checksum); only a
        // line refused for its options leaves the server with what it had.
        var tunnel = TunnelOptions()
        var index = 2
        while index < s.words.count {
            let word = s.words[index]
            switch word.text {
            case "type":
                guard index + 1 < s.words.count else {
                    reader.diagnostics.error(word.location, "Missing tunnel type for \(server) server.", klass: .general)
                    return (method, current)
                }
                guard let kind = TunnelOptions.Kind(rawValue: s.words[index + 1].text) else {
                    reader.diagnostics.error(s.words[index + 1].location, "Unknown tunnel type \(s.words[index + 1].text) for \(server) server.", klass: .general)
                    return (method, current)
                }
                tunnel.kind = kind
                index += 1
            case "port":
                guard index + 1 < s.words.count else {
                    reader.diagnostics.error(word.location, "Missing port for \(server) server gue tunnel.", klass: .general)
                    return (method, current)
                }
                guard let port = Int(s.words[index + 1].text), (1...65535).contains(port) else {
                    reader.diagnostics.error(s.words[index + 1].location, "Invalid gue tunnel port \(s.words[index + 1].text) for \(server) server.", klass: .general)
                    return (method, current)
                }
                tunnel.port = port
                index += 1
            default:
                guard let checksum = TunnelOptions.Checksum(rawValue: word.text) else {
                    reader.diagnostics.error(word.location, "Invalid tunnel option \(word.text) for \(server) server.", klass: .general)
                    return (method, current)
                }
                tunnel.checksum = checksum
            }
            index += 1
        }
        let problem: String? = if (tunnel.kind == .gue) != (tunnel.port != 0) {
            "gue tunnels require port, otherwise cannot have port."
        } else if tunnel.kind == .ipip && tunnel.checksum != .nocsum {
            "ipip tunnels do not support checksum option."
        } else if tunnel.kind == .gre && tunnel.checksum == .remcsum {
            "gre tunnels do not support remote checksum option."
        } else { nil }
        if let problem {
            reader.diagnostics.error(s.location, problem, klass: .general)
            return (method, current)
        }
        return (method, tunnel)
    }

    /// `inheritedTunnel`: the virtual server's TUN options so far, which keepalived copies
    /// into each real server it allocates (its lvs_method starts from them).
    mutating func realServer(_ s: Statement, _ block: [Statement], inheritedTunnel: TunnelOptions = TunnelOptions()) -> RealServer? {
        guard let address = reader.address(s) else { return nil }
        var port = 0
        if s.words.count > 2 {
            port = reader.integer(s.words[2], keyword: "real_server", in: 0...65535, what: "a port 0...65535") ?? 0
        }
        reader.noExtra(s, after: 2)
        var rs = RealServer(address: address, port: port, location: s.location)
        for s in block {
            // Checker blocks are the only upper-case keywords here: skip the lookup for the rest.
            if let first = s.keyword.utf8.first, first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z"),
               let kind = Self.checkerKinds[s.keyword] {
                rs.checkers += checker(kind, s).expandingSMTPHosts()
                if ![.tcp, .http, .ssl, .misc, .udp, .dns, .ping, .smtp, .file].contains(kind) {
                    // Not a config error (keepalived accepts it, so the exit status stays), but
                    // nobody must believe this server is health-checked when it is not.
                    reader.diagnostics.warning(s.location, "\(kind.rawValue) is not run by Vigil yet (every checker but BFD_CHECK is): real_server \(address) is not health-checked by it", klass: .note)
                }
                continue
            }
            reader.forbidBlock(s)
            switch s.keyword {
            case "weight": rs.weight = reader.integer(s, in: 0...Int(Int32.max))
            case "inhibit_on_failure": rs.inhibitOnFailure = reader.boolean(s)
            case "lvs_method":
                if let (method, tunnel) = forwarding(s, of: "real", tunnel: rs.tunnel ?? inheritedTunnel) {
                    rs.method = method
                    rs.tunnel = tunnel
                }
            case "smtp_alert": rs.smtpAlert = reader.boolean(s) ?? rs.smtpAlert
            case "notify_up": rs.notifyUp = reader.command(s)
            case "notify_down": rs.notifyDown = reader.command(s)
            case "uthreshold": rs.upperThreshold = reader.integer(s, in: 0...Int(UInt32.max)) ?? 0
            case "lthreshold": rs.lowerThreshold = reader.integer(s, in: 0...Int(UInt32.max)) ?? 0
            case "alpha": rs.alpha = reader.boolean(s)
            case "connect_timeout": rs.connectTimeout = reader.timer(s, min: 1)
            case "retry": rs.retry = reader.integer(s, in: 0...Int(UInt32.max))
            case "delay_before_retry": rs.delayBeforeRetry = reader.timer(s)
            case "warmup": rs.warmup = reader.timer(s)
            case "delay_loop": rs.delayLoop = reader.timer(s, min: 1)
            case "virtualhost": rs.virtualhost = reader.string(s, expecting: "a host name")
            default:
                if Self.realServerAccepted.contains(s.keyword) { rs.notActedOn[s.keyword] = s.location; continue }
                reader.unknown(s, in: "real_server \(address)", known: Self.realServerKeywords + Self.realServerAccepted + CheckerKind.allCases.map(\.rawValue))
            }
        }
        return rs
    }

    static let commonCheckerKeywords = ["connect_ip", "connect_port", "bindto", "bind_port", "bind_if",
                                        "connect_timeout", "fwmark", "retry", "delay_before_retry", "warmup",
                                        "delay_loop", "alpha", "log_all_failures"]

    /// Each checker's keywords: the common connection ones (MISC_CHECK has none) plus its own.
    static let checkerKeywordSets: [CheckerKind: Set<String>] = checkerKeywords.mapValues { Set($0) }
    static let checkerKinds: [String: CheckerKind] = Dictionary(uniqueKeysWithValues: CheckerKind.allCases.map { ($0.rawValue, $0) })

    static let checkerKeywords: [CheckerKind: [String]] = {
        var table: [CheckerKind: [String]] = [:]
        for kind in CheckerKind.allCases {
            let specific: [String]
            switch kind {
            case .tcp, .ping: specific = []
            case .http, .ssl: specific = ["url", "nb_get_retry", "http_protocol", "virtualhost", "fast_recovery", "enable_sni", "sni_name", "tls_compliant"]
            case .misc: specific = ["misc_path", "misc_timeout", "misc_dynamic", "user"]
            case .smtp: specific = ["helo_name", "host"]
            case .dns: specific = ["type", "name"]
            case .udp: specific = ["payload", "require_reply", "min_reply_length", "max_reply_length"]
            case .file: specific = ["track_file", "weight"]
            case .bfd: specific = ["name"]
            }
            table[kind] = (kind == .misc ? ["retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures"]
                                         : commonCheckerKeywords) + specific
        }
        return table
    }()

    mutating func checker(_ kind: CheckerKind, _ s: Statement) -> Checker {
        var c = Checker(kind: kind, location: s.location)
        let block = s.block ?? []
        if s.block == nil { reader.diagnostics.error(s.location, "'\(kind.rawValue)' needs a block: \(kind.rawValue) { … }") }
        let knownSet = Self.checkerKeywordSets[kind] ?? []
        for s in block {
            if s.keyword != "url" && s.keyword != "host" { reader.forbidBlock(s) }
            guard knownSet.contains(s.keyword) else {
                var message = "unknown keyword '\(s.keyword)' in \(kind.rawValue)"
                if s.keyword == "nb_get_retry" { message += ": 'nb_get_retry' is accepted only in HTTP_GET/SSL_GET; use 'retry'" }
                reader.diagnostics.error(s.location, message, suggestion: s.keyword == "nb_get_retry" ? "retry" : nearest(s.keyword, in: Self.checkerKeywords[kind] ?? []))
                continue
            }
            if connection(s, into: &c) { continue }
            switch s.keyword {
            case "retry": c.retry = reader.integer(s, in: 0...Int(UInt32.max))
            case "nb_get_retry":
                reader.diagnostics.warning(s.location, "'nb_get_retry' is deprecated: use 'retry'", suggestion: "retry")
                c.retry = reader.integer(s, in: 0...Int(UInt32.max))
            case "delay_before_retry": c.delayBeforeRetry = reader.timer(s)
            case "warmup": c.warmup = reader.timer(s)
            case "delay_loop": c.delayLoop = reader.timer(s, min: 1)
            case "alpha": c.alpha = reader.boolean(s)
            case "log_all_failures": c.logAllFailures = reader.boolean(s)
            case "url": if let b = reader.requireBlock(s) { c.urls.append(url(b, at: s.location)) }
            case "http_protocol":
                if let t = reader.argument(s, expecting: "1.0, 1.0C or 1.1") {
                    switch t.text.uppercased() {
                    case "1.0": c.httpProtocol = nil
                    case "1.0C", "1.1": c.httpProtocol = t.text.uppercased()
                    default: reader.diagnostics.error(t.location, "Invalid http_protocol \(t.text)", suggestion: nearest(t.text, in: ["1.0", "1.0C", "1.1"]))
                    }
                }
            case "virtualhost": c.virtualhost = reader.string(s, expecting: "a host name")
            case "fast_recovery": c.fastRecovery = reader.boolean(s) ?? true
            case "enable_sni": c.enableSNI = reader.boolean(s) ?? true
            case "sni_name": c.sniName = reader.string(s, expecting: "a server name")
            case "payload":
                if let text = reader.argument(s, expecting: "a hex string") {
                    if let bytes = hexBytes(s.words.dropFirst().map(\.text).joined()) { c.payload = bytes }
                    else { reader.diagnostics.error(text.location, "Invalid hex string for UDP_CHECK payload") }
                }
            case "require_reply":
                c.requireReply = true
                let words = s.words.dropFirst().map(\.text)
                if let data = words.first {
                    if let bytes = hexBytes(data) { c.replyData = bytes }
                    else { reader.diagnostics.error(s.words[1].location, "Invalid hex string for UDP_CHECK require_reply") }
                }
                if words.count > 1 {
                    if let mask = hexBytes(words[1]) { c.replyMask = mask }
                    else { reader.diagnostics.error(s.words[2].location, "Invalid hex string for UDP_CHECK require_reply mask") }
                }
            case "min_reply_length": c.minReplyLength = reader.integer(s, in: 0...65535)
            case "max_reply_length": c.maxReplyLength = reader.integer(s, in: 0...65535)
            case "type":
                if let t = reader.argument(s, expecting: "a DNS type") {
                    let known = ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"]
                    if known.contains(t.text.uppercased()) { c.dnsType = t.text.uppercased() }
                    else { reader.diagnostics.error(t.location, "DNS_CHECK type \(t.text) is not supported", suggestion: nearest(t.text.uppercased(), in: known)) }
                }
            case "name":
                if kind == .dns { c.dnsName = reader.string(s, expecting: "a DNS name") } else { c.notActedOn[s.keyword] = s.location }
            case "misc_path": c.miscPath = reader.command(s)
            case "misc_timeout": c.miscTimeout = reader.timer(s, min: 1)
            case "misc_dynamic": c.miscDynamic = true
            case "user":
                if let u = reader.user(s), c.miscPath != nil { c.miscPath!.user = u }
            case "helo_name": c.heloName = reader.string(s, expecting: "a host name")
            case "track_file" where kind == .file:
                // keepalived looks the name up as it parses: the track_file block must come first.
                if let name = reader.string(s, expecting: "a track_file name") {
                    if config.trackFiles.contains(where: { $0.name == name }) { c.trackFile = name }
                    else { reader.diagnostics.error(s.words[1].location, "track_file \(name) not found", suggestion: nearest(name, in: config.trackFiles.map(\.name))) }
                }
            case "weight" where kind == .file:
                // As keepalived: an unknown option drops the whole line.
                let option = s.words.count > 2 ? s.words[2].text : "noreverse"
                if let w = reader.integer(s, in: -Int(Int32.max)...Int(Int32.max)) {
                    if option == "reverse" || option == "noreverse" {
                        c.fileWeight = w
                        c.fileReverse = option == "reverse"
                    } else {
                        reader.diagnostics.error(s.words[2].location, "unknown track file weight option \(option) - ignoring")
                    }
                }
            case "host":
                if let b = reader.requireBlock(s) { c.smtpHosts.append(smtpHost(b, at: s.location)) }
            default: c.notActedOn[s.keyword] = s.location
            }
        }
        if kind == .misc && c.miscPath == nil {
            reader.diagnostics.error(s.location, "MISC_CHECK has no misc_path: nothing to run")
        }
        if (kind == .http || kind == .ssl) && c.urls.isEmpty {
            reader.diagnostics.error(s.location, "\(kind.rawValue) has no url block: nothing to check")
        }
        if kind == .file && c.trackFile == nil {
            reader.diagnostics.error(s.location, "FILE_CHECK has no track_file specified - ignoring")
        }
        if let first = c.smtpHosts.first {
            reader.diagnostics.warning(first.location, "The SMTP_CHECK host block is deprecated. Please define additional checkers.", klass: .note)
        }
        return c
    }

    static let smtpHostKeywords = ["connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark"]

    /// The connection keywords a checker and an SMTP_CHECK `host` block share; false when `s`
    /// is none of them.
    mutating func connection(_ s: Statement, into c: inout Checker) -> Bool {
        switch s.keyword {
        case "connect_ip": c.connectIP = reader.address(s)
        case "connect_port": c.connectPort = reader.integer(s, in: 0...65535)
        case "bindto": c.bindTo = reader.address(s)
        case "bind_port": c.bindPort = reader.integer(s, in: 0...65535)
        case "bind_if": c.bindInterface = reader.string(s, expecting: "an interface name")
        case "connect_timeout": c.connectTimeout = reader.timer(s, min: 1)
        case "fwmark": c.fwmark = reader.integer(s, in: 0...Int(UInt32.max)).map { UInt32($0) }
        default: return false
        }
        return true
    }

    /// One deprecated SMTP_CHECK `host` block: a connection and nothing else.
    mutating func smtpHost(_ block: [Statement], at location: SourceLocation) -> Checker {
        var host = Checker(kind: .smtp, location: location)
        for s in block {
            reader.forbidBlock(s)
            if !connection(s, into: &host) { reader.unknown(s, in: "SMTP_CHECK host", known: Self.smtpHostKeywords) }
        }
        return host
    }

    /// keepalived's SSL block: the files are checked when the daemon makes its TLS context.
    mutating func sslBlock(_ s: Statement, _ block: [Statement]) {
        var ssl = config.globals.ssl ?? SSLSettings()
        ssl.location = s.location
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "password": ssl.password = reader.string(s, expecting: "the key's password")
            case "ca":
                ssl.ca = reader.string(s, expecting: "a CA file")
                reader.diagnostics.note(s.location, "SSL ca: as in keepalived, the server's certificate is not verified: an SSL_GET passes whatever certificate the server shows")
            case "certificate": ssl.certificate = reader.string(s, expecting: "a certificate file")
            case "key": ssl.key = reader.string(s, expecting: "a key file")
            default: reader.unknown(s, in: "SSL", known: ["password", "ca", "certificate", "key"])
            }
        }
        config.globals.ssl = ssl
    }

    mutating func url(_ block: [Statement], at location: SourceLocation) -> HTTPURL {
        var u = HTTPURL(location: location)
        var regexAt: SourceLocation?
        let known = ["path", "digest", "status_code", "virtualhost", "regex", "regex_no_match", "regex_options",
                     "regex_stack", "regex_min_offset", "regex_max_offset"]
        for s in block {
            reader.forbidBlock(s)
            switch s.keyword {
            case "path": u.path = reader.string(s, expecting: "a URL path")
            case "digest":
                if let d = reader.string(s, expecting: "a 32-digit MD5 hex digest") {
                    if d.count == 32 && d.allSatisfy(\.isHexDigit) { u.digest = d.lowercased() }
                    else { reader.diagnostics.error(s.words[1].location, "digest '\(d)' is not a 32-digit MD5 hex string") }
                }
            case "status_code":
                for word in s.arguments {
                    let parts = word.text.split(separator: "-", maxSplits: 1).map { Int($0) }
                    if parts.count == 1, let a = parts[0], (100...999).contains(a) { u.statusCodes.append(a...a) }
                    else if parts.count == 2, let a = parts[0], let b = parts[1], a <= b, (100...999).contains(a), (100...999).contains(b) {
                        u.statusCodes.append(a...b)
                    } else {
                        reader.diagnostics.error(word.location, "invalid status_code '\(word.text)': expected N or N-M with 100 <= N <= M <= 999")
                    }
                }
            case "virtualhost": u.virtualhost = reader.string(s, expecting: "a host name")
            case "regex":
                if let pattern = reader.string(s, expecting: "a PCRE2 pattern") { u.regex = pattern; regexAt = s.words[1].location }
            case "regex_no_match": u.regexNoMatch = true
            case "regex_options":
                for word in s.arguments {
                    if let bit = RegexOptions.bits[word.text] { u.regexOptions |= bit }
                    else {
                        // keepalived skips an unknown option without a word; say it.
                        reader.diagnostics.warning(word.location, "unknown regex option '\(word.text)' is ignored",
                                                   suggestion: nearest(word.text, in: RegexOptions.bits.keys.sorted()), klass: .note)
                    }
                }
            case "regex_min_offset": u.regexMinOffset = reader.integer(s, in: 0...Int(Int32.max)) ?? 0
            case "regex_max_offset": u.regexMaxOffset = reader.integer(s, in: 0...Int(Int32.max))
            case "regex_stack":
                reader.diagnostics.warning(s.location, "regex_stack is not acted on: it sizes the stack of PCRE2's JIT, which Vigil does not use (the matcher it uses needs no such stack)", klass: .note)
            default:
                reader.unknown(s, in: "url", known: known)
            }
        }
        if u.path == nil { reader.diagnostics.error(location, "url block has no 'path'") }
        if let pattern = u.regex, let at = regexAt {
            // keepalived logs an invalid pattern and then checks the url without it: the page
            // is no longer matched at all, silently. Here it is an error of the file.
            do { _ = try CompiledRegex(pattern: pattern, options: u.regexOptions) } catch {
                reader.diagnostics.error(at, "Invalid regex: '\(pattern)' at offset \(error.offset): \(error.message)")
            }
        } else if u.regexNoMatch || u.regexOptions != 0 || u.regexMinOffset != 0 || u.regexMaxOffset != nil {
            reader.diagnostics.warning(location, "url has regex options but no 'regex': they do nothing", klass: .note)
        }
        return u
    }
}
