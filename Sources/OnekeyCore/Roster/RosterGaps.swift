/// Windows in which a grid has no primary on shift: operators must see them before an alarm does.
public enum RosterGaps {
    public struct Gap: Sendable, Equatable {
        public var grid: String
        public var from: Timestamp
        public var to: Timestamp
        public var minutes: Int { Int((to.milliseconds - from.milliseconds) / 60_000) }
    }

    /// Gaps from `from` (rounded down to the minute) for `days` days, as a minute-by-minute scan
    /// would find them, but computed from each grid's weekly coverage intervals and the zone's
    /// offset changes: the work grows with shifts and transitions, not with minutes.
    public static func find(roster: Roster, grids: [String], from: Timestamp, days: Int) -> [Gap] {
        let start = from.milliseconds - from.milliseconds % 60_000
        let end = start + Int64(max(0, days)) * 1440 * 60_000
        let segments = offsetSegments(roster.clock, from: start, to: end)
        var gaps = [Gap]()
        for grid in grids {
            let week = roster.primaryWeek(grid: grid)
            var open: Int64?
            for seg in segments {
                var t = seg.from
                var w = seg.minuteOfWeek
                while t < seg.to {
                    let (covered, run) = coverage(week, at: w)
                    let next = min(seg.to, t + Int64(run) * 60_000)
                    if covered, let o = open {
                        gaps.append(Gap(grid: grid, from: Timestamp(milliseconds: o), to: Timestamp(milliseconds: t)))
                        open = nil
                    } else if !covered, open == nil {
                        open = t
                    }
                    w = (w + Int((next - t) / 60_000)) % 10_080
                    t = next
                }
            }
            if let o = open { gaps.append(Gap(grid: grid, from: Timestamp(milliseconds: o), to: Timestamp(milliseconds: end))) }
        }
        return gaps
    }

    /// A stretch of whole minutes with one UTC offset, and the local minute of the week it starts at.
    struct Segment { var from: Int64; var to: Int64; var minuteOfWeek: Int }

    static func offsetSegments(_ clock: LocalClock, from start: Int64, to end: Int64) -> [Segment] {
        var out = [Segment]()
        var t = start
        while t < end {
            var next = end
            if let tr = clock.nextTransition(after: Timestamp(milliseconds: t)) {
                // The first whole minute (counted from `start`) that already has the new offset.
                let since = tr.milliseconds - start
                let aligned = start + (since + 59_999) / 60_000 * 60_000
                next = min(end, max(aligned, t + 60_000))
            }
            out.append(Segment(from: t, to: next, minuteOfWeek: clock.minuteOfWeek(Timestamp(milliseconds: t))))
            t = next
        }
        return out
    }

    /// Whether minute `w` of the week is covered, and for how many minutes that stays so at least.
    static func coverage(_ week: [Range<Int>], at w: Int) -> (covered: Bool, run: Int) {
        // First interval that ends after w (binary search: the list is sorted and disjoint).
        var lo = 0, hi = week.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if week[mid].upperBound <= w { lo = mid + 1 } else { hi = mid }
        }
        if lo == week.count { return (false, 10_080 - w) }
        let r = week[lo]
        return r.lowerBound <= w ? (true, r.upperBound - w) : (false, r.lowerBound - w)
    }
}

extension RosterGaps {
    /// What `onekeyd --check-config` prints about the coming `days` days: one line per grid with
    /// a gap (its first gap and the minutes left uncovered), in config order, at most `limit`
    /// such lines, then one line summing up the rest. Empty when every grid is covered.
    public static func warnings(config: GatewayConfig, from: Timestamp, days: Int = 7, limit: Int = 20) -> [String] {
        let roster = Roster(config: config)
        let gaps = find(roster: roster, grids: config.grids.map(\.id), from: from, days: days)
        guard !gaps.isEmpty else { return [] }
        var byGrid = [String: (first: Gap, minutes: Int, count: Int)]()
        for g in gaps {
            if let seen = byGrid[g.grid] { byGrid[g.grid] = (seen.first, seen.minutes + g.minutes, seen.count + 1) }
            else { byGrid[g.grid] = (g, g.minutes, 1) }
        }
        let zone = config.gateway.timezone
        let window = days * 1440
        var lines = [String]()
        var restGrids = 0, restMinutes = 0
        for grid in config.grids {
            guard let (first, minutes, count) = byGrid[grid.id] else { continue }
            guard lines.count < limit else { restGrids += 1; restMinutes += minutes; continue }
            let label = grid.name == grid.id ? grid.id : "\(grid.id) (\(grid.name))"
            if minutes >= window {
                lines.append("warning: roster gap: grid \(label) has no primary on shift at any time in the next \(days) days; its alarms go to the policy's fallback")
            } else {
                lines.append("warning: roster gap: grid \(label) has no primary on shift from \(roster.clock.format(first.from)) for \(first.minutes) min (\(zone)); \(minutes) min uncovered in the next \(days) days in \(count) gap(s)")
            }
        }
        if restGrids > 0 {
            lines.append("warning: roster gap: \(restGrids) more grid(s) have gaps, \(restMinutes) min uncovered in all; list them with `onekeyctl roster gaps --days \(days)`")
        }
        return lines
    }
}
