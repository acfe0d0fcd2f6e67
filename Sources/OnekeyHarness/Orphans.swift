import Foundation
import Glibc

/// Daemons and brokers left behind by a test process that died (an aborted run, a sanitizer
/// abort) are reparented to init and keep running: such a daemon reopens its port path, a
/// `/dev/pts/N` that a later test's pty gets again, and reads that test's frames — presses
/// vanished across a whole suite (robustness.md). The first broker or daemon a process starts
/// kills the ones whose parent is init and whose configuration is one of the harness's temp
/// directories; nothing else (a soak's, a developer's or an installed daemon is not touched).
public enum Orphans {
    nonisolated(unsafe) private static var done = false
    private static let lock = NSLock()

    static func reapOnce() {
        lock.lock(); defer { lock.unlock() }
        guard !done else { return }
        done = true
        reap()
    }

    /// Kills the harness's orphaned daemons and brokers now; returns their PIDs.
    @discardableResult
    public static func reap() -> [Int32] {
        var killed: [Int32] = []
        let tmp = (NSTemporaryDirectory() as NSString).standardizingPath
        let mine = [tmp + "/onekeyd-daemon-", tmp + "/onekeyd-broker-", tmp + "//onekeyd-daemon-", tmp + "//onekeyd-broker-"]
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[1] == "1" else { continue }  // parent is init: orphaned
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let isOurs = args.contains { a in mine.contains { a.hasPrefix($0) } }
                && args.contains { $0.hasSuffix("/onekeyd") || $0.hasSuffix("/mosquitto") }
            if isOurs, kill(pid, SIGKILL) == 0 { killed.append(pid) }
        }
        return killed
    }
}
