/// When the resident code pages are let go of (`StartupPages`): after the start and after each
/// reload (`Daemon.releaseStartupPages`), and once the VRRP transitions that follow have
/// settled. Becoming MASTER runs code the steady state never runs again (addresses, GARPs,
/// notify scripts, state mail, logging), and at start every instance makes that transition a
/// few seconds after the first release: measured with 255 MASTER instances, 1.5 MB of the
/// 8.3 MB resident was that code. A release is debounced a second past the last transition and
/// comes at most once every `minimumSpacing`, so a flapping instance costs one smaps read and
/// the re-faulting of the steady-state code at most that often.
final class CodePageRelease: LoopHost {
    static let settleDelay: Int64 = 1_000_000
    static let minimumSpacing: Int64 = 30_000_000
    /// The release itself (the daemon's `releaseStartupPages`).
    var release: () -> Void = {}
    /// The last release this host made (not the start's or a reload's: the transitions right
    /// after those are the ones worth a release of their own).
    private var lastRelease: Int64?
    private(set) var pendingAt: Int64?

    /// Start, reload: a release has just been made, so none is pending.
    func released() { pendingAt = nil }

    /// A VRRP instance changed state.
    func transitioned(at now: Int64) {
        var due = now + Self.settleDelay
        if let lastRelease { due = max(due, lastRelease + Self.minimumSpacing) }
        pendingAt = due
    }

    var nextDeadline: Int64? { pendingAt }

    func runDueWork(at now: Int64) {
        guard let pendingAt, now >= pendingAt else { return }
        self.pendingAt = nil
        lastRelease = now
        release()
    }
}
