import Addressing

/// `vigil --dump-conf`: the effective configuration in keepalived syntax, every default that
/// matters written out, so users see what Vigil will really do (keepalived's implicit defaults,
/// such as a missing `protocol` meaning UDP, are where surprises hide). The output parses back
/// to the same model.
public enum ConfigDumper {
    public static func dump(_ c: Configuration) -> String {
        var out = Output()
        let g = c.globals
        out.open("global_defs")
        if let id = g.routerID { out.line("router_id \(id)") }
        if !g.notificationEmail.isEmpty {
            out.open("notification_email")
            for e in g.notificationEmail { out.line(e) }
            out.close()
        }
        if let from = g.notificationEmailFrom { out.line("notification_email_from \(from)") }
        if let smtp = g.smtpServer {
            out.line("smtp_server \(smtp)\(g.smtpPort != 25 ? " \(g.smtpPort)" : "")")
            if let helo = g.smtpHeloName { out.line("smtp_helo_name \(helo)") }
            out.line("smtp_connect_timeout \(formatSeconds(g.smtpConnectTimeout))")
        }
        if g.enableScriptSecurity { out.line("enable_script_security") }
        if let u = g.scriptUser { out.line("script_user \(u.user)\(u.group.map { " " + $0 } ?? "")") }
        for (kind, fifo) in g.notifyFIFOs.sorted(by: { $0.key < $1.key }) {
            let owner = fifo.owner.map { " \($0.user)\($0.group.map { " " + $0 } ?? "")" } ?? ""
            out.line("\(kind.keyword) \(quote(fifo.path))\(owner)")
            if let script = fifo.script {
                out.line("\(kind.keyword)_script \(quote(script.command))\(script.user.map { " \($0.user)\($0.group.map { " " + $0 } ?? "")" } ?? "")")
            }
        }
        if g.fifoWriteStatesOnReload { out.line("fifo_write_vrrp_states_on_reload") }
        if g.notifyPriorityChanges { out.line("vrrp_notify_priority_changes") }
        if g.logUnknownVRIDs { out.line("log_unknown_vrids") }
        if g.rsInitNotifies { out.line("rs_init_notifies") }
        if g.maxAutoPriority > 0 { out.line("max_auto_priority \(g.maxAutoPriority)") }
        if g.minAutoPriorityDelay != 1_000_000 { out.line("min_auto_priority_delay \(g.minAutoPriorityDelay)") }
        for (keyword, script, timeout) in [("startup_script", g.startupScript, g.startupScriptTimeout),
                                           ("shutdown_script", g.shutdownScript, g.shutdownScriptTimeout)] {
            guard let script else { continue }
            out.line("\(keyword) \(quote(script.command))\(script.user.map { " \($0.user)\($0.group.map { " " + $0 } ?? "")" } ?? "")")
            out.line("\(keyword)_timeout \(timeout / 1_000_000)")
        }
        if let mask = g.umask { out.line("umask 0\(String(mask, radix: 8))") }
        out.line("vrrp_version \(g.vrrpVersion)")
        if g.vrrpStrict { out.line("vrrp_strict") }
        out.line("vrrp_garp_master_delay \(g.garp.masterDelay / 1_000_000)")
        out.line("vrrp_garp_master_repeat \(g.garp.masterRepeat)")
        out.line("vrrp_garp_master_refresh \(g.garp.masterRefresh / 1_000_000)")
        out.line("vrrp_garp_master_refresh_repeat \(g.garp.masterRefreshRepeat)")
        if g.garpInterval > 0 { out.line("vrrp_garp_interval \(formatSeconds(g.garpInterval))") }
        if g.gnaInterval > 0 { out.line("vrrp_gna_interval \(formatSeconds(g.gnaInterval))") }
        out.line("vrrp_mcast_group4 \(g.vrrpMcastGroup4)")
        out.line("vrrp_mcast_group6 \(g.vrrpMcastGroup6)")
        if let prefix = g.vmacPrefix { out.line("vmac_prefix \(prefix)") }
        if let table = g.nftablesTable { out.line("nftables \(table)") }
        if g.nftablesPriority != -1 { out.line("nftables_priority \(g.nftablesPriority)") }
        out.line("vrrp_down_timer_adverts \(g.downTimerAdverts)")
        if g.vrrpSkipCheckAdvAddr { out.line("vrrp_skip_check_adv_addr") }
        if g.vrrpCheckUnicastSrc { out.line("vrrp_check_unicast_src") }
        if let alert = g.smtpAlert { out.line("smtp_alert \(alert)") }
        if let alert = g.smtpAlertVRRP { out.line("smtp_alert_vrrp \(alert)") }
        if g.noEmailFaults { out.line("no_email_faults") }
        if let alert = g.smtpAlertChecker { out.line("smtp_alert_checker \(alert)") }
        if g.noCheckerEmails { out.line("no_checker_emails") }
        if g.lowerPrioNoAdvert { out.line("vrrp_lower_prio_no_advert") }
        if let send = g.higherPrioSendAdvert { out.line(send ? "vrrp_higher_prio_send_advert" : "vrrp_higher_prio_send_advert false") }
        if g.startupDelay > 0 { out.line("vrrp_startup_delay \(formatSeconds(g.startupDelay))") }
        if g.garpExtraInterval > 0 { out.line("vrrp_garp_extra_if \(g.garpExtraAll ? "all " : "")\(g.garpExtraInterval)") }
        out.line("default_interface \(g.defaultInterface)")
        if g.dynamicInterfaces { out.line("dynamic_interfaces") }
        if g.lvsFlush { out.line("lvs_flush") }
        if g.lvsFlushOnStop { out.line("lvs_flush_on_stop") }
        if let sync = g.lvsSyncDaemon {
            var line = "lvs_sync_daemon \(sync.interface)"
            if let v = sync.instance { line += " inst \(v)" }
            if let v = sync.syncID { line += " id \(v)" }
            if let v = sync.maxLength { line += " maxlen \(v)" }
            if let v = sync.port { line += " port \(v)" }
            if let v = sync.ttl { line += " ttl \(v)" }
            if let v = sync.group { line += " group \(v)" }
            out.line(line)
        }
        if g.announceTable != 198 { out.line("vigil_announce_table \(g.announceTable)") }
        if g.announceProtocol != 18 { out.line("vigil_announce_protocol \(g.announceProtocol)") }
        if let log = g.reloadCheckConfigLog { out.line("reload_check_config \(log)") }
        if let file = g.reloadFile { out.line("reload_file \(file)") }
        out.close()
        if let ns = c.netNamespace { out.line("net_namespace \(ns)") }
        if let name = c.instanceName { out.line("instance \(name)") }
        if c.globals.linkbeatUsePolling { out.line("linkbeat_use_polling") }
        if !c.linkbeatInterfaces.isEmpty {
            out.open("linkbeat_interfaces")
            for l in c.linkbeatInterfaces { out.line(l.interface) }
            out.close()
        }
        if !c.interfaceDelays.isEmpty {
            out.open("interface_up_down_delays")
            for d in c.interfaceDelays { out.line("\(d.interface) \(formatSeconds(d.down)) \(formatSeconds(d.up))") }
            out.close()
        }

        if !c.staticAddresses.isEmpty {
            out.open("static_ipaddress")
            for a in c.staticAddresses { out.line(address(a)) }
            out.close()
        }
        routes("static_routes", c.staticRoutes, &out)
        routes("static_rules", c.staticRules, &out)

        for s in c.scripts {
            out.open("vrrp_script \(s.name)")
            if let script = s.script { out.line("script \(quote(script.command))") }
            out.line("interval \(formatSeconds(s.interval))")
            out.line("timeout \(formatSeconds(s.timeout ?? s.interval))")
            out.line("weight \(s.weight)\(s.weightReverse ? " reverse" : "")")
            out.line("rise \(s.rise)")
            out.line("fall \(s.fall)")
            if let u = s.user { out.line("user \(u.user)\(u.group.map { " " + $0 } ?? "")") }
            if s.initFail { out.line("init_fail") }
            out.close()
        }
        for p in c.trackProcesses {
            out.open("vrrp_track_process \(p.name)")
            if let process = p.process { out.line("process \(([process] + p.parameters).map(quote).joined(separator: " "))") }
            switch p.parameterMatch {
            case .none: break
            case .exact: if p.parameters.isEmpty { out.line("param_match") }
            case .partial: out.line("param_match partial")
            case .initial: out.line("param_match initial")
            }
            if p.fullCommand { out.line("full_command") }
            out.line("weight \(p.weight)\(p.reverse ? " reverse" : "")")
            out.line("quorum \(p.quorum)")
            if p.quorumMax != Int.max { out.line("quorum_max \(p.quorumMax)") }
            if p.forkDelay > 0 { out.line("fork_delay \(formatSeconds(p.forkDelay))") }
            if p.terminateDelay > 0 { out.line("terminate_delay \(formatSeconds(p.terminateDelay))") }
            out.close()
        }
        for f in c.trackFiles {
            out.open("track_file \(f.name)")
            if let path = f.path { out.line("file \(quote(path))") }
            out.line("weight \(f.weight)\(f.reverse ? " reverse" : "")")
            if let value = f.initValue { out.line("init_file \(value)\(f.initOverwrite ? " overwrite" : "")") }
            out.close()
        }

        for i in c.instances {
            out.open("vrrp_instance \(i.name)")
            out.line("state \(i.effectiveState.rawValue)")
            if let ifname = i.interface { out.line("interface \(ifname)") }
            if let vrid = i.virtualRouterID { out.line("virtual_router_id \(vrid)") }
            out.line("priority \(i.effectivePriority)")
            out.line("advert_int \(formatSeconds(i.advertInterval))")
            out.line("version \(i.version ?? g.vrrpVersion)")
            out.line(i.nopreempt ? "nopreempt" : "preempt")
            if i.preemptDelay > 0 { out.line("preempt_delay \(formatSeconds(i.preemptDelay))") }
            if let type = i.authType {
                out.open("authentication")
                out.line("auth_type \(type.rawValue)")
                if let pass = i.authPass { out.line("auth_pass \(quote(pass))") }
                out.close()
            }
            if let ip = i.mcastSourceIP { out.line("mcast_src_ip \(ip)") }
            if let ip = i.unicastSourceIP { out.line("unicast_src_ip \(ip)") }
            if let group = i.multicastDestination { out.line("mcast_dst_ip \(group)") }
            if i.unicastFaultNoPeer { out.line("unicast_fault_no_peer") }
            if let old = i.oldUnicastChecksum { out.line(old == .never ? "old_unicast_checksum never" : "old_unicast_checksum") }
            if !i.unicastPeers.isEmpty {
                out.open("unicast_peer")
                for p in i.unicastPeers {
                    out.line("\(p.address)\(p.minTTL.map { " min_ttl \($0)" } ?? "")\(p.maxTTL.map { " max_ttl \($0)" } ?? "")")
                }
                out.close()
            }
            let garp = i.garp
            out.line("garp_master_delay \(garp.masterDelay / 1_000_000)")
            out.line("garp_master_repeat \(garp.masterRepeat)")
            out.line("garp_master_refresh \(garp.masterRefresh / 1_000_000)")
            out.line("garp_master_refresh_repeat \(garp.masterRefreshRepeat)")
            out.line("garp_lower_prio_delay \((garp.lowerPrioDelay ?? garp.masterDelay) / 1_000_000)")
            out.line("garp_lower_prio_repeat \(garp.lowerPrioRepeat ?? garp.masterRepeat)")
            out.line("down_timer_adverts \(i.downTimerAdverts ?? g.downTimerAdverts)")
            if i.dontTrackPrimary { out.line("dont_track_primary") }
            if let vmac = i.vmac {
                var words = ["use_vmac"]
                if let name = vmac.name { words.append(name) }
                if let mac = vmac.mac {
                    let octets = vmac.macTakesVRID ? Array(mac.prefix(5)) : mac
                    words.append(macAddressText(octets))
                }
                out.line(words.joined(separator: " "))
            }
            if i.vmacTransmitOnParent { out.line("vmac_xmit_base") }
            if i.v3ChecksumAsV2 { out.line("v3_checksum_as_v2") }
            if i.noVirtualIPAddress { out.line("no_virtual_ipaddress") }
            if i.nativeIPv6 { out.line("native_ipv6") }
            if let seconds = i.garpExtraInterval { out.line("garp_extra_if \(i.garpExtraAll ? "all " : "")\(seconds)") }
            if i.linkbeatUsePolling { out.line("linkbeat_use_polling") }
            if i.checkUnicastSource { out.line("check_unicast_src") }
            if i.ownerIgnoreAdverts { out.line("owner_ignore_adverts") }
            if let alert = i.smtpAlert { out.line("smtp_alert \(alert)") }
            if let notify = i.notifyPriorityChanges { out.line("notify_priority_changes \(notify)") }
            tracked("track_interface", i.trackInterfaces, &out)
            tracked("track_script", i.trackScripts, &out)
            tracked("track_file", i.trackFiles, &out)
            tracked("track_process", i.trackProcesses, &out)
            if !i.virtualAddresses.isEmpty {
                out.open("virtual_ipaddress")
                for a in i.virtualAddresses { out.line(address(a)) }
                out.close()
            }
            if !i.excludedAddresses.isEmpty {
                out.open("virtual_ipaddress_excluded")
                for a in i.excludedAddresses { out.line(address(a)) }
                out.close()
            }
            routes("virtual_routes", i.virtualRoutes, &out)
            routes("virtual_rules", i.virtualRules, &out)
            notify(i.notify, &out)
            out.close()
        }

        for group in c.syncGroups {
            out.open("vrrp_sync_group \(group.name)")
            out.open("group")
            for m in group.members { out.line(m.name) }
            out.close()
            if let alert = group.smtpAlert { out.line("smtp_alert \(alert)") }
            if let notify = group.notifyPriorityChanges { out.line("notify_priority_changes \(notify)") }
            tracked("track_interface", group.trackInterfaces, &out)
            tracked("track_script", group.trackScripts, &out)
            tracked("track_file", group.trackFiles, &out)
            tracked("track_process", group.trackProcesses, &out)
            if group.trackingWeight { out.line("sync_group_tracking_weight") }
            notify(group.notify, &out)
            out.close()
        }

        for group in c.virtualServerGroups {
            out.open("virtual_server_group \(group.name)")
            for entry in group.entries {
                switch entry {
                case .fwmark(let m): out.line("fwmark \(m)")
                case .address(let a, let range, let port): out.line("\(a)\(range.map { "-\($0)" } ?? "") \(port)")
                }
            }
            out.close()
        }

        for vs in c.virtualServers {
            let header: String
            switch vs.key {
            case .address(let a, let port): header = "virtual_server \(a) \(port)"
            case .fwmark(let m): header = "virtual_server fwmark \(m)"
            case .group(let name): header = "virtual_server group \(name)"
            }
            out.open(header)
            out.line("delay_loop \(formatSeconds(vs.delayLoop))")
            if let family = vs.ipFamily { out.line("ip_family \(family == .ipv6 ? "inet6" : "inet")") }
            out.line("lb_algo \(vs.scheduler)")
            out.line("lb_kind \(vs.method.rawValue)\(vs.method == .tun ? vs.tunnel.words : "")")
            if case .fwmark = vs.key {} else { out.line("protocol \(vs.proto.rawValue)") }
            if vs.persistenceTimeout > 0 { out.line("persistence_timeout \(vs.persistenceTimeout)") }
            if let gran = vs.persistenceGranularity { out.line("persistence_granularity \(gran)") }
            if let pe = vs.persistenceEngine { out.line("persistence_engine \(pe)") }
            out.line("quorum \(vs.quorum)")
            out.line("hysteresis \(vs.hysteresis)")
            if let q = vs.quorumUp { out.line("quorum_up \(quote(q.command))") }
            if let q = vs.quorumDown { out.line("quorum_down \(quote(q.command))") }
            if let sorry = vs.sorryServer { out.line("sorry_server \(sorry.address)\(sorry.port.map { " \($0)" } ?? "")") }
            if vs.sorryServerInhibit { out.line("sorry_server_inhibit") }
            if let m = vs.sorryMethod { out.line("sorry_server_lvs_method \(m.rawValue)\(m == .tun ? (vs.sorryTunnel ?? vs.tunnel).words : "")") }
            if vs.alpha { out.line("alpha") }
            if vs.omega { out.line("omega") }
            if let alert = vs.smtpAlert { out.line("smtp_alert \(alert)") }
            if vs.inhibitOnFailure { out.line("inhibit_on_failure") }
            if vs.haSuspend { out.line("ha_suspend") }
            for flag in vs.flags { out.line(flag) }
            for a in vs.announcements {
                var line = "vigil_announce"
                if let address = a.address { line += " \(address)\(a.prefixLength.map { "/\($0)" } ?? "")" }
                if let master = a.master { line += " master \(master)" }
                out.line(line)
            }
            for rs in vs.realServers {
                out.open("real_server \(rs.address) \(rs.port)")
                out.line("weight \(rs.weight ?? vs.weight)")
                if rs.inhibitOnFailure ?? vs.inhibitOnFailure { out.line("inhibit_on_failure") }
                if let m = rs.method { out.line("lvs_method \(m.rawValue)\(m == .tun ? (rs.tunnel ?? vs.tunnel).words : "")") }
                if let alert = rs.smtpAlert { out.line("smtp_alert \(alert)") }
                if let n = rs.notifyUp { out.line("notify_up \(quote(n.command))") }
                if let n = rs.notifyDown { out.line("notify_down \(quote(n.command))") }
                if rs.upperThreshold > 0 { out.line("uthreshold \(rs.upperThreshold)") }
                if rs.lowerThreshold > 0 { out.line("lthreshold \(rs.lowerThreshold)") }
                for chk in rs.checkers { checker(chk, rs, vs, &out) }
                out.close()
            }
            out.close()
        }
        return out.text
    }

