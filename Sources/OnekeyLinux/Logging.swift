import Foundation
import Glibc
import Logging

/// A swift-log backend for a system daemon: journald entries with priorities and structured
/// fields when running under systemd, one plain line per entry on stderr otherwise.
///
/// Metadata keys become upper-case journal fields with the `ONEKEY_` prefix: `alert_id` →
/// `ONEKEY_ALERT_ID`, `device` → `ONEKEY_DEVICE`, `event_kind` → `ONEKEY_EVENT_KIND`, so
/// `journalctl -u onekeyd ONEKEY_ALERT_ID=…` shows one alert's story.
public struct DaemonLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let toJournal: Bool

    public init(label: String, level: Logger.Level, toJournal: Bool) {
        self.label = label
        self.logLevel = level
        self.toJournal = toJournal
    }

    public static func bootstrap(level: Logger.Level = .info) {
        let journal = ServiceManager.stderrIsJournal
        LoggingSystem.bootstrap { label in DaemonLogHandler(label: label, level: level, toJournal: journal) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// syslog priorities (sd-daemon.h): 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// The whole line, retrying EINTR and short writes; a line that cannot be written is dropped
    /// (there is nowhere else to say so).
    static func writeStandardError(_ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            guard let n = try? syscall("write stderr", { bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress! + done, $0.count - done) } }),
                  n > 0 else { return }
            done += n
        }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { ("ONEKEY_" + $0.key.uppercased(), "\($0.value)") }
        if toJournal {
            Journal.send(priority: Self.priority(level), message: "\(message)", fields: fields)
        } else {
            let tail = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let line = "<\(Self.priority(level))>\(level.rawValue.uppercased()) \(message)\(tail)\n"
            Self.writeStandardError(Array(line.utf8))
        }
    }
}
