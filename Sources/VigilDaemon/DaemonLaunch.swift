@preconcurrency import Glibc

/// How `vigil` hands a checked command line to `vigild`, the daemon image. `vigil` parses
/// options with ArgumentParser (which pulls in FoundationEssentials); the long-running daemon
/// is a separate, smaller executable that never loads those pages, which keeps idle RSS low.
/// The format is a private `key=value` list that only this file writes and reads.
public enum DaemonLaunch {
    public static let daemonName = "vigild"

    public static func arguments(for o: DaemonOptions) -> [String] {
        var list = ["config=\(o.configPath)", "console=\(o.logConsole)", "detail=\(o.logDetail)",
                    "foreground=\(o.foreground)", "release=\(o.releaseVIPsOnStop)",
                    "release-ipvs=\(o.releaseIPVSOnStop)", "vrrp=\(o.runVRRP)", "check=\(o.runChecker)"]
        if let id = o.configID { list.append("id=\(id)") }
        if let pid = o.pidFile { list.append("pid=\(pid)") }
        if o.pidFileGiven { list.append("pid-given=true") }
        if let control = o.controlPath { list.append("control=\(control)") }
        if o.controlPathGiven { list.append("control-given=true") }
        if let namespace = o.namespace { list.append("namespace=\(namespace)") }
        if let metrics = o.metricsListen { list.append("metrics=\(metrics)") }
        if let mask = o.umask { list.append("umask=\(mask)") }
        return list
    }

    public static func options(from arguments: [String]) -> DaemonOptions {
        var values: [String: String] = [:]
        for pair in arguments {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        var options = DaemonOptions(configPath: values["config"] ?? "/etc/keepalived/keepalived.conf", configID: values["id"],
                             logConsole: values["console"] == "true", logDetail: values["detail"] == "true",
                             foreground: values["foreground"] == "true", pidFile: values["pid"],
                             releaseVIPsOnStop: values["release"] != "false",
                             releaseIPVSOnStop: values["release-ipvs"] != "false",
                             runVRRP: values["vrrp"] != "false", runChecker: values["check"] != "false",
                             controlPath: values["control"], metricsListen: values["metrics"])
        options.umask = values["umask"].flatMap { UInt32($0) }
        options.pidFileGiven = values["pid-given"] == "true"
        options.controlPathGiven = values["control-given"] == "true"
        options.namespace = values["namespace"]
        return options
    }

    /// Replaces this process with `vigild` from the same directory; if it is not there, runs
    /// the daemon in this image instead of failing.
    public static func exec(_ options: DaemonOptions) -> Never {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let selfPath = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let directory = selfPath[..<(selfPath.lastIndex(of: "/") ?? selfPath.startIndex)]
            let daemon = "\(directory)/\(daemonName)"
            if access(daemon, X_OK) == 0 {
                var cArguments = ([daemon] + arguments(for: options)).map { strdup($0) } + [nil]
                execv(daemon, &cArguments)
            }
        }
        exit(Daemon.run(options))
    }
}
