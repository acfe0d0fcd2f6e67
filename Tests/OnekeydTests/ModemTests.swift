import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// The modem path end to end on a real pty: `ModemLine` (descriptor + `ModemSession`) against
/// `ModemSimulator`, driven by a poll loop as the gateway's event loop would, with the real
/// monotonic clock and shortened timeouts.
final class ModemBench {
    static let timings: ModemTimings = {
        var t = ModemTimings()
        t.commandMs = 2_000; t.promptMs = 2_000; t.submitMs = 3_000; t.dialMs = 2_000
        t.hangUpAfterMs = 1_500; t.pollMs = 1_000; t.reinitMs = 1_000; t.retryFirstMs = 200; t.retryMaxMs = 1_000
        return t
    }()

    final class Log { var events: [ModemEvent] = [] }
    let sim: ModemSimulator
    private(set) var line: ModemLine
    let log = Log()
    var reopens = 0

    init(configure: (inout SimulatedModem) -> Void = { _ in }) throws {
        sim = try ModemSimulator(directory: try TempDirectory.make("modem"))
        sim.with(configure)
        line = Self.line(sim.link, log)
        try line.open()
    }

    static func line(_ path: String, _ log: Log) -> ModemLine {
        ModemLine(path: path, baud: 115_200, timings: timings, clock: ModemLine.monotonicMilliseconds) { log.events.append($0) }
    }

    /// The daemon is SIGKILLed and started again: the port closes without a word, a new process
    /// with a fresh session opens it (the modem keeps whatever state it was in).
    func restartProcess() throws {
        line.close()
        log.events.removeAll()
        line = Self.line(sim.link, log)
        try line.open()
    }

    deinit { line.close(); sim.stop() }

    var events: [ModemEvent] { log.events }
    var status: ModemStatus { line.session.status }

    /// Runs the loop until `condition` holds or `timeoutMs` passes; a closed port is reopened every 100 ms.
    @discardableResult
    func run(timeoutMs: Int = 10_000, until condition: () -> Bool) -> Bool {
        let end = ModemLine.monotonicMilliseconds() + Int64(timeoutMs)
        var nextOpen: Int64 = 0
        while ModemLine.monotonicMilliseconds() < end {
            if condition() { return true }
            let now = ModemLine.monotonicMilliseconds()
            if line.fd < 0 {
                if now >= nextOpen { nextOpen = now + 100; if (try? line.open()) != nil { reopens += 1 } }
                usleep(10_000)
                continue
            }
            let wait = max(0, min(20, (line.nextDeadline ?? now + 20) - now))
            var pfd = pollfd(fd: line.fd, events: Int16(POLLIN), revents: 0)
            let r = (try? syscall("poll modem", { poll(&pfd, 1, Int32(wait)) })) ?? 0
            if r > 0 { line.readable() }
            if let d = line.nextDeadline, ModemLine.monotonicMilliseconds() >= d { line.tick() }
        }
        return condition()
    }

    func ready() -> Bool { run { self.status.state == .ready } }

    func sent(_ id: String) -> Bool { events.contains { if case .smsSent(id, _) = $0 { return true }; return false } }
    var received: [(String, String)] { events.compactMap { if case .received(let s, let t) = $0 { return (s, t) }; return nil } }
    var failures: [String] { events.compactMap { if case .smsFailed(_, let e, _) = $0 { return e }; return nil } }
}

@Suite(.serialized) struct ModemTests {
    static let members = [MemberConfig(id: "m-135", name: "仲毓萍", phone: "+8613800138000")]
    static let page = PageSummary(outboxKey: "k1", alert: "01JABCDEFGHJKMNPQRS7X9Z4", member: "m-135", reason: "raised", kind: "panic",
                                  resident: "欧阳婆婆", location: "双合店社区幸福里小区东区 13栋2单元401室 (进门左转, 钥匙在物业)",
                                  gridName: "第七网格", raisedAt: Timestamp(rfc3339: "2026-11-23T00:05:00.000Z")!)

