import Foundation

/// Who is on call (CONTRACT §6): shifts evaluated in `gateway.timezone` at the moment asked.
/// A shift covers local wall-clock minutes [start, end) on its days; a shift whose end is not
/// after its start runs past midnight, and its early-morning part belongs to the previous day's
/// entry (a "fri 20:00–08:00" shift covers Saturday 07:59). DST: wall-clock minutes are used,
/// so a shift ending 02:30 on a spring-forward night simply ends at 03:00 local.
///
/// Indexed by grid and weekday when built, so a lookup looks only at the few shifts that can
/// cover that grid on that day, never at the whole district's roster.
public struct Roster: Sendable {
    public let shifts: [ShiftConfig]
    public let timeZone: TimeZone
    public let clock: LocalClock
    private let memberIDs: Set<String>
    private let grids: [String: GridShifts]

    /// One grid's part of the roster.
    struct GridShifts: Sendable {
        /// Per weekday (0 = Sunday): indexes into `shifts`, in config order, of the shifts that may
        /// cover some minute of that day (their own day, or the day before for a wrapping shift).
        var byWeekday: [[Int]] = Array(repeating: [], count: 7)
        /// Everyone holding any shift on the grid, in config order, no repeats.
        var members: [String] = []
        var memberSet: Set<String> = []
        /// Minutes of the local week (Sunday 00:00 = 0) a primary covers: sorted, merged, half-open.
        var primaryWeek: [Range<Int>] = []
    }

    public init(config: GatewayConfig) {
        shifts = config.shifts
        timeZone = TimeZone(identifier: config.gateway.timezone) ?? TimeZone(identifier: "UTC")!
        clock = LocalClock(timeZone: timeZone)
        memberIDs = Set(config.members.map(\.id))
        var grids = [String: GridShifts]()
        var primary = [String: [Range<Int>]]()
        for (n, s) in config.shifts.enumerated() {
            var g = grids[s.grid] ?? GridShifts()
            for day in s.days {
                let d = day.calendarIndex - 1
                if g.byWeekday[d].last != n { g.byWeekday[d].append(n) }
                if s.wraps {
                    let next = (d + 1) % 7
                    // n is the highest index so far, so appending keeps config order.
                    if g.byWeekday[next].last != n { g.byWeekday[next].append(n) }
                }
                if s.role == .primary { primary[s.grid, default: []] += Self.weekMinutes(s, day: d) }
            }
            if g.memberSet.insert(s.member).inserted { g.members.append(s.member) }
            grids[s.grid] = g
        }
        for (grid, ranges) in primary { grids[grid]?.primaryWeek = Self.merge(ranges) }
        self.grids = grids
    }

    /// The minutes of the week one day's entry of a shift covers (split where the week wraps).
    static func weekMinutes(_ s: ShiftConfig, day d: Int) -> [Range<Int>] {
        let lower = d * 1440 + s.start
        let upper = s.wraps ? (d + 1) * 1440 + s.end : d * 1440 + s.end
        if upper <= 10_080 { return [lower..<upper] }
        return [lower..<10_080, 0..<(upper - 10_080)]
    }

    static func merge(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out = [Range<Int>]()
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Local weekday (1 = Sunday) and minute of day at `t`.
    public func local(_ t: Timestamp) -> (weekday: Int, minute: Int) { clock.local(t) }

    public func covers(_ s: ShiftConfig, weekday: Int, minute: Int) -> Bool {
        guard let today = Weekday(calendarIndex: weekday), let yesterday = Weekday(calendarIndex: weekday == 1 ? 7 : weekday - 1) else { return false }
        if !s.wraps { return s.days.contains(today) && minute >= s.start && minute < s.end }
        return (s.days.contains(today) && minute >= s.start) || (s.days.contains(yesterday) && minute < s.end)
    }

    /// Members on shift for `grid` at `t`; `role` nil means everyone on shift. In config order, no repeats.
    public func onCall(grid: String, role: ShiftRole?, at t: Timestamp) -> [String] {
        guard let g = grids[grid] else { return [] }
        let (weekday, minute) = local(t)
        var out = [String]()
        for n in g.byWeekday[weekday - 1] {
            let s = shifts[n]
            if (role == nil || s.role == role) && covers(s, weekday: weekday, minute: minute) && !out.contains(s.member) {
                out.append(s.member)
            }
        }
        return out
    }

    public func resolve(_ target: NotifyTarget, grid: String, at t: Timestamp) -> [String] {
        switch target {
        case .gridPrimary: return onCall(grid: grid, role: .primary, at: t)
        case .gridBackup: return onCall(grid: grid, role: .backup, at: t)
        case .gridAll: return onCall(grid: grid, role: nil, at: t)
        case .gridRoster: return grids[grid]?.members ?? []
        case .member(let m): return memberIDs.contains(m) ? [m] : []
        }
    }

    /// True when the member holds any shift on the grid (on call now or not).
    public func isOnRoster(member: String, grid: String) -> Bool {
        grids[grid]?.memberSet.contains(member) ?? false
    }

    /// The minutes of the local week in which the grid has a primary on shift.
    func primaryWeek(grid: String) -> [Range<Int>] { grids[grid]?.primaryWeek ?? [] }
}
