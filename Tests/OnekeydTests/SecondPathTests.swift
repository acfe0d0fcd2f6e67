import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// The second path end to end (CONTRACT §11, issue 13): the built daemon, a real mosquitto that
/// the test stops and starts, a pty receiver, and `ModemSimulator` (the modem cannot exist here)
/// as `[modem] path`.
final class SecondPathRig {
    static let primary = "+8613800138000"   // m-135
    static let primary2 = "+8613800138200"  // m-200, also primary
    let broker: Broker
    let pty: PseudoTerminal
    let modem: ModemSimulator
    let daemon: DaemonProcess
    let sub: Subscriber
    let afterSeconds: Int
    private(set) var pressedAt = Date.distantPast

    init(afterSeconds: Int = 3, callAfterSeconds: Int = 600, configure: (inout SimulatedModem) -> Void = { _ in }) throws {
        self.afterSeconds = afterSeconds
        broker = try Broker(persistent: true)
        pty = try PseudoTerminal()
        let dir = try TempDirectory.make("second-path")
        modem = try ModemSimulator(directory: dir)
        modem.with(configure)
        let port = broker.port, receiver = pty.path, modemPath = modem.link
        daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: receiver, stateDir: state, socket: socket)
                .replacingOccurrences(of: "name = \"仲毓萍\"\n", with: "name = \"仲毓萍\"\nphone = \"\(Self.primary)\"\n")
                .replacingOccurrences(of: "name = \"张伟\"\n", with: "name = \"张伟\"\nphone = \"\(Self.primary2)\"\n")
                + "\n[modem]\npath = \"\(modemPath)\"\nafter_s = \(afterSeconds)\ncall_after_s = \(callAfterSeconds)\n"
        }
        sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"], clientID: "second-path-\(broker.port)", persistent: true)
        try daemon.start()
    }

    deinit {
        daemon.stop()
        sub.close()
        broker.stop()
        modem.stop()
    }

    func press(_ address: String = "A1B2C") throws { try pty.write(EV1527Decoder.encode(address: address, key: 8)!) }

    func ctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.path("onekeyctl"), ["--socket", daemon.socketPath] + args)
    }

    func alert(_ id: String) throws -> JSON? { try JSON.parse(Array(try ctl(["--json", "alert", id]).stdout.utf8))["alert"] }

    /// The only open alert's id, once there is one.
    func waitOpenAlert(timeout: Double = 10) throws -> String? {
        let end = Date(timeIntervalSinceNow: timeout)
        while Date() < end {
            if let id = try daemon.control(["cmd": "alerts"])["alerts"]?.arrayValue?.first?["id"]?.stringValue { return id }
            usleep(50_000)
        }
        return nil
    }

    func waitBrokerDown(timeout: Double = 10) throws -> Bool {
        let end = Date(timeIntervalSinceNow: timeout)
        while Date() < end {
            if try daemon.control(["cmd": "status"])["mqtt"]?["connected"]?.boolValue == false { return true }
            usleep(50_000)
        }
        return false
    }

    /// The modem initialised, the broker stopped (and seen down by the daemon), a press: its alert id.
    func pressDuringOutage() throws -> String {
        #expect(modem.wait(timeoutMs: 15_000) { $0.commands.contains("AT+CNMI=2,1,0,0,0") }, "the daemon initialised the modem")
        broker.stop()
        #expect(try waitBrokerDown())
        pressedAt = Date()
        try press()
        return try #require(try waitOpenAlert())
    }

    /// `pressDuringOutage` with a modem that takes the page's text and never answers it.
    func pressWithTheSMSHeld() throws {
        modem.with { $0.holdSubmissions = true }
        _ = try pressDuringOutage()
        #expect(modem.wait(timeoutMs: 30_000) { $0.heldTexts >= 1 }, "the text went to the modem, which never answered")
        modem.with { $0.holdSubmissions = false }
    }

    func sent(to number: String) -> [SimulatedModem.SentSMS] { modem.with { $0.sent.filter { $0.number == number } } }

    /// SMS pages to `number`: one per page (a second part, if any, does not name the resident).
    func pagesBySMS(to number: String) -> [SimulatedModem.SentSMS] { sent(to: number).filter { $0.text.contains("陈婆婆") } }

    func explanations(to number: String) -> [SimulatedModem.SentSMS] { sent(to: number).filter { $0.text == SMSPageText.explanation } }
}

