import Logging
import VigilConfig

/// Runs track scripts on their intervals and notify scripts on transitions.
/// (Placeholder until the script runner lands: every track script counts as up and notify
/// scripts are only logged.)
final class ScriptHost {
    let configuration: Configuration
    var logger: Logger

    init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func start(at now: Int64) {}
    var nextDeadline: Int64? { nil }
    func poll(at now: Int64) -> [(name: String, up: Bool)] { [] }
    func isUp(_ name: String) -> Bool { true }
    func notify(instance: VigilConfig.VRRPInstance, state: String, priority: Int) {
        logger.debug("(\(instance.name)) notify \(state) \(priority)")
    }
    func notifyLowerPriority(instance: VigilConfig.VRRPInstance) {}
    func stopAll() {}
}
