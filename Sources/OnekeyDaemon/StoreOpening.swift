import Foundation
import CWalBuffer
import GRDB
import Glibc
import OnekeyCore
import OnekeyLinux

/// What opening the store found (the daemon logs `.replacedCorrupt` as critical and runs on).
public enum StoreOpening: Sendable, Equatable {
    /// No store existed (or an empty file): a new one was created.
    case created
    case opened
    /// A store of an older release was converted; `vacuumed` tells whether the one-time VACUUM
    /// (to 1 KiB pages) ran — it needs free space twice the file's size.
    case migrated(from: String, vacuumed: Bool)
    /// The file was not a readable SQLite database or failed `PRAGMA quick_check`: it (and its
    /// -wal/-shm) was renamed to `movedTo` and kept for inspection; a new store was created.
    case replacedCorrupt(reason: String, movedTo: String)
}

/// The store cannot be opened and must not be replaced (the directory or file is unreadable,
/// unwritable, or not a directory): the daemon exits with this message.
public struct StoreOpenError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension Store {
    static let currentSchema = "v2: lean pages, unattended, seq without sqlite_sequence"

    static func openRecovering(directory: String, path: String, synchronousFull: Bool, pageSize: Int, autoVacuum: Bool) throws -> (DatabaseQueue, StoreOpening) {
        try checkDirectory(directory)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if size != nil { try checkAccess(path) }
        let existed = (size ?? 0) > 0
        let config = configuration(synchronousFull: synchronousFull, pageSize: pageSize, autoVacuum: autoVacuum)
        do {
            let (queue, opening) = try openChecked(path: path, config: config, pageSize: pageSize, autoVacuum: autoVacuum)
            return (queue, existed ? opening : .created)
        } catch let reason as CorruptStore {
            let moved = try moveAside(path)
            let (queue, _) = try openChecked(path: path, config: config, pageSize: pageSize, autoVacuum: autoVacuum)
            return (queue, .replacedCorrupt(reason: reason.description, movedTo: moved))
        }
    }

    struct CorruptStore: Error, CustomStringConvertible { var description: String }

    /// Frames between automatic checkpoints (`wal_autocheckpoint`).
    static let walFrames = 4000

