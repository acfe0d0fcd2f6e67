import Testing
@testable import OnekeyCore

/// CONTRACT §6 "No emergency is ever silent": roster gaps, an empty fallback, the end of the
/// ladder, declines, restarts. All on the injected clock (`AlertDeskTests.at(s)`).
@Suite struct NoSilentAlarmTests {
    typealias T = AlertDeskTests
    static func policy(fallback: String? = nil, remind: Int = 300, repeatCount: Int = 0,
                       steps: [(Int, String)] = [(0, "grid:primary"), (60, "grid:backup"), (180, "grid:all")]) -> String {
        var s = "[[policy]]\nid = \"p\"\nrepeat = \(repeatCount)\nrepeat_after_s = 30\nremind_s = \(remind)\n"
        if let fallback { s += "fallback = [\(fallback)]\n" }
        for (after, notify) in steps { s += "[[policy.step]]\nafter_s = \(after)\nnotify = [\"\(notify)\"]\n" }
        return s
    }
    /// Only a backup on shift, around the clock: every grid:primary step is a gap.
    static let onlyBackup = "[[shift]]\ngrid = \"g\"\nmember = \"bob\"\nrole = \"backup\"\nstart = \"00:00\"\nend = \"24:00\"\n"
    /// Alice primary around the clock, no backup.
    static let onlyPrimary = "[[shift]]\ngrid = \"g\"\nmember = \"alice\"\nstart = \"00:00\"\nend = \"24:00\"\n"

    static func desk(policy: String, shifts: String?) throws -> AlertDesk {
        AlertDesk(config: try T.config(policy: policy, shifts: shifts), at: T.at(0))
    }

    @Test func aGapAtStepZeroPagesTheFallbackAtRaiseTime() throws {
        var desk = try Self.desk(policy: Self.policy(fallback: "\"member:station\""), shifts: Self.onlyBackup)
        let o = desk.handle(T.press(8), at: T.at(0))
        #expect(T.pages(o).elementsEqual([("station", "fallback")], by: ==))
        #expect(o.alerts[0].step == 0 && o.alerts[0].paged == ["station"] && !o.alerts[0].unattended)
        #expect(o.notes.contains { $0.level == .error && $0.message.contains("roster gap: step 0") })
        // The ladder keeps its timing: the backup at 60 s, not at once.
        #expect(desk.nextDeadline() == T.mono(60))
        #expect(!desk.fireDueSteps(at: T.at(59)).changesState)
        #expect(T.pages(desk.fireDueSteps(at: T.at(60))).elementsEqual([("bob", "escalated")], by: ==))
    }

    @Test func aGapInTheMiddlePagesTheFallbackAndTheNextStepWaits() throws {
        var desk = try Self.desk(policy: Self.policy(fallback: "\"member:station\""), shifts: Self.onlyPrimary)
        _ = desk.handle(T.press(8), at: T.at(0))
        let gap = desk.fireDueSteps(at: T.at(60))
        #expect(T.pages(gap).elementsEqual([("station", "fallback")], by: ==))
        #expect(gap.alerts[0].step == 1 && gap.alerts[0].nextStepAt == T.t0.adding(seconds: 180))
        #expect(desk.nextDeadline() == T.mono(180))
        #expect(T.pages(desk.fireDueSteps(at: T.at(180))).elementsEqual([("alice", "escalated")], by: ==))
    }

    @Test func gapsInEveryStepPageTheFallbackAtEachStepsOwnDeadline() throws {
        var desk = try Self.desk(policy: Self.policy(fallback: "\"member:station\"", repeatCount: 1), shifts: "")
        var fired = [(Int, String)]()
        let o = desk.handle(T.press(8), at: T.at(0))
        fired += T.pages(o).map { (0, $0.1) }
        // Round 1 at 0, 60, 180; round 2 at 210, 270, 390; then reminders every 300 s.
        for s in 1...700 {
            let out = desk.fireDueSteps(at: T.at(s))
            fired += T.pages(out).map { (s, $0.1) }
        }
        #expect(fired.map(\.0) == [0, 60, 180, 210, 270, 390, 690])
        #expect(fired.map(\.1) == ["fallback", "fallback", "fallback", "fallback", "fallback", "fallback", "reminder"])
        #expect(desk.openAlerts.values.first?.paged == ["station"])
    }

