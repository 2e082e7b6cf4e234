/// keepalived's vrrp_track_process, as values: which processes match, and the quorum with its
/// fork and terminate delays. The daemon feeds it the process table; keepalived is told of
/// process changes by the kernel's process connector, Vigil reads /proc once a second.
public struct ProcessPattern: Hashable, Sendable {
    public enum ParameterMatch: Hashable, Sendable {
        /// Only the command name (or, with full_command, argv[0]) is compared.
        case none
        /// argv[1...] equal the parameters exactly (no parameters: none allowed).
        case exact
        /// The first n arguments equal the parameters; more may follow.
        case partial
        /// As partial, and the last configured parameter may be a prefix of its argument.
        case initial
    }

    public var process: String
    public var parameters: [String]
    public var parameterMatch: ParameterMatch
    /// Compare the command line (/proc/PID/cmdline) rather than the name (/proc/PID/comm).
    public var fullCommand: Bool

    public init(process: String, parameters: [String] = [], parameterMatch: ParameterMatch = .none, fullCommand: Bool = false) {
        self.process = process
        self.parameters = parameters
        self.parameterMatch = parameterMatch
        self.fullCommand = fullCommand
    }

    /// The kernel's comm holds 15 bytes: a longer name matches on those.
    static let commLength = 15

    public func matches(comm: String, commandLine: [String]?) -> Bool {
        guard fullCommand else {
            return comm.utf8.prefix(Self.commLength).elementsEqual(process.utf8.prefix(Self.commLength))
        }
        guard let argv = commandLine, let first = argv.first, first == process else { return false }
        let arguments = argv.dropFirst()
        switch parameterMatch {
        case .none: return true
        case .exact: return Array(arguments) == parameters
        case .partial, .initial:
            guard arguments.count >= parameters.count else { return false }
            for (index, parameter) in parameters.enumerated() {
                let argument = arguments[arguments.startIndex + index]
                let isLast = index == parameters.count - 1
                if isLast && parameterMatch == .initial ? !argument.hasPrefix(parameter) : argument != parameter { return false }
            }
            return true
        }
    }
}

/// Whether a tracked process has its quorum (quorum ≤ count ≤ quorum_max), reported only once
/// the count has been on the new side for fork_delay (gaining) or terminate_delay (losing).
public struct ProcessQuorumState: Sendable, Equatable {
    public let quorum: Int
    public let quorumMax: Int
    public let forkDelay: Int64
    public let terminateDelay: Int64
    public private(set) var isUp: Bool
    public private(set) var count = 0
    /// Since when the count has been on the other side of the quorum; nil when it agrees.
    private var changingSince: Int64?

    public init(quorum: Int = 1, quorumMax: Int = Int.max, forkDelay: Int64 = 0, terminateDelay: Int64 = 0) {
        self.quorum = quorum
        self.quorumMax = quorumMax
        self.forkDelay = forkDelay
        self.terminateDelay = terminateDelay
        isUp = false
    }

    /// A new count at `now`; true when the reported state changed.
    public mutating func record(count: Int, at now: Int64, first: Bool = false) -> Bool {
        self.count = count
        let wanted = count >= quorum && count <= quorumMax
        if first {
            // The first look decides at once: at start keepalived reads the table in full.
            let changed = wanted != isUp
            isUp = wanted
            changingSince = nil
            return changed
        }
        guard wanted != isUp else { changingSince = nil; return false }
        let since = changingSince ?? now
        changingSince = since
        guard now - since >= (wanted ? forkDelay : terminateDelay) else { return false }
        isUp = wanted
        changingSince = nil
        return true
    }

    /// When a pending change would be reported, for the caller's next look.
    public var pendingUntil: Int64? {
        changingSince.map { $0 + (isUp ? terminateDelay : forkDelay) }
    }
}
