import Foundation
import Glibc
import OnekeyHarness
import OnekeyLinux

/// What no daemon can beat on this machine: the broker's own publish→receive, and one
/// write + fdatasync on the filesystem the state directory lives on.
enum Floors {
    /// Each message published after `idleMicroseconds` of quiet (0: back to back).
    static func broker(_ broker: Broker, samples: Int, idleMicroseconds: UInt32 = 0) throws -> [Double] {
        let sub = try Subscriber(port: broker.port, topics: ["bench/floor"])
        let publisher = try Subscriber(port: broker.port, topics: [])
        defer { sub.close(); publisher.close() }
        var out = [Double]()
        for i in 0..<samples {
            if idleMicroseconds > 0 { usleep(idleMicroseconds) }
            let before = sub.count
            let t0 = monotonicNanos()
            try publisher.publish(topic: "bench/floor", payload: Array("{\"n\":\(i)}".utf8))
            guard let (_, m) = sub.next(after: before, timeout: 5, where: { _ in true }) else { throw HarnessError("floor message \(i) lost") }
            out.append(Double(m.receivedNanos - t0) / 1e6)
        }
        return out
    }

    /// 4 KiB written in place and fdatasynced, `samples` times: back to back (`idleMicroseconds`
    /// 0), or each after sleeping that long, as the daemon sleeps in epoll before every press.
    /// On this VM the second is the fair floor for a press's commit: a sync issued after the
    /// machine idled takes 20–60 µs longer than one issued right after the last (a C loop of
    /// 4–5 KB writes: p50 ~135 µs back to back, 156 µs after 0.2 ms asleep, 196 µs after 1 ms),
    /// and every press's sync is issued after one.
    static func fdatasync(directory: String, samples: Int, idleMicroseconds: UInt32 = 0) throws -> [Double] {
        let path = directory + "/fdatasync-floor"
        let fd = try syscall("open \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        defer { close(fd); unlink(path) }
        let page = [UInt8](repeating: 0x5A, count: 4096)
        var out = [Double]()
        for i in 0..<samples {
            if idleMicroseconds > 0 { usleep(idleMicroseconds) }
            let t0 = monotonicNanos()
            _ = try page.withUnsafeBytes { p throws(SystemError) in
                try syscall("pwrite \(path)") { pwrite(fd, p.baseAddress, p.count, off_t(i % 16) * 4096) }
            }
            try syscall("fdatasync \(path)") { Glibc.fdatasync(fd) }
            out.append(Double(monotonicNanos() - t0) / 1e6)
        }
        return out
    }

    /// A frame's six bytes written to a pty master → read from the slave by a thread blocked in
    /// poll(2), `samples` times: the input hop every frame takes before any daemon sees it (the
    /// tty layer hands the bytes over in a kernel worker, as it does for a real UART's driver).
    static func pty(samples: Int) throws -> [Double] {
        let pty = try PseudoTerminal()
        let path = pty.path
        let slave = try syscall("open \(path)") { open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK) }
        var tio = termios()
        try syscall("tcgetattr \(path)") { tcgetattr(slave, &tio) }
        cfmakeraw(&tio)
        try syscall("tcsetattr \(path)") { tcsetattr(slave, TCSANOW, &tio) }
        var fds: [Int32] = [0, 0]
        try syscall("pipe") { pipe(&fds) }
        let (stamps, stampWriter) = (fds[0], fds[1])
        let reader = Thread {
            var buf = [UInt8](repeating: 0, count: 64)
            var got = 0
            while true {
                var pfd = pollfd(fd: slave, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 10_000) > 0 else { break }
                let n = Glibc.read(slave, &buf, buf.count)
                if n < 0 && errno == EAGAIN { continue }
                guard n > 0 else { break }
                got += n
                if got < 6 { continue }
                got = 0
                var t = monotonicNanos()
                guard Glibc.write(stampWriter, &t, 8) == 8 else { break }
            }
            Glibc.close(stampWriter)
        }
        reader.start()
        defer { pty.close(); Glibc.close(stamps); Glibc.close(slave) }
        var out = [Double]()
        let frame: [UInt8] = [0xFD, 0x12, 0x34, 0x5A, 0x08, 0xDF]
        for _ in 0..<samples {
            usleep(200)  // the reader is asleep in poll, as the daemon is between presses
            let t0 = monotonicNanos()
            try pty.write(frame)
            var t: UInt64 = 0
            guard Glibc.read(stamps, &t, 8) == 8 else { throw HarnessError("pty floor: the reader stopped") }
            out.append(Double(t - t0) / 1e6)
        }
        return out
    }
}
