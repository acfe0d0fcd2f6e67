import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// Hostile payloads on `P/members/M/acks` against the real daemon and broker: nothing but a
/// well-formed action from an entitled member changes an alert; the daemon keeps answering its
/// control socket and paging during a flood; rejections are counted, and the log stays bounded.
@Suite(.serialized) struct MQTTAckAbuseTests {
    static let ladder = SampleConfig.ladder([(0, "grid:primary"), (600, "grid:backup")])

    func openAlert(_ rig: Rig) throws -> String {
        try rig.press("A1B2C")
        guard let (_, page) = rig.sub.next(after: 0, timeout: 10, where: { $0.topic.hasSuffix("/pages") }),
              let id = page.json?["alert"]?.stringValue else { throw HarnessError("no page") }
        return id
    }

    func alertState(_ rig: Rig, _ id: String) throws -> JSON? {
        try rig.daemon.control(["cmd": "alert", "id": id])["alert"]
    }

    static func hostilePayloads(alert id: String) -> [(member: String, payload: [UInt8])] {
        var p: [(String, [UInt8])] = []
        let m = "m-135"
        for text in ["", "ack", "{", "}", "[]", "null", "42", "\"ack\"", "{\"alert\":", "{\"alert\":\"\(id)\"}",
                     "{\"alert\":\"\(id)\",\"action\":\"ACK\"}", "{\"alert\":\"\(id)\",\"action\":\"delete\"}",
                     "{\"alert\":1,\"action\":\"ack\"}", "{\"alert\":[\"\(id)\"],\"action\":\"ack\"}",
                     "{\"alert\":\"\(id)\",\"action\":1}", "{\"alert\":\"\(id)\",\"action\":null}",
                     "{\"alert\":\"\(id)\",\"action\":[\"ack\"]}", "{\"alert\":\"nope\",\"action\":\"ack\"}",
                     "{\"alert\":\"\",\"action\":\"resolve\"}", "{\"alert\":\"\(id)\"\u{0},\"action\":\"ack\"}"] {
            p.append((m, Array(text.utf8)))
        }
        p.append((m, [0xFF, 0xFE, 0x00, 0xC0, 0x80]))
        p.append((m, Array(String(repeating: "[", count: 100_000).utf8)))
        p.append((m, Array(("{\"alert\":\"\(id)\",\"action\":\"ack\",\"note\":\"" + String(repeating: "n", count: 1_000_000)).utf8)))
        p.append((m, Array(("{\"alert\":\"" + String(repeating: "x", count: 262_144) + "\",\"action\":\"ack\"}").utf8)))
        // Forged members: not in the config, in the config but neither paged nor on the roster.
        for forged in ["m-999", "m-station", "root", "m-135/../m-136"] {
            p.append((forged, Array("{\"alert\":\"\(id)\",\"action\":\"ack\"}".utf8)))
            p.append((forged, Array("{\"alert\":\"\(id)\",\"action\":\"resolve\"}".utf8)))
        }
        return p
    }

    @Test func hostilePayloadsChangeNothing() throws {
        let rig = try Rig(policy: Self.ladder)
        let id = try openAlert(rig)
        let before = try alertState(rig, id)
        let client = try Subscriber(port: rig.broker.port, topics: [], clientID: "attacker")
        defer { client.close() }
        let payloads = Self.hostilePayloads(alert: id)
        for (member, payload) in payloads {
            try client.publish(topic: "onekey/v1/members/\(member)/acks", payload: payload)
        }
        // Wait until the daemon has seen them all (rejections counted) or give up.
        let deadline = Date(timeIntervalSinceNow: 20)
        var rejected: Int64 = 0
        while Date() < deadline {
            rejected = try rig.daemon.control(["cmd": "status"])["counters"]?["rejected_actions"]?.intValue ?? 0
            if rejected >= Int64(payloads.count - 4) { break }   // "m-135/../m-136" is no ack topic
            usleep(100_000)
        }
        #expect(rejected >= Int64(payloads.count - 8), "rejected \(rejected) of \(payloads.count)")
        let after = try alertState(rig, id)
        #expect(after?["state"]?.stringValue == "open", "state is \(after?["state"]?.text ?? "nil")")
        #expect(after?["acked_by"] == before?["acked_by"] && after?["step"] == before?["step"])
        #expect(rig.daemon.isRunning)
        // A real ack still works afterwards.
        try client.publish(topic: "onekey/v1/members/m-135/acks", payload: Array("{\"alert\":\"\(id)\",\"action\":\"ack\"}".utf8))
        let acked = rig.sub.wait(timeout: 10) { ms in ms.contains { $0.topic.hasSuffix("/alerts/\(id)") && $0.json?["state"]?.stringValue == "acked" } }
        #expect(acked.contains { $0.json?["state"]?.stringValue == "acked" }, "a good ack after the abuse was not applied")
    }

