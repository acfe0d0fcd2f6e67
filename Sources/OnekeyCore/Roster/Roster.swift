import Foundation

/// Who is on call (CONTRACT §6): shifts evaluated in `gateway.timezone` at the moment asked.
/// A shift covers local wall-clock minutes [start, end) on its days; a shift whose end is not
/// after its start runs past midnight, and its early-morning part belongs to the previous day's
/// entry (a "fri 20:00–08:00" shift covers Saturday 07:59). DST: wall-clock minutes are used,
/// so a shift ending 02:30 on a spring-forward night simply ends at 03:00 local.
public struct Roster: Sendable {
    public let shifts: [ShiftConfig]
    public let timeZone: TimeZone
    private let calendar: Calendar
    private let memberIDs: Set<String>

    public init(config: GatewayConfig) {
        shifts = config.shifts
        timeZone = TimeZone(identifier: config.gateway.timezone) ?? TimeZone(identifier: "UTC")!
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = timeZone
        calendar = cal
        memberIDs = Set(config.members.map(\.id))
    }

    /// Local weekday (1 = Sunday) and minute of day at `t`.
    public func local(_ t: Timestamp) -> (weekday: Int, minute: Int) {
        let c = calendar.dateComponents([.weekday, .hour, .minute], from: Date(timeIntervalSince1970: Double(t.milliseconds) / 1000))
        return (c.weekday ?? 1, (c.hour ?? 0) * 60 + (c.minute ?? 0))
    }

    public func covers(_ s: ShiftConfig, weekday: Int, minute: Int) -> Bool {
        guard let today = Weekday(calendarIndex: weekday), let yesterday = Weekday(calendarIndex: weekday == 1 ? 7 : weekday - 1) else { return false }
        if !s.wraps { return s.days.contains(today) && minute >= s.start && minute < s.end }
        return (s.days.contains(today) && minute >= s.start) || (s.days.contains(yesterday) && minute < s.end)
    }

    /// Members on shift for `grid` at `t`; `role` nil means everyone on shift. In config order, no repeats.
    public func onCall(grid: String, role: ShiftRole?, at t: Timestamp) -> [String] {
        let (weekday, minute) = local(t)
        var out = [String]()
        for s in shifts where s.grid == grid && (role == nil || s.role == role) && covers(s, weekday: weekday, minute: minute) {
            if !out.contains(s.member) { out.append(s.member) }
        }
        return out
    }

    public func resolve(_ target: NotifyTarget, grid: String, at t: Timestamp) -> [String] {
        switch target {
        case .gridPrimary: return onCall(grid: grid, role: .primary, at: t)
        case .gridBackup: return onCall(grid: grid, role: .backup, at: t)
        case .gridAll: return onCall(grid: grid, role: nil, at: t)
        case .gridRoster:
            var out = [String]()
            for s in shifts where s.grid == grid && !out.contains(s.member) { out.append(s.member) }
            return out
        case .member(let m): return memberIDs.contains(m) ? [m] : []
        }
    }

    /// True when the member holds any shift on the grid (on call now or not).
    public func isOnRoster(member: String, grid: String) -> Bool {
        shifts.contains { $0.grid == grid && $0.member == member }
    }
}

/// Windows in which a grid has no primary on shift: operators must see them before an alarm does.
public enum RosterGaps {
    public struct Gap: Sendable, Equatable {
        public var grid: String
        public var from: Timestamp
        public var to: Timestamp
    }

    /// Scans minute by minute from `from` (rounded down to the minute) for `days` days.
    public static func find(roster: Roster, grids: [String], from: Timestamp, days: Int) -> [Gap] {
        let start = from.milliseconds - from.milliseconds % 60_000
        let minutes = days * 1440
        var gaps = [Gap]()
        for grid in grids {
            var open: Int64?
            for i in 0...minutes {
                let t = Timestamp(milliseconds: start + Int64(i) * 60_000)
                let covered = i < minutes && !roster.onCall(grid: grid, role: .primary, at: t).isEmpty
                if !covered, i < minutes, open == nil { open = t.milliseconds }
                if covered || i == minutes, let o = open {
                    gaps.append(Gap(grid: grid, from: Timestamp(milliseconds: o), to: t))
                    open = nil
                }
            }
        }
        return gaps
    }
}
