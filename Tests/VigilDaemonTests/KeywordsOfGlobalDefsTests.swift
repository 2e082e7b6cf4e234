import Addressing
import Testing
import VRRP
import VigilConfig
@testable import VigilDaemon

/// keepalived's file-creation mask: 0177 unless `umask` (or `-u`, over it) says otherwise, at
/// start and after each reload.
@Suite struct UmaskTests {
    @Test func theMaskFollowsTheConfigurationAndTheCommandLine() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(Configs.pair(priority: 100))
        sim.run(1)
        #expect(lvs.umasks == [0o177])
        lvs.hangUp(with: Configs.pair(priority: 100, globals: "umask 0022"))
        sim.run(1)
        #expect(lvs.umasks == [0o177, 0o022])

        let other = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        var options = DaemonOptions(configPath: other.path, configID: "lvs02", logConsole: true, logDetail: true, foreground: true,
                                    pidFile: nil, releaseVIPsOnStop: true)
        options.umask = 0o077
        try other.start(Configs.pair(priority: 95, globals: "umask IWGRP|IWOTH"), options: options)
        sim.run(1)
        #expect(other.umasks == [0o077])
        #expect(other.log.contains("umask command line option specified, ignoring config option"))
        #expect(DaemonLaunch.options(from: DaemonLaunch.arguments(for: options)).umask == 0o077)
    }
}

/// keepalived's startup_script and shutdown_script: run to their end, before anything starts
/// and after everything stopped; their failure is said and changes nothing else.
@Suite struct StartupShutdownScriptTests {
    @Test func theyRunFirstAndLast() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.scripts.formUnion(["/etc/keepalived/up.sh", "/etc/keepalived/down.sh"])
        lvs.runNowOutcome = { command in command.hasSuffix("up.sh") ? (false, "exit status 3") : (true, "") }
        try lvs.start(Configs.pair(priority: 100, globals: """
            startup_script /etc/keepalived/up.sh
            startup_script_timeout 4
            shutdown_script /etc/keepalived/down.sh
            """))
        // Before the first advert or VIP, with its timeout.
        #expect(lvs.commandsRunNow.map(\.command) == ["/etc/keepalived/up.sh"])
        #expect(lvs.commandsRunNow.first?.timeout == 4_000_000)
        #expect(lvs.log.contains("startup script /etc/keepalived/up.sh failed: exit status 3"))
        sim.run(5)
        #expect(lvs.state("VI_1") == .master)
        // A reload does not run it again.
        lvs.hangUp(with: Configs.pair(priority: 101, globals: "startup_script /etc/keepalived/up.sh\nshutdown_script /etc/keepalived/down.sh"))
        sim.run(1)
        #expect(lvs.commandsRunNow.count == 1)
        lvs.stop(in: sim)
        #expect(lvs.commandsRunNow.map(\.command) == ["/etc/keepalived/up.sh", "/etc/keepalived/down.sh"])
        #expect(lvs.commandsRunNow.last?.timeout == 10_000_000)
        #expect(!lvs.holds("10.0.0.100"))
    }
}

/// mcast_dst_ip and unicast_fault_no_peer, through the whole daemon.
@Suite struct InstanceTransportTests {
    @Test func anInstanceSendsToItsOwnGroupAndAPairOnItElects() throws {
        let sim = Simulation()
        let lvs01 = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let lvs02 = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try lvs01.start(Configs.pair(priority: 100, instanceExtra: "mcast_dst_ip 224.0.0.19"))
        sim.run(0.5)
        try lvs02.start(Configs.pair(priority: 95, instanceExtra: "mcast_dst_ip 224.0.0.19"))
        sim.run(10)
        #expect(lvs01.state("VI_1") == .master && lvs02.state("VI_1") == .backup)
        let adverts = sim.lan.capture.filter { if case .advert = $0.kind { true } else { false } }
        #expect(!adverts.isEmpty && adverts.allSatisfy { $0.destination == IPAddress("224.0.0.19") })
    }

    @Test func unicastWithoutPeersHoldsTheInstanceInFault() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        try lvs.start(Configs.pair(priority: 100, instanceExtra: "unicast_src_ip 10.0.0.41\n    unicast_fault_no_peer"))
        sim.run(6)
        #expect(lvs.state("VI_1") == .fault)
        #expect(lvs.log.contains("(VI_1) Cannot use unicast without any peers (unicast_fault_no_peer) - going to fault state"))
        #expect(!lvs.holds("10.0.0.100"))
    }
}

/// log_all_failures / checker_log_all_failures: a failed attempt while the checker is up (one
/// a retry follows) is logged in keepalived's words; without it only verdicts are.
@Suite struct LogAllFailuresTests {
    static func config(_ flag: String) -> String {
        Configs.pair(priority: 100, extra: Configs.virtualServer(realServers: [2], check: """
            connect_timeout 1
                    retry 2
                    delay_before_retry 1
                    \(flag == "checker" ? "log_all_failures" : "")
            """), globals: flag == "global" ? "checker_log_all_failures" : "")
    }

    @Test(arguments: ["global", "checker", "none"])
    func failedAttemptsWhileUp(flag: String) throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.ipvs.available = true
        var up = true
        lvs.prober.alive = { _ in up }
        try lvs.start(Self.config(flag))
        sim.run(3)
        up = false
        sim.run(12)
        let attempts = lvs.log.lines.filter { $0.text.contains("TCP connection to [10.0.1.2]:tcp:80 timeout.") }.count
        // Every attempt that failed while the checker was up, the one that takes it down too
        // (keepalived tests is_up before its epilog), none once it is down.
        #expect(attempts == (flag == "none" ? 0 : 3), "\(flag): \(attempts)")
        #expect(lvs.log.contains("TCP_CHECK on service [10.0.1.2]:tcp:80 failed after 2 retries."))
    }
}