    @Test func initialisesAndSendsATwoPartChineseSMSThroughGarbage() throws {
        let bench = try ModemBench { $0.garbage = true; $0.rssi = 25 }
        #expect(bench.ready())
        #expect(bench.status.sim == "READY" && bench.status.registration == "home" && bench.status.signalDBm == -63)
        let parts = SMSPageText.compose(Self.page, timezone: "Asia/Shanghai")
        #expect(parts.count == 2)
        bench.line.send(OutgoingSMS(id: "sms:k1", number: "+8613800138000", parts: parts))
        #expect(bench.run { bench.sent("sms:k1") })
        let sent = bench.sim.with { $0.sent }
        try #require(sent.count == 2)
        #expect(sent.map(\.number) == ["+8613800138000", "+8613800138000"])
        #expect(sent.map(\.text) == parts)
        #expect(sent[0].text.contains("欧阳婆婆") && sent[1].text.contains("08:05"))
        #expect(bench.sim.with { $0.rejected }.isEmpty)
        #expect(bench.line.session.parserSkippedBytes > 0)
    }

    @Test func cmsErrorsAreRetriedUntilTheModemConfirms() throws {
        let bench = try ModemBench { $0.failSubmissions = 3 }
        #expect(bench.ready())
        bench.line.send(OutgoingSMS(id: "sms:k2", number: "+8613800138000", parts: ["测试"]))
        #expect(bench.run { bench.sent("sms:k2") })
        #expect(bench.failures == ["+CMS ERROR: 500", "+CMS ERROR: 500", "+CMS ERROR: 500"])
        #expect(bench.sim.with { $0.sent.map(\.text) } == ["测试"])
        #expect(bench.status.smsSent == 1 && bench.status.smsFailed == 3 && bench.status.smsWaiting == 0)
    }

    @Test func repliesAreReadDeletedAndUnderstood() throws {
        let bench = try ModemBench()
        #expect(bench.ready())
        var path = SecondPath(settings: ModemSettings(), members: Self.members, timezone: "Asia/Shanghai")
        let now = Timestamp(seconds: 1_800_000_000)
        path.notePaged(member: "m-135", alert: Self.page.alert, at: now)
        bench.sim.injectSMS(from: "+8613800138000", text: "1")
        bench.sim.injectSMS(from: "+8613700000000", text: "1")
        bench.sim.injectSMS(from: "+8613800138000", text: "收到马上到😀")
        #expect(bench.run { bench.received.count == 3 })
        #expect(bench.run { bench.sim.with { $0.inbox.isEmpty } })
        let replies = bench.received.map { path.reply(from: $0.0, text: $0.1, at: now) }
        #expect(replies[0] == .act(.ack, member: "m-135", alert: Self.page.alert, replyTo: "+8613800138000"))
        guard case .ignored = replies[1] else { Issue.record("unknown number not ignored"); return }
        guard case .explain(let explanation, _) = replies[2] else { Issue.record("stray text not explained"); return }
        bench.line.send(explanation)
        #expect(bench.run { bench.sent(explanation.id) })
        #expect(bench.sim.with { $0.sent.map(\.text) } == [SMSPageText.explanation])
    }

    @Test func callIsHungUpAfterTheRingTimeAndOnNoCarrier() throws {
        let bench = try ModemBench()
        #expect(bench.ready())
        let start = ModemLine.monotonicMilliseconds()
        bench.line.call(CallRequest(id: "call:A|m-135", number: "+8613800138000"))
        #expect(bench.run { bench.sim.with { $0.hangUps } == 1 })
        let rang = ModemLine.monotonicMilliseconds() - start
        #expect(rang >= 1_400, "hung up after \(rang) ms, before the ring time")
        #expect(bench.sim.with { $0.dialled } == ["+8613800138000"])
        #expect(bench.run { bench.events.contains(.callEnded(id: "call:A|m-135", result: "hung up")) })

        bench.sim.with { $0.callOutcome = .noCarrier(afterMs: 200) }
        bench.line.call(CallRequest(id: "call:A|m-200", number: "+8613900139000"))
        #expect(bench.run { bench.sim.with { $0.hangUps } == 2 })
        #expect(bench.events.contains(.callEnded(id: "call:A|m-200", result: "NO CARRIER")))
        #expect(bench.status.calls == 2)
    }

