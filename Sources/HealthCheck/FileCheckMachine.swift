/// keepalived's FILE_CHECK (check_file.c, track_file.c `process_update_checker_track_file_status`,
/// 2.2.7): no schedule of its own; the number in a tracked file decides, whenever it changes.
///
/// With weight 0 a non-zero number is a failure (zero, with `reverse`). Otherwise the number
/// times the weight (negated with `reverse`) is added to the real server's configured weight
/// (the sum clamped to 0...2³¹−1 when it reaches IPVS), and only a product at or below
/// −2³¹ (keepalived's IPVS_WEIGHT_FAULT) is a failure. A failure gives its weight back.
public struct FileCheckMachine: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case reportUp
        case reportDown
        /// What this checker now adds to its real server's weight (keepalived's `cur_weight`).
        case addWeight(Int)
    }

    public let config: TCPCheckConfig
    public let weight: Int
    public let reverse: Bool
    public private(set) var isUp: Bool
    public private(set) var contribution = 0
    public var isEnabled = true

    public init(config: TCPCheckConfig, weight: Int, reverse: Bool, startsUp: Bool? = nil) {
        self.config = config
        self.weight = weight
        self.reverse = reverse
        // keepalived clears alpha for a file checker: its state is known at once.
        isUp = startsUp ?? true
    }

    /// keepalived marks a file checker as run: there is nothing to wait for.
    public var hasRun: Bool { true }

    /// nil for keepalived's FAULT, else what the number adds to the weight.
    public func status(of value: Int) -> Int? {
        let number = Int64(clamping: value)
        if weight == 0 { return (number != 0) != reverse ? nil : 0 }
        let (product, overflow) = Int64(Int32(clamping: number)).multipliedReportingOverflow(by: Int64(weight) * (reverse ? -1 : 1))
        let clamped = overflow ? Int64(Int32.min) : max(Int64(Int32.min), min(Int64(Int32.max), product))
        return clamped <= Int64(Int32.min) ? nil : Int(clamped)
    }

    /// The file now reads `value` (0 when it is missing or unreadable, as in keepalived).
    public mutating func fileRead(_ value: Int) -> [Action] {
        guard isEnabled else { return [] }
        switch (isUp, status(of: value)) {
        case (true, nil):
            isUp = false
            defer { contribution = 0 }
            return contribution == 0 ? [.reportDown] : [.reportDown, .addWeight(0)]
        case (false, let added?):
            isUp = true
            contribution = added
            return added == 0 ? [.reportUp] : [.addWeight(added), .reportUp]
        case (true, let added?):
            guard added != contribution else { return [] }
            contribution = added
            return [.addWeight(added)]
        case (false, nil):
            return []
        }
    }
}
