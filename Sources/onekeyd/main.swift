import Glibc
import OnekeyDaemon
import OnekeyLinux

// Thin main: all daemon logic lives in OnekeyDaemon, linked by the tests too.
exit(await Daemon.main(ProcessArguments.current))
