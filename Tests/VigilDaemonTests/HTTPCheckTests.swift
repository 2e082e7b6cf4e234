import Addressing
import IPVS
import LVS
import Testing
import TCPProbe
import VigilSystem
@testable import VigilDaemon

/// HTTP_GET through the whole daemon on virtual time: a page whose digest changes takes its
/// server out of IPVS and brings it back when restored; status_code decides a 404.
@Suite struct HTTPCheckDaemonTests {
    static let page = "<html>web</html>\n"
    static let config = """
    global_defs {
        router_id test
    }
    virtual_server 10.0.0.100 80 {
        delay_loop 2
        lb_algo rr
        lb_kind DR
        protocol TCP
        real_server 10.0.1.1 80 {
            weight 1
            HTTP_GET {
                url {
                    path /index.html
                    digest \(digest(page))
                }
                connect_timeout 1
                retry 1
                delay_before_retry 1
            }
        }
        real_server 10.0.1.2 80 {
            weight 1
            virtualhost www.example.com
            HTTP_GET {
                http_protocol 1.1
                url {
                    path /gone
                    status_code 404
                }
            }
        }
    }
    """

    static func digest(_ text: String) -> String {
        let d = MD5Digest()
        Array(text.utf8).withUnsafeBytes { d.update($0) }
        return MD5Digest.hex(d.finish())
    }

    static func destinations(_ lvs: Director) -> [String] {
        (lvs.ipvs.table.values.first ?? []).map { "\($0.key.address)" }.sorted()
    }

    @Test func aChangedPageTakesTheServerOutAndTheRestoredPageBringsItBack() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var body = Self.page
        lvs.fetcher.page = { target, request in
            target.address == IPAddress("10.0.1.2")! ? (404, "not here") : (200, body)
        }
        try lvs.start(Self.config)
        sim.run(5)
        #expect(Self.destinations(lvs) == ["10.0.1.1", "10.0.1.2"])
        let requests = lvs.fetcher.started.map(\.request)
        #expect(requests.contains("GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.1.1:80\r\n\r\n"))
        #expect(requests.contains("GET /gone HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"))
        body = "<html>changed</html>\n"
        sim.run(6)
        #expect(Self.destinations(lvs) == ["10.0.1.2"], "the digest no longer matches: out after 1 + retry failures")
        #expect(lvs.log.contains("HTTP_CHECK on service [10.0.1.1]:tcp:80 failed after 1 retries. (MD5 digest error to url(/index.html): status 200)"))
        let status = lvs.ask("status", in: sim)
        #expect(status.contains("MD5 digest error to"), "status shows the last result: \(status)")
        body = Self.page
        sim.run(6)
        #expect(Self.destinations(lvs) == ["10.0.1.1", "10.0.1.2"], "back after the failed URL and a full pass")
        #expect(lvs.log.contains("Remote Web server [10.0.1.1]:tcp:80 succeed on service."))
    }
}

/// MISC_CHECK through the whole daemon on virtual time: misc_dynamic's exit status sets the
/// IPVS weight; a script that hangs is killed at misc_timeout and takes its server out.
@Suite struct MiscCheckDaemonTests {
    static let config = """
    global_defs {
        router_id test
        enable_script_security
        script_user root
    }
    virtual_server 10.0.0.100 80 {
        delay_loop 2
        lb_algo wrr
        lb_kind DR
        protocol TCP
        real_server 10.0.1.1 80 {
            weight 10
            MISC_CHECK {
                misc_path "/etc/keepalived/check.sh weight"
                misc_dynamic
                misc_timeout 1
            }
        }
        real_server 10.0.1.2 80 {
            weight 10
            MISC_CHECK {
                misc_path "/etc/keepalived/check.sh hang"
                misc_timeout 1
            }
        }
    }
    """

    @Test func theExitStatusSetsTheWeightAndAHungScriptIsKilled() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var weightExit: Int32 = 0
        var hangs = false
        try lvs.start(Self.config)
        lvs.processes.exitCode = { _ in weightExit }
        lvs.processes.behaviour = { _ in (true, hangs ? 5_000_000 : 10_000) }
        func weights() -> [String: Int32] {
            Dictionary(uniqueKeysWithValues: (lvs.ipvs.table.values.first ?? []).map { ("\($0.key.address)", $0.weight) })
        }
        sim.run(5)
        #expect(weights() == ["10.0.1.1": 10, "10.0.1.2": 10])
        weightExit = 7
        sim.run(3)
        #expect(weights()["10.0.1.1"] == 5, "misc_dynamic: exit 7 is weight 5: \(weights())")
        #expect(lvs.log.contains("Changing weight to 5 for rs"))
        weightExit = 0
        sim.run(3)
        #expect(weights()["10.0.1.1"] == 10, "exit 0: back to the configured weight")
        weightExit = 1
        hangs = true
        sim.run(6)
        #expect(weights().isEmpty, "both fail: exit 1, and a run killed at misc_timeout: \(weights())")
        #expect(lvs.log.contains("by [/etc/keepalived/check.sh hang] timed out with retry disabled (timed out)."), "\(lvs.log.matching("Misc check"))")
        let commands = Set(lvs.processes.started.map { ([$0.command] + $0.arguments).joined(separator: " ") })
        #expect(commands == ["/etc/keepalived/check.sh weight", "/etc/keepalived/check.sh hang"], "\(commands)")
    }
}

