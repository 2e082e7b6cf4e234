import Prometheus

/// Every metric family Vigil exposes, with its help text: the one list the README's table is
/// checked against (MetricsTests).
public enum Family: String, CaseIterable, Sendable {
    // mehdy/keepalived-exporter's names, labels and types.
    case up = "keepalived_up"
    case vrrpState = "keepalived_vrrp_state"
    case advertsReceivedTotal = "keepalived_advertisements_received_total"
    case advertsSentTotal = "keepalived_advertisements_sent_total"
    case becomeMaster = "keepalived_become_master_total"
    case releaseMaster = "keepalived_release_master_total"
    case packetLengthErrors = "keepalived_packet_length_errors_total"
    case advertIntervalErrors = "keepalived_advertisements_interval_errors_total"
    case ttlErrors = "keepalived_ip_ttl_errors_total"
    case invalidType = "keepalived_invalid_type_received_total"
    case addressListErrors = "keepalived_address_list_errors_total"
    case authInvalid = "keepalived_authentication_invalid_total"
    case authMismatch = "keepalived_authentication_mismatch_total"
    case authFailure = "keepalived_authentication_failure_total"
    case priorityZeroReceived = "keepalived_priority_zero_received_total"
    case priorityZeroSent = "keepalived_priority_zero_sent_total"
    case garpDelay = "keepalived_gratuitous_arp_delay_total"
    case scriptStatus = "keepalived_script_status"
    case scriptState = "keepalived_script_state"
    // Vigil's own.
    case buildInfo = "vigil_build_info"
    case processStart = "process_start_time_seconds"
    case instanceState = "vigil_vrrp_state"
    case priority = "vigil_vrrp_priority"
    case effectivePriority = "vigil_vrrp_effective_priority"
    case vipsInstalled = "vigil_vrrp_vips_installed"
    case transitions = "vigil_vrrp_transitions_total"
    case receiveErrors = "vigil_vrrp_receive_errors_total"
    case unmatchedPackets = "vigil_vrrp_unmatched_packets_total"
    case advertsSent = "vigil_vrrp_adverts_sent_total"
    case advertsReceived = "vigil_vrrp_adverts_received_total"
    case announcements = "vigil_vrrp_gratuitous_announcements_sent_total"
    case sendErrors = "vigil_vrrp_send_errors_total"
    case reloads = "vigil_reloads_total"
    case lastReloadSuccessful = "vigil_config_last_reload_successful"
    case lastReloadSuccess = "vigil_config_last_reload_success_timestamp_seconds"
    case trackScriptUp = "vigil_track_script_up"
    case trackScriptRuns = "vigil_track_script_runs_total"
    case trackScriptDuration = "vigil_track_script_duration_seconds"
    case quorumUp = "vigil_virtual_server_quorum_up"
    case realServerUp = "vigil_real_server_up"
    case realServerWeight = "vigil_real_server_weight"
    case checkDuration = "vigil_health_check_duration_seconds"

    /// keepalived's 14 stats counters in `VRRPStatistics.keepalivedFields` order.
    static let keepalivedCounters: [Family] = [
        .advertsReceivedTotal, .advertsSentTotal, .becomeMaster, .releaseMaster, .packetLengthErrors, .advertIntervalErrors,
        .ttlErrors, .invalidType, .addressListErrors, .authInvalid, .authMismatch, .authFailure, .priorityZeroReceived,
        .priorityZeroSent,
    ]

    /// gen2brain's IPVS series, `keepalived_lvs_vip_*` and `keepalived_lvs_rs_*`, in
    /// `TrafficSeries` order.
    public static let trafficSuffixes: [(String, String)] = [
        ("in_packets", "Packets in"), ("out_packets", "Packets out"), ("in_bytes", "Bytes in"), ("out_bytes", "Bytes out"),
        ("conn", "Connections scheduled"),
    ]

    /// Every exposed family name, gen2brain's included.
    public static var allNames: [String] {
        allCases.map(\.rawValue) + ["keepalived_lvs_vip_", "keepalived_lvs_rs_"].flatMap { p in trafficSuffixes.map { p + $0.0 } }
    }

    public var help: String {
        switch self {
        case .up: "1 while Vigil runs (keepalived-exporter: keepalived could be read)"
        case .vrrpState: "VRRP state of the instance, one series per VIP: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT"
        case .advertsReceivedTotal: "Advertisements received (keepalived advert_rcvd)"
        case .advertsSentTotal: "Advertisements sent (keepalived advert_sent)"
        case .becomeMaster: "Transitions to MASTER (keepalived become_master)"
        case .releaseMaster: "Transitions out of MASTER (keepalived release_master)"
        case .packetLengthErrors: "Adverts with a bad length (keepalived packet_len_err)"
        case .advertIntervalErrors: "Adverts with another advert interval (keepalived advert_interval_err)"
        case .ttlErrors: "Adverts with a TTL or hop limit other than 255 (keepalived ip_ttl_err)"
        case .invalidType: "Packets of a type other than ADVERTISEMENT (keepalived invalid_type_rcvd)"
        case .addressListErrors: "Adverts whose address list does not match (keepalived addr_list_err)"
        case .authInvalid: "Adverts with an unknown authentication type (keepalived invalid_authtype)"
        case .authMismatch: "Adverts with another authentication type (keepalived authtype_mismatch)"
        case .authFailure: "Adverts with a wrong password (keepalived auth_failure)"
        case .priorityZeroReceived: "Priority 0 adverts received (keepalived pri_zero_rcvd)"
        case .priorityZeroSent: "Priority 0 adverts sent (keepalived pri_zero_sent)"
        case .garpDelay: "The configured garp_master_delay in seconds, not a count (kept for keepalived-exporter's dashboards)"
        case .scriptStatus: "vrrp_script result: 1 GOOD, 0 BAD"
        case .scriptState: "vrrp_script run state: 0 idle, 1 running"
        case .buildInfo: "Vigil's version, value 1"
        case .processStart: "Start time of the process since the epoch, seconds"
        case .instanceState: "VRRP state of the instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP"
        case .priority: "Configured priority of the instance"
        case .effectivePriority: "Priority after tracked scripts, interfaces and files"
        case .vipsInstalled: "Virtual addresses of the instance set on their interfaces now"
        case .transitions: "State transitions of the instance, by from and to state"
        case .receiveErrors: "Received adverts dropped or flagged, by reason"
        case .unmatchedPackets: "VRRP packets no instance could be given, by interface and reason (truncated, unknown_vrid)"
        case .advertsSent: "Advertisements sent"
        case .advertsReceived: "Advertisements received and decoded"
        case .announcements: "Gratuitous ARPs and unsolicited neighbour advertisements sent"
        case .sendErrors: "Advertisements the kernel refused to send"
        case .reloads: "Configuration reloads, by result: applied, unchanged, refused"
        case .lastReloadSuccessful: "1 if the last reload was applied or had nothing to change, 0 if it was refused"
        case .lastReloadSuccess: "Time of the last successful reload (or of the start) since the epoch, seconds"
        case .trackScriptUp: "1 if the track script's verdict is up"
        case .trackScriptRuns: "Track script runs, by result: success, failure, timeout"
        case .trackScriptDuration: "Track script run time, seconds"
        case .quorumUp: "1 if the virtual server has its quorum of real servers up"
        case .realServerUp: "1 if the real server's health checks say up"
        case .realServerWeight: "The real server's weight in IPVS now, 0 when it is not in the table"
        case .checkDuration: "Health check duration, seconds, by checker kind"
        }
    }

    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: rawValue, unitName: "", helpText: help) }
}
