import Glibc
import OnekeyLinux

/// A pty standing in for a serial receiver: the daemon opens `path` (the slave side); the test
/// writes frames into the master side.
public final class PseudoTerminal: @unchecked Sendable {
    public private(set) var master: Int32
    public let path: String

    public init() throws {
        // posix_openpt/unlockpt/ptsname by hand (Glibc hides them behind _XOPEN_SOURCE).
        let fd = try syscall("open /dev/ptmx") { open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC) }
        var unlock: Int32 = 0
        try syscall("ioctl(TIOCSPTLCK)") { ioctl(fd, UInt(0x4004_5431), &unlock) }
        var number: UInt32 = 0
        try syscall("ioctl(TIOCGPTN)") { ioctl(fd, UInt(0x8004_5430), &number) }
        master = fd
        path = "/dev/pts/\(number)"
        // Raw from the start, so no byte is echoed or translated before the daemon configures it.
        var tio = termios()
        try syscall("tcgetattr pty") { tcgetattr(fd, &tio) }
        cfmakeraw(&tio)
        try syscall("tcsetattr pty") { tcsetattr(fd, TCSANOW, &tio) }
    }

    /// Writes bytes as one write (as a receiver's UART would deliver a frame).
    public func write(_ bytes: [UInt8]) throws {
        try writeAll(master, bytes, what: "pty master")
    }

    /// Reads whatever the daemon wrote back (e.g. ACK/NAK), waiting up to `timeoutMs`.
    public func read(timeoutMs: Int32) -> [UInt8] {
        var pfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = Glibc.read(master, &buf, buf.count)
        return n > 0 ? Array(buf[0..<n]) : []
    }

    /// Closes the master: the daemon's side sees the device vanish (EIO / hang-up).
    public func close() {
        if master >= 0 { Glibc.close(master); master = -1 }
    }

    deinit { close() }
}
