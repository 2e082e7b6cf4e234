import VigilMetrics
import VigilStatus

/// `--metrics ADDR:PORT`: the Prometheus endpoint, a StreamServer in the loop like the control
/// socket. Each scrape takes a snapshot (one IPVS netlink dump included) and publishes it.
extension Daemon {
    func openMetrics(_ listen: String) {
        guard let (address, port) = MetricsListenAddress.parse(listen) else {
            logger.error("--metrics \(listen): expected ADDR:PORT, [IPv6]:PORT or :PORT; no metrics are served")
            return
        }
        let shown = address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        do {
            let listener = try system.listenTCP(address, port)
            let exporter = VigilMetrics(version: vigilVersion, startedAt: startedAt)
            metrics = exporter
            trackers.onRunFinished = { name, finished in exporter.observeTrackScript(name: name, seconds: Double(finished.runtime) / 1e6) }
            if let checkers { observeChecks(of: checkers) }
            let server = StreamServer(
                name: "metrics", listener: listener, loop: loop, limits: StreamServer.Limits(maxRequest: 8 * 1024), logger: logger,
                overLimit: { MetricsHTTP.response(status: "503 Service Unavailable", body: $0 + "\n") },
                handle: { [unowned self] bytes in
                    switch MetricsHTTP.parse(bytes) {
                    case .incomplete: .incomplete
                    case .answer(let answer): .respond(answer)
                    case .metrics(let head):
                        .respond(exporter.response(to: statusSnapshot(details: false), head: head, progress: { [vrrp, system] in
                            vrrp.sendDueAdverts(at: system.clock.now())
                        }))
                    }
                })
            metricsServer = server
            loop.add(server)
            logger.info("metrics on http://\(shown)/metrics")
        } catch {
            logger.error("metrics \(shown): \(error); no metrics are served")
        }
    }

    /// Health-check durations go to the histograms as checks finish.
    func observeChecks(of host: CheckerHost) {
        guard let metrics else { return }
        host.onCheckFinished = { kind, micros in metrics.observeHealthCheck(kind: kind.rawValue, seconds: Double(micros) / 1e6) }
    }
}
