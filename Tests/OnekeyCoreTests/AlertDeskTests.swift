import Testing
@testable import OnekeyCore

/// The desk with an injected clock: every timing here is exact.
@Suite struct AlertDeskTests {
    static let t0 = Timestamp(rfc3339: "2026-11-22T02:00:00Z")!  // 10:00 in Shanghai

    static func config(policy: String = """
        [[policy]]
        id = "p"
        repeat = 1
        repeat_after_s = 30
        [[policy.step]]
        after_s = 0
        notify = ["grid:primary"]
        [[policy.step]]
        after_s = 60
        notify = ["grid:backup"]
        [[policy.step]]
        after_s = 180
        notify = ["member:station"]
        """, shifts: String? = nil) throws -> GatewayConfig {
        try ConfigLoader.parse("""
            [gateway]
            id = "gw"
            timezone = "Asia/Shanghai"
            [dedup]
            repeat_window_ms = 3000
            press_merge_s = 300
            [[grid]]
            id = "g"
            policy = "p"
            [[member]]
            id = "alice"
            [[member]]
            id = "bob"
            [[member]]
            id = "station"
            [[member]]
            id = "mallory"
            [[device]]
            id = "btn"
            driver = "ev1527"
            address = "A1B2C"
            grid = "g"
            resident = "陈婆婆"
            [[device]]
            id = "low"
            driver = "ev1527"
            address = "0F424"
            grid = "g"
            codes = { "8" = "panic", "4" = "cancel", "2" = "low_battery", "1" = "restore" }
            \(shifts ?? """
            [[shift]]
            grid = "g"
            member = "alice"
            start = "08:00"
            end = "20:00"
            [[shift]]
            grid = "g"
            member = "bob"
            role = "backup"
            start = "00:00"
            end = "24:00"
            """)
            \(policy)
            """, path: "t.toml")
    }

    /// A clock the test moves by hand.
    struct ManualClock {
        var wall = AlertDeskTests.t0
        var mono: UInt64 = 1_000_000_000
        mutating func advance(ms: Int64) { wall = wall.adding(milliseconds: ms); mono += UInt64(ms) * 1_000_000 }
        var now: Moment { Moment(wall: wall, monotonicNanos: mono) }
    }

    /// The moment `s` seconds after t0, on both clocks of a `ManualClock`.
    static func at(_ s: Int) -> Moment { Moment(wall: t0.adding(seconds: s), monotonicNanos: mono(s)) }
    static func mono(_ s: Int) -> UInt64 { 1_000_000_000 + UInt64(s) * 1_000_000_000 }

    static func press(_ key: UInt8, address: String = "A1B2C") -> DecodedFrame {
        let raw = EV1527Decoder.encode(address: address, key: key)!
        var d = EV1527Decoder()
        return d.feed(raw).frames[0]
    }

    static func pages(_ o: DeskOutcome) -> [(String, String)] {
        o.pageMessages.compactMap { m in
            guard let j = try? JSON.parse(m.payload) else { return nil }
            return (j["member"]!.stringValue!, j["reason"]!.stringValue!)
        }
    }

