import VigilStatus

/// The control socket: `vigil status [--json]` and `vigil reload` talk to the running daemon
/// through it (ControlProtocol), inside the event loop.
extension Daemon {
    func openControlSocket(_ path: String) {
        do {
            let listener = try system.listenUnix(path)
            let server = StreamServer(
                name: "control socket", listener: listener, loop: loop, limits: StreamServer.Limits(maxRequest: 1024), logger: logger,
                overLimit: { ControlProtocol.answer(.error, $0 + "\n") },
                handle: { [unowned self] bytes in self.answerControl(bytes) })
            control = server
            loop.add(server)
            logger.info("control socket on \(path)")
        } catch {
            logger.error("control socket \(path): \(error); vigil status and vigil reload are not available")
        }
    }

    func answerControl(_ bytes: [UInt8]) -> StreamServer.Verdict {
        switch ControlProtocol.parse(bytes) {
        case .incomplete:
            return .incomplete
        case .invalid(let why):
            return .respond(ControlProtocol.answer(.error, why + "\n"))
        case .command(.status(let json)):
            let snapshot = statusSnapshot()
            return .respond(ControlProtocol.answer(.ok, json ? StatusDocument.render(snapshot) : StatusTable.render(snapshot)))
        case .command(.reload):
            let outcome = reload()
            let body = (outcome.errors + [outcome.summary]).joined(separator: "\n") + "\n"
            return .respond(ControlProtocol.answer(outcome.result == .refused ? .refused : .ok, body))
        }
    }
}