/// SMTP_CHECK through the whole daemon on virtual time, the real conversation against
/// scripted servers: a bad banner takes the server out, a good one brings it back; each
/// deprecated `host` block is a checker of its own.
@Suite struct SMTPCheckDaemonTests {
    static let config = """
    global_defs {
        router_id test
    }
    virtual_server 10.0.0.100 25 {
        delay_loop 2
        lb_algo rr
        lb_kind DR
        protocol TCP
        real_server 10.0.1.1 25 {
            SMTP_CHECK {
                helo_name lvs01.example.com
                connect_timeout 1
                retry 1
                delay_before_retry 1
            }
        }
        real_server 10.0.1.2 25 {
            SMTP_CHECK {
                host {
                    connect_ip 10.0.2.1
                }
                host {
                    connect_ip 10.0.2.2
                    connect_port 2525
                }
                retry 0
            }
        }
    }
    """

    @Test func aBadBannerTakesTheServerOutAndEveryHostIsChecked() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        var busy = false
        var relayDown = false
        lvs.dialogues.server = { target in
            if target.address == IPAddress("10.0.2.2")! { return relayDown ? nil : ["220 relay\r\n", "250 ok\r\n", "221 bye\r\n"] }
            return busy && target.address == IPAddress("10.0.1.1")! ? ["421 4.3.2 busy\r\n"] : ["220-hi\r\n220 ok\r\n", "250 ok\r\n", "221 bye\r\n"]
        }
        try lvs.start(Self.config)
        sim.run(5)
        #expect(HTTPCheckDaemonTests.destinations(lvs) == ["10.0.1.1", "10.0.1.2"])
        #expect(lvs.dialogues.sent.contains { $0.target.address == IPAddress("10.0.1.1")! && $0.lines == ["HELO lvs01.example.com\r\n", "QUIT\r\n"] })
        let hosts = Set(lvs.dialogues.sent.map { "\($0.target.address):\($0.target.port)" })
        #expect(hosts == ["10.0.1.1:25", "10.0.2.1:25", "10.0.2.2:2525"], "the hosts, not the real server itself: \(hosts)")
        #expect(lvs.log.contains("Remote SMTP server [10.0.1.1]:tcp:25 succeed on service."))
        busy = true
        sim.run(6)
        #expect(HTTPCheckDaemonTests.destinations(lvs) == ["10.0.1.2"], "421 is a bad banner: out after 1 + retry failures")
        #expect(lvs.log.contains("SMTP_CHECK on service [10.0.1.1]:tcp:25 failed after 1 retries. (failed: Bad greeting banner from server)"))
        busy = false
        sim.run(4)
        #expect(HTTPCheckDaemonTests.destinations(lvs) == ["10.0.1.1", "10.0.1.2"])
        relayDown = true
        sim.run(4)
        #expect(HTTPCheckDaemonTests.destinations(lvs) == ["10.0.1.1"], "one host of two failing takes the real server out")
        #expect(lvs.ask("status", in: sim).contains("Error connecting to server"))
    }
}

/// FILE_CHECK through the whole daemon on virtual time: the file's number moves the real
/// server's IPVS weight, weight 0 takes it out on a non-zero number, and a server whose file
/// says FAULT at start is never installed.
@Suite struct FileCheckDaemonTests {
    static let config = """
    global_defs {
        router_id test
    }
    track_file drain {
        file /run/vigil/drain
        weight 0
    }
    track_file boost {
        file /run/vigil/boost
        weight 5
        init_file 0
    }
    virtual_server 10.0.0.100 80 {
        delay_loop 2
        lb_algo wrr
        lb_kind DR
        protocol TCP
        real_server 10.0.1.1 80 {
            weight 10
            FILE_CHECK {
                track_file boost
            }
        }
        real_server 10.0.1.2 80 {
            weight 10
            FILE_CHECK {
                track_file drain
            }
        }
    }
    """

    static func weights(_ lvs: Director) -> [String: Int32] {
        Dictionary(uniqueKeysWithValues: (lvs.ipvs.table.values.first ?? []).map { ("\($0.key.address)", $0.weight) })
    }

    @Test func theFilesNumberMovesTheWeightOrTakesTheServerOut() throws {
        let sim = Simulation()
        let lvs = Director("lvs01", simulation: sim, ipv4: "10.0.0.41")
        lvs.files.files["/run/vigil/drain"] = "1\n"
        try lvs.start(Self.config)
        sim.run(2)
        #expect(Self.weights(lvs) == ["10.0.1.1": 10], "drain reads 1 at start: 10.0.1.2 never goes in")
        #expect(!lvs.log.contains("Removing service"), "nothing was added and removed")
        #expect(lvs.files.files["/run/vigil/boost"] == "0\n", "init_file wrote the missing file")
        lvs.files.files["/run/vigil/drain"] = "0\n"
        lvs.files.files["/run/vigil/boost"] = "4\n"
        sim.run(2)
        #expect(Self.weights(lvs) == ["10.0.1.1": 30, "10.0.1.2": 10], "10 + 4 × 5; drain 0 brings .2 in")
        #expect(lvs.log.contains("Changing weight to 30 for rs [10.0.1.1]:tcp:80"))
        lvs.files.files["/run/vigil/boost"] = "-3\n"
        sim.run(2)
        #expect(Self.weights(lvs)["10.0.1.1"] == 0, "10 - 15 is clamped at 0: in the table, no new connections")
        lvs.files.files["/run/vigil/drain"] = "2\n"
        sim.run(2)
        #expect(Self.weights(lvs).keys.sorted() == ["10.0.1.1"])
        #expect(lvs.log.contains("tracked file drain now FAULT state"))
        #expect(lvs.ask("status", in: sim).contains("track file drain reads 2"))
    }
}
