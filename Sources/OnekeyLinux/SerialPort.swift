import Glibc
import OnekeyCore

/// A serial line in raw mode (termios), opened non-blocking for the event loop.
public struct SerialLine: Sendable, Equatable {
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int

    public init(baud: Int, parity: Parity, dataBits: Int) { self.baud = baud; self.parity = parity; self.dataBits = dataBits }

    static func speed(_ baud: Int) -> speed_t? {
        switch baud {
        case 1200: return speed_t(B1200)
        case 2400: return speed_t(B2400)
        case 4800: return speed_t(B4800)
        case 9600: return speed_t(B9600)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 115200: return speed_t(B115200)
        case 230400: return speed_t(B230400)
        default: return nil
        }
    }
}

public enum SerialPort {
    /// Opens `path` read/write, non-blocking, without becoming its controlling terminal, claims it
    /// exclusively (`claimExclusively`), and puts the line into raw mode with the given settings.
    /// Returns the descriptor.
    public static func open(_ path: String, line: SerialLine) throws(SystemError) -> Int32 {
        let fd = try syscall("open \(path)") { Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) }
        do {
            try claimExclusively(fd, path: path)
            try configure(fd, path: path, line: line)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// TIOCEXCL: while onekeyd holds the port, any other open by a process without CAP_SYS_ADMIN
    /// fails with EBUSY, so a terminal program or a modem prober cannot steal or garble the
    /// receiver's bytes. The kernel clears it when the last descriptor closes, also after a crash.
    /// Not on pty slaves (socat/ser2net bridges to remote receivers): their flag outlives the
    /// daemon while the bridge holds the master, so a restarted onekeyd would be locked out.
    static func claimExclusively(_ fd: Int32, path: String) throws(SystemError) {
        var st = stat()
        try syscall("fstat \(path)") { fstat(fd, &st) }
        let major = (st.st_rdev >> 8) & 0xfff
        let unix98PtySlave = (136...143).contains(major)
        if unix98PtySlave { return }
        try syscall("ioctl(TIOCEXCL) \(path)") { ioctl(fd, UInt(TIOCEXCL)) }
    }

    public static func configure(_ fd: Int32, path: String, line: SerialLine) throws(SystemError) {
        var tio = termios()
        try syscall("tcgetattr \(path)") { tcgetattr(fd, &tio) }
        cfmakeraw(&tio)
        guard let speed = SerialLine.speed(line.baud) else { throw SystemError("baud \(line.baud) on \(path)", errno: EINVAL) }
        cfsetispeed(&tio, speed)
        cfsetospeed(&tio, speed)
        tio.c_cflag &= ~(tcflag_t(CSIZE) | tcflag_t(PARENB) | tcflag_t(PARODD) | tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
        switch line.dataBits {
        case 5: tio.c_cflag |= tcflag_t(CS5)
        case 6: tio.c_cflag |= tcflag_t(CS6)
        case 7: tio.c_cflag |= tcflag_t(CS7)
        default: tio.c_cflag |= tcflag_t(CS8)
        }
        switch line.parity {
        case .none: break
        case .even: tio.c_cflag |= tcflag_t(PARENB)
        case .odd: tio.c_cflag |= tcflag_t(PARENB | PARODD)
        }
        tio.c_cflag |= tcflag_t(CLOCAL) | tcflag_t(CREAD)
        // Non-canonical: a read returns whatever arrived; the decoder frames it.
        withUnsafeMutableBytes(of: &tio.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        // No tcflush: bytes that arrived while the daemon restarted are presses; the decoder resyncs.
        try syscall("tcsetattr \(path)") { tcsetattr(fd, TCSANOW, &tio) }
    }
}

/// Linux input devices (evdev): opened read-only and non-blocking, and grabbed (EVIOCGRAB) so
/// that their keys reach nobody else.
public enum InputDevice {
    /// _IOW('E', 0x90, int)
    static let eviocgrab: UInt = 0x4004_4590

    /// Returns the descriptor and whether the grab succeeded.
    public static func open(_ path: String) throws(SystemError) -> (Int32, Bool) {
        let fd = try syscall("open \(path)") { Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        var one: Int32 = 1
        let grabbed = (try? syscall("ioctl(EVIOCGRAB) \(path)") { ioctl(fd, eviocgrab, &one) }) != nil
        return (fd, grabbed)
    }
}
