import Glibc
import OnekeyDaemon

// Thin main: all daemon logic lives in OnekeyDaemon, linked by the tests too.
exit(await Daemon.main(CommandLine.arguments))
