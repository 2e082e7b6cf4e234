/// One instance's counters, kept as keepalived keeps them (its `vrrp_t->stats`, the fields of
/// its JSON and stats dumps and of the exporters' `keepalived_*_total` series), plus Vigil's own
/// finer ones. Fed from what the driver sees (decode failures, sent and received adverts) and
/// from the machine's actions, so the same events always give the same counts.
public struct VRRPStatistics: Hashable, Sendable {
    public struct Transition: Hashable, Sendable, Comparable {
        public var from: VRRPState
        public var to: VRRPState
        public init(from: VRRPState, to: VRRPState) {
            self.from = from
            self.to = to
        }
        public static func < (a: Self, b: Self) -> Bool { (a.from.rawValue, a.to.rawValue) < (b.from.rawValue, b.to.rawValue) }
    }

    // keepalived's, with its field names in the comments.
    public var advertsReceived: UInt64 = 0        // advert_rcvd
    public var advertsSent: UInt64 = 0            // advert_sent
    public var becameMaster: UInt64 = 0           // become_master
    public var releasedMaster: UInt64 = 0         // release_master
    public var packetLengthErrors: UInt64 = 0     // packet_len_err
    public var advertIntervalErrors: UInt64 = 0   // advert_interval_err
    public var ttlErrors: UInt64 = 0              // ip_ttl_err
    public var invalidTypeReceived: UInt64 = 0    // invalid_type_rcvd
    public var addressListErrors: UInt64 = 0      // addr_list_err
    public var invalidAuthType: UInt64 = 0        // invalid_authtype
    public var authTypeMismatches: UInt64 = 0     // authtype_mismatch
    public var authFailures: UInt64 = 0           // auth_failure
    public var priorityZeroReceived: UInt64 = 0   // pri_zero_rcvd
    public var priorityZeroSent: UInt64 = 0       // pri_zero_sent

    /// Every advert that failed to decode or was rejected or flagged, by reason
    /// (`VRRPDecodeError.counterName`, `VRRPReceiveError.counterName`).
    public var receiveErrors: [String: UInt64] = [:]
    public var transitions: [Transition: UInt64] = [:]
    /// Gratuitous ARPs or unsolicited neighbour advertisements sent.
    public var announcementsSent: UInt64 = 0
    public var sendErrors: UInt64 = 0
    public var vipsRestored: UInt64 = 0
    public init() {}

    /// Every counter back to zero, as keepalived's SIGSTATS_CLEAR does.
    public mutating func clear() { self = VRRPStatistics() }

    /// A packet for this instance that did not decode.
    public mutating func recordDecodeFailure(_ error: VRRPDecodeError) {
        receiveErrors[error.counterName, default: 0] += 1
        switch error {
        case .truncated, .lengthMismatch, .addressCountMismatch, .ipTotalLengthMismatch: packetLengthErrors += 1
        case .badType: invalidTypeReceived += 1
        case .badAuthType: invalidAuthType += 1
        case .badVersion, .badChecksum, .badIPHeader, .notVRRPProtocol: break
        }
    }

    /// An advert that decoded and goes to the machine.
    public mutating func recordReceived(_ advert: VRRPAdvert) {
        advertsReceived += 1
        if advert.priority == 0 { priorityZeroReceived += 1 }
    }

    /// What the machine decided: transitions, rejections, the adverts it sends.
    public mutating func record(_ action: VRRPAction) {
        switch action {
        case .sendAdvert(let advert):
            advertsSent += 1
            if advert.priority == 0 { priorityZeroSent += 1 }
        case .stateChanged(let from, let to, _):
            transitions[Transition(from: from, to: to), default: 0] += 1
            if to == .master { becameMaster += 1 }
            if from == .master && to != .master { releasedMaster += 1 }
        case .countReceiveError(let error):
            receiveErrors[error.counterName, default: 0] += 1
            switch error {
            case .intervalMismatch: advertIntervalErrors += 1
            case .ttlInvalid: ttlErrors += 1
            case .authTypeMismatch: authTypeMismatches += 1
            case .authFailure: authFailures += 1
            case .vipCountMismatch, .vipListMismatch: addressListErrors += 1
            case .malformed(.badType): invalidTypeReceived += 1
            case .malformed, .vridMismatch, .versionMismatch, .deliveryMismatch, .ownerIgnoresAdverts, .unicastSourceNotPeer: break
            }
        case .sendGARP, .addVIPs, .removeVIPs, .runNotify, .masterReceivedLowerPriority:
            break
        }
    }
}
