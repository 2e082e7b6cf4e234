@preconcurrency import Glibc
import VigilDaemon

// The daemon image, started by `vigil` (see DaemonLaunch) with options it already checked.
exit(Daemon.run(DaemonLaunch.options(from: Array(CommandLine.arguments.dropFirst()))))