    @Test func aFallbackThatFindsNobodyLeavesTheAlertUnattendedAndCriticalAtEveryStep() throws {
        // No shifts at all: grid:roster (the default fallback) is empty as well.
        var desk = try Self.desk(policy: Self.policy(remind: 120), shifts: "")
        let raised = desk.handle(T.press(8), at: T.at(0))
        #expect(raised.pageMessages.isEmpty)
        #expect(raised.alerts[0].unattended && raised.alerts[0].paged.isEmpty)
        #expect(raised.notes.filter { $0.level == .critical && $0.message.contains("nobody at all") }.count == 1)
        let alertJSON = try JSON.parse(raised.alertMessages.first { $0.topic.contains("/alerts/") }!.payload)
        #expect(alertJSON["unattended"]?.boolValue == true)
        var criticalSteps = 0
        for s in 1...420 {
            if s == 250 {
                // Pressed again (within press_merge_s): the roster is asked again, still nobody:
                // critical, not silent.
                let again = desk.handle(T.press(8), at: T.at(s))
                #expect(again.alerts.count == 1 && again.alerts[0].pressCount == 2)
                #expect(again.notes.contains { $0.level == .critical })
            }
            let out = desk.fireDueSteps(at: T.at(s))
            #expect(out.pageMessages.isEmpty)
            criticalSteps += out.notes.filter { $0.level == .critical }.count
            if let a = out.alerts.first { #expect(a.unattended) }
        }
        // Steps at 60 and 180, reminders at 300 and 420: each critical, and the schedule never ends.
        #expect(criticalSteps == 4)
        #expect(desk.nextDeadline() == T.mono(540))
        // Someone takes a shift (a reload): the next reminder reaches them and the flag clears.
        let staffed = try T.config(policy: Self.policy(remind: 120), shifts: Self.onlyPrimary)
        desk.reconfigure(staffed)
        let reminder = desk.fireDueSteps(at: T.at(540))
        #expect(T.pages(reminder).elementsEqual([("alice", "reminder")], by: ==))
        #expect(reminder.alerts.first?.unattended == false)
    }

    @Test func remindersFollowTheLastRoundUntilAckedAndSurviveARestart() throws {
        let config = try T.config(policy: Self.policy(remind: 120, steps: [(0, "grid:primary"), (60, "grid:backup")]))
        var desk = AlertDesk(config: config, at: T.at(0))
        var stored = desk.handle(T.press(8), at: T.at(0)).alerts
        stored = desk.fireDueSteps(at: T.at(60)).alerts
        let r1 = desk.fireDueSteps(at: T.at(180))
        #expect(T.pages(r1).elementsEqual([("alice", "reminder"), ("bob", "reminder")], by: ==))
        #expect(r1.alerts[0].step == 2 && r1.alerts[0].nextStepAt == T.t0.adding(seconds: 300))
        stored = r1.alerts

        // Restarted 20 s later on a fresh boot (monotonic clock near zero): the next reminder
        // keeps its wall-clock schedule.
        let boot = Moment(wall: T.t0.adding(seconds: 200), monotonicNanos: 3_000_000_000)
        var restarted = AlertDesk(config: config, openAlerts: stored, at: boot)
        #expect(!restarted.fireDueSteps(at: boot).changesState)
        #expect(restarted.nextDeadline() == 3_000_000_000 + 100_000_000_000)

        // Down for an hour instead: the reminder that fell due fires once at start, the next
        // one remind_s later.
        let late = Moment(wall: T.t0.adding(seconds: 3800), monotonicNanos: 7_000_000_000)
        var resumed = AlertDesk(config: config, openAlerts: stored, at: late)
        let once = resumed.fireDueSteps(at: late)
        #expect(T.pages(once).map(\.1) == ["reminder", "reminder"] && once.alerts[0].step == 3)
        #expect(resumed.nextDeadline() == 7_000_000_000 + 120_000_000_000)
        // Acked: the reminders stop.
        _ = try resumed.act(.ack, member: "bob", alert: stored[0].id, source: .mqtt, at: late)
        #expect(resumed.nextDeadline() == nil)
    }

    @Test func anAlertStoredWithoutASchedulePagesAgainAtStart() throws {
        // What an older version left behind: open, nobody paged, next_step_at null.
        let config = try T.config(policy: Self.policy(), shifts: Self.onlyPrimary)
        let silent = Alert(id: "01JD0000000000000000000000", device: "btn", kind: .panic, grid: "g", resident: "r",
                           location: "l", raisedAt: T.t0, step: 5, paged: [], nextStepAt: nil)
        var desk = AlertDesk(config: config, openAlerts: [silent], at: T.at(1000))
        #expect(desk.openAlerts[silent.id]?.unattended == true)
        let o = desk.fireDueSteps(at: T.at(1000))
        #expect(T.pages(o).map(\.1) == ["reminder"] && o.alerts[0].paged == ["alice"])
        #expect(desk.nextDeadline() != nil)
    }

    @Test func declineByEveryoneNeverLeavesTheAlertSilent() throws {
        let steps = [(0, "grid:primary"), (60, "grid:backup")]
        let shifts = Self.onlyPrimary + Self.onlyBackup
        // Without anyone else: the last decline leaves the reminders running (to the decliners).
        var desk = try Self.desk(policy: Self.policy(steps: steps), shifts: shifts)
        let id = desk.handle(T.press(8), at: T.at(0)).alerts[0].id
        let d1 = try desk.act(.decline, member: "alice", alert: id, source: .mqtt, at: T.at(5))
        #expect(T.pages(d1).elementsEqual([("bob", "escalated")], by: ==))
        let d2 = try desk.act(.decline, member: "bob", alert: id, source: .mqtt, at: T.at(10))
        #expect(d2.pageMessages.isEmpty && d2.notes.contains { $0.level == .error })
        #expect(d2.alerts[0].nextStepAt == T.t0.adding(seconds: 360))
        let r = desk.fireDueSteps(at: T.at(360))
        #expect(T.pages(r).elementsEqual([("alice", "reminder"), ("bob", "reminder")], by: ==))
        #expect(desk.nextDeadline() == T.mono(660))

        // With a fallback: the decliner's replacement is paged at once, and only they are reminded.
        var withFallback = try Self.desk(policy: Self.policy(fallback: "\"member:station\"", steps: steps), shifts: shifts)
        let id2 = withFallback.handle(T.press(8), at: T.at(0)).alerts[0].id
        _ = try withFallback.act(.decline, member: "alice", alert: id2, source: .mqtt, at: T.at(5))
        let last = try withFallback.act(.decline, member: "bob", alert: id2, source: .control, at: T.at(10))
        #expect(T.pages(last).elementsEqual([("station", "reminder")], by: ==))
        #expect(withFallback.nextDeadline() == T.mono(660))
        #expect(T.pages(withFallback.fireDueSteps(at: T.at(660))).elementsEqual([("station", "reminder")], by: ==))
        // A decline repeated a thousand times pages nobody more.
        for i in 0..<1000 {
            #expect(throws: ActionError.self) { _ = try withFallback.act(.decline, member: "bob", alert: id2, source: .mqtt, at: T.at(700 + i)) }
        }
        #expect(withFallback.nextDeadline() == T.mono(960))
    }

    @Test func theAckerDecliningAnHourLaterResumesTheLadderWithoutABurst() throws {
        var desk = try Self.desk(policy: Self.policy(), shifts: Self.onlyPrimary + Self.onlyBackup)
        let id = desk.handle(T.press(8), at: T.at(0)).alerts[0].id
        _ = try desk.act(.ack, member: "alice", alert: id, source: .mqtt, at: T.at(10))
        let d = try desk.act(.decline, member: "alice", alert: id, source: .mqtt, at: T.at(3600))
        #expect(T.pages(d).elementsEqual([("bob", "escalated")], by: ==))
        #expect(d.alerts[0].step == 1 && d.alerts[0].state == .open)
        #expect(desk.nextDeadline() == T.mono(3600 + 120))
        // Nobody else after the ladder: the decliner-only reminders never fire in a burst either.
        let s2 = desk.fireDueSteps(at: T.at(3720))
        #expect(T.pages(s2).map(\.0) == ["bob"])  // grid:all, less alice who declined
        #expect(desk.nextDeadline() == T.mono(3720 + 300))
        // Bob acks, then declines at the end as well: nobody else is left, so the reminders go
        // to both of them — remind_s later, not at once.
        _ = try desk.act(.ack, member: "bob", alert: id, source: .mqtt, at: T.at(4000))
        let last = try desk.act(.decline, member: "bob", alert: id, source: .mqtt, at: T.at(9000))
        #expect(last.pageMessages.isEmpty && last.alerts[0].state == .open)
        #expect(desk.nextDeadline() == T.mono(9300))
        #expect(T.pages(desk.fireDueSteps(at: T.at(9300))).map(\.0) == ["alice", "bob"])
    }

    @Test func anAckTimeoutAfterTheLadderReopensIntoReminders() throws {
        var p = Self.policy(remind: 100, steps: [(0, "grid:primary")])
        p = p.replacingOccurrences(of: "remind_s = 100\n", with: "remind_s = 100\nack_timeout_s = 50\n")
        var desk = try Self.desk(policy: p, shifts: Self.onlyPrimary)
        let id = desk.handle(T.press(8), at: T.at(0)).alerts[0].id
        _ = try desk.act(.ack, member: "alice", alert: id, source: .mqtt, at: T.at(10))
        let reopened = desk.fireDueSteps(at: T.at(60))
        #expect(reopened.alerts[0].state == .open && T.pages(reopened).map(\.1) == ["reopened"])
        #expect(desk.nextDeadline() == T.mono(160))
        #expect(T.pages(desk.fireDueSteps(at: T.at(160))).map(\.1) == ["reminder"])
    }

    @Test func testAlertsStopAfterTheLadderAndTroublesUseTheFallback() throws {
        var desk = try Self.desk(policy: Self.policy(fallback: "\"member:station\"", steps: [(0, "grid:primary")]), shifts: Self.onlyBackup)
        let test = desk.testAlert(device: "btn", at: T.at(0))!
        #expect(T.pages(test).map(\.1) == ["fallback"] && test.alerts[0].nextStepAt == nil)
        let trouble = desk.handle(T.press(2, address: "0F424"), at: T.at(1))
        #expect(T.pages(trouble).elementsEqual([("station", "fallback")], by: ==))
    }
}
