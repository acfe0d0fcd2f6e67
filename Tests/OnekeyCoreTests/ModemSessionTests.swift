import Testing
@testable import OnekeyCore

/// The session against a scripted modem: each test answers the commands the session writes.
@Suite struct ModemSessionTests {
    struct Script {
        var session: ModemSession
        init(timings: ModemTimings = .standard) { session = ModemSession(path: "/dev/ttyUSB2", timings: timings) }
        var now: Int64 = 0
        var written = ""
        var events: [ModemEvent] = []

        mutating func take(_ step: ModemStep) {
            written += String(decoding: step.writes, as: UTF8.self)
            events += step.events
        }
        /// What was written since the last call, cleared.
        mutating func drain() -> String { defer { written = "" }; return written }
        mutating func answer(_ text: String) { take(session.received(Array(text.utf8), at: now)) }
        mutating func advance(_ ms: Int64) { now += ms; take(session.tick(at: now)) }
        mutating func open() { take(session.portOpened(at: now)) }

        /// Opens the port and answers the init sequence with OK (CPIN READY, registered, CSQ 20).
        mutating func initialise() {
            open()
            advance(session.timings.settleMs)
            for c in ModemSession.initCommands {
                #expect(drain().hasSuffix(c + "\r"), "expected \(c)")
                switch c {
                case "AT+CPIN?": answer("\r\n+CPIN: READY\r\n\r\nOK\r\n")
                case "AT+CREG?": answer("\r\n+CREG: 0,1\r\n\r\nOK\r\n")
                case "AT+CSQ": answer("\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
                default: answer("\r\nOK\r\n")
                }
            }
            #expect(session.status.state == .ready)
        }
    }

    /// Standard timings without the periodic CREG/CSQ polls.
    static let quiet: ModemTimings = { var t = ModemTimings(); t.pollMs = 3_600_000; return t }()
    static let sms = OutgoingSMS(id: "sms:k1", number: "+8613800138000", parts: ["陈婆婆 紧急", "(2/2)"])

    @Test func initSequenceThenStatus() {
        var s = Script()
        s.initialise()
        let st = s.session.status
        #expect(st.sim == "READY" && st.registration == "home" && st.signalDBm == -73)
        #expect(st.json.text.hasPrefix("{\"ok\":true,\"modem\":{\"configured\":true,\"path\":\"/dev/ttyUSB2\",\"state\":\"ready\""))
        #expect(s.events.contains(.stateChanged(.ready)))
    }

    @Test func echoBeforeATE0IsIgnored() {
        var s = Script()
        s.open()
        #expect(s.drain() == "\u{1B}")
        s.answer("\r\nOK\r\n")  // a modem left in the prompt answers ESC: not ATE0's answer
        s.advance(ModemTimings.standard.settleMs)
        #expect(s.drain() == "ATE0\r")
        s.answer("ATE0\r\r\nOK\r\n")
        #expect(s.drain() == "AT+CMEE=2\r")
    }

    @Test func twoPartSMSIsSentPartByPartAndConfirmed() {
        var s = Script()
        s.initialise()
        s.session.sendSMS(Self.sms)
        s.take(s.session.poke(at: s.now))
        #expect(s.drain() == "AT+CMGS=\"\(UCS2.encode("+8613800138000"))\"\r")
        s.answer("\r\n> ")
        #expect(s.drain() == UCS2.encode("陈婆婆 紧急") + "\u{1A}")
        s.answer("\r\n+CMGS: 7\r\n\r\nOK\r\n")
        #expect(s.drain().hasPrefix("AT+CMGS="))
        s.answer("\r\n> ")
        #expect(s.drain() == UCS2.encode("(2/2)") + "\u{1A}")
        #expect(s.session.status.smsWaiting == 1)
        s.answer("\r\n+CMGS: 8\r\n\r\nOK\r\n")
        #expect(s.events.contains(.smsSent(id: "sms:k1", references: [7, 8])))
        #expect(s.session.status.smsSent == 1 && s.session.status.smsWaiting == 0)
    }

