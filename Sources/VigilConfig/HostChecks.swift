#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Addressing

/// What the environment checks ask of the host, so tests can describe a host in memory.
public protocol HostProbe {
    func interfaceExists(_ name: String) -> Bool
    func userExists(_ name: String) -> Bool
    func groupExists(_ name: String) -> Bool
    func fileStatus(_ path: String) -> FileStatus?
    /// The PATH the daemon's scripts will be searched in.
    var searchPath: [String] { get }
    /// The link's MTU, nil when unknown.
    func interfaceMTU(_ name: String) -> Int?
    /// A host name's first address (smtp_server NAME); nil when it does not resolve.
    func resolveHost(_ name: String) -> IPAddress?
    /// A file of /etc/iproute2 by name (rt_tables, rt_protos, ...); nil when it cannot be read.
    func iproute2File(_ name: String) -> String?
    /// CPUs online (sysconf(_SC_NPROCESSORS_ONLN)); nil when unknown.
    var onlineCPUs: Int? { get }
    /// A loopback interface (IFF_LOOPBACK), which keepalived refuses for VRRP.
    func isLoopback(_ name: String) -> Bool
    /// Moves this process into the named network namespace (`ip netns`' /run/netns/NAME);
    /// nil when it is in it, else why not.
    func enterNetworkNamespace(_ name: String) -> String?
}

extension HostProbe {
    public func isLoopback(_ name: String) -> Bool { false }
    public func enterNetworkNamespace(_ name: String) -> String? { nil }
    public func interfaceMTU(_ name: String) -> Int? { nil }
    public func resolveHost(_ name: String) -> IPAddress? { nil }
    public func iproute2File(_ name: String) -> String? { nil }
    public var onlineCPUs: Int? { nil }
}

public struct FileStatus: Sendable {
    public var isRegular: Bool
    public var isDirectory: Bool
    public var mode: UInt32
    public var ownerUID: UInt32
    public var ownerGID: UInt32
    public init(isRegular: Bool, isDirectory: Bool, mode: UInt32, ownerUID: UInt32, ownerGID: UInt32) {
        self.isRegular = isRegular
        self.isDirectory = isDirectory
        self.mode = mode
        self.ownerUID = ownerUID
        self.ownerGID = ownerGID
    }
}

/// The machine Vigil runs on, through glibc.
/// User and group look-ups in a fully static executable (`make release`). A static glibc still
/// dlopens the NSS modules nsswitch.conf names, and those modules (built for the shared libc,
/// e.g. Debian's libnss_systemd) crash it: `getpwnam("keepalived_script")` for a user that is
/// not in /etc/passwd faulted inside libnss_systemd. glibc has had the `files` backend built in
/// since 2.34, so a static binary asks it alone; a dynamically linked one keeps full NSS.
public enum UserDatabase {
    @_silgen_name("getauxval") private static func getauxval(_ type: UInt) -> UInt
    @_silgen_name("__nss_configure_lookup") private static func nssConfigureLookup(_ database: UnsafePointer<CChar>, _ service: UnsafePointer<CChar>) -> Int32

    /// True when no dynamic loader mapped this process (AT_BASE is 0 in a static executable).
    public static var isStaticExecutable: Bool { getauxval(7) == 0 }

    /// Call once at start, before any user or group is looked up.
    public static func useFilesOnlyIfStatic() {
        guard isStaticExecutable else { return }
        for database in ["passwd", "group", "initgroups", "shadow"] { _ = nssConfigureLookup(database, "files") }
    }
}

extension HostChecks {
    /// keepalived's smtpserver_handler: an address, or else a name resolved now (each load and
    /// reload, as keepalived resolves it while parsing); one that does not resolve is keepalived's
    /// "Invalid smtp server NAME PORT", and no mail is sent.
    static func resolveSMTPServer(_ config: inout Configuration, host: (any HostProbe)?, _ diagnostics: inout DiagnosticSink) {
        guard let server = config.globals.smtpServer else { return }
        if let literal = IPAddress(server) {
            config.globals.smtpServerAddress = literal
            return
        }
        guard let host else { return }
        config.globals.smtpServerAddress = host.resolveHost(server)
        if config.globals.smtpServerAddress == nil {
            diagnostics.warning(config.globals.smtpServerLocation ?? .unknown(""), "Invalid smtp server \(server) \(config.globals.smtpPort)")
        }
    }
}

