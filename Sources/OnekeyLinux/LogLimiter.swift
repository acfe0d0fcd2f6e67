/// Rate limiting for a repeated log line, per message class: the first occurrence is logged,
/// then at most one line per interval, which says how many were suppressed in between.
/// `overdue` reports classes whose interval ended with suppressed lines, so a flood that
/// stops is still summed up.
public struct LogLimiter {
    public let intervalNanos: UInt64
    private var classes: [String: (windowStart: UInt64, suppressed: Int)] = [:]

    public init(intervalSeconds: Double = 60) { intervalNanos = UInt64(intervalSeconds * 1e9) }

    /// nil: stay quiet (counted). Otherwise log now; the value is how many were suppressed before.
    public mutating func admit(_ key: String, now: UInt64 = monotonicNanos()) -> Int? {
        if let c = classes[key], now &- c.windowStart < intervalNanos {
            classes[key] = (c.windowStart, c.suppressed + 1)
            return nil
        }
        let suppressed = classes[key]?.suppressed ?? 0
        classes[key] = (now, 0)
        return suppressed
    }

    /// Classes whose interval has ended with lines suppressed (reset), and forgets quiet ones.
    public mutating func overdue(now: UInt64 = monotonicNanos()) -> [(key: String, suppressed: Int)] {
        var out: [(key: String, suppressed: Int)] = []
        for (key, c) in classes where now &- c.windowStart >= intervalNanos {
            if c.suppressed > 0 {
                out.append((key, c.suppressed))
                classes[key] = (now, 0)
            } else {
                classes[key] = nil
            }
        }
        return out.sorted { $0.key < $1.key }
    }

    /// The text to append to a line admitted after `suppressed` others.
    public static func tail(_ suppressed: Int) -> String {
        suppressed > 0 ? " (\(suppressed) similar line(s) suppressed)" : ""
    }
}
