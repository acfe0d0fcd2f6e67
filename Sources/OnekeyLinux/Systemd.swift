import CSystemd
import Glibc

/// sd_notify(3) through libsystemd. Without `NOTIFY_SOCKET` every call is a no-op.
public enum ServiceManager {
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// The watchdog interval the service manager asked for (`WatchdogSec=`), or nil.
    public static func watchdogInterval() -> Double? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return Double(usec) / 1_000_000
    }

    /// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
    public static var stderrIsJournal: Bool {
        guard let stream = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}

/// sd_journal_sendv(3): one entry with MESSAGE, PRIORITY and upper-case structured fields.
public enum Journal {
    public static func send(priority: Int, message: String, fields: [(String, String)]) {
        var items = ["MESSAGE=\(message)", "PRIORITY=\(priority)", "SYSLOG_IDENTIFIER=onekeyd"]
        for (k, v) in fields { items.append("\(k)=\(v)") }
        let buffers = items.map { Array($0.utf8) }
        var iovecs = [iovec]()
        iovecs.reserveCapacity(buffers.count)
        // Keep every buffer alive while the call runs.
        func build(_ i: Int) {
            if i == buffers.count {
                _ = sd_journal_sendv(&iovecs, Int32(iovecs.count))
                return
            }
            buffers[i].withUnsafeBufferPointer { p in
                iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: p.baseAddress), iov_len: p.count))
                build(i + 1)
            }
        }
        build(0)
    }
}