    @Test func actionsOnAClosedAlertAreRejected() throws {
        let rig = try Rig(policy: Self.ladder)
        let id = try openAlert(rig)
        let r = try rig.ctl(["resolve", id, "--member", "m-135"])
        #expect(r.status == 0, "\(r.stderr)")
        let client = try Subscriber(port: rig.broker.port, topics: [], clientID: "late-phone")
        defer { client.close() }
        let n0 = rig.sub.count
        for action in ["ack", "resolve", "decline"] {
            try client.publish(topic: "onekey/v1/members/m-135/acks", payload: Array("{\"alert\":\"\(id)\",\"action\":\"\(action)\"}".utf8))
        }
        usleep(1_500_000)
        let republished = rig.sub.all.dropFirst(n0).filter { $0.topic.contains(id) || $0.topic.hasSuffix("/pages") }
        #expect(republished.isEmpty, "a closed alert changed: \(republished.map(\.topic))")
        #expect(try alertState(rig, id)?["state"]?.stringValue == "resolved")
    }

    /// Thousands of bad acks per second: the daemon keeps answering and paging, and the log
    /// does not grow by a line per rejected message.
    @Test func aFloodOfBadAcksLeavesTheDaemonResponsiveAndTheLogBounded() throws {
        let rig = try Rig(policy: Self.ladder, devices: [("btn-chen-401", "A1B2C"), ("btn-wang-502", "D4E5F")])
        let id = try openAlert(rig)
        let client = try Subscriber(port: rig.broker.port, topics: [], clientID: "flood")
        defer { client.close() }
        let logBefore = rig.daemon.log.utf8.count
        let flood = 10_000
        let t0 = Date()
        let bodies = ["{\"alert\":\"\(id)\",\"action\":\"ack\"}", "not json", "{\"alert\":\"nope\",\"action\":\"ack\"}"]
        for i in 0..<flood {
            let who = i % 3 == 0 ? "m-999" : "m-135"
            let body = i % 3 == 0 ? bodies[0] : bodies[i % 3]
            try client.publish(topic: "onekey/v1/members/\(who)/acks", payload: Array(body.utf8))
        }
        let sendSeconds = Date().timeIntervalSince(t0)
        // Mid-flood: the control socket answers and a second press is paged.
        let c0 = Date()
        _ = try rig.daemon.control(["cmd": "status"])
        let controlSeconds = Date().timeIntervalSince(c0)
        try rig.press("D4E5F")
        let second = rig.sub.wait(timeout: 15) { ms in
            ms.contains { $0.topic.hasSuffix("/pages") && $0.json?["device"]?.stringValue == "btn-wang-502" }
        }
        #expect(second.contains { $0.json?["device"]?.stringValue == "btn-wang-502" }, "a press during the flood was not paged")
        #expect(controlSeconds < 15, "status took \(controlSeconds) s during the flood")
        let deadline = Date(timeIntervalSinceNow: 30)
        var rejected: Int64 = 0
        while Date() < deadline {
            rejected = try rig.daemon.control(["cmd": "status"])["counters"]?["rejected_actions"]?.intValue ?? 0
            if rejected >= Int64(flood) { break }
            usleep(200_000)
        }
        #expect(rejected >= Int64(flood * 9 / 10), "rejected \(rejected) of \(flood)")
        #expect(try alertState(rig, id)?["state"]?.stringValue == "open")
        let logGrowth = rig.daemon.log.utf8.count - logBefore
        print("ack flood: \(flood) bad acks sent in \(String(format: "%.2f", sendSeconds)) s, status in \(String(format: "%.3f", controlSeconds)) s, log +\(logGrowth) bytes, rejected \(rejected)")
        #expect(logGrowth < 64 * 1024, "\(flood) bad acks grew the log by \(logGrowth) bytes")
    }
}