extension HostChecks {
    /// keepalived's get_cpu_affinity reads the CPU ids against the CPUs online while parsing:
    /// one beyond them is its "Invalid cpu_id" error, and the whole set is dropped.
    static func checkCPUAffinity(_ config: inout Configuration, host: (any HostProbe)?, _ diagnostics: inout DiagnosticSink) {
        guard let online = host?.onlineCPUs else { return }
        func check(_ settings: inout SchedulingSettings, _ process: String) {
            guard let beyond = settings.cpus.first(where: { $0 >= online }) else { return }
            diagnostics.error(settings.locations["cpu_affinity"] ?? .unknown(""), "Invalid cpu_id:\(beyond) specified for \(process) process")
            settings.cpus = []
        }
        check(&config.globals.vrrpScheduling, "vrrp")
        check(&config.globals.checkerScheduling, "checker")
    }
}

public struct LocalHost: HostProbe {
    /// One socket for every interface question of a check: a file with 50 instances asks ~150
    /// of them, and a socket each cost more than the ioctls.
    private let requests = InterfaceRequests()
    public init() {}
    public var onlineCPUs: Int? {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : nil
    }
    public func interfaceExists(_ name: String) -> Bool {
        requests.ask(name, UInt(SIOCGIFINDEX)) { Int($0.ifr_ifru.ifru_ivalue) } != nil
    }
    // Asked of the kernel through a socket, not read from /sys/class/net: sysfs shows the
    // namespace it was mounted in, which is not this process's after net_namespace.
    public func isLoopback(_ name: String) -> Bool {
        guard let flags = requests.ask(name, UInt(SIOCGIFFLAGS), { Int($0.ifr_ifru.ifru_flags) }) else { return false }
        return flags & Int(IFF_LOOPBACK) != 0
    }
    public func interfaceMTU(_ name: String) -> Int? {
        requests.ask(name, UInt(SIOCGIFMTU)) { Int($0.ifr_ifru.ifru_mtu) }
    }
    public func enterNetworkNamespace(_ name: String) -> String? {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return "not a namespace name" }
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        guard glibcSetns(fd, cloneNewNet) == 0 else { return "setns(\(path)): \(String(cString: strerror(errno)))" }
        // A socket answers for the namespace it was made in: the next question makes a new one.
        requests.close()
        return nil
    }
    public func userExists(_ name: String) -> Bool { getpwnam(name) != nil }
    public func groupExists(_ name: String) -> Bool { getgrnam(name) != nil }
    public func fileStatus(_ path: String) -> FileStatus? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        return FileStatus(isRegular: type == S_IFREG, isDirectory: type == S_IFDIR, mode: info.st_mode & 0o7777,
                          ownerUID: info.st_uid, ownerGID: info.st_gid)
    }
    public var searchPath: [String] { HostChecks.scriptSearchPath }
    public func iproute2File(_ name: String) -> String? {
        guard !name.contains("/"), let file = fopen("/etc/iproute2/\(name)", "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 512)
        while text.utf8.count < 1 << 20, fgets(&buffer, Int32(buffer.count), file) != nil { text += String(cString: buffer) }
        return text
    }
    /// getaddrinfo, as keepalived's domain_stosockaddr: the first address it gives.
    public func resolveHost(_ name: String) -> IPAddress? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch first.pointee.ai_family {
        case AF_INET:
            var address = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
        case AF_INET6:
            var address = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
        default:
            return nil
        }
        return IPAddress(String(cString: text))
    }
}

/// The socket of `LocalHost`'s interface ioctls, made at the first question.
private final class InterfaceRequests {
    private var fd: Int32 = -1

