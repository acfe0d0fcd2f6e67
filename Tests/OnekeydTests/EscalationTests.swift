import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// The ladder with real time and a real broker. Steps are 2 s apart; a step is expected within
/// [deadline − 0.2 s, deadline + 1.5 s]: the timer is armed for the absolute deadline with 1 ms
/// leeway (the benchmark measures its real lateness), and 1.5 s absorbs a loaded 2-core CI
/// machine, the broker hop and the subscriber's thread. The lower bound catches a step fired early.
@Suite(.serialized) struct EscalationTests {
    static let ladder = SampleConfig.ladder([(0, "grid:primary"), (2, "grid:backup"), (4, "member:m-station")])

    func pages(_ rig: Rig, to member: String) -> [Subscriber.Message] {
        rig.pages.filter { $0.json?["member"]?.stringValue == member }
    }

    /// Distinct pages (by msg_id): a page whose PUBACK the daemon got but had not yet recorded
    /// when killed is sent again with the same msg_id; consumers drop such duplicates.
    func distinctPages(_ rig: Rig, to member: String) -> Int {
        Set(pages(rig, to: member).compactMap { $0.json?["msg_id"]?.stringValue }).count
    }

    func ack(_ rig: Rig, as member: String, _ body: String) throws {
        let client = try Subscriber(port: rig.broker.port, topics: [], clientID: member)
        try client.publish(topic: "onekey/v1/members/\(member)/acks", payload: Array(body.utf8))
        client.close()
    }

    @Test func noAckPagesTheBackupOnTimeAndAnAckOverMQTTStopsTheLadder() throws {
        let rig = try Rig(policy: Self.ladder)
        let t0 = monotonicNanos()
        try rig.press("A1B2C")
        guard let (_, first) = rig.sub.next(after: 0, timeout: 5, where: { $0.topic.hasSuffix("/pages") }) else {
            Issue.record("no page"); return
        }
        let alert = first.json?["alert"]?.stringValue ?? ""
        guard let (_, backup) = rig.sub.next(after: 0, timeout: 6, where: { $0.topic == "onekey/v1/members/m-136/pages" }) else {
            Issue.record("backup never paged"); return
        }
        let after = Double(backup.receivedNanos - t0) / 1e9
        #expect(after >= 1.8 && after <= 3.5, "backup paged \(after) s after the press")
        #expect(backup.json?["reason"]?.stringValue == "escalated" && backup.json?["step"]?.intValue == 1)

        // A forged ack from a member who was not paged and holds no shift on the grid: rejected, nothing changes.
        try ack(rig, as: "m-station", #"{"alert":"\#(alert)","action":"ack"}"#)
        try ack(rig, as: "m-136", #"{"alert":"\#(alert)","action":"explode"}"#)
        try ack(rig, as: "m-136", "not json")
        usleep(200_000)
        #expect(try rig.daemon.control(["cmd": "alert", "id": alert])["alert"]?["state"]?.stringValue == "open")
        #expect(rig.daemon.log.contains("rejected action from m-station"))
        #expect(try rig.daemon.control(["cmd": "status"])["counters"]?["rejected_actions"]?.intValue == 3)

        // The backup acks from the phone: the ladder stops; m-station (due at 4 s) is never paged.
        try ack(rig, as: "m-136", #"{"alert":"\#(alert)","action":"ack"}"#)
        let acked = rig.sub.wait(timeout: 5) { msgs in
            msgs.contains { $0.topic.hasSuffix("/alerts/\(alert)") && $0.json?["state"]?.stringValue == "acked" }
        }
        #expect(acked.contains { $0.json?["acked_by"]?.stringValue == "m-136" })
        usleep(3_000_000)
        #expect(pages(rig, to: "m-station").isEmpty, "acked before step 2")
        // Acking again is an error that changes nothing.
        let again = try rig.ctl(["ack", alert, "--member", "m-135"])
        #expect(again.status == 65 && again.stderr.contains("already acked"))
    }

    @Test func aKillInTheMiddleOfTheLadderNeitherLosesNorRepeatsAStep() throws {
        let rig = try Rig(policy: Self.ladder)
        try rig.press("A1B2C")
        #expect(rig.sub.next(after: 0, timeout: 5, where: { $0.topic.hasSuffix("/pages") }) != nil)
        // Killed before step 1 (due at 2 s), down until after it fell due: it fires once, at start.
        usleep(1_000_000)
        rig.daemon.crash()
        usleep(1_800_000)
        try rig.daemon.start()
        #expect(rig.sub.next(after: 0, timeout: 5, where: { $0.topic == "onekey/v1/members/m-136/pages" }) != nil)
        // Killed again after step 1, restarted at once: step 2 fires at its stored deadline.
        rig.daemon.crash()
        try rig.daemon.start()
        #expect(rig.sub.next(after: 0, timeout: 6, where: { $0.topic == "onekey/v1/members/m-station/pages" }) != nil)
        usleep(1_500_000)
        #expect(distinctPages(rig, to: "m-136") == 1, "step 1 fired exactly once")
        #expect(distinctPages(rig, to: "m-station") == 1, "step 2 fired exactly once")
        #expect(distinctPages(rig, to: "m-135") == 1 && distinctPages(rig, to: "m-200") == 1)
        #expect(rig.daemon.log.contains("resuming 1 open alert"))
    }
}
