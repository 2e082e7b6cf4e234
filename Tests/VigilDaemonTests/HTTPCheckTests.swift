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
