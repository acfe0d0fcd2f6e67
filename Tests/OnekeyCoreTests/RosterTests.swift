import Testing
@testable import OnekeyCore

@Suite struct RosterTests {
    static func config(tz: String, shifts: String) throws -> GatewayConfig {
        try ConfigLoader.parse("""
            [gateway]
            id = "gw"
            timezone = "\(tz)"
            [[grid]]
            id = "g"
            [[member]]
            id = "day"
            [[member]]
            id = "night"
            [[member]]
            id = "spare"
            \(shifts)
            """, path: "t.toml")
    }

    /// Local wall time in a zone → Timestamp, via the parser's offset support.
    static func at(_ s: String) -> Timestamp { Timestamp(rfc3339: s)! }

    @Test func shiftWrapsPastMidnightIntoTheNextDay() throws {
        let c = try Self.config(tz: "Asia/Shanghai", shifts: """
            [[shift]]
            grid = "g"
            member = "day"
            days = ["mon", "tue", "wed", "thu", "fri"]
            start = "08:00"
            end = "20:00"
            [[shift]]
            grid = "g"
            member = "night"
            days = ["fri"]
            start = "20:00"
            end = "08:00"
            """)
        let r = Roster(config: c)
        // 2026-11-20 is a Friday.
        #expect(r.onCall(grid: "g", role: .primary, at: Self.at("2026-11-20T12:00:00+08:00")) == ["day"])
        #expect(r.onCall(grid: "g", role: .primary, at: Self.at("2026-11-20T20:00:00+08:00")) == ["night"])
        #expect(r.onCall(grid: "g", role: .primary, at: Self.at("2026-11-21T07:59:00+08:00")) == ["night"])  // Saturday morning
        #expect(r.onCall(grid: "g", role: .primary, at: Self.at("2026-11-21T08:00:00+08:00")) == [])
        #expect(r.onCall(grid: "g", role: .primary, at: Self.at("2026-11-20T07:59:00+08:00")) == [])  // Thursday night is not covered
        let gaps = RosterGaps.find(roster: r, grids: ["g"], from: Self.at("2026-11-20T00:00:00+08:00"), days: 1)
        #expect(gaps.map { ($0.from.rfc3339, $0.to.rfc3339) }.elementsEqual([("2026-11-19T16:00:00.000Z", "2026-11-20T00:00:00.000Z")], by: ==))
    }

    @Test func dstTransitionsUseWallClockMinutes() throws {
        let c = try Self.config(tz: "America/New_York", shifts: """
            [[shift]]
            grid = "g"
            member = "night"
            start = "22:00"
            end = "06:00"
            [[shift]]
            grid = "g"
            member = "day"
            start = "06:00"
            end = "22:00"
            """)
        let r = Roster(config: c)
        // Spring forward 2026-03-08 02:00 EST → 03:00 EDT: 05:59 EDT is still night, 06:00 EDT is day.
        #expect(r.onCall(grid: "g", role: nil, at: Self.at("2026-03-08T05:59:00-04:00")) == ["night"])
        #expect(r.onCall(grid: "g", role: nil, at: Self.at("2026-03-08T06:00:00-04:00")) == ["day"])
        // Fall back 2026-11-01 02:00 EDT → 01:00 EST: both 01:30s are night; 06:00 EST is day.
        #expect(r.onCall(grid: "g", role: nil, at: Self.at("2026-11-01T01:30:00-04:00")) == ["night"])
        #expect(r.onCall(grid: "g", role: nil, at: Self.at("2026-11-01T01:30:00-05:00")) == ["night"])
        #expect(r.onCall(grid: "g", role: nil, at: Self.at("2026-11-01T06:00:00-05:00")) == ["day"])
        // No gap across either night.
        #expect(RosterGaps.find(roster: r, grids: ["g"], from: Self.at("2026-03-07T00:00:00-05:00"), days: 3).isEmpty)
        #expect(RosterGaps.find(roster: r, grids: ["g"], from: Self.at("2026-10-31T00:00:00-04:00"), days: 3).isEmpty)
    }

    @Test func rolesAndTargets() throws {
        let c = try Self.config(tz: "UTC", shifts: """
            [[shift]]
            grid = "g"
            member = "day"
            start = "00:00"
            end = "24:00"
            [[shift]]
            grid = "g"
            member = "spare"
            role = "backup"
            start = "00:00"
            end = "00:00"
            """)
        let r = Roster(config: c)
        let t = Self.at("2026-11-22T10:00:00Z")
        #expect(r.resolve(.gridPrimary, grid: "g", at: t) == ["day"])
        #expect(r.resolve(.gridBackup, grid: "g", at: t) == ["spare"])
        #expect(r.resolve(.gridAll, grid: "g", at: t) == ["day", "spare"])
        #expect(r.resolve(.member("night"), grid: "g", at: t) == ["night"])
        #expect(r.isOnRoster(member: "spare", grid: "g") && !r.isOnRoster(member: "night", grid: "g"))
    }
}
