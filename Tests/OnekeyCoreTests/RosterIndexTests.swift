import Foundation
import Testing
@testable import OnekeyCore

/// The indexed roster and interval-based gap search against the straightforward definitions
/// (every shift scanned, Calendar in the zone, minute by minute) on random rosters.
@Suite struct RosterIndexTests {
    /// The roster as first written: Calendar for local time, every shift scanned per question.
    struct Reference {
        let shifts: [ShiftConfig]
        let calendar: Calendar
        init(_ config: GatewayConfig) {
            shifts = config.shifts
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: config.gateway.timezone)!
            calendar = cal
        }
        func onCall(grid: String, role: ShiftRole?, at t: Timestamp) -> [String] {
            let c = calendar.dateComponents([.weekday, .hour, .minute], from: Date(timeIntervalSince1970: Double(t.milliseconds) / 1000))
            let weekday = c.weekday!, minute = c.hour! * 60 + c.minute!
            let today = Weekday(calendarIndex: weekday)!, yesterday = Weekday(calendarIndex: weekday == 1 ? 7 : weekday - 1)!
            var out = [String]()
            for s in shifts where s.grid == grid && (role == nil || s.role == role) {
                let covered = s.wraps ? (s.days.contains(today) && minute >= s.start) || (s.days.contains(yesterday) && minute < s.end)
                                      : s.days.contains(today) && minute >= s.start && minute < s.end
                if covered && !out.contains(s.member) { out.append(s.member) }
            }
            return out
        }
        func gaps(grids: [String], from: Timestamp, days: Int) -> [RosterGaps.Gap] {
            let start = from.milliseconds - from.milliseconds % 60_000
            let minutes = days * 1440
            var gaps = [RosterGaps.Gap]()
            for grid in grids {
                var open: Int64?
                for i in 0...minutes {
                    let t = Timestamp(milliseconds: start + Int64(i) * 60_000)
                    let covered = i < minutes && !onCall(grid: grid, role: .primary, at: t).isEmpty
                    if !covered, i < minutes, open == nil { open = t.milliseconds }
                    if covered || i == minutes, let o = open {
                        gaps.append(.init(grid: grid, from: Timestamp(milliseconds: o), to: t)); open = nil
                    }
                }
            }
            return gaps
        }
    }

    static let zones = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC", "America/Santiago"]
    static let grids = ["a", "b", "c"]

    static func randomConfig(_ rng: inout SplitMix64, zone: String) throws -> GatewayConfig {
        var text = "[gateway]\nid = \"gw\"\ntimezone = \"\(zone)\"\n"
        for g in grids { text += "[[grid]]\nid = \"\(g)\"\n" }
        for m in 0..<5 { text += "[[member]]\nid = \"m\(m)\"\n" }
        func clock(_ q: Int) -> String { String(format: "%02d:%02d", q / 4, q % 4 * 15) }
        for g in grids {
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                let days = Weekday.allCases.filter { _ in Bool.random(using: &rng) }
                let start = Int.random(in: 0...95, using: &rng)
                let end = Int.random(in: 0...10, using: &rng) == 0 ? start : Int.random(in: 0...96, using: &rng)  // 24:00 and 24-hour shifts too
                text += """
                    [[shift]]
                    grid = "\(g)"
                    member = "m\(Int.random(in: 0..<5, using: &rng))"
                    role = "\(Bool.random(using: &rng) ? "primary" : "backup")"
                    days = [\((days.isEmpty ? [.mon] : days).map { "\"\($0.rawValue)\"" }.joined(separator: ", "))]
                    start = "\(clock(start))"
                    end = "\(clock(end))"

                    """
            }
        }
        return try ConfigLoader.parse(text, path: "random.toml")
    }

    /// Windows around DST changes in the zones above, and ordinary ones.
    static let windows = ["2026-03-07T10:00:00Z", "2026-03-28T00:00:00Z", "2026-04-04T00:00:00Z", "2026-10-03T00:00:00Z",
                          "2026-10-24T12:00:00Z", "2026-10-31T00:00:00Z", "2026-09-05T00:00:00Z", "2026-11-20T03:17:42Z"]

    /// `trials` random rosters, zones in turn; `body` returns false to stop at the first mismatch.
    static func randomRosters(seed: UInt64, trials: Int,
                              _ body: (_ trial: Int, _ zone: String, _ roster: Roster, _ reference: Reference, _ rng: inout SplitMix64) -> Bool) throws {
        var rng = SplitMix64(seed: seed)
        for trial in 0..<trials {
            let zone = zones[trial % zones.count]
            let config = try randomConfig(&rng, zone: zone)
            guard body(trial, zone, Roster(config: config), Reference(config), &rng) else { return }
        }
    }

    @Test func onCallMatchesTheFullScanOnRandomRosters() throws {
        try Self.randomRosters(seed: 9, trials: 70) { trial, zone, roster, reference, rng in
            for _ in 0..<120 {
                let base = Timestamp(rfc3339: Self.windows[Int.random(in: 0..<Self.windows.count, using: &rng)])!
                let t = base.adding(milliseconds: Int64.random(in: 0..<(4 * 86_400_000), using: &rng))
                let grid = Self.grids[Int.random(in: 0..<3, using: &rng)]
                for role in [ShiftRole.primary, .backup, nil] {
                    let got = roster.onCall(grid: grid, role: role, at: t), want = reference.onCall(grid: grid, role: role, at: t)
                    #expect(got == want, "trial \(trial) \(zone) \(t) \(grid) \(String(describing: role))")
                    if got != want { return false }
                }
            }
            return true
        }
    }

    @Test func gapsMatchTheMinuteByMinuteScanOnRandomRosters() throws {
        try Self.randomRosters(seed: 42, trials: 56) { trial, zone, roster, reference, rng in
            let base = Timestamp(rfc3339: Self.windows[trial % Self.windows.count])!
            let from = base.adding(milliseconds: Int64.random(in: 0..<86_400_000, using: &rng))
            let got = RosterGaps.find(roster: roster, grids: Self.grids + ["nobody"], from: from, days: 2)
            let want = reference.gaps(grids: Self.grids + ["nobody"], from: from, days: 2)
            #expect(got == want, "trial \(trial) \(zone) from \(from)")
            return got == want
        }
    }

    @Test func rosterLookupsAndTargets() throws {
        var rng = SplitMix64(seed: 7)
        let config = try Self.randomConfig(&rng, zone: "Asia/Shanghai")
        let roster = Roster(config: config)
        for g in Self.grids {
            var members = [String]()
            for s in config.shifts where s.grid == g && !members.contains(s.member) { members.append(s.member) }
            #expect(roster.resolve(.gridRoster, grid: g, at: Timestamp(seconds: 0)) == members)
            for m in 0..<5 { #expect(roster.isOnRoster(member: "m\(m)", grid: g) == members.contains("m\(m)")) }
        }
        #expect(roster.resolve(.gridRoster, grid: "nobody", at: Timestamp(seconds: 0)).isEmpty)
        #expect(!roster.isOnRoster(member: "m0", grid: "nobody"))
    }

    @Test func localClockFormatsInTheZone() {
        let clock = LocalClock(timeZone: TimeZone(identifier: "Asia/Shanghai")!)
        #expect(clock.format(Timestamp(rfc3339: "2026-11-22T16:05:00Z")!) == "Mon 2026-11-23 00:05")
        #expect(clock.format(Timestamp(rfc3339: "1969-12-31T15:59:00Z")!) == "Wed 1969-12-31 23:59")
        let ny = LocalClock(timeZone: TimeZone(identifier: "America/New_York")!)
        #expect(ny.format(Timestamp(rfc3339: "2024-02-29T17:00:00Z")!) == "Thu 2024-02-29 12:00")
    }
}