    func ask(_ name: String, _ request: UInt, _ read: (ifreq) -> Int) -> Int? {
        guard !name.isEmpty, name.utf8.count < Int(IF_NAMESIZE) else { return nil }
        if fd < 0 { fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        guard fd >= 0 else { return nil }
        var r = ifreq()
        withUnsafeMutableBytes(of: &r.ifr_ifrn.ifrn_name) { buffer in
            for (i, byte) in name.utf8.enumerated() { buffer[i] = byte }
        }
        guard ioctl(fd, request, &r) == 0 else { return nil }
        return read(r)
    }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// keepalived's environment checks, with its trap fixed where the reference calls one out:
/// interfaces named anywhere must exist (unless `dynamic_interfaces`), scripts must exist and
/// be executable, and with `enable_script_security` a script run as root must not be writable by
/// anyone but root along its whole path. Without `enable_script_security`, configured scripts
/// are a security violation (exit 6), as in keepalived.
public enum HostChecks {
    /// Where a script named without a slash is looked for, by `vigil -t` and by the daemon
    /// alike, and the PATH scripts run with. Fixed rather than the caller's PATH: a config that
    /// passes `-t` in a login shell must not fail under systemd's PATH (or pick up root's
    /// personal bin directories for scripts that run as another user).
    public static let scriptSearchPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// keepalived's `interface lo`: the interface is dropped with an error and, without unicast
    /// peers, the instance then has none ("Unknown interface!"): keepalived's VRRP process exits
    /// at start and a reload is refused, and so does Vigil (the spec builder finds no interface).
    public static func dropLoopbackInterfaces(_ config: inout Configuration, host: any HostProbe, _ diagnostics: inout DiagnosticSink) {
        for index in config.instances.indices {
            guard let name = config.instances[index].interface, host.isLoopback(name) else { continue }
            let instance = config.instances[index]
            diagnostics.error(instance.interfaceLocation ?? instance.location, "(\(instance.name)) cannot use a loopback interface (\(name)) for vrrp - ignoring")
            config.instances[index].interface = nil
            if instance.unicastPeers.isEmpty {
                diagnostics.error(instance.location, "(\(instance.name)) Unknown interface!")
            }
        }
    }

    public static func check(_ config: Configuration, host: any HostProbe, _ diagnostics: inout DiagnosticSink) {
        checkInterfaces(config, host: host, &diagnostics)
        checkScripts(config, host: host, &diagnostics)
    }

    static func checkInterfaces(_ config: Configuration, host: any HostProbe, _ diagnostics: inout DiagnosticSink) {
        guard !config.globals.dynamicInterfaces else { return }
        func require(_ name: String, at location: SourceLocation, for what: String) {
            if !host.interfaceExists(name) {
                diagnostics.error(location, "interface '\(name)' for \(what) does not exist on this host (use dynamic_interfaces if it appears later)", klass: .fatal)
            }
        }
        for instance in config.instances {
            if let name = instance.interface {
                require(name, at: instance.interfaceLocation ?? instance.location, for: "vrrp_instance \(instance.name)")
            }
            for address in instance.virtualAddresses + instance.excludedAddresses {
                if let device = address.device { require(device, at: address.location, for: "address \(address.address)") }
            }
            for tracked in instance.trackInterfaces {
                require(tracked.name, at: tracked.location, for: "track_interface of \(instance.name)")
            }
        }
        for instance in config.instances {
            for route in instance.virtualRoutes { requireRouteDevice(route) }
        }
        for route in config.staticRoutes { requireRouteDevice(route) }
        func requireRouteDevice(_ route: RouteLine) {
            if let index = route.words.firstIndex(of: "dev"), index + 1 < route.words.count {
                require(route.words[index + 1], at: route.location, for: "route \(route.words.joined(separator: " "))")
            }
        }
        for group in config.syncGroups {
            for tracked in group.trackInterfaces { require(tracked.name, at: tracked.location, for: "track_interface of \(group.name)") }
        }
        for address in config.staticAddresses {
            require(address.device ?? config.globals.defaultInterface, at: address.location, for: "static address \(address.address)")
        }
        for polled in config.linkbeatInterfaces where !host.interfaceExists(polled.interface) {
            diagnostics.error(polled.location, "unknown interface \(polled.interface) specified for linkbeat interface", klass: .fatal)
        }
        for delays in config.interfaceDelays where !host.interfaceExists(delays.interface) {
            // keepalived's own words and class (exit 4).
            diagnostics.error(delays.location, "unknown interface \(delays.interface) specified for up/down delay", klass: .fatal)
        }
    }

    static func checkScripts(_ config: Configuration, host: any HostProbe, _ diagnostics: inout DiagnosticSink) {
        let scripts = config.allScripts
        guard !scripts.isEmpty else { return }
        let security = config.globals.enableScriptSecurity
        // Who runs scripts by default: script_user, else keepalived_script if it exists, else root.
        var defaultUser = "root"
        if let user = config.globals.scriptUser {
            if !host.userExists(user.user) {
                diagnostics.error(user.location, "script_user '\(user.user)' does not exist on this host")
            } else { defaultUser = user.user }
            if let group = user.group, !host.groupExists(group) {
                diagnostics.error(user.location, "script_user group '\(group)' does not exist on this host")
            }
        } else if host.userExists("keepalived_script") {
            defaultUser = "keepalived_script"
        } else if security {
            diagnostics.error(scripts[0].command.location,
                              "enable_script_security is set but there is no script_user and the default user 'keepalived_script' does not exist: scripts would be disabled (create the user or set script_user)")
        }

        var reported: Set<String> = []
        var firstFound: ScriptCommand?
        for script in scripts {
            let command = script.command, owner = script.owner
            let program = command.program
            // keepalived drops missing notify/checker scripts without a word, so they do not
            // change the exit status here either; but Vigil still says so.
            let klass: DiagnosticClass = script.role == .track ? .general : .note
            guard !program.isEmpty else {
                diagnostics.error(command.location, "\(owner): empty script command", klass: klass)
                continue
            }
            let user = command.user?.user ?? defaultUser
            if let explicit = command.user, !host.userExists(explicit.user) {
                diagnostics.error(explicit.location, "\(owner): script user '\(explicit.user)' does not exist on this host")
            }
            guard let path = resolve(program, host: host), let status = host.fileStatus(path), status.isRegular else {
                let where_ = program.hasPrefix("/") ? "" : " in PATH"
                if script.role == .track {
                    diagnostics.error(command.location, "\(owner): script '\(program)' not found\(where_): the script would be disabled")
                } else {
                    diagnostics.warning(command.location, "\(owner): script '\(program)' not found\(where_): it will not run (keepalived ignores this silently)", klass: .note)
                }
                continue
            }
            if firstFound == nil { firstFound = command }
            if status.mode & 0o111 == 0 {
                diagnostics.error(command.location, "\(owner): script '\(path)' is not executable", klass: klass)
            }
            if security && user == "root" && !reported.contains(path), let unsafe = insecurePart(of: path, host: host) {
                reported.insert(path)
                diagnostics.error(command.location, "\(owner): script '\(path)' runs as root but \(unsafe) is writable by a non-root user: enable_script_security disables it")
            }
        }
        if !security, let first = firstFound {
            diagnostics.error(first.location,
                              "scripts are configured but 'enable_script_security' is not set in global_defs: they would run as root unchecked (keepalived's SECURITY VIOLATION)",
                              klass: .security)
        }
    }

    /// The program as the daemon would run it: an absolute/relative path as is, else searched in PATH.
    public static func resolve(_ program: String, host: any HostProbe) -> String? {
        if program.contains("/") { return host.fileStatus(program) != nil ? program : nil }
        for directory in host.searchPath {
            let candidate = directory + "/" + program
            if let status = host.fileStatus(candidate), status.isRegular { return candidate }
        }
        return nil
    }

    /// The first component of the path (file or directory) that a non-root user could modify.
    public static func insecurePart(of path: String, host: any HostProbe) -> String? {
        var current = path
        while !current.isEmpty {
            if let status = host.fileStatus(current) {
                let sticky = status.isDirectory && status.mode & 0o1000 != 0
                if status.ownerUID != 0 && status.mode & 0o200 != 0 { return "'\(current)'" }
                if status.ownerGID != 0 && status.mode & 0o020 != 0 && !sticky { return "'\(current)'" }
                if status.mode & 0o002 != 0 && !sticky { return "'\(current)'" }
            }
            guard let slash = current.lastIndex(of: "/") else { break }
            if slash == current.startIndex { if current == "/" { break }; current = "/" } else { current = String(current[..<slash]) }
        }
        return nil
    }
}

/// setns(2) and CLONE_NEWNET are behind _GNU_SOURCE, which Glibc's module does not define.
@_silgen_name("setns") private func glibcSetns(_ fd: Int32, _ nstype: Int32) -> Int32
private let cloneNewNet: Int32 = 0x4000_0000