    @Test func cmsErrorIsRetriedWithBackoffWithin30Seconds() {
        var s = Script(timings: Self.quiet)
        s.initialise()
        s.session.sendSMS(OutgoingSMS(id: "x", number: "+8613800138000", parts: ["a"]))
        var delays = [Int64]()
        for _ in 0..<6 {
            s.take(s.session.poke(at: s.now))
            var waited = 0
            while !s.drain().hasPrefix("AT+CMGS"), waited < 40 { s.advance(1000); waited += 1 }
            #expect(waited <= 30)
            s.answer("\r\n> ")
            _ = s.drain()
            s.answer("\r\n+CMS ERROR: 500\r\n")
            if case .smsFailed(_, let e, let d) = s.events.last { #expect(e == "+CMS ERROR: 500"); delays.append(d) }
        }
        #expect(delays == [5000, 10000, 20000, 30000, 30000, 30000])
        #expect(s.session.status.smsFailed == 6 && s.session.status.lastError == "SMS: +CMS ERROR: 500")
        #expect(s.session.waitingSMS == ["x"])
    }

    @Test func portClosedMidSubmissionKeepsTheMessageAndSendsItAgain() {
        var s = Script()
        s.initialise()
        s.session.sendSMS(OutgoingSMS(id: "x", number: "+8613800138000", parts: ["a"]))
        s.take(s.session.poke(at: s.now))
        s.answer("\r\n> ")
        #expect(s.drain().hasSuffix("\u{1A}"))
        s.take(s.session.portClosed(at: s.now))
        #expect(s.session.status.state == .closed && s.session.waitingSMS == ["x"])
        s.advance(100)
        #expect(s.drain() == "")
        s.initialise()
        #expect(s.drain().hasPrefix("AT+CMGS="))
        s.answer("\r\n> ")
        s.answer("\r\n+CMGS: 1\r\n\r\nOK\r\n")
        #expect(s.events.contains(.smsSent(id: "x", references: [1])))
    }

    @Test func silentModemTimesOutEscapesAndReinitialises() {
        var s = Script()
        s.initialise()
        s.session.sendSMS(OutgoingSMS(id: "x", number: "+86138", parts: ["a"]))
        s.take(s.session.poke(at: s.now))
        _ = s.drain()
        s.advance(ModemTimings.standard.promptMs)
        #expect(s.session.status.state == .unresponsive)
        #expect(s.drain() == "\u{1B}")
        s.advance(ModemTimings.standard.reinitMs)
        #expect(s.drain() == "\u{1B}")
        s.advance(ModemTimings.standard.settleMs)
        #expect(s.drain() == "ATE0\r")
        #expect(s.session.waitingSMS == ["x"])
    }

    @Test func deadModemBacksOffAndLogsRarely() {
        var s = Script(timings: Self.quiet)
        s.open()
        var attempts = 0
        for _ in 0..<(7 * 24 * 60) {  // a week, minute by minute, of a modem that never answers
            s.advance(60_000)
            attempts += s.drain().components(separatedBy: "ATE0").count - 1
        }
        let notes = s.events.filter { if case .note = $0 { return true }; return false }
        #expect(attempts >= 7 * 24 * 60 * 60 / 300 / 2, "retried \(attempts) times")  // still tried every ≤ 5 min
        #expect(notes.count < 20, "\(notes.count) notes")
        #expect(s.session.status.state == .unresponsive)
    }

    @Test func missingSIMIsReportedAndPolledUntilInserted() {
        var s = Script()
        s.open()
        s.advance(ModemTimings.standard.settleMs)
        s.answer("\r\nOK\r\n"); s.answer("\r\nOK\r\n")
        #expect(s.drain().hasSuffix("AT+CPIN?\r"))
        s.answer("\r\n+CME ERROR: SIM not inserted\r\n")
        #expect(s.session.status.state == .simProblem && s.session.status.sim == "SIM not inserted")
        s.advance(ModemTimings.standard.pollMs)
        #expect(s.drain() == "AT+CPIN?\r")
        s.answer("\r\n+CPIN: READY\r\n\r\nOK\r\n")
        #expect(s.drain() == "ATE0\r")
        #expect(s.session.status.state == .initialising)
    }

    @Test func simPulledWhileRunningIsReportedAndTheMessageWaits() {
        var s = Script(timings: Self.quiet)
        s.initialise()
        s.session.sendSMS(OutgoingSMS(id: "x", number: "+8613800138000", parts: ["a"]))
        s.take(s.session.poke(at: s.now))
        s.answer("\r\n+CME ERROR: SIM not inserted\r\n")
        #expect(s.session.status.state == .simProblem && s.session.status.sim == "SIM not inserted")
        #expect(s.session.waitingSMS == ["x"])
        _ = s.drain()
        s.advance(Self.quiet.pollMs)
        #expect(s.drain() == "AT+CPIN?\r")
    }

    @Test func incomingMessageIsReadDecodedAndDeleted() {
        var s = Script()
        s.initialise()
        s.answer("\r\n+CMTI: \"SM\",4\r\n")
        #expect(s.drain() == "AT+CMGR=4\r")
        s.answer("\r\n+CMGR: \"REC UNREAD\",\"\(UCS2.encode("+8613800138000"))\",\"\",\"26/11/23,09:00:00+32\"\r\n\(UCS2.encode("1"))\r\n\r\nOK\r\n")
        #expect(s.events.contains(.received(sender: "+8613800138000", text: "1")))
        #expect(s.drain() == "AT+CMGD=4\r")
        s.answer("\r\nOK\r\n")
    }

    @Test func callIsHungUpThirtySecondsAfterDiallingOrOnNoCarrier() {
        var s = Script(timings: Self.quiet)
        s.initialise()
        s.session.placeCall(CallRequest(id: "c1", number: "+8613800138000"))
        s.take(s.session.poke(at: s.now))
        #expect(s.drain() == "ATD+8613800138000;\r")
        s.answer("\r\nOK\r\n")
        #expect(s.events.contains(.callPlaced(id: "c1")))
        s.advance(29_000)
        #expect(s.drain() == "")
        s.advance(1_000)
        #expect(s.drain() == "ATH\r")
        s.advance(500)
        #expect(s.drain() == "", "ATH sent once only")
        s.answer("\r\nOK\r\n")
        #expect(s.events.contains(.callEnded(id: "c1", result: "hung up")))

        s.session.placeCall(CallRequest(id: "c2", number: "+8613900139000"))
        s.take(s.session.poke(at: s.now))
        _ = s.drain()
        s.answer("\r\nOK\r\n")
        s.advance(3_000)
        s.answer("\r\nNO CARRIER\r\n")
        #expect(s.events.contains(.callEnded(id: "c2", result: "NO CARRIER")))
        #expect(s.drain() == "ATH\r")
        #expect(s.session.status.calls == 2)
    }

    @Test func modemRestartBehindOpenPortReinitialises() {
        var s = Script()
        s.initialise()
        s.answer("\r\nRDY\r\n")
        #expect(s.drain() == "ATE0\r")
        #expect(s.session.status.state == .initialising)
    }

    @Test func garbageFloodKeepsMemoryBounded() {
        var s = Script()
        s.initialise()
        var seed: UInt32 = 1
        for _ in 0..<200 {
            var chunk = [UInt8]()
            for _ in 0..<4096 { seed = seed &* 1_103_515_245 &+ 12345; chunk.append(UInt8(truncatingIfNeeded: seed >> 16)) }
            s.take(s.session.received(chunk, at: s.now))
        }
        s.answer("\r\n+CMTI: \"SM\",1\r\n")
        #expect(s.session.parserSkippedBytes > 100_000)
        for i in 0..<1000 { s.answer("\r\n+CMTI: \"SM\",\(i)\r\n") }
        #expect(s.drain().components(separatedBy: "AT+CMGR").count <= 2)
    }
}