    @Test func replugInTheMiddleOfCMGSSendsTheMessageAgain() throws {
        let bench = try ModemBench { $0.holdSubmissions = true }
        #expect(bench.ready())
        bench.line.send(OutgoingSMS(id: "sms:k3", number: "+8613800138000", parts: ["陈婆婆 紧急"]))
        #expect(bench.run { bench.sim.with { $0.heldTexts } == 1 })
        try bench.sim.replug()
        bench.sim.with { $0.holdSubmissions = false }
        #expect(bench.run { bench.sent("sms:k3") })
        #expect(bench.reopens >= 1)
        #expect(bench.sim.with { $0.sent.map(\.text) } == ["陈婆婆 紧急"])
        #expect(bench.status.state == .ready)
    }

    @Test func killedBetweenCMGSAndItsPromptTheNextProcessSendsItOnce() throws {
        let bench = try ModemBench()
        #expect(bench.ready())
        bench.sim.with { $0.responseDelayMs = 300 }
        let sms = OutgoingSMS(id: "sms:k7", number: "+8613800138000", parts: ["陈婆婆 紧急"])
        bench.line.send(sms)
        #expect(bench.sim.wait(timeoutMs: 2_000) { $0.commands.last?.hasPrefix("AT+CMGS=") == true })
        try bench.restartProcess()  // killed before "> " arrives: the modem is left waiting for text
        bench.sim.with { $0.responseDelayMs = 0 }
        #expect(bench.ready())
        bench.line.send(sms)  // from the store: not confirmed before the kill
        #expect(bench.run { bench.sent("sms:k7") })
        #expect(bench.sim.with { $0.sent.map(\.text) } == ["陈婆婆 紧急"])
        #expect(bench.sim.with { $0.rejected }.isEmpty)
    }

    @Test func modemRestartBehindTheOpenPortIsInitialisedAgain() throws {
        let bench = try ModemBench()
        #expect(bench.ready())
        bench.sim.restartInPlace()
        #expect(bench.run { bench.status.state != .ready })
        #expect(bench.ready())
        bench.line.send(OutgoingSMS(id: "sms:k4", number: "+8613800138000", parts: ["网格员"]))
        #expect(bench.run { bench.sent("sms:k4") })
        #expect(bench.sim.with { $0.sent.map(\.text) } == ["网格员"])
    }

    @Test func missingSIMIsReportedUntilInserted() throws {
        let bench = try ModemBench { $0.sim = .missing }
        #expect(bench.run { bench.status.state == .simProblem })
        #expect(bench.status.sim == "SIM not inserted")
        bench.line.send(OutgoingSMS(id: "sms:k5", number: "+8613800138000", parts: ["a"]))
        bench.sim.with { $0.sim = .ready }
        #expect(bench.run { bench.sent("sms:k5") })
    }

    @Test func floodOfIncomingMessagesAndNoiseStaysBounded() throws {
        let bench = try ModemBench()
        #expect(bench.ready())
        for i in 0..<200 { bench.sim.injectSMS(from: "+8613700000000", text: "spam \(i)") }
        bench.sim.inject([UInt8](repeating: 0x41, count: 200_000) + [0x0D, 0x0A])
        bench.line.send(OutgoingSMS(id: "sms:k6", number: "+8613800138000", parts: ["仍然送达"]))
        #expect(bench.run(timeoutMs: 60_000) { bench.sent("sms:k6") && bench.sim.with { $0.inbox.isEmpty } })
        #expect(bench.received.count == 200)
        // Log volume: what the gateway would log for this flood (modem notes + policy notes).
        var path = SecondPath(settings: ModemSettings(), members: Self.members, timezone: "UTC")
        let policyNotes = bench.received.compactMap { r -> DeskNote? in
            if case .ignored(let n) = path.reply(from: r.0, text: r.1, at: Timestamp(seconds: 1_800_000_000)) { return n }
            return nil
        }
        let modemNotes = bench.events.filter { if case .note = $0 { return true }; return false }
        #expect(policyNotes.count <= SecondPath.unknownNotesPerWindow && modemNotes.count <= 5, "\(modemNotes)")
        #expect(bench.line.session.parserSkippedBytes >= 200_000)
        #expect(bench.sim.with { $0.sent.map(\.text) } == ["仍然送达"])
    }
}
