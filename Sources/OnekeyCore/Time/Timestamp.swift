#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in milliseconds since the Unix epoch (UTC). All stored and published times use it.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(seconds: Int64) { self.milliseconds = seconds * 1000 }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.milliseconds < b.milliseconds }
    public func adding(milliseconds ms: Int64) -> Timestamp { Timestamp(milliseconds: milliseconds + ms) }
    public func adding(seconds s: Int) -> Timestamp { Timestamp(milliseconds: milliseconds + Int64(s) * 1000) }

    /// RFC 3339 UTC with milliseconds: `2026-11-22T08:01:02.345Z`.
    public var rfc3339: String {
        var secs = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let ms = Int(milliseconds - Int64(secs) * 1000)
        var tm = tm()
        gmtime_r(&secs, &tm)
        // Written into 24 bytes at once: several timestamps go into every press's messages.
        // Years outside 0...9999 keep their own width, as before.
        let year = Int(tm.tm_year) + 1900
        guard (0...9999).contains(year) else {
            func pad(_ v: Int, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
            return "\(pad(year, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
                + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2)).\(pad(ms, 3))Z"
        }
        return String(unsafeUninitializedCapacity: 24) { b in
            func put(_ v: Int, _ at: Int, _ width: Int) {
                var v = v
                for i in stride(from: at + width - 1, through: at, by: -1) { b[i] = UInt8(48 + v % 10); v /= 10 }
            }
            put(year, 0, 4); b[4] = 45; put(Int(tm.tm_mon) + 1, 5, 2); b[7] = 45; put(Int(tm.tm_mday), 8, 2); b[10] = 84
            put(Int(tm.tm_hour), 11, 2); b[13] = 58; put(Int(tm.tm_min), 14, 2); b[16] = 58; put(Int(tm.tm_sec), 17, 2)
            b[19] = 46; put(ms, 20, 3); b[23] = 90
            return 24
        }
    }

    public var description: String { rfc3339 }

    /// Parses RFC 3339 (`Z` or `±HH:MM` offset, optional fraction).
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= b.count else { return nil }
            var v = 0
            for i in from..<(from + n) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32, let h = num(11, 2), b[13] == 58, let mi = num(14, 2),
              b[16] == 58, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { frac = frac * 10 + Int64(b[i] - 48) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            var k = digits
            while k < 3 { frac *= 10; k += 1 }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 { i += 1 } else if b[i] == 43 || b[i] == 45 {
            guard let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2) else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == 45 ? -1 : 1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        let days = Timestamp.daysFromCivil(y, mo, d)
        let secs = Int64(days) * 86400 + Int64(h * 3600 + mi * 60 + s) - Int64(offset)
        self.milliseconds = secs * 1000 + frac
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}

/// A moment as the gateway sees it: wall time for records, monotonic time for windows and timers.
public struct Moment: Sendable, Equatable {
    public var wall: Timestamp
    /// Monotonic nanoseconds (CLOCK_MONOTONIC); immune to wall-clock steps.
    public var monotonicNanos: UInt64
    public init(wall: Timestamp, monotonicNanos: UInt64) {
        self.wall = wall; self.monotonicNanos = monotonicNanos
    }
}

/// The gateway's only source of time. Production reads the system clocks; tests inject their own.
public protocol GatewayClock: Sendable {
    func now() -> Moment
}

public struct SystemClock: GatewayClock {
    public init() {}
    public func now() -> Moment {
        var wall = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return Moment(wall: Timestamp(milliseconds: Int64(wall.tv_sec) * 1000 + Int64(wall.tv_nsec) / 1_000_000),
                      monotonicNanos: UInt64(mono.tv_sec) * 1_000_000_000 + UInt64(mono.tv_nsec))
    }
}

/// Conversions between the two clocks of one moment. Monotonic instants are signed nanoseconds
/// so that a wall time from before this boot (a stored deadline) maps to a negative instant.
extension Moment {
    public var monotonic: Int64 { Int64(bitPattern: monotonicNanos) }

    /// The monotonic instant at which the wall clock, as it reads now, shows `t`.
    public func monotonic(at t: Timestamp) -> Int64 {
        monotonic &+ (t.milliseconds &- wall.milliseconds) &* 1_000_000
    }

    /// What the wall clock, as it reads now, will show at monotonic instant `ns`.
    public func wall(atMonotonic ns: Int64) -> Timestamp {
        let delta = ns &- monotonic
        // Round up: a deadline stored from this must never fire early after a restart.
        let ms = delta >= 0 ? (delta + 999_999) / 1_000_000 : -((-delta) / 1_000_000)
        return wall.adding(milliseconds: ms)
    }
}
