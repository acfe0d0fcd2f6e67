import Foundation
import GRDB
import OnekeyCore

/// A message waiting in the outbox.
public struct OutboxRow: Sendable, Equatable {
    public var seq: Int64
    public var message: OutboundMessage
    public var createdAt: Timestamp
}

/// The SQLite store (WAL) in `state_dir`: every event, alert, device state and every message
/// for the broker. One transaction per input: the state change and the messages it causes are
/// committed together, before anything is published.
///
/// Durability: `synchronous = FULL` in WAL mode, so a commit returns only after the WAL is
/// fsynced; a press the gateway has acted on (paged, or ACKed to a receiver) survives a crash
/// or power loss. The benchmark's `--relaxed` run (synchronous = NORMAL) shows what that costs.
public final class Store: @unchecked Sendable {
    public let path: String
    let db: DatabaseQueue

    public init(directory: String, synchronousFull: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/onekeyd.sqlite"
        var config = Configuration()
        config.label = "onekeyd.store"
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: synchronousFull ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        }
        db = try DatabaseQueue(path: path, configuration: config)
        try Self.migrator.migrate(db)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: events, alerts, devices, outbox") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    id TEXT PRIMARY KEY, device TEXT, driver TEXT NOT NULL, address TEXT NOT NULL,
                    kind TEXT NOT NULL, code TEXT NOT NULL, received_at INTEGER NOT NULL, raw BLOB NOT NULL,
                    alert_id TEXT, test INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX events_alert ON events(alert_id);
                CREATE TABLE alerts (
                    id TEXT PRIMARY KEY, device TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
                    grid TEXT NOT NULL, resident TEXT NOT NULL, location TEXT NOT NULL,
                    raised_at INTEGER NOT NULL, last_press_at INTEGER NOT NULL, press_count INTEGER NOT NULL,
                    step INTEGER NOT NULL, paged TEXT NOT NULL, acked_by TEXT, acked_at INTEGER,
                    resolved_at INTEGER, resolved_by TEXT, note TEXT, test INTEGER NOT NULL,
                    next_step_at INTEGER);
                CREATE INDEX alerts_open ON alerts(state) WHERE state IN ('open', 'acked');
                CREATE TABLE devices (
                    id TEXT PRIMARY KEY, online INTEGER NOT NULL, last_seen INTEGER, battery_low INTEGER NOT NULL);
                CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
                    retain INTEGER NOT NULL, msg_key TEXT NOT NULL, created_at INTEGER NOT NULL);
                """)
        }
        registerSecondPath(&m)
        return m
    }

    // MARK: Writing

    /// Commits one outcome; returns the outbox rows it added, in order.
    @discardableResult
    public func commit(_ outcome: DeskOutcome, at t: Timestamp) throws -> [OutboxRow] {
        try db.write { db in
            for e in outcome.events {
                try db.execute(sql: """
                    INSERT INTO events (id, device, driver, address, kind, code, received_at, raw, alert_id, test)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [e.id, e.device, e.driver.rawValue, e.address, e.kind.rawValue, e.code,
                                     e.receivedAt.milliseconds, Data(e.raw), e.alertID, e.test])
            }
            for a in outcome.alerts { try Self.upsert(a, db) }
            for d in outcome.devices {
                try db.execute(sql: "INSERT OR REPLACE INTO devices (id, online, last_seen, battery_low) VALUES (?, ?, ?, ?)",
                               arguments: [d.id, d.online, d.lastSeen?.milliseconds, d.batteryLow])
            }
            var rows = [OutboxRow]()
            for m in outcome.outbox {
                try db.execute(sql: "INSERT INTO outbox (topic, payload, retain, msg_key, created_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [m.topic, Data(m.payload), m.retain, m.key, t.milliseconds])
                rows.append(OutboxRow(seq: db.lastInsertedRowID, message: m, createdAt: t))
            }
            return rows
        }
    }

    static func upsert(_ a: Alert, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO alerts (id, device, kind, state, grid, resident, location, raised_at, last_press_at,
                press_count, step, paged, acked_by, acked_at, resolved_at, resolved_by, note, test, next_step_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [a.id, a.device, a.kind.rawValue, a.state.rawValue, a.grid, a.resident, a.location,
                             a.raisedAt.milliseconds, a.lastPressAt.milliseconds, a.pressCount, a.step,
                             JSON.array(a.paged.map { .string($0) }).text, a.ackedBy, a.ackedAt?.milliseconds,
                             a.resolvedAt?.milliseconds, a.resolvedBy, a.note, a.test, a.nextStepAt?.milliseconds])
    }

    /// Removes messages the broker acknowledged.
    public func deleteOutbox(_ seqs: [Int64]) throws {
        guard !seqs.isEmpty else { return }
        try db.write { db in
            try db.execute(sql: "DELETE FROM outbox WHERE seq IN (\(seqs.map { _ in "?" }.joined(separator: ",")))",
                           arguments: StatementArguments(seqs))
        }
    }

    // MARK: Reading

    public func outbox(after seq: Int64, limit: Int) throws -> [OutboxRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit]).map(Self.outboxRow)
        }
    }

    public func outboxSummary() throws -> (count: Int, oldest: Timestamp?, topics: [(topic: String, count: Int, since: Timestamp)]) {
        try db.read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0
            let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM outbox").map(Timestamp.init(milliseconds:))
            let topics = try Row.fetchAll(db, sql: "SELECT topic, COUNT(*) AS n, MIN(created_at) AS since FROM outbox GROUP BY topic ORDER BY MIN(seq)").map {
                (topic: $0["topic"] as String, count: $0["n"] as Int, since: Timestamp(milliseconds: $0["since"]))
            }
            return (count, oldest, topics)
        }
    }

    static func outboxRow(_ r: Row) -> OutboxRow {
        let payload: Data = r["payload"]
        return OutboxRow(seq: r["seq"], message: OutboundMessage(topic: r["topic"], payload: [UInt8](payload), retain: r["retain"], key: r["msg_key"]),
                         createdAt: Timestamp(milliseconds: r["created_at"]))
    }

    public func openAlerts() throws -> [Alert] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE state IN ('open', 'acked') ORDER BY id").map(Self.alert) }
    }

    public func alerts(includeClosed: Bool, limit: Int = 200) throws -> [Alert] {
        try db.read { db in
            let sql = includeClosed ? "SELECT * FROM alerts ORDER BY id DESC LIMIT ?"
                                    : "SELECT * FROM alerts WHERE state IN ('open', 'acked') ORDER BY id DESC LIMIT ?"
            return try Row.fetchAll(db, sql: sql, arguments: [limit]).map(Self.alert)
        }
    }

    public func alert(id: String) throws -> Alert? {
        try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM alerts WHERE id = ?", arguments: [id]).map(Self.alert) }
    }

    public func events(alert id: String) throws -> [GatewayEvent] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM events WHERE alert_id = ? ORDER BY id", arguments: [id]).compactMap(Self.event) }
    }

    public func devices() throws -> [DeviceState] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM devices ORDER BY id").map {
                DeviceState(id: $0["id"], online: $0["online"], lastSeen: ($0["last_seen"] as Int64?).map(Timestamp.init(milliseconds:)), batteryLow: $0["battery_low"])
            }
        }
    }

    /// The greatest ids ever issued, so new ids sort after them even if the clock went back.
    public func greatestIDs() throws -> [String] {
        try db.read { db in
            [try String.fetchOne(db, sql: "SELECT MAX(id) FROM alerts"),
             try String.fetchOne(db, sql: "SELECT MAX(id) FROM events"),
             try String.fetchOne(db, sql: "SELECT MAX(msg_key) FROM outbox")].compactMap { $0 }
        }
    }

    /// Closes the database (checkpointing the WAL) at shutdown.
    public func close() throws { try db.close() }

    /// A quick liveness probe for the watchdog: the store answers a read.
    public func isHealthy() -> Bool { (try? db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1 }

    static func alert(_ r: Row) -> Alert {
        let paged = ((try? JSON.parse(r["paged"] as String))?.arrayValue ?? []).compactMap(\.stringValue)
        func ts(_ k: String) -> Timestamp? { (r[k] as Int64?).map(Timestamp.init(milliseconds:)) }
        return Alert(id: r["id"], device: r["device"], kind: EventKind(rawValue: r["kind"]) ?? .unknown,
                     state: AlertState(rawValue: r["state"]) ?? .open, grid: r["grid"], resident: r["resident"],
                     location: r["location"], raisedAt: ts("raised_at")!, lastPressAt: ts("last_press_at"),
                     pressCount: r["press_count"], step: r["step"], paged: paged, ackedBy: r["acked_by"],
                     ackedAt: ts("acked_at"), resolvedAt: ts("resolved_at"), resolvedBy: r["resolved_by"],
                     note: r["note"], test: r["test"], nextStepAt: ts("next_step_at"))
    }

    static func event(_ r: Row) -> GatewayEvent? {
        guard let driver = DriverKind(rawValue: r["driver"]), let kind = EventKind(rawValue: r["kind"]) else { return nil }
        let raw: Data = r["raw"]
        return GatewayEvent(id: r["id"], device: r["device"], driver: driver, address: r["address"], kind: kind, code: r["code"],
                            receivedAt: Timestamp(milliseconds: r["received_at"]), raw: [UInt8](raw), alertID: r["alert_id"], test: r["test"])
    }
}
