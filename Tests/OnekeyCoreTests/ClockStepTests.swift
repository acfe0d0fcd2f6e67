import Testing
@testable import OnekeyCore

/// Wall-clock steps while the daemon runs (an NTP correction on a board without an RTC):
/// deadlines are monotonic, shifts and records use the corrected wall clock.
@Suite struct ClockStepTests {
    typealias T = AlertDeskTests

    /// A clock whose wall time can be stepped without the monotonic time moving.
    struct SteppedClock {
        var clock = T.ManualClock()
        mutating func run(seconds: Int) { clock.advance(ms: Int64(seconds) * 1000) }
        mutating func stepWall(seconds: Int) { clock.wall = clock.wall.adding(seconds: seconds) }
        var now: Moment { clock.now }
    }

    @Test(arguments: [7200, -3600])
    func aWallStepMidLadderNeitherFiresEarlyNorDelays(step: Int) throws {
        var c = SteppedClock()
        var desk = AlertDesk(config: try T.config(), at: c.now)
        _ = desk.handle(T.press(8), at: c.now)
        c.run(seconds: 30)
        c.stepWall(seconds: step)
        #expect(!desk.fireDueSteps(at: c.now).changesState)
        #expect(desk.nextDeadline() == T.mono(60))
        c.run(seconds: 29)
        #expect(!desk.fireDueSteps(at: c.now).changesState)
        c.run(seconds: 1)
        let s1 = desk.fireDueSteps(at: c.now)
        #expect(T.pages(s1).elementsEqual([("bob", "escalated")], by: ==))
        // Displayed and stored on the corrected wall clock: the next step 120 s from now.
        #expect(s1.alerts[0].nextStepAt == c.now.wall.adding(seconds: 120))
        #expect(s1.alerts[0].raisedAt == T.t0)
        #expect(desk.nextDeadlineWall(now: c.now) == c.now.wall.adding(seconds: 120))
        c.run(seconds: 120)
        #expect(T.pages(desk.fireDueSteps(at: c.now)).elementsEqual([("station", "escalated")], by: ==))
    }

    @Test(arguments: [7200, -3600])
    func pressMergeRunsOnTheMonotonicClock(step: Int) throws {
        var c = SteppedClock()
        var desk = AlertDesk(config: try T.config(), at: c.now)
        let first = desk.handle(T.press(8), at: c.now).alerts[0]
        c.run(seconds: 100)
        c.stepWall(seconds: step)
        let joined = desk.handle(T.press(8), at: c.now)
        #expect(joined.alerts.first?.id == first.id && joined.alerts.first?.pressCount == 2)
        c.run(seconds: 200)  // 300 s after the raise: press_merge_s is over, a new alert
        let fresh = desk.handle(T.press(8), at: c.now)
        #expect(fresh.alerts.count == 1 && fresh.alerts[0].id != first.id)
    }

    @Test func shiftsAreResolvedOnTheCorrectedWallClock() throws {
        // 10:00 local; the wall clock is corrected by +12 h to 22:00: alice (08–20) is off, so the
        // primary step of round 2 finds nobody and pages the fallback (the grid's roster).
        var c = SteppedClock()
        var desk = AlertDesk(config: try T.config(), at: c.now)
        _ = desk.handle(T.press(8), at: c.now)
        c.run(seconds: 100)
        c.stepWall(seconds: 12 * 3600)
        _ = desk.fireDueSteps(at: c.now)
        c.run(seconds: 80)
        #expect(T.pages(desk.fireDueSteps(at: c.now)).elementsEqual([("station", "escalated")], by: ==))
        c.run(seconds: 30)  // 210 s: round 2, step 0 (grid:primary)
        let o = desk.fireDueSteps(at: c.now)
        #expect(T.pages(o).map(\.1) == ["fallback", "fallback"])
    }

    @Test(arguments: [7200, -3600])
    func supervisionRunsOnTheMonotonicClock(step: Int) throws {
        var config = try T.config()
        config.devices[0].supervisionSeconds = 600
        var c = SteppedClock()
        var desk = AlertDesk(config: config, at: c.now)
        desk.startSupervision(at: c.now)
        c.run(seconds: 10)
        c.stepWall(seconds: step)
        #expect(!desk.fireDueSteps(at: c.now).changesState)
        c.run(seconds: 589)
        #expect(!desk.fireDueSteps(at: c.now).changesState)
        c.run(seconds: 1)
        let o = desk.fireDueSteps(at: c.now)
        #expect(o.alerts.first?.kind == .supervisionLoss && o.lateness == [0])
    }

    @Test func supervisionRestartedAfterAReloadCountsFromTheLastFrame() throws {
        var config = try T.config()
        config.devices[0].supervisionSeconds = 600
        var c = SteppedClock()
        var desk = AlertDesk(config: config, devices: [DeviceState(id: "btn", lastSeen: T.t0.adding(seconds: -500))], at: c.now)
        desk.startSupervision(at: c.now)
        #expect(desk.nextDeadline() == T.mono(100))
        c.run(seconds: 50)
        desk.reconfigure(config)
        #expect(desk.nextDeadline() == T.mono(100))
    }

    @Test func idsStayUniqueAndSortedAcrossAWallStepBack() throws {
        var c = SteppedClock()
        var desk = AlertDesk(config: try T.config(), at: c.now)
        var all = Set<String>()
        var previousMax = ""
        for i in 0..<200 {
            if i == 100 { c.stepWall(seconds: -3600) }
            c.run(seconds: 4)  // beyond repeat_window_ms: every frame acts
            let o = desk.handle(T.press(i % 2 == 0 ? 8 : 4), at: c.now)
            let ids = o.events.map(\.id) + o.alerts.map(\.id) + o.outbox.map(\.key)
            #expect(!ids.isEmpty)
            // Everything issued for a later input sorts after everything issued for an earlier one.
            let fresh = Set(ids).subtracting(o.alerts.map(\.id))
            #expect(fresh.allSatisfy { $0 > previousMax })
            #expect(all.isDisjoint(with: fresh))
            all.formUnion(fresh)
            previousMax = max(previousMax, ids.max()!)
        }
        #expect(all.count > 600)
    }

    @Test func monotonicAndWallConversionsRoundTrip() {
        let now = Moment(wall: T.t0, monotonicNanos: 5_000_000_000)
        #expect(now.monotonic(at: T.t0.adding(seconds: -10)) == -5_000_000_000)
        #expect(now.wall(atMonotonic: -5_000_000_000) == T.t0.adding(seconds: -10))
        // Rounded up, so a stored deadline never fires early after a restart.
        #expect(now.wall(atMonotonic: 5_000_000_001) == T.t0.adding(milliseconds: 1))
    }
}
