import Foundation

/// Wall-clock arithmetic in one IANA zone without `Calendar`: the zone gives the UTC offset at
/// an instant and its next transition; weekday and minute of day follow from plain arithmetic.
/// Same answers as a Gregorian calendar in that zone, at a fraction of the cost and memory.
public struct LocalClock: Sendable {
    public let timeZone: TimeZone

    public init(timeZone: TimeZone) { self.timeZone = timeZone }

    /// Offset from UTC at `t`, in seconds.
    public func offsetSeconds(at t: Timestamp) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t.milliseconds) / 1000))
    }

    /// Local seconds since the epoch's local midnight (floor division of milliseconds).
    func localSeconds(_ t: Timestamp) -> Int64 {
        floorDiv(t.milliseconds, 1000) + Int64(offsetSeconds(at: t))
    }

    /// Local weekday (1 = Sunday … 7 = Saturday, as Calendar counts) and minute of day.
    public func local(_ t: Timestamp) -> (weekday: Int, minute: Int) {
        let s = localSeconds(t)
        let day = floorDiv(s, 86_400)
        return (Int(floorMod(day + 4, 7)) + 1, Int(floorMod(s, 86_400) / 60))  // 1970-01-01 was a Thursday
    }

    /// Minute of the local week, Sunday 00:00 = 0 … Saturday 23:59 = 10,079.
    public func minuteOfWeek(_ t: Timestamp) -> Int {
        let (weekday, minute) = local(t)
        return (weekday - 1) * 1440 + minute
    }

    /// The first instant after `t` at which the offset changes, if the zone has one.
    public func nextTransition(after t: Timestamp) -> Timestamp? {
        guard let d = timeZone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: Double(t.milliseconds) / 1000))
        else { return nil }
        return Timestamp(milliseconds: Int64((d.timeIntervalSince1970 * 1000).rounded(.up)))
    }

    /// `Mon 2026-11-23 20:00` in this zone.
    public func format(_ t: Timestamp) -> String {
        let s = localSeconds(t)
        let day = floorDiv(s, 86_400)
        let (y, m, d) = Self.civil(fromDays: day)
        let minute = Int(floorMod(s, 86_400) / 60)
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(names[Int(floorMod(day + 4, 7))]) \(y)-\(two(m))-\(two(d)) \(two(minute / 60)):\(two(minute % 60))"
    }

    /// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
