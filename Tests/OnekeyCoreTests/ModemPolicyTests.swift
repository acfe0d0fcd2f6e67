import Testing
@testable import OnekeyCore

@Suite struct ModemPolicyTests {
    static let members = [MemberConfig(id: "m-135", name: "仲毓萍", phone: "+8613800138000"),
                          MemberConfig(id: "m-200", name: "王伟", phone: "+8613900139000"),
                          MemberConfig(id: "m-nophone", name: "李", phone: nil)]
    static let t0 = Timestamp(rfc3339: "2026-11-23T00:05:00.000Z")!

    static func path() -> SecondPath {
        SecondPath(settings: ModemSettings(path: "/dev/x", afterSeconds: 30, callAfterSeconds: 120), members: members, timezone: "Asia/Shanghai")
    }

    static func page(_ key: String, alert: String = "A1", member: String = "m-135", reason: String = "raised") -> PageSummary {
        PageSummary(outboxKey: key, alert: alert, member: member, reason: reason, kind: "panic", resident: "陈婆婆",
                    location: "3栋2单元401", gridName: "第七网格", raisedAt: t0)
    }

    static func alert(_ id: String = "A1", state: AlertState = .open, paged: [String] = ["m-135", "m-200"], kind: EventKind = .panic) -> Alert {
        Alert(id: id, device: "d", kind: kind, state: state, grid: "g", resident: "陈婆婆", location: "x", raisedAt: t0, paged: paged)
    }

    @Test func nothingGoesBySMSUntilTheBrokerHasBeenAwayAfterSeconds() {
        var p = Self.path()
        #expect(p.decide(now: Self.t0, brokerUnreachableForMs: nil, undelivered: [Self.page("k1")], openAlerts: []).sms.isEmpty)
        #expect(p.decide(now: Self.t0, brokerUnreachableForMs: 29_999, undelivered: [Self.page("k1")], openAlerts: []).sms.isEmpty)
        let d = p.decide(now: Self.t0, brokerUnreachableForMs: 30_000, undelivered: [Self.page("k1")], openAlerts: [])
        #expect(d.sms.map(\.message.number) == ["+8613800138000"])
        #expect(d.sms[0].message.id == "sms:k1" && d.sms[0].key == "A1|m-135|raised")
        #expect(d.sms[0].message.parts.joined().contains("陈婆婆"))
    }

    @Test func eachPageAtMostOncePerMemberAlertAndReasonAlsoAfterRestart() {
        var p = Self.path()
        let pages = [Self.page("k1"), Self.page("k2", reason: "reminder"), Self.page("k3", reason: "reminder"), Self.page("k4", member: "m-200")]
        let first = p.decide(now: Self.t0, brokerUnreachableForMs: 60_000, undelivered: pages, openAlerts: [])
        #expect(first.sms.map(\.message.id) == ["sms:k1", "sms:k2", "sms:k4"])
        #expect(p.decide(now: Self.t0, brokerUnreachableForMs: 90_000, undelivered: pages, openAlerts: []).sms.isEmpty)
        var restarted = Self.path()
        restarted.restore(smsKeys: p.smsDecided, callKeys: p.callsDecided)
        #expect(restarted.decide(now: Self.t0, brokerUnreachableForMs: 90_000, undelivered: pages, openAlerts: []).sms.isEmpty)
    }

    @Test func memberWithoutPhoneIsWarnedOnce() {
        var p = Self.path()
        let d1 = p.decide(now: Self.t0, brokerUnreachableForMs: 60_000, undelivered: [Self.page("k1", member: "m-nophone")], openAlerts: [])
        let d2 = p.decide(now: Self.t0, brokerUnreachableForMs: 60_000, undelivered: [Self.page("k2", member: "m-nophone")], openAlerts: [])
        #expect(d1.sms.isEmpty && d1.notes.count == 1 && d2.notes.isEmpty)
    }

