import Foundation
import Glibc
import OnekeyHarness
import OnekeyLinux

/// What no daemon can beat on this machine: the broker's own publish→receive, and one
/// write + fdatasync on the filesystem the state directory lives on.
enum Floors {
    static func broker(_ broker: Broker, samples: Int) throws -> [Double] {
        let sub = try Subscriber(port: broker.port, topics: ["bench/floor"])
        let publisher = try Subscriber(port: broker.port, topics: [])
        defer { sub.close(); publisher.close() }
        var out = [Double]()
        for i in 0..<samples {
            let before = sub.count
            let t0 = monotonicNanos()
            try publisher.publish(topic: "bench/floor", payload: Array("{\"n\":\(i)}".utf8))
            guard let (_, m) = sub.next(after: before, timeout: 5, where: { _ in true }) else { throw HarnessError("floor message \(i) lost") }
            out.append(Double(m.receivedNanos - t0) / 1e6)
        }
        return out
    }

    /// 4 KiB (one page, as a WAL append is) written in place and fdatasynced, `samples` times.
    static func fdatasync(directory: String, samples: Int) throws -> [Double] {
        let path = directory + "/fdatasync-floor"
        let fd = try syscall("open \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        defer { close(fd); unlink(path) }
        let page = [UInt8](repeating: 0x5A, count: 4096)
        var out = [Double]()
        for i in 0..<samples {
            let t0 = monotonicNanos()
            _ = try page.withUnsafeBytes { p throws(SystemError) in
                try syscall("pwrite \(path)") { pwrite(fd, p.baseAddress, p.count, off_t(i % 16) * 4096) }
            }
            try syscall("fdatasync \(path)") { Glibc.fdatasync(fd) }
            out.append(Double(monotonicNanos() - t0) / 1e6)
        }
        return out
    }
}
