// swift-tools-version:6.0
// Vigil: a keepalived-compatible VRRP + IPVS daemon.
// Pure cores (VigilConfig, VRRP, …) have no I/O and no third-party dependencies; adapters
// (CNetlink, VigilSystem) and the executable sit at the edges. See ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "Vigil",
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        // The daemon image `vigil` execs into: no argument parser, so no FoundationEssentials.
        .executable(name: "vigild", targets: ["vigild"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The one address model (IPv4, IPv6, either) every other module holds. Pure Swift.
        .target(name: "Addressing"),
        // The keepalived.conf language: lexer, preprocessor, parser, typed model, validation.
        .target(name: "VigilConfig", dependencies: ["Addressing", "BodyRegex"]),
        // The VRRP protocol core: packet codec and state machine, driven by events and a clock.
        .target(name: "VRRP", dependencies: ["Addressing"]),
        // libnl-3 (route + genl) and linux/ip_vs.h, for rtnetlink and the IPVS genl family.
        // Debian's OpenSSL libcrypto: HMAC-MD5 for keepalived's IPsec AH adverts.
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        // Debian's PCRE2, keepalived's regex library, and HTTP_GET's `regex` on top of it:
        // compiled patterns and keepalived's streaming partial match. Computation only.
        .systemLibrary(name: "CPCRE2", providers: [.apt(["libpcre2-dev"])]),
        .target(name: "BodyRegex", dependencies: ["CPCRE2"]),
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-3.0 libnl-genl-3.0 libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-genl-3-dev", "libnl-route-3-dev"])]
        ),
        // vrrp_instance / vrrp_sync_group blocks as what the VRRP host runs (identity, core
        // config, VIPs, tracker rules), the tracker weighing, the VIP-restore rule and the
        // old x new reload plan. Pure.
        .target(name: "VRRPSpecs", dependencies: ["Addressing", "VRRP", "VigilConfig", "Tracking"]),
        // Track-script verdicts and scheduling: keepalived's rise/fall counter on a µs clock, no I/O.
        .target(name: "Tracking"),
        // keepalived's state-change mail as a pure SMTP client: bytes in, bytes out.
        .target(name: "SMTP"),
        // fork/exec of track and notify scripts as their user, in their own process group, with timeouts.
        // Depends on VigilConfig only for `HostChecks.resolve`, so that `-t` and the daemon can
        // never disagree about which program a script names.
        .target(name: "ScriptRunner", dependencies: ["VigilConfig"]),
        // IPVS: table model, generic-netlink codec (golden bytes), reconciler, error policy. Pure.
        .target(name: "IPVS", dependencies: ["Addressing"]),
        // TCP_CHECK scheduling and verdicts, real-server aliveness, quorum and sorry server. Pure.
        .target(name: "HealthCheck", dependencies: ["Addressing"]),
        // Non-blocking connect prober (poll or epoll) for thousands of concurrent TCP_CHECKs.
        .target(name: "TCPProbe", dependencies: ["Addressing", "HealthCheck"]),
        // virtual_server blocks as IPVS services and checkers, and the checker controller
        // (TCP_CHECK machines, aliveness, quorum → desired IPVS table). Pure.
        .target(name: "LVS", dependencies: ["Addressing", "VigilConfig", "IPVS", "HealthCheck"]),
        // What the daemon is doing, as values, and how it is shown: `vigil status` (a table and a
        // versioned JSON document) and keepalived's JSON, stats and data dumps. Pure.
        .target(name: "VigilStatus", dependencies: ["Addressing", "IPVS", "VRRP"]),
        // The snapshot as Prometheus series (swift-prometheus) and the HTTP/1 of /metrics. Pure.
        .target(name: "VigilMetrics", dependencies: ["Addressing", "IPVS", "VRRP", "VigilStatus",
                                                     .product(name: "Prometheus", package: "swift-prometheus")]),
        // Thin Linux adapters: raw VRRP sockets, AF_PACKET ARP/NA, rtnetlink addresses, the
        // IPVS generic-netlink socket, poll.
        .target(name: "VigilSystem", dependencies: ["Addressing", "CNetlink", "CCrypto", "IPVS", "TCPProbe"]),
        // Wiring: the poll(2) event loop that feeds the cores events and carries out their actions.
        .target(
            name: "VigilDaemon",
            dependencies: ["Addressing", "VigilConfig", "VRRP", "VRRPSpecs", "VigilStatus", "VigilMetrics", "VigilSystem", "Tracking", "ScriptRunner", "LVS", "IPVS", "TCPProbe", "HealthCheck", "SMTP", "BodyRegex", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilConfig",
                "VigilDaemon",
                "VigilStatus",
                "VigilMetrics",
                "VigilSystem",
                "TCPProbe",
                "HealthCheck",
                "Addressing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "vigild", dependencies: ["VigilDaemon"]),
        // What several test targets share (a seedable random generator, a sample status snapshot).
        .target(name: "VigilTestSupport", dependencies: ["Addressing", "IPVS", "VRRP", "VigilStatus"], path: "Tests/Support"),
        .testTarget(name: "AddressingTests", dependencies: ["Addressing"]),
        .testTarget(name: "VigilConfigTests", dependencies: ["VigilConfig", "VigilTestSupport"]),
        .testTarget(name: "VRRPTests", dependencies: ["VRRP", "VigilTestSupport", "VigilSystem"]),
        .testTarget(name: "VigilStatusTests", dependencies: ["VigilStatus", "VigilTestSupport", "VRRP", "IPVS", "Addressing"]),
        .testTarget(name: "VigilMetricsTests", dependencies: ["VigilMetrics", "VigilStatus", "VigilTestSupport", "VRRP", "IPVS", "Addressing"]),
        .testTarget(name: "VRRPSpecsTests", dependencies: ["VRRPSpecs", "VRRP", "VigilConfig"]),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking", "Addressing"]),
        .testTarget(name: "SMTPTests", dependencies: ["SMTP"]),
        .testTarget(name: "BodyRegexTests", dependencies: ["BodyRegex"]),
        .testTarget(name: "IPVSTests", dependencies: ["IPVS", "VigilTestSupport"]),
        .testTarget(name: "HealthCheckTests", dependencies: ["HealthCheck", "Addressing"]),
        .testTarget(name: "LVSTests", dependencies: ["LVS", "VigilConfig", "IPVS", "HealthCheck", "BodyRegex"]),
        .testTarget(name: "TCPProbeTests", dependencies: ["TCPProbe"]),
        .testTarget(name: "ScriptRunnerTests", dependencies: ["ScriptRunner"]),
        .testTarget(name: "VigilSystemTests", dependencies: ["VigilSystem", "CNetlink", "TCPProbe", "HealthCheck", "Addressing", "BodyRegex"]),
        // The whole daemon on in-memory fakes and a virtual clock: reloads, notify order,
        // sync groups and IPVS plans in milliseconds, without root.
        .testTarget(name: "VigilDaemonTests", dependencies: ["VigilDaemon", "VigilTestSupport", "VigilConfig", "VRRP", "VRRPSpecs", "IPVS", "LVS", "VigilSystem", "ScriptRunner", "TCPProbe", "HealthCheck", "Addressing", .product(name: "Logging", package: "swift-log")]),
        // Runs the built `vigil` binary beside Debian's keepalived in network namespaces.
        .testTarget(name: "IntegrationTests"),
    ]
)

// libFuzzer targets (`make fuzz`, contrib/fuzz/run.sh), declared only when VIGIL_FUZZ is set:
// they are built with -sanitize=fuzzer, whose libFuzzer brings its own main, in their own
// build directory, and a normal build must not try to link them.
if Context.environment["VIGIL_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("VRRPFuzz", ["VRRP", "Addressing"]),
        ("NetlinkFuzz", ["IPVS", "Addressing"]),
        ("HTTPFuzz", ["HealthCheck"]),
        ("ControlFuzz", ["VigilStatus", "VigilMetrics"]),
        ("ConfigFuzz", ["VigilConfig"]),
        ("RepliesFuzz", ["HealthCheck", "SMTP", "VRRPSpecs"]),
    ]
    for target in fuzzTargets {
        package.targets.append(.executableTarget(name: target.name, dependencies: target.dependencies, path: "Tests/Fuzz/\(target.name)"))
        package.products.append(.executable(name: target.name, targets: [target.name]))
    }
}

// Release builds optimise across module boundaries: without it every call from the daemon into
// the generic prober and health types instantiated generic metadata at run time, which was half
// of the daemon's user CPU with 2,000 TCP_CHECKs (BENCHMARKS.md).
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
}