/// keepalived's late-wake check: a wake later than min_auto_priority_delay is logged, and with
/// max_auto_priority the loop thread climbs one SCHED_RR step per late wake, to the maximum.
@Suite struct AutoPriorityTests {
    @Test func lateWakesRaiseTheLoopThreadUpToTheMaximum() throws {
        let (sim, lvs) = try Simulation.loneMaster(Configs.pair(priority: 100, globals: "max_auto_priority 2\nmin_auto_priority_delay 500000"))
        #expect(lvs.scheduling.applied.isEmpty)
        for _ in 0..<3 {
            lvs.stallNextWait = 800_000
            sim.run(2)
        }
        #expect(lvs.log.lines.filter { $0.text.contains("A thread timer expired 0.800000 seconds ago") }.count == 3)
        #expect(lvs.scheduling.applied.map(\.loop.realtimePriority) == [1, 2])
        #expect(lvs.log.contains("Set realtime priority 1") && lvs.log.contains("Set realtime priority 2"))
        // Becoming real-time brings keepalived's RLIMIT_RTTIME with it.
        #expect(lvs.scheduling.limits == [10_000])
        // A wake late by less than the delay is nothing.
        lvs.stallNextWait = 300_000
        sim.run(2)
        #expect(lvs.log.lines.filter { $0.text.contains("A thread timer expired") }.count == 3)
        #expect(lvs.state("VI_1") == .master)
    }

    @Test func withoutMaxAutoPriorityOnlyTheLineIsWritten() throws {
        let (sim, lvs) = try Simulation.loneMaster(Configs.pair(priority: 100))
        lvs.stallNextWait = 1_200_000
        sim.run(2)
        #expect(lvs.log.contains("A thread timer expired 1.200000 seconds ago"))
        #expect(lvs.scheduling.applied.isEmpty)
    }
}

/// keepalived's old unicast VRRPv3 checksum (over the multicast group, not the peer): sent with
/// `old_unicast_checksum`, followed when a peer uses it, refused with `never`.
@Suite struct OldUnicastChecksumTests {
    static func unicast(_ priority: Int, me: String, peer: String, old: String = "") -> String {
        Configs.pair(priority: priority, instanceExtra: """
            version 3
            unicast_src_ip \(me)
            unicast_peer {
                \(peer)
            }
            \(old)
            """)
    }

    @Test(arguments: ["", "old_unicast_checksum never"])
    func aPeerWithTheOldChecksum(local: String) throws {
        let sim = Simulation()
        let old = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        let new = Director("lvs02", simulation: sim, ipv4: "10.0.0.42")
        try old.start(Self.unicast(100, me: "10.0.0.41", peer: "10.0.0.42", old: "old_unicast_checksum"))
        sim.run(5)
        try new.start(Self.unicast(95, me: "10.0.0.42", peer: "10.0.0.41", old: local))
        sim.run(10)
        #expect(old.state("VI_1") == .master)
        if local.isEmpty {
            // Followed: one master, and lvs02 now answers with the old checksum too.
            #expect(new.state("VI_1") == .backup)
            #expect(new.log.contains("(VI_1) Setting unicast VRRPv3 checksum to old version"))
            #expect(new.instance("VI_1")?.usesOldChecksum == true)
        } else {
            // Refused, as keepalived with `never`: every advert is a checksum error.
            #expect(new.state("VI_1") == .master)
            #expect(!new.log.contains("Setting unicast VRRPv3 checksum to old version"))
            #expect(new.metric(#"vigil_vrrp_receive_errors_total{iname="VI_1",reason="checksum_error"}"#, in: sim) ?? 0 > 0)
        }
    }
}

/// keepalived's use_pid_dir: the pid file goes in a directory of its own unless -p names one;
/// at the top level only, as keepalived 2.2.7 reads it (in global_defs its "Unknown keyword").
@Suite struct UsePidDirTests {
    @Test func thePidFileMovesUnlessGiven() {
        var options = DaemonOptions(configPath: "/etc/keepalived/keepalived.conf", configID: nil, logConsole: true, logDetail: false,
                                    foreground: true, pidFile: "/run/vigil.pid", releaseVIPsOnStop: true)
        #expect(Daemon.pidFile(options, usePidDir: false) == "/run/vigil.pid")
        #expect(Daemon.pidFile(options, usePidDir: true) == "/run/vigil/vigil.pid")
        options.pidFile = "/var/run/lb.pid"
        options.pidFileGiven = true
        #expect(Daemon.pidFile(options, usePidDir: true) == "/var/run/lb.pid", "-p wins")
        #expect(DaemonLaunch.options(from: DaemonLaunch.arguments(for: options)).pidFileGiven)
        let (config, diagnostics) = ConfigLoader.load(text: "use_pid_dir\n" + Configs.pair(priority: 100))
        #expect(config.globals.usePidDir && !diagnostics.all.contains { $0.message.contains("use_pid_dir") })
        let (inGlobalDefs, problems) = ConfigLoader.load(text: "global_defs {\n    use_pid_dir\n}\n" + Configs.pair(priority: 100))
        #expect(!inGlobalDefs.globals.usePidDir && problems.all.contains { $0.message.contains("unknown keyword 'use_pid_dir'") })
    }
}
