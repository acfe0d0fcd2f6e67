import Foundation
import OnekeyCore

/// MQTT ack payloads: the parse and validation of `Gateway.memberAction`, on a desk with one open
/// alert. The first input byte picks the sending member (paged, on the roster, or a stranger);
/// the rest is the payload. A `{ALERT}` in the payload is replaced by the open alert's id so the
/// fuzzer reaches the desk's state machine, not only "unknown alert".
enum AckFuzz {
    static let members = ["alice", "bob", "mallory", "nobody", ""]

    static let configText = """
        [gateway]
        id = "gw"
        timezone = "Asia/Shanghai"
        [[grid]]
        id = "g"
        [[member]]
        id = "alice"
        [[member]]
        id = "bob"
        [[member]]
        id = "mallory"
        [[device]]
        id = "btn"
        driver = "ev1527"
        address = "A1B2C"
        grid = "g"
        [[shift]]
        grid = "g"
        member = "alice"
        start = "00:00"
        end = "24:00"
        [[shift]]
        grid = "g"
        member = "bob"
        role = "backup"
        start = "00:00"
        end = "24:00"
        """

    struct Fixture: Sendable {
        var desk: AlertDesk
        var alertID: String
        var now: Moment
    }

    /// Built once: a desk with btn's panic open (paged alice).
    static let fixture: Fixture? = {
        guard let config = try? ConfigLoader.parse(configText, path: "ack.toml"),
              let wall = Timestamp(rfc3339: "2026-11-22T02:00:00Z"),
              let raw = EV1527Decoder.encode(address: "A1B2C", key: 8) else { return nil }
        let now = Moment(wall: wall, monotonicNanos: 1_000_000_000)
        var desk = AlertDesk(config: config, at: now)
        var decoder = EV1527Decoder()
        guard let frame = decoder.feed(raw).frames.first,
              let alert = desk.handle(frame, at: now).alerts.first else { return nil }
        return Fixture(desk: desk, alertID: alert.id, now: now)
    }()

    static func ack(_ data: [UInt8]) {
        guard let fixture, let pick = data.first else {
            return invariant(fixture != nil, "the ack fixture did not build")
        }
        var desk = fixture.desk
        let member = members[Int(pick) % members.count]
        let topic = "onekey/v1/members/\(member)/acks"
        let text = String(decoding: data.dropFirst(), as: UTF8.self)
            .replacingOccurrences(of: "{ALERT}", with: fixture.alertID)
        // Gateway.memberAction, step by step.
        guard let sender = desk.topics.ackMember(topic: topic) else {
            return invariant(member.isEmpty, "topic of \(member) not recognised")
        }
        guard let body = try? JSON.parse(text),
              let alertID = body["alert"]?.stringValue,
              let actionName = body["action"]?.stringValue,
              let action = MemberAction(rawValue: actionName) else { return }
        let before = desk.openAlerts
        do {
            let outcome = try desk.act(action, member: sender, alert: alertID, note: body["note"]?.stringValue,
                                       source: .mqtt, at: Moment(wall: fixture.now.wall.adding(seconds: 5), monotonicNanos: fixture.now.monotonicNanos + 5_000_000_000))
            invariant(["alice", "bob"].contains(sender), "\(sender) was allowed to \(actionName)")
            invariant(alertID == fixture.alertID, "an action on unknown alert \(alertID) succeeded")
            _ = outcome
        } catch {
            invariant(desk.openAlerts == before, "a rejected action changed the open alerts")
        }
    }
}