    /// Writes a checker with every inherited parameter resolved (RS → VS → keepalived default).
    static func checker(_ c: Checker, _ rs: RealServer, _ vs: VirtualServer, _ out: inout Output) {
        out.open(c.kind.rawValue)
        if c.kind != .misc {
            out.line("connect_ip \(c.connectIP ?? rs.address)")
            out.line("connect_port \(c.connectPort ?? rs.port)")
            if let b = c.bindTo { out.line("bindto \(b)") }
            if let b = c.bindPort { out.line("bind_port \(b)") }
            if let b = c.bindInterface { out.line("bind_if \(b)") }
            out.line("connect_timeout \(formatSeconds(c.connectTimeout ?? rs.connectTimeout ?? vs.connectTimeout ?? 5_000_000))")
            if let m = c.fwmark { out.line("fwmark \(m)") }
        }
        let delayLoop = c.delayLoop ?? rs.delayLoop ?? vs.delayLoop
        out.line("retry \(c.retry ?? rs.retry ?? vs.retry ?? c.defaultRetry)")
        let defaultDelayBeforeRetry: Microseconds = (c.kind == .http || c.kind == .ssl) ? 3_000_000 : (c.kind == .dns ? delayLoop : 1_000_000)
        out.line("delay_before_retry \(formatSeconds(c.delayBeforeRetry ?? rs.delayBeforeRetry ?? vs.delayBeforeRetry ?? defaultDelayBeforeRetry))")
        out.line("warmup \(formatSeconds(c.warmup ?? rs.warmup ?? vs.warmup ?? delayLoop))")
        out.line("delay_loop \(formatSeconds(delayLoop))")
        if let misc = c.miscPath { out.line("misc_path \(quote(misc.command))") }
        if let t = c.miscTimeout { out.line("misc_timeout \(formatSeconds(t))") }
        if c.miscDynamic { out.line("misc_dynamic") }
        for u in c.urls {
            out.open("url")
            if let p = u.path { out.line("path \(p)") }
            if let d = u.digest { out.line("digest \(d)") }
            let codes = u.statusCodes.isEmpty ? [200...299] : u.statusCodes
            out.line("status_code " + codes.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: " "))
            if let v = u.virtualhost { out.line("virtualhost \(v)") }
            out.close()
        }
        out.close()
    }

    static func address(_ a: VirtualAddress) -> String {
        var text = "\(a.address)/\(a.prefixLength)"
        if let d = a.device { text += " dev \(d)" }
        if let b = a.broadcast { text += " brd \(b)" }
        if let s = a.scope { text += " scope \(s)" }
        if let l = a.label { text += " label \(l)" }
        if let p = a.peer { text += " peer \(p)" }
        if !a.options.isEmpty { text += " " + a.options.joined(separator: " ") }
        return text
    }

    static func tracked(_ keyword: String, _ items: [Tracked], _ out: inout Output) {
        guard !items.isEmpty else { return }
        out.open(keyword)
        for t in items { out.line("\(t.name)\(t.weight.map { " weight \($0)" } ?? "")\(t.reverse ? " reverse" : "")") }
        out.close()
    }

    static func routes(_ keyword: String, _ lines: [RouteLine], _ out: inout Output) {
        guard !lines.isEmpty else { return }
        out.open(keyword)
        for l in lines { out.line(l.words.joined(separator: " ")) }
        out.close()
    }

    static func notify(_ n: NotifyScripts, _ out: inout Output) {
        let pairs: [(String, ScriptCommand?)] = [("notify_master", n.master), ("notify_backup", n.backup),
                                                 ("notify_fault", n.fault), ("notify_stop", n.stop),
                                                 ("notify_deleted", n.deleted), ("notify", n.generic),
                                                 ("notify_master_rx_lower_pri", n.masterRxLowerPri)]
        for (keyword, command) in pairs {
            guard let command else { continue }
            var text = "\(keyword) \(quote(command.command))"
            if let u = command.user { text += " \(u.user)\(u.group.map { " " + $0 } ?? "")" }
            out.line(text)
        }
    }

    static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"") + "\""
    }

    struct Output {
        var text = ""
        var depth = 0
        mutating func line(_ s: String) { text += String(repeating: "    ", count: depth) + s + "\n" }
        mutating func open(_ s: String) { line(s + " {"); depth += 1 }
        mutating func close() { depth -= 1; line("}") }
    }
}

extension String {
    /// Foundation-free replacement, enough for quoting.
    func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