    /// Opens, checks and migrates; a failure that means "this file is damaged" becomes `CorruptStore`.
    static func openChecked(path: String, config: Configuration, pageSize: Int, autoVacuum: Bool) throws -> (DatabaseQueue, StoreOpening) {
        // Every store opens through the WAL-gathering VFS (CWalBuffer), registered as default —
        // outside the `do` below: failing to register says nothing about the file.
        let vfs = onekey_walbuffer_register()
        guard vfs == 0 else { throw DatabaseError(resultCode: ResultCode(rawValue: vfs), message: "cannot register the WAL VFS") }
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            let check = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            guard check == ["ok"] else {
                try? queue.close()
                throw CorruptStore(description: "quick_check: " + check.prefix(3).joined(separator: "; "))
            }
            let applied = try queue.read { db in try migrator.appliedIdentifiers(db) }
            try migrator.migrate(queue)
            guard applied.contains("v1: events, alerts, devices, outbox"), !applied.contains(currentSchema) else { return (queue, .opened) }
            let vacuumed = try compactOnce(queue, pageSize: pageSize, autoVacuum: autoVacuum)
            return (queue, .migrated(from: "v1", vacuumed: vacuumed))
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            throw CorruptStore(description: error.message ?? "\(error)")
        }
    }

    /// Converts an old store once: a new page size needs a VACUUM outside WAL.
    /// Returns false (and keeps the old layout) when it fails, e.g. for lack of space.
    static func compactOnce(_ queue: DatabaseQueue, pageSize: Int, autoVacuum: Bool) throws -> Bool {
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = DELETE")
            defer { try? db.execute(sql: "PRAGMA journal_mode = WAL") }
            try db.execute(sql: "PRAGMA page_size = \(pageSize)")
            try db.execute(sql: autoVacuum ? "PRAGMA auto_vacuum = INCREMENTAL" : "PRAGMA auto_vacuum = NONE")
            do { try db.execute(sql: "VACUUM") } catch { return false }
            return true
        }
    }

    static func checkDirectory(_ directory: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw StoreOpenError(description: "state directory \(directory) is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw StoreOpenError(description: "cannot create state directory \(directory): \(error.localizedDescription)")
            }
        }
        try checkAccess(directory)
    }

    static func checkAccess(_ path: String) throws {
        do { try syscall("access \(path)") { access(path, R_OK | W_OK) } } catch {
            throw StoreOpenError(description: "\(error) (running as uid \(getuid()); the store is left as it is)")
        }
    }

    /// Renames the store and its -wal/-shm to `onekeyd.sqlite.corrupt-YYYYMMDDTHHMMSSZ[.N]`.
    static func moveAside(_ path: String) throws -> String {
        var now = time(nil), tm = tm()
        gmtime_r(&now, &tm)
        let stamp = String(format: "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
        var target = path + ".corrupt-" + stamp
        var n = 1
        while FileManager.default.fileExists(atPath: target) { target = path + ".corrupt-" + stamp + ".\(n)"; n += 1 }
        for suffix in ["-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            try syscall("rename \(path + suffix)") { rename(path + suffix, target + suffix) }
        }
        try syscall("rename \(path)") { rename(path, target) }
        return target
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
        // v2: a press touches few pages. Events and devices are WITHOUT ROWID (one b-tree each, no
        // separate key index); events need no time index (their ULID ids sort by time). Alerts keep
        // a rowid: appending to a WITHOUT ROWID b-tree rebalances up to 5 pages per new alert
        // (measured), a rowid table appends to one leaf; they are updated in place. Outbox seqs
        // come from the store, not AUTOINCREMENT (no sqlite_sequence page).
        m.registerMigration(currentSchema) { db in
            try db.execute(sql: """
                CREATE TABLE events_v2 (
                    id TEXT PRIMARY KEY, device TEXT, driver TEXT NOT NULL, address TEXT NOT NULL,
                    kind TEXT NOT NULL, code TEXT NOT NULL, received_at INTEGER NOT NULL, raw BLOB NOT NULL,
                    alert_id TEXT, test INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
                INSERT INTO events_v2 SELECT id, device, driver, address, kind, code, received_at, raw, alert_id, test FROM events;
                DROP TABLE events;
                ALTER TABLE events_v2 RENAME TO events;
                CREATE INDEX events_alert ON events(alert_id) WHERE alert_id IS NOT NULL;

                CREATE TABLE alerts_v2 (
                    rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, device TEXT NOT NULL, kind TEXT NOT NULL,
                    state TEXT NOT NULL, grid TEXT NOT NULL, resident TEXT NOT NULL, location TEXT NOT NULL,
                    raised_at INTEGER NOT NULL, last_press_at INTEGER NOT NULL, press_count INTEGER NOT NULL,
                    step INTEGER NOT NULL, paged TEXT NOT NULL, acked_by TEXT, acked_at INTEGER,
                    resolved_at INTEGER, resolved_by TEXT, note TEXT, test INTEGER NOT NULL,
                    next_step_at INTEGER, unattended INTEGER NOT NULL DEFAULT 0);
                INSERT INTO alerts_v2 (id, device, kind, state, grid, resident, location, raised_at, last_press_at,
                    press_count, step, paged, acked_by, acked_at, resolved_at, resolved_by, note, test, next_step_at)
                    SELECT id, device, kind, state, grid, resident, location, raised_at, last_press_at,
                    press_count, step, paged, acked_by, acked_at, resolved_at, resolved_by, note, test, next_step_at
                    FROM alerts ORDER BY id;
                DROP TABLE alerts;
                ALTER TABLE alerts_v2 RENAME TO alerts;

                CREATE TABLE devices_v2 (
                    id TEXT PRIMARY KEY, online INTEGER NOT NULL, last_seen INTEGER, battery_low INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO devices_v2 SELECT id, online, last_seen, battery_low FROM devices;
                DROP TABLE devices;
                ALTER TABLE devices_v2 RENAME TO devices;

                CREATE TABLE outbox_v2 (
                    seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                    retain INTEGER NOT NULL, msg_key TEXT NOT NULL, created_at INTEGER NOT NULL);
                INSERT INTO outbox_v2 SELECT seq, topic, payload, retain, msg_key, created_at FROM outbox;
                DROP TABLE outbox;
                ALTER TABLE outbox_v2 RENAME TO outbox;
                """)
        }
        registerSecondPath(&m)
        // v4: a press writes no secondary index but the alert id's. `events(alert:)` scans the
        // alert's time range of the (time-sorted) event ids; open alerts are read once at start
        // by a scan of the alerts table (bounded by retention).
        m.registerMigration("v4: no secondary indexes on the press path") { db in
            try db.execute(sql: "DROP INDEX IF EXISTS events_alert; DROP INDEX IF EXISTS alerts_open")
        }
        // v5: a commit's outbox messages in one deflated row (OutboxBatch): one leaf page per
        // press instead of four or five. Waiting messages are carried over, same seqs and ids.
        m.registerMigration("v5: outbox batches") { db in
            try db.execute(sql: """
                CREATE TABLE outbox_batches (
                    first_seq INTEGER PRIMARY KEY, count INTEGER NOT NULL, created_at INTEGER NOT NULL,
                    last_key TEXT NOT NULL, body BLOB NOT NULL, snapshot INTEGER NOT NULL DEFAULT 0)
                """)
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM outbox ORDER BY seq").map { r in
                let payload: Data = r["payload"]
                return OutboxRow(seq: r["seq"], message: OutboundMessage(topic: r["topic"], payload: [UInt8](payload), retain: r["retain"], key: r["msg_key"]),
                                 createdAt: Timestamp(milliseconds: r["created_at"]))
            }
            var deflater = Deflater()
            for b in OutboxBatch.grouping(rows) {
                try insert(b, body: b.body(&deflater), snapshot: false, db)
            }
            try db.execute(sql: "DROP TABLE outbox")
        }
        return m
    }
}