    @Test func aPressRaisesAnAlertAndPagesThePrimaryAtOnce() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let clock = ManualClock()
        let o = desk.handle(Self.press(8), at: clock.now)
        #expect(o.events.count == 1 && o.events[0].kind == .panic && o.events[0].device == "btn")
        #expect(o.alerts.count == 1)
        let a = o.alerts[0]
        #expect(a.state == .open && a.step == 0 && a.paged == ["alice"] && a.resident == "陈婆婆")
        #expect(a.nextStepAt == Self.t0.adding(seconds: 60))
        #expect(Self.pages(o).elementsEqual([("alice", "raised")], by: ==))
        #expect(o.events[0].alertID == a.id)
        // Published: the page first, then the alert (retained), the event and the device (retained).
        #expect(o.outbox.map(\.topic) == ["onekey/v1/members/alice/pages", "onekey/v1/gateways/gw/alerts/\(a.id)",
                                          "onekey/v1/gateways/gw/events", "onekey/v1/gateways/gw/devices/btn"])
        #expect(o.outbox.map(\.retain) == [false, true, false, true])
        #expect(Set(o.outbox.map(\.key)).count == 4)
    }

    @Test func repeatsFoldAndALaterPressJoinsTheOpenAlert() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        var clock = ManualClock()
        let first = desk.handle(Self.press(8), at: clock.now)
        clock.advance(ms: 40)
        let repeatFrame = desk.handle(Self.press(8), at: clock.now)
        #expect(repeatFrame.repeats == 1 && !repeatFrame.changesState)
        clock.advance(ms: 10_000)
        let again = desk.handle(Self.press(8), at: clock.now)
        #expect(again.alerts.count == 1 && again.alerts[0].id == first.alerts[0].id)
        #expect(again.alerts[0].pressCount == 2)
        #expect(Self.pages(again).elementsEqual([("alice", "pressed_again")], by: ==))
        // After press_merge_s a press is a new alert.
        clock.advance(ms: 300_000)
        let later = desk.handle(Self.press(8), at: clock.now)
        #expect(later.alerts.count == 1 && later.alerts[0].id != first.alerts[0].id)
        #expect(desk.openAlerts.count == 2)
    }

    @Test func unknownAddressIsReportedAndRaisesNothing() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let o = desk.handle(Self.press(8, address: "12345"), at: ManualClock().now)
        #expect(o.events.count == 1 && o.events[0].kind == .unknownDevice && o.events[0].device == nil)
        #expect(o.alerts.isEmpty && o.pageMessages.isEmpty)
    }

    @Test func cancelClosesAndTellsEveryonePaged() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        var clock = ManualClock()
        let id = desk.handle(Self.press(8), at: clock.now).alerts[0].id
        clock.advance(ms: 5000)
        let o = desk.handle(Self.press(4), at: clock.now)
        #expect(o.alerts.first?.state == .cancelled && o.alerts.first?.id == id)
        #expect(Self.pages(o).elementsEqual([("alice", "cancelled")], by: ==))
        // Final state published, then the retained copy cleared.
        let alertMsgs = o.outbox.filter { $0.topic.hasSuffix("/alerts/\(id)") }
        #expect(alertMsgs.map(\.retain) == [false, true])
        #expect(alertMsgs.last?.payload.isEmpty == true)
        let deadline1 = desk.nextDeadline()
        #expect(desk.openAlerts.isEmpty && deadline1 == nil)
    }

    /// Deadlines a few ms apart fire together within the coalescing window (one commit), never
    /// before it, and keep their own spacing for the next step.
    @Test func deadlinesWithinTheCoalescingWindowFireTogether() throws {
        func atMs(_ ms: Int) -> Moment {
            Moment(wall: Self.t0.adding(milliseconds: Int64(ms)), monotonicNanos: Self.mono(0) + UInt64(ms) * 1_000_000)
        }
        for coalescing in [UInt64(0), 10_000_000] {
            var desk = AlertDesk(config: try Self.config(), at: atMs(0))
            _ = desk.handle(Self.press(8), at: atMs(0))
            _ = desk.handle(Self.press(8, address: "0F424"), at: atMs(5))
            let fired = desk.fireDueSteps(at: atMs(60_000), coalescingNanos: coalescing)
            let bobPaged = Self.pages(fired).filter { $0.0 == "bob" }.count
            #expect(bobPaged == (coalescing == 0 ? 1 : 2), "coalescing \(coalescing): \(Self.pages(fired))")
            #expect(fired.lateness.allSatisfy { $0 >= 0 })
            // The next step of the early one stays 5 ms after the other's (spacing from its own due).
            if coalescing > 0 {
                #expect(desk.nextDeadline() == Self.mono(180))
                let s2 = desk.fireDueSteps(at: atMs(180_000))
                #expect(Self.pages(s2).filter { $0.0 == "station" }.count == 1)
                #expect(desk.nextDeadline() == Self.mono(180) + 5_000_000)
            }
        }
    }

    @Test func theLadderFiresEachStepAtItsDeadlineAndRepeatsRounds() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let a = desk.handle(Self.press(8), at: ManualClock().now).alerts[0]
        // Nothing before the deadline: a stale or early firing does nothing.
        #expect(!desk.fireDueSteps(at: Self.at(59)).changesState)
        let s1 = desk.fireDueSteps(at: Self.at(60))
        #expect(Self.pages(s1).elementsEqual([("bob", "escalated")], by: ==))
        // A duplicate firing at the same moment pages nobody twice.
        #expect(!desk.fireDueSteps(at: Self.at(60)).changesState)
        let deadline2 = desk.nextDeadline()
        #expect(deadline2 == Self.mono(180))
        let s2 = desk.fireDueSteps(at: Self.at(180))
        #expect(Self.pages(s2).elementsEqual([("station", "escalated")], by: ==))
        // Round 2 starts repeat_after_s (30) after the last step: 210, 270, 390.
        let deadline3 = desk.nextDeadline()
        #expect(deadline3 == Self.mono(210))
        #expect(AlertDesk.offset(step: 4, policy: desk.config.policy(id: "p")!) == 270)
        #expect(a.raisedAt == Self.t0)
        _ = desk.fireDueSteps(at: Self.at(210))
        _ = desk.fireDueSteps(at: Self.at(270))
        let last = desk.fireDueSteps(at: Self.at(390))
        #expect(last.alerts.first?.step == 5)
        // Then reminders, every remind_s (default 300 s) after the last step.
        let deadline4 = desk.nextDeadline()
        #expect(deadline4 == Self.mono(690))
        #expect(last.notes.contains { $0.message.contains("last step of the ladder") })
    }

    @Test func overdueStepsFireOnceEachWhenCaughtUp() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        _ = desk.handle(Self.press(8), at: ManualClock().now)
        // The daemon was down from t0+10 s to t0+200 s: steps 1 and 2 fall due once each.
        let o = desk.fireDueSteps(at: Self.at(200))
        #expect(Self.pages(o).map(\.0) == ["bob", "station"])
        #expect(o.alerts.first?.step == 2)
    }

    @Test func ackStopsTheLadderAndDeclineFiresTheNextStepNow() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let id = desk.handle(Self.press(8), at: ManualClock().now).alerts[0].id
        let d = try desk.act(.decline, member: "alice", alert: id, source: .mqtt, at: Self.at(5))
        #expect(Self.pages(d).elementsEqual([("bob", "escalated")], by: ==))
        #expect(d.alerts.first?.step == 1)
        let ack = try desk.act(.ack, member: "bob", alert: id, source: .mqtt, at: Self.at(10))
        #expect(ack.alerts.first?.state == .acked && ack.alerts.first?.ackedBy == "bob")
        let deadline5 = desk.nextDeadline()
        #expect(deadline5 == nil)
        #expect(!desk.fireDueSteps(at: Self.at(1000)).changesState)
        #expect(throws: ActionError.self) { _ = try desk.act(.ack, member: "alice", alert: id, source: .mqtt, at: Self.at(11)) }
        let r = try desk.act(.resolve, member: "bob", alert: id, note: "fine", source: .mqtt, at: Self.at(600))
        #expect(r.alerts.first?.state == .resolved && r.alerts.first?.note == "fine")
        #expect(throws: ActionError.closed(id, .resolved)) {
            _ = try desk.act(.resolve, member: "bob", alert: id, source: .mqtt, at: Self.at(601))
        }
    }

    @Test func actionsFromStrangersAndOnUnknownAlertsChangeNothing() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let id = desk.handle(Self.press(8), at: ManualClock().now).alerts[0].id
        let before = desk.openAlerts
        #expect(throws: ActionError.notAllowed(member: "mallory", alert: id)) {
            _ = try desk.act(.ack, member: "mallory", alert: id, source: .mqtt, at: Self.at(0))
        }
        #expect(throws: ActionError.unknownAlert("nope")) { _ = try desk.act(.ack, member: "alice", alert: "nope", source: .mqtt, at: Self.at(0)) }
        #expect(throws: ActionError.unknownMember("zed")) { _ = try desk.act(.ack, member: "zed", alert: id, source: .mqtt, at: Self.at(0)) }
        #expect(desk.openAlerts == before)
        // An operator may act for any member through the control socket.
        let byOperator = try desk.act(.ack, member: "mallory", alert: id, source: .control, at: Self.at(0))
        #expect(byOperator.alerts.first?.state == .acked)
    }

    @Test func anEmptyStepIsARosterGapThatPagesTheFallbackAndKeepsTheTiming() throws {
        // 02:00 Shanghai: alice (08–20) is off; the primary step finds nobody: the default fallback
        // (everyone on the grid's roster) is paged, and the backup step still waits its 60 s.
        var clock = ManualClock()
        clock.wall = Timestamp(rfc3339: "2026-11-21T18:00:00Z")!
        var desk = AlertDesk(config: try Self.config(), at: clock.now)
        let o = desk.handle(Self.press(8), at: clock.now)
        #expect(Self.pages(o).elementsEqual([("alice", "fallback"), ("bob", "fallback")], by: ==))
        #expect(o.alerts[0].step == 0 && !o.alerts[0].unattended)
        #expect(o.notes.contains { $0.level == .error && $0.message.contains("roster gap") })
        #expect(o.alerts[0].nextStepAt == clock.wall.adding(seconds: 60))
    }

    @Test func troublesPageThePrimaryOnceAndClearOnRestore() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        var clock = ManualClock()
        let o = desk.handle(Self.press(2, address: "0F424"), at: clock.now)
        #expect(o.alerts.first?.kind == .lowBattery && o.alerts.first?.nextStepAt == nil)
        #expect(Self.pages(o).elementsEqual([("alice", "raised")], by: ==))
        #expect(o.devices.first?.batteryLow == true)
        #expect(!desk.fireDueSteps(at: Self.at(10_000)).changesState)
        clock.advance(ms: 60_000)
        let again = desk.handle(Self.press(2, address: "0F424"), at: clock.now)
        #expect(again.pageMessages.isEmpty && again.alerts.first?.pressCount == 2)
        clock.advance(ms: 60_000)
        let restore = desk.handle(Self.press(1, address: "0F424"), at: clock.now)
        #expect(restore.alerts.first?.state == .resolved && restore.devices.first?.batteryLow == false)
        #expect(desk.openAlerts.isEmpty)
    }

    @Test func stateSurvivesARestartOfTheDesk() throws {
        let config = try Self.config()
        var desk = AlertDesk(config: config, at: ManualClock().now)
        let o = desk.handle(Self.press(8), at: ManualClock().now)
        var restarted = AlertDesk(config: config, openAlerts: o.alerts, devices: o.devices, issuedIDs: o.outbox.map(\.key), at: ManualClock().now)
        let resumed = restarted.nextDeadline()
        #expect(resumed == Self.mono(60))
        let s1 = restarted.fireDueSteps(at: Self.at(61))
        #expect(Self.pages(s1).map(\.0) == ["bob"])
        let newID = restarted.nextID(at: Self.t0)
        #expect(o.outbox.allSatisfy { $0.key < newID })
    }

    @Test func testAlertsNeverMergeWithRealOnes() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let clock = ManualClock()
        let real = desk.handle(Self.press(8), at: clock.now).alerts[0]
        let test = desk.testAlert(device: "btn", at: clock.now)!
        #expect(test.alerts.count == 1 && test.alerts[0].id != real.id && test.alerts[0].test)
        #expect(test.events[0].test)
        #expect(desk.testAlert(device: "ghost", at: clock.now) == nil)
    }

    @Test func ackTimeoutReopensAndPagesTheAckerAndTheCurrentStepAgain() throws {
        let policy = """
            [[policy]]
            id = "p"
            ack_timeout_s = 120
            [[policy.step]]
            after_s = 0
            notify = ["grid:primary"]
            [[policy.step]]
            after_s = 60
            notify = ["grid:backup"]
            """
        var desk = AlertDesk(config: try Self.config(policy: policy), at: ManualClock().now)
        let id = desk.handle(Self.press(8), at: ManualClock().now).alerts[0].id
        _ = try desk.act(.ack, member: "alice", alert: id, source: .mqtt, at: Self.at(10))
        let due = desk.nextDeadline()
        #expect(due == Self.mono(130))
        #expect(!desk.fireDueSteps(at: Self.at(129)).changesState)
        let o = desk.fireDueSteps(at: Self.at(130))
        #expect(o.alerts.first?.state == .open && o.alerts.first?.ackedBy == nil)
        #expect(Self.pages(o).elementsEqual([("alice", "reopened")], by: ==))
        // The ladder goes on: the backup one step-gap (60 s) later.
        let next = desk.nextDeadline()
        #expect(next == Self.mono(190))
        #expect(Self.pages(desk.fireDueSteps(at: Self.at(190))).map(\.0) == ["bob"])
        // Off by default: the default test policy never reopens.
        var plain = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let pid = plain.handle(Self.press(8), at: ManualClock().now).alerts[0].id
        _ = try plain.act(.ack, member: "alice", alert: pid, source: .mqtt, at: Self.at(0))
        #expect(!plain.fireDueSteps(at: Self.at(100_000)).changesState)
    }

    @Test func aSupervisedDeviceThatFallsSilentRaisesASupervisionTroubleUntilHeardAgain() throws {
        var config = try Self.config()
        config.devices[0].supervisionSeconds = 3600
        var desk = AlertDesk(config: config, at: ManualClock().now)
        desk.startSupervision(at: Self.at(0))
        var clock = ManualClock()
        clock.advance(ms: 600_000)
        _ = desk.handle(Self.press(1), at: clock.now)  // a test transmission: heard at t0+10 min
        #expect(!desk.fireDueSteps(at: Self.at(4199)).changesState)
        let due = desk.nextDeadline()
        #expect(due == Self.mono(4200))
        let o = desk.fireDueSteps(at: Self.at(4200))
        #expect(o.alerts.first?.kind == .supervisionLoss && o.alerts.first?.nextStepAt == nil)
        #expect(Self.pages(o).elementsEqual([("alice", "raised")], by: ==))
        #expect(o.devices.first?.online == false)
        // Not raised again while still silent; cleared by the next frame.
        #expect(!desk.fireDueSteps(at: Self.at(99_999)).changesState)
        clock.advance(ms: 5_000_000)
        let heard = desk.handle(Self.press(1), at: clock.now)
        #expect(heard.alerts.first?.kind == .supervisionLoss && heard.alerts.first?.state == .resolved)
        #expect(heard.devices.first?.online == true)
        // Unsupervised devices never raise it.
        #expect(!desk.openAlerts.values.contains { $0.device == "low" })
    }

    @Test func aFiringWhoseScheduleChangedIsStaleAndIgnored() throws {
        var desk = AlertDesk(config: try Self.config(), at: ManualClock().now)
        let id = desk.handle(Self.press(8), at: ManualClock().now).alerts[0].id
        // Declined at 5 s: step 1 fires now; the heap entry for 60 s is now stale.
        _ = try desk.act(.decline, member: "alice", alert: id, source: .mqtt, at: Self.at(5))
        #expect(!desk.fireDueSteps(at: Self.at(60)).changesState)
        #expect(desk.staleFiringsIgnored >= 1)
        let o = desk.fireDueSteps(at: Self.at(180))
        #expect(Self.pages(o).map(\.0) == ["station"])
        #expect(o.lateness == [0])
    }
}

@Suite struct DeadlineHeapTests {
    @Test func popsInDeadlineOrderAndDropsRescheduledEntries() {
        var heap = DeadlineHeap()
        var expected = [String: Int64]()
        for i in 0..<2000 {
            let due = Int64((i * 7919) % 10_007)  // distinct, in scrambled order
            heap.schedule("a\(i % 500)", at: due)  // later schedules replace earlier ones
            expected["a\(i % 500)"] = due
        }
        #expect(heap.count == 500)
        let popped = heap.popDue(at: 10_007)
        #expect(popped.count == 500)
        #expect(popped.map(\.due) == popped.map(\.due).sorted())
        #expect(Dictionary(uniqueKeysWithValues: popped.map { ($0.alert, $0.due) }) == expected)
        #expect(heap.earliest() == nil && heap.staleDropped == 1500)
    }
}
