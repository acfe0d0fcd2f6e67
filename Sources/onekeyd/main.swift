import Glibc
import OnekeyDaemon
import OnekeyLinux

signal(SIGPIPE, SIG_IGN)  // first: nothing may die of a closed control client
// Thin main: all daemon logic lives in OnekeyDaemon, linked by the tests too.
exit(Daemon.main(ProcessArguments.current))
