import Glibc
import OnekeyControl

exit(Onekeyctl.main(CommandLine.arguments))