@Suite(.serialized) struct SecondPathTests {
    /// Issue 13's main path: broker down → SMS with the resident's name and location in Chinese;
    /// reply `1` acks at once; unknown numbers and stray texts change nothing; the broker returns →
    /// MQTT pages flow, none dropped, no msg_id doubled; `onekeyctl modem` and `status` show it.
    @Test func brokerDownPagesBySMSAndAReplyAcks() throws {
        let rig = try SecondPathRig()
        #expect(rig.sub.wait(timeout: 10) { $0.contains { $0.topic.hasSuffix("/status") } }.count > 0)
        let id = try rig.pressDuringOutage()
        // Within after_s + 5 s of the press (generous bound: the machine is shared).
        #expect(rig.modem.wait(timeoutMs: (rig.afterSeconds + 5 + 15) * 1000) { m in
            m.sent.contains { $0.number == SecondPathRig.primary && $0.text.contains("陈婆婆") }
        }, "the primary got an SMS naming the resident")
        let latency = Date().timeIntervalSince(rig.pressedAt)
        print("press → SMS to the primary: \(String(format: "%.1f", latency)) s (after_s = \(rig.afterSeconds))")
        #expect(latency < Double(rig.afterSeconds + 5 + 15), "SMS after \(latency) s")
        usleep(1_000_000)  // a second part, if any
        let texts = rig.sent(to: SecondPathRig.primary).map(\.text).joined()
        #expect(texts.contains("双合店社区"), "location in Chinese: \(texts)")
        #expect(texts.contains(String(id.suffix(6))), "the SMS names the alert: \(texts)")
        let page = rig.pagesBySMS(to: SecondPathRig.primary)
        #expect(page.count == 1)
        #expect(rig.modem.wait(timeoutMs: 10_000) { m in m.sent.contains { $0.number == SecondPathRig.primary2 } }, "the second primary too")
        usleep(6_000_000)  // a few decide rounds: nothing is sent twice
        #expect(rig.pagesBySMS(to: SecondPathRig.primary).count == page.count, "one page by SMS, not one per decide round")

        // An unknown number and a stray text change nothing.
        rig.modem.injectSMS(from: "+8613999999999", text: "1")
        rig.modem.injectSMS(from: SecondPathRig.primary, text: "你好")
        rig.modem.injectSMS(from: SecondPathRig.primary, text: "在吗")
        #expect(rig.modem.wait(timeoutMs: 10_000) { $0.inbox.isEmpty && $0.sent.contains { $0.text == SMSPageText.explanation } })
        usleep(1_000_000)
        #expect(try rig.alert(id)?["state"]?.stringValue == "open", "unknown number and stray text changed nothing")
        #expect(rig.sent(to: "+8613999999999").isEmpty, "nothing is sent to an unknown number")
        #expect(rig.explanations(to: SecondPathRig.primary).count == 1, "one explanation for two stray texts")
        #expect(rig.daemon.log.contains("unknown number"))

        // Reply `1` (full width, as a phone's Chinese keyboard types it) acks at once.
        let before = rig.sent(to: SecondPathRig.primary).count
        rig.modem.injectSMS(from: "13800138000", text: "１")
        let end = Date(timeIntervalSinceNow: 10)
        while Date() < end, try rig.alert(id)?["state"]?.stringValue != "acked" { usleep(50_000) }
        let acked = try rig.alert(id)
        #expect(acked?["state"]?.stringValue == "acked")
        #expect(acked?["acked_by"]?.stringValue == "m-135")
        #expect(rig.modem.wait(timeoutMs: 10_000) { $0.sent.filter { $0.number == SecondPathRig.primary }.count > before }, "the reply is confirmed by SMS")
        #expect(rig.sent(to: SecondPathRig.primary).last?.text.contains("已确认接警") == true)

        let modem = try JSON.parse(Array(try rig.ctl(["--json", "modem"]).stdout.utf8))["modem"]
        #expect(modem?["state"]?.stringValue == "ready")
        #expect(modem?["sim"]?.stringValue == "READY")
        #expect(modem?["registration"]?.stringValue == "home")
        #expect(modem?["signal_dbm"]?.intValue == -73)
        #expect((modem?["sms_sent"]?.intValue ?? 0) >= 4)
        let human = try rig.ctl(["modem"])
        #expect(human.status == 0 && human.stdout.contains("ready") && human.stdout.contains("-73"), "\(human.stdout)\(human.stderr)")
        let status = try rig.ctl(["status"])
        #expect(status.stdout.contains("modem") && status.stdout.contains("ready"), "\(status.stdout)")
        #expect(try rig.daemon.control(["cmd": "status"])["summary"]?.stringValue?.contains("modem ready") == true)

        // The broker returns: the pages and the ack flow over MQTT, nothing dropped or doubled.
        try rig.broker.start()
        let got = rig.sub.wait(timeout: 30) { msgs in
            msgs.contains { $0.topic.contains("/alerts/") && $0.json?["state"]?.stringValue == "acked" }
                && msgs.filter { $0.topic.hasSuffix("/pages") }.count >= 2
        }
        #expect(got.contains { $0.topic.contains("/alerts/\(id)") && $0.json?["state"]?.stringValue == "acked" }, "the SMS ack reached MQTT")
        let pages = got.filter { $0.topic.hasSuffix("/pages") }.compactMap(\.json)
        let pagedBoth = Set(pages.compactMap { $0["member"]?.stringValue }).isSuperset(of: ["m-135", "m-200"])
        #expect(pagedBoth, "MQTT pages to both primaries")
        // Live deliveries only: the broker keeps this subscriber's session across its restart, so
        // the resubscribe on reconnect sends every retained copy again (those received live before
        // the outage too), with the msg_id it had. Pages are never retained: all are counted.
        let keys = got.filter { !$0.retained }.compactMap { $0.json?["msg_id"]?.stringValue }
        #expect(Set(keys).count == keys.count, "no msg_id doubled")
        let sentBefore = rig.modem.with { $0.sent.count }
        try rig.press("D4E5F")  // not enrolled: nothing; and no SMS while the broker is up
        usleep(2_000_000)
        #expect(rig.modem.with { $0.sent.count } == sentBefore, "no SMS while the broker is reachable")
    }

    /// An emergency unacknowledged `call_after_s` after it was raised rings the paged members
    /// once each; the call ends on NO CARRIER with ATH. `+CMS ERROR` is retried and sent once.
    @Test func unacknowledgedEmergencyRingsAndFailedSubmissionsAreRetried() throws {
        let rig = try SecondPathRig(afterSeconds: 2, callAfterSeconds: 8) {
            $0.failSubmissions = 2
            $0.callOutcome = .noCarrier(afterMs: 1_000)
        }
        let id = try rig.pressDuringOutage()
        // Two submissions refused (+CMS ERROR 500), retried after 5 s then 10 s: sent once.
        #expect(rig.modem.wait(timeoutMs: 60_000) { m in
            m.sent.contains { $0.number == SecondPathRig.primary } && m.sent.contains { $0.number == SecondPathRig.primary2 }
        })
        #expect(rig.modem.with { $0.failSubmissions } == 0, "both failures were consumed")
        #expect(rig.daemon.log.contains("not sent"))
        #expect(rig.modem.wait(timeoutMs: 30_000) { m in
            m.dialled.contains { $0.contains("8613800138000") } && m.dialled.contains { $0.contains("8613800138200") }
        }, "both paged members rung")
        #expect(rig.modem.wait(timeoutMs: 10_000) { $0.hangUps >= 2 }, "each call hung up after NO CARRIER")
        usleep(7_000_000)
        let dialled = rig.modem.with { $0.dialled }
        #expect(dialled.count == 2, "rung once per member and alert: \(dialled)")
        #expect(rig.pagesBySMS(to: SecondPathRig.primary).count == 1, "sent once despite the refusals")
        #expect(try rig.alert(id)?["state"]?.stringValue == "open")
    }

    /// SIGKILL between `AT+CMGS` and its answer: after the restart the SMS goes out again.
    @Test func sigkillBeforeTheModemConfirmsLosesNoSMS() throws {
        let rig = try SecondPathRig(afterSeconds: 2)
        try rig.pressWithTheSMSHeld()
        rig.daemon.crash()
        try rig.daemon.start()
        #expect(rig.modem.wait(timeoutMs: 60_000) { m in
            m.sent.contains { $0.number == SecondPathRig.primary && $0.text.contains("陈婆婆") }
                && m.sent.contains { $0.number == SecondPathRig.primary2 && $0.text.contains("陈婆婆") }
        }, "sent again after the restart")
        usleep(6_000_000)
        #expect(rig.pagesBySMS(to: SecondPathRig.primary).count == 1, "and once only once confirmed")
        let waiting = try JSON.parse(Array(try rig.ctl(["--json", "modem"]).stdout.utf8))["modem"]
        #expect(waiting?["sms_waiting"]?.intValue == 0)
    }

    /// The modem is unplugged and plugged in again (a new tty behind the same path) while the
    /// broker is down and an SMS waits to be confirmed: the daemon reopens it, initialises it
    /// again and the SMS goes out once.
    @Test func modemReplugDuringAnOutageStillPages() throws {
        let rig = try SecondPathRig(afterSeconds: 2)
        try rig.pressWithTheSMSHeld()
        let initsBefore = rig.modem.with { $0.commands.filter { $0 == "AT+CNMI=2,1,0,0,0" }.count }
        try rig.modem.replug()
        #expect(rig.modem.wait(timeoutMs: 60_000) { m in
            m.commands.filter { $0 == "AT+CNMI=2,1,0,0,0" }.count > initsBefore
                && m.sent.contains { $0.number == SecondPathRig.primary && $0.text.contains("陈婆婆") }
        }, "reopened, initialised again, and the page went out")
        usleep(3_000_000)
        #expect(rig.pagesBySMS(to: SecondPathRig.primary).count == 1)
        #expect(rig.daemon.log.contains("reopening"))
    }

    /// A hostile flood of SMS from unknown numbers (spam, a misconfigured SIM): every message is
    /// read and deleted from the SIM, nothing is answered or acted on, the log stays small and
    /// memory flat, and a member's reply still works afterwards.
    @Test func floodOfUnknownSendersIsReadIgnoredAndBarelyLogged() throws {
        let rig = try SecondPathRig()
        #expect(rig.modem.wait(timeoutMs: 15_000) { $0.commands.contains("AT+CNMI=2,1,0,0,0") })
        try rig.press()
        let id = try #require(try rig.waitOpenAlert())
        let rssBefore = residentKiB(rig.daemon.pid)
        let linesBefore = rig.daemon.log.split(separator: "\n").count
        let flood = 400
        for i in 0..<flood {
            rig.modem.injectSMS(from: "+86139\(String(10_000_000 + i))", text: i % 2 == 0 ? "1" : String(repeating: "广告", count: 300))
            if i % 50 == 49 { usleep(200_000) }
        }
        #expect(rig.modem.wait(timeoutMs: 120_000) { $0.inbox.isEmpty && $0.commands.filter { $0.hasPrefix("AT+CMGD=") }.count >= flood },
                "every message read and deleted from the SIM")
        let lines = rig.daemon.log.split(separator: "\n").dropFirst(linesBefore)
        let unknown = lines.filter { $0.contains("unknown number") }
        #expect(unknown.count <= SecondPath.unknownNotesPerWindow, "\(unknown.count) log lines for \(flood) unknown senders")
        #expect(lines.count < 40, "\(lines.count) log lines in all")
        #expect(rig.modem.with { $0.sent }.isEmpty, "nothing answered to strangers")
        #expect(try rig.alert(id)?["state"]?.stringValue == "open")
        let rssAfter = residentKiB(rig.daemon.pid)
        #expect(rssAfter - rssBefore < 8_192, "RSS \(rssBefore) → \(rssAfter) KiB")
        print("flood of \(flood) unknown SMS: \(lines.count) log lines (\(unknown.count) about unknown numbers), RSS \(rssBefore) → \(rssAfter) KiB")
        rig.modem.injectSMS(from: SecondPathRig.primary, text: "3")
        let end = Date(timeIntervalSinceNow: 10)
        while Date() < end, try rig.alert(id)?["state"]?.stringValue != "resolved" { usleep(50_000) }
        #expect(try rig.alert(id)?["state"]?.stringValue == "resolved", "a member's reply still works after the flood")
    }

    func residentKiB(_ pid: Int32) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func noModemConfiguredSaysSo() throws {
        let rig = try Rig()
        let r = try rig.ctl(["--json", "modem"])
        #expect(r.status == 0)
        #expect(try JSON.parse(Array(r.stdout.utf8))["modem"]?["configured"]?.boolValue == false)
        #expect(try rig.ctl(["modem"]).stdout.contains("no modem configured"))
    }
}
