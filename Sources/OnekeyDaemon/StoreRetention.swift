import Foundation
import GRDB
import OnekeyCore

/// Retention and file size (CONTRACT §3 `[store] keep_days`): the runtime calls `pruneStep` on an
/// idle timer until it returns 0, then keeps calling it rarely (it checkpoints the WAL when idle).
extension Store {
    /// Deletes at most `batch` events and closed alerts older than `keepDays` (events first, oldest
    /// first). Freed pages are reused; with nothing to prune it VACUUMs a mostly free file. Never touches
    /// open or acked alerts, their events, or the outbox. With nothing to prune it checkpoints the
    /// WAL (PASSIVE: little to replay after a crash; the file keeps its blocks for the next commits
    /// to overwrite, StoreWALSpace.swift). No fsync of its own: a lost prune is redone.
    /// Returns the number of rows deleted.
    @discardableResult
    public func pruneStep(now: Timestamp, keepDays: Int, batch: Int = 500) throws -> Int {
        let cutoff = now.milliseconds - Int64(keepDays) * 86_400_000
        try flushDeletes()
        let deleted = try relaxed { db -> Int in
            try db.execute(sql: """
                DELETE FROM events WHERE id IN (
                    SELECT id FROM events WHERE received_at < ?
                    AND (alert_id IS NULL OR alert_id NOT IN (SELECT id FROM alerts WHERE state IN ('open', 'acked')))
                    ORDER BY id LIMIT ?)
                """, arguments: [cutoff, batch])
            var n = db.changesCount
            if n < batch {
                try db.execute(sql: """
                    DELETE FROM alerts WHERE rid IN (
                        SELECT rid FROM alerts WHERE state NOT IN ('open', 'acked')
                        AND COALESCE(resolved_at, last_press_at) < ? ORDER BY rid LIMIT ?)
                    """, arguments: [cutoff, batch - n])
                n += db.changesCount
            }
            return n
        }
        if deleted > 0 {
            try relaxed { db in try db.execute(sql: "PRAGMA incremental_vacuum") }  // no-op without auto_vacuum
        } else {
            try shrinkIfMostlyFree()
            try checkpoint(truncate: false)
        }
        return deleted
    }

    /// Without auto-vacuum, freed pages are reused by later inserts, so the file stays at its high
    /// water mark; once retention has freed more than half of it (and at least 256 pages), one
    /// VACUUM gives the space back. It needs free space about the size of the live data.
    func shrinkIfMostlyFree() throws {
        let (free, total) = try db.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0)
        }
        guard free >= 256, free * 2 > total else { return }
        try db.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
    }

    /// Copies the WAL into the database; `truncate` also cuts the file to zero bytes (before
    /// measuring the file: the commits after it append until the store is opened again).
    public func checkpoint(truncate: Bool = true) throws {
        let mode = truncate ? "TRUNCATE" : "PASSIVE"
        try db.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(\(mode))") }
        walFrameCount.frames.store(0, ordering: .relaxed)
    }

    /// Size of the database file and its WAL, in bytes.
    public func fileSizes() -> (database: Int, wal: Int) {
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p)[.size]) as? Int) ?? 0 }
        return (size(path), size(path + "-wal"))
    }
}