    @Test func unacknowledgedEmergencyRingsPagedMembersOnceAfterCallAfter() {
        var p = Self.path()
        let alerts = [Self.alert(), Self.alert("A2", state: .acked), Self.alert("A3", kind: .lowBattery)]
        #expect(p.decide(now: Self.t0.adding(seconds: 119), brokerUnreachableForMs: 200_000, undelivered: [], openAlerts: alerts).calls.isEmpty)
        #expect(p.decide(now: Self.t0.adding(seconds: 130), brokerUnreachableForMs: 10_000, undelivered: [], openAlerts: alerts).calls.isEmpty)
        let d = p.decide(now: Self.t0.adding(seconds: 120), brokerUnreachableForMs: 200_000, undelivered: [], openAlerts: alerts)
        #expect(d.calls.map(\.request.number) == ["+8613800138000", "+8613900139000"])
        #expect(d.calls.map(\.request.dialString) == ["+8613800138000", "+8613900139000"])
        #expect(p.decide(now: Self.t0.adding(seconds: 500), brokerUnreachableForMs: 600_000, undelivered: [], openAlerts: alerts).calls.isEmpty)
    }

    @Test func repliesActOnTheMostRecentAlertPagedToThatMember() {
        var p = Self.path()
        p.notePaged(member: "m-135", alert: "A1", at: Self.t0)
        p.notePaged(member: "m-135", alert: "A2", at: Self.t0.adding(seconds: 5))
        p.notePaged(member: "m-135", alert: "A0", at: Self.t0.adding(seconds: -5))  // older, arrives late
        #expect(p.reply(from: "+8613800138000", text: "1", at: Self.t0) == .act(.ack, member: "m-135", alert: "A2", replyTo: "+8613800138000"))
        #expect(p.reply(from: "13800138000", text: " ２ ", at: Self.t0) == .act(.decline, member: "m-135", alert: "A2", replyTo: "+8613800138000"))
        #expect(p.reply(from: "+8613800138000", text: "3。", at: Self.t0) == .act(.resolve, member: "m-135", alert: "A2", replyTo: "+8613800138000"))
    }

    @Test func unknownNumbersAreIgnoredAndStrayTextIsExplainedRarely() {
        var p = Self.path()
        p.notePaged(member: "m-135", alert: "A1", at: Self.t0)
        guard case .ignored = p.reply(from: "+8613700000000", text: "1", at: Self.t0) else { Issue.record("unknown number acted"); return }
        guard case .ignored = p.reply(from: "10086", text: "1", at: Self.t0) else { Issue.record("short code acted"); return }
        guard case .explain(let sms, let member) = p.reply(from: "+8613800138000", text: "收到, 马上到", at: Self.t0) else {
            Issue.record("stray text not explained"); return
        }
        #expect(member == "m-135" && sms.number == "+8613800138000" && sms.parts[0].contains("1确认"))
        guard case .ignored = p.reply(from: "+8613800138000", text: "？", at: Self.t0.adding(seconds: 60)) else {
            Issue.record("explained twice within the window"); return
        }
        guard case .explain = p.reply(from: "+8613800138000", text: "？", at: Self.t0.adding(seconds: 700)) else {
            Issue.record("not explained after the window"); return
        }
        // A code from a member never paged: explained, not applied to anything.
        guard case .explain = p.reply(from: "+8613900139000", text: "1", at: Self.t0) else { Issue.record("code without alert"); return }
    }

    @Test func floodFromUnknownNumbersIsLoggedRarely() {
        var p = Self.path()
        var notes = [DeskNote]()
        for i in 0..<10_000 {
            guard case .ignored(let note) = p.reply(from: "+86137\(10_000_000 + i)", text: String(repeating: "垃圾", count: 300),
                                                   at: Self.t0.adding(milliseconds: Int64(i))) else { Issue.record("acted"); return }
            if let note { notes.append(note) }
        }
        #expect(notes.count == SecondPath.unknownNotesPerWindow)
        guard case .ignored(let next?) = p.reply(from: "+8613712345678", text: "x", at: Self.t0.adding(seconds: 700)) else {
            Issue.record("next window not logged"); return
        }
        #expect(next.message.contains("9990 more"))
    }

    @Test func answersFitOneMessage() {
        let ok = SecondPath.answer(to: .ack, alert: "01JABCDEFGHJKMNPQRS7X9Z4", member: "m-135", number: "+86", error: nil, at: Self.t0)
        #expect(ok.parts == ["一键呼: 已确认接警 #S7X9Z4"])
        let refused = SecondPath.answer(to: .ack, alert: "A1", member: "m-135", number: "+86", error: .closed("A1", .resolved), at: Self.t0)
        #expect(refused.parts[0].contains("已关闭") && UCS2.units(refused.parts[0]) <= 70)
    }
}
