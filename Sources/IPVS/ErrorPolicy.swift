// What a kernel errno means for an IPVS operation, following keepalived's `ipvs_talk()`
// (ipvswrapper.c) and its messages from libipvs `ipvs_strerror()`, so Vigil's verdicts and
// log lines match what operators know from keepalived.

/// The verdict on one operation's NLMSG_ERROR.
public enum IPVSErrorDisposition: Hashable, Sendable {
    /// Done, or already in the wanted state.
    case success
    /// Send this instead (SET_DEST found no such destination: add it).
    case retryAsNew(IPVSOperation)
    /// A real failure; `message` is keepalived's log line for it.
    case failure(message: String)
}

/// Linux errno values the policy and the messages need. Spelled out because the module must
/// not import Glibc.
public enum LinuxErrno {
    public static let EPERM: Int32 = 1
    public static let ENOENT: Int32 = 2
    public static let ESRCH: Int32 = 3
    public static let ENOMEM: Int32 = 12
    public static let EEXIST: Int32 = 17
    public static let EINVAL: Int32 = 22
    public static let EMSGSIZE: Int32 = 90
    public static let ENOPROTOOPT: Int32 = 92
    public static let EOPNOTSUPP: Int32 = 95
    public static let EAFNOSUPPORT: Int32 = 97
}

public enum IPVSErrorPolicy {
    /// keepalived's rules: EEXIST on an add and ENOENT on a delete are success, and SET_DEST
    /// with ENOENT is retried as NEW_DEST.
    ///
    /// One deliberate extension: ESRCH on a delete is success too. The kernel answers ESRCH,
    /// not ENOENT, when the *service* is missing, so keepalived's ENOENT rule never covers
    /// DEL_SERVICE; keepalived logs "No such service" and carries on with the table already
    /// in the wanted state. Treating it as success keeps a teardown after `ipvsadm -C` quiet.
    /// `errno` may be given with either sign.
    public static func disposition(of operation: IPVSOperation, errno rawErrno: Int32) -> IPVSErrorDisposition {
        let errno = rawErrno == Int32.min ? Int32.max : abs(rawErrno)
        if errno == 0 { return .success }
        switch (operation, errno) {
        case (.addService, LinuxErrno.EEXIST), (.addDestination, LinuxErrno.EEXIST):
            return .success
        case (.deleteService, LinuxErrno.ENOENT), (.deleteDestination, LinuxErrno.ENOENT),
             (.deleteService, LinuxErrno.ESRCH), (.deleteDestination, LinuxErrno.ESRCH):
            return .success
        case (.editDestination(let dest, let service), LinuxErrno.ENOENT):
            return .retryAsNew(.addDestination(dest, to: service))
        default:
            return .failure(message: message(for: operation, errno: errno))
        }
    }

    /// keepalived's line, `IPVS cmd IP_VS_SO_SET_ADDDEST(1159) error: Service not defined(3)
    /// ([10.0.0.1]:tcp:80 -> [192.168.0.21]:tcp:80)`, with the service and real server written
    /// as keepalived's FMT_VS / FMT_RS write them elsewhere, so one grep finds both.
    public static func message(for operation: IPVSOperation, errno: Int32) -> String {
        let (name, number) = socketOptionCommand(operation)
        var target = ""
        if let service = operation.serviceKey {
            target = " (\(service)"
            if let dest = operation.destinationKey { target += " -> \(dest.formatted(in: service))" }
            target += ")"
        }
        return "IPVS cmd \(name)(\(number)) error: \(strerror(errno, for: operation))(\(errno))\(target)"
    }

    /// keepalived still names commands by their old setsockopt constants
    /// (IP_VS_BASE_CTL = 64 + 1024 + 64 = 1152).
    public static func socketOptionCommand(_ operation: IPVSOperation) -> (name: String, number: Int) {
        switch operation {
        case .addService: ("IP_VS_SO_SET_ADD", 1154)
        case .editService: ("IP_VS_SO_SET_EDIT", 1155)
        case .deleteService: ("IP_VS_SO_SET_DEL", 1156)
        case .flush: ("IP_VS_SO_SET_FLUSH", 1157)
        case .addDestination: ("IP_VS_SO_SET_ADDDEST", 1159)
        case .deleteDestination: ("IP_VS_SO_SET_DELDEST", 1160)
        case .editDestination: ("IP_VS_SO_SET_EDITDEST", 1161)
        }
    }

    /// libipvs `ipvs_strerror`: command-specific texts first, then IPVS-wide ones, then
    /// glibc's `strerror` for the rest.
    public static func strerror(_ errno: Int32, for operation: IPVSOperation) -> String {
        switch (operation, errno) {
        case (.addService, LinuxErrno.EEXIST): return "Service already exists"
        case (.addService, LinuxErrno.ENOENT), (.editService, LinuxErrno.ENOENT):
            return "Scheduler or persistence engine not found"
        case (.editService, LinuxErrno.ESRCH), (.deleteService, LinuxErrno.ESRCH): return "No such service"
        case (.addDestination, LinuxErrno.ESRCH), (.editDestination, LinuxErrno.ESRCH),
             (.deleteDestination, LinuxErrno.ESRCH):
            return "Service not defined"
        case (.addDestination, LinuxErrno.EEXIST): return "Destination already exists"
        case (.editDestination, LinuxErrno.ENOENT), (.deleteDestination, LinuxErrno.ENOENT):
            return "No such destination"
        default: break
        }
        switch errno {
        case LinuxErrno.EPERM: return "Permission denied (you must be root)"
        case LinuxErrno.EINVAL: return "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        case LinuxErrno.ENOPROTOOPT: return "Protocol not available"
        case LinuxErrno.ENOMEM: return "Memory allocation problem"
        case LinuxErrno.EOPNOTSUPP: return "Operation not supported with IPv6"
        case LinuxErrno.EAFNOSUPPORT: return "Operation not supported with specified address family"
        case LinuxErrno.EMSGSIZE: return "Module is wrong version"
        default: return glibcStrerror(errno)
        }
    }

    /// The glibc texts for the errnos the IPVS and netlink code paths can return.
    static func glibcStrerror(_ errno: Int32) -> String {
        switch errno {
        case 2: "No such file or directory"
        case 3: "No such process"
        case 4: "Interrupted system call"
        case 5: "Input/output error"
        case 11: "Resource temporarily unavailable"
        case 13: "Permission denied"
        case 16: "Device or resource busy"
        case 17: "File exists"
        case 19: "No such device"
        case 28: "No space left on device"
        case 34: "Numerical result out of range"
        case 93: "Protocol not supported"
        case 105: "No buffer space available"
        case 111: "Connection refused"
        default: "Unknown error \(errno)"
        }
    }
}
