import Foundation
import GRDB
import OnekeyCore

/// The second path's durable part (CONTRACT §11): every SMS planned while the broker was
/// unreachable is stored — with the keys of what was decided (SMS and calls) — in one transaction
/// before the modem gets it, and deleted when the modem confirms it. At start the keys are put
/// back (nothing confirmed is sent twice) and every SMS still here is queued again (nothing lost).
extension Store {
    static func registerSecondPath(_ m: inout DatabaseMigrator) {
        m.registerMigration("v3: second path (sms_outbox, second_path_keys)") { db in
            try db.execute(sql: """
                CREATE TABLE sms_outbox (
                    id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, number TEXT NOT NULL, parts TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                CREATE TABLE second_path_keys (
                    key TEXT PRIMARY KEY, channel TEXT NOT NULL, alert_id TEXT NOT NULL);
                CREATE INDEX second_path_keys_alert ON second_path_keys(alert_id);
                """)
        }
    }

    /// Stores planned SMS (and the keys of planned calls) in one transaction.
    public func planSecondPath(sms: [PlannedSMS], calls: [PlannedCall], at t: Timestamp) throws {
        try db.write { db in
            for s in sms {
                let parts = JSON.array(s.message.parts.map { .string($0) }).text
                try db.execute(sql: "INSERT OR REPLACE INTO sms_outbox (id, alert_id, number, parts, created_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [s.message.id, s.alert, s.message.number, parts, t.milliseconds])
                try db.execute(sql: "INSERT OR IGNORE INTO second_path_keys (key, channel, alert_id) VALUES (?, 'sms', ?)", arguments: [s.key, s.alert])
            }
            for c in calls {
                try db.execute(sql: "INSERT OR IGNORE INTO second_path_keys (key, channel, alert_id) VALUES (?, 'call', ?)", arguments: [c.key, c.alert])
            }
        }
    }

    /// The modem confirmed this SMS (every part).
    public func smsConfirmed(id: String) throws {
        try db.write { db in try db.execute(sql: "DELETE FROM sms_outbox WHERE id = ?", arguments: [id]) }
    }

    /// A closed alert's decided keys (SMS still waiting are sent all the same).
    public func forgetSecondPath(alert: String) throws {
        try db.write { db in try db.execute(sql: "DELETE FROM second_path_keys WHERE alert_id = ?", arguments: [alert]) }
    }

    /// What was decided before a restart, and the SMS the modem has not confirmed, oldest first.
    public func secondPathState() throws -> (smsKeys: [String], callKeys: [String], pending: [OutgoingSMS]) {
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT key, channel FROM second_path_keys")
            let pending = try Row.fetchAll(db, sql: "SELECT id, number, parts FROM sms_outbox ORDER BY created_at, id").map { r in
                OutgoingSMS(id: r["id"], number: r["number"],
                            parts: ((try? JSON.parse(r["parts"] as String))?.arrayValue ?? []).compactMap(\.stringValue))
            }
            func keys(_ channel: String) -> [String] { rows.filter { ($0["channel"] as String) == channel }.map { $0["key"] as String } }
            return (keys("sms"), keys("call"), pending)
        }
    }

    /// SMS stored and not yet confirmed (for `onekeyctl modem`).
    public func smsWaiting() throws -> Int {
        try db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sms_outbox") ?? 0 }
    }
}
