import CWalBuffer
import Foundation
import GRDB
import OnekeyCore
import Synchronization

/// A message waiting in the outbox.
public struct OutboxRow: Sendable, Equatable {
    public var seq: Int64
    public var message: OutboundMessage
    public var createdAt: Timestamp

    public init(seq: Int64, message: OutboundMessage, createdAt: Timestamp) {
        self.seq = seq; self.message = message; self.createdAt = createdAt
    }
}

/// What one transaction writes: events, alerts and devices in their latest state, and outbox rows
/// whose `seq` the caller already allocated (`Store.allocateSeqs`).
public struct StoreBatch: Sendable {
    public var events: [GatewayEvent] = []
    public var alerts: [Alert] = []
    public var devices: [DeviceState] = []
    public var outbox: [OutboxRow] = []
    /// The outbox rows are a retained-state snapshot (`Store.snapshotWaiting`).
    public var isRetainedSnapshot = false

    public init() {}
    public var isEmpty: Bool { events.isEmpty && alerts.isEmpty && devices.isEmpty && outbox.isEmpty }
}

/// The SQLite store in `state_dir` (`onekeyd.sqlite`): every event, alert, device state and every
/// message for the broker. One transaction per input: the state change and the messages it causes
/// are committed together, before anything is published.
///
/// - Durability: WAL with `synchronous = FULL`: a commit returns only after the WAL is fdatasynced.
///   Outbox deletes and retention run with `synchronous = NORMAL` (no fsync of their own; a lost
///   delete only resends a message with the same `msg_id`, a lost prune is redone).
/// - `locking_mode = EXCLUSIVE`: no other process opens the file (`StoreLock` guards the directory),
///   so no per-transaction fcntl locks and no `-shm` file.
/// - Few pages per press: 512-byte pages, events and devices `WITHOUT ROWID`, alerts updated in place
///   (upsert, no delete+insert), the outbox keyed by a seq the store counts in memory (no
///   `sqlite_sequence` page), a commit's messages in one deflated row (`OutboxBatch`).
///   See `docs/benchmarks.md` for the measured bytes.
/// - Bounded file: `auto_vacuum = INCREMENTAL`, `pruneStep` (StoreRetention.swift),
///   `journal_size_limit`, PASSIVE checkpoints when idle and every `walFrames` frames — run by
///   the gateway after the pages are out, never inside a commit (StoreCheckpoint.swift).
/// - Commits overwrite WAL blocks, never append: the WAL is extended to its working size at open
///   (StoreWALSpace.swift).
/// - Opening a corrupt file moves it aside and starts a new store (StoreOpening.swift).
public final class Store: Sendable {
    public let path: String
    /// What happened when the store was opened (the daemon logs `.replacedCorrupt` as critical).
    public let opening: StoreOpening
    let db: DatabaseQueue
    let synchronousFull: Bool
    /// The greatest outbox seq issued in this run (never reused while the process lives).
    private let lastSeq: Mutex<Int64>
    /// Which stored outbox messages the broker has not acknowledged yet, by batch row.
    private let ledger: Mutex<OutboxLedger>
    /// Batch rows whose every message was delivered, not yet deleted: folded into the next commit
    /// (the freed leaf is reused by that commit's insert, so the page is written once) or flushed
    /// by `flushDeletes`.
    private let queuedDeletes = Mutex<[Int64]>([])
    static let deleteFlushThreshold = 128
    private let deflater = Mutex(Deflater())
    /// Frames in the WAL after the last commit (StoreCheckpoint.swift).
    let walFrameCount = WALFrameCount()
    /// Batch rows found unreadable (and dropped) since the daemon last asked: `takeDamage()`.
    private let damage = Mutex<[String]>([])

    /// Page size for new stores (measured: see `StoreTests.bytesPerPress`).
    /// 512 B, SQLite's smallest: a press changes about as many pages at any size (a header, a
    /// leaf per table, ~1.8 KB of outbox JSON), so smaller pages are fewer bytes and fewer 4 KiB
    /// blocks dirtied per commit — measured per press: 512 → 7.5 KB of WAL / 11.6 KB write_bytes,
    /// 1024 → 11.3 / 15.5, 4096 → 23.5 / 27.6. Stores made before keep their page size.
    public static let defaultPageSize = 512

    public init(directory: String, synchronousFull: Bool = true, pageSize: Int = Store.defaultPageSize,
                autoVacuum: Bool = Store.defaultAutoVacuum) throws {
        self.synchronousFull = synchronousFull
        path = directory + "/" + Self.fileName
        let (queue, opening) = try Self.openRecovering(directory: directory, path: path, synchronousFull: synchronousFull, pageSize: pageSize, autoVacuum: autoVacuum)
        db = queue
        self.opening = opening
        let batches = try queue.read { db in try Row.fetchAll(db, sql: "SELECT first_seq, count FROM outbox_batches") }
        var l = OutboxLedger()
        for r in batches { l.add(firstSeq: r[0], count: r[1]) }
        lastSeq = Mutex(batches.map { ($0[0] as Int64) + ($0[1] as Int64) - 1 }.max() ?? 0)
        ledger = Mutex(l)
        try Self.countWALFrames(queue, into: walFrameCount)
        preallocateWAL()
    }

    public static let fileName = "onekeyd.sqlite"

    /// Incremental auto-vacuum keeps pointer-map pages, written on every page allocation (measured:
    /// see `StoreTests.bytesPerPress`); without it, freed pages are reused and `pruneStep` VACUUMs
    /// when more than half the file is free.
    public static let defaultAutoVacuum = false

    static func configuration(synchronousFull: Bool, pageSize: Int, autoVacuum: Bool) -> Configuration {
        var config = Configuration()
        config.label = "onekeyd.store"
        config.busyMode = .immediateError
        config.prepareDatabase { db in
            // Order matters: page size and auto_vacuum apply only to a file with no tables yet,
            // and locking_mode must precede WAL so the wal-index lives in memory, not in -shm.
            try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
            // Debian builds SQLite with SECURE_DELETE: every freed outbox row would be zeroed, i.e.
            // written, again. Delivered messages need no shredding; retention VACUUMs.
            try db.execute(sql: "PRAGMA secure_delete = OFF")
            try db.execute(sql: "PRAGMA page_size = \(pageSize)")
            try db.execute(sql: autoVacuum ? "PRAGMA auto_vacuum = INCREMENTAL" : "PRAGMA auto_vacuum = NONE")
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: synchronousFull ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            // A checkpoint writes every page the WAL holds once; the hot pages (header, the
            // tables' right edges) are in every interval, so a longer one copies them into the
            // database less often. Usually at most ~2 MiB of WAL (4,000 frames of 536 bytes) to
            // replay after a crash; four times that after a flood that starved the checkpoint timer.
            try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
            // Checkpoints run after the pages are out, not inside a commit (StoreCheckpoint.swift).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        return config
    }

    // MARK: Writing

    /// Reserves `count` consecutive outbox seqs; returns the first. Seqs only grow within a run.
    public func allocateSeqs(_ count: Int) -> Int64 {
        lastSeq.withLock { last in
            let first = last + 1
            last += Int64(count)
            return first
        }
    }

    /// Commits one batch in one transaction (durable unless the store was opened relaxed), with
    /// the queued outbox deletes folded in.
    public func write(_ batch: StoreBatch) throws {
        guard !batch.isEmpty else { return }
        let outbox = OutboxBatch.grouping(batch.outbox)
        let bodies = deflater.withLock { d in outbox.map { $0.body(&d) } }
        let deletes = queuedDeletes.withLock { q in defer { q = [] }; return q }
        do {
            try db.writeWithoutTransaction { db in
                try Self.transaction(db) {
                    try Self.delete(deletes, db)
                    try Self.insert(batch, db)
                    for (b, body) in zip(outbox, bodies) { try Self.insert(b, body: body, snapshot: batch.isRetainedSnapshot, db) }
                }
            }
        } catch {
            queuedDeletes.withLock { $0 = deletes + $0 }
            throw error
        }
        ledger.withLock { l in for b in outbox { l.add(firstSeq: b.firstSeq, count: Int64(b.messages.count)) } }
        checkpointIfFlooded()
    }

    /// Readies the outbox compressor for the next commit (its reset and dictionary load), off the
    /// path of the next press: call once the current pages are out.
    public func prepareNextCommit() { deflater.withLock { $0.prime() } }

    /// Compatibility for today's gateway: allocates seqs, commits, returns the outbox rows added.
    @discardableResult
    public func commit(_ outcome: DeskOutcome, at t: Timestamp) throws -> [OutboxRow] {
        let batch = Self.batch(outcome, at: t, firstSeq: allocateSeqs(outcome.outbox.count))
        try write(batch)
        return batch.outbox
    }

    static func batch(_ outcome: DeskOutcome, at t: Timestamp, firstSeq: Int64) -> StoreBatch {
        var b = StoreBatch()
        b.events = outcome.events
        b.alerts = outcome.alerts
        b.devices = outcome.devices
        b.outbox = outcome.outbox.enumerated().map { OutboxRow(seq: firstSeq + Int64($0.offset), message: $0.element, createdAt: t) }
        b.isRetainedSnapshot = outcome.isRetainedSnapshot
        return b
    }

    static let insertEvent = """
        INSERT OR REPLACE INTO events (id, device, driver, address, kind, code, received_at, raw, alert_id, test)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let upsertDevice = """
        INSERT INTO devices (id, online, last_seen, battery_low) VALUES (?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, battery_low = excluded.battery_low
        """
    static let insertOutbox = "INSERT OR REPLACE INTO outbox_batches (first_seq, count, created_at, last_key, body, snapshot) VALUES (?, ?, ?, ?, ?, ?)"

    /// One outbox row (the writer and the v5 migration).
    static func insert(_ b: OutboxBatch, body: [UInt8], snapshot: Bool, _ db: Database) throws {
        var s = StatementBinder(try db.cachedStatement(sql: insertOutbox))
        s.bind(b.firstSeq); s.bind(b.messages.count); s.bind(b.createdAt); s.bind(b.lastKey); s.bind(blob: body); s.bind(snapshot)
        try s.execute(db)
    }

    /// Stored messages the broker has not acknowledged (no query: the ledger's count).
    public var undeliveredCount: Int { ledger.withLock { $0.pendingCount } }

    /// Whether a retained-state snapshot queued earlier (by this run or one before it) is still
    /// waiting for the broker: then a new one adds nothing — every later change is queued behind
    /// it — and a crash loop would only pile copies in front of new pages.
    public func snapshotWaiting() throws -> Bool {
        let rows = try db.read { db in try Int64.fetchAll(db, sql: "SELECT first_seq FROM outbox_batches WHERE snapshot = 1") }
        return ledger.withLock { l in rows.contains { l.isWaiting(row: $0) } }
    }

    /// Statements are compiled once per connection (`cachedStatement`): parsing and authorizing
    /// SQL was a fifth of a press's CPU time.
    static func insert(_ b: StoreBatch, _ db: Database) throws {
        if !b.events.isEmpty {
            var s = StatementBinder(try db.cachedStatement(sql: insertEvent))
            for e in b.events {
                s.bind(e.id); s.bind(e.device); s.bind(e.driver.rawValue); s.bind(e.address); s.bind(e.kind.rawValue)
                s.bind(e.code); s.bind(e.receivedAt); s.bind(blob: e.raw); s.bind(e.alertID); s.bind(e.test)
                try s.execute(db)
            }
        }
        for a in b.alerts { try upsert(a, db) }
        if !b.devices.isEmpty {
            var s = StatementBinder(try db.cachedStatement(sql: upsertDevice))
            for d in b.devices {
                s.bind(d.id); s.bind(d.online); s.bind(d.lastSeen); s.bind(d.batteryLow)
                try s.execute(db)
            }
        }
    }

    static let alertColumns = ["id", "device", "kind", "state", "grid", "resident", "location", "raised_at", "last_press_at",
                               "press_count", "step", "paged", "acked_by", "acked_at", "resolved_at", "resolved_by", "note",
                               "test", "next_step_at", "unattended"]
    static let upsertAlert = "INSERT INTO alerts (\(alertColumns.joined(separator: ", "))) VALUES (\(alertColumns.map { _ in "?" }.joined(separator: ", ")))"
        + " ON CONFLICT(id) DO UPDATE SET " + alertColumns.dropFirst().map { "\($0) = excluded.\($0)" }.joined(separator: ", ")

    /// Inserts or updates in place (an update rewrites one leaf page, not the unique index).
    static func upsert(_ a: Alert, _ db: Database) throws {
        var s = StatementBinder(try db.cachedStatement(sql: upsertAlert))
        s.bind(a.id); s.bind(a.device); s.bind(a.kind.rawValue); s.bind(a.state.rawValue); s.bind(a.grid)
        s.bind(a.resident); s.bind(a.location); s.bind(a.raisedAt); s.bind(a.lastPressAt); s.bind(a.pressCount)
        s.bind(a.step); s.bind(JSON.array(a.paged.map { .string($0) }).text); s.bind(a.ackedBy); s.bind(a.ackedAt)
        s.bind(a.resolvedAt); s.bind(a.resolvedBy); s.bind(a.note); s.bind(a.test); s.bind(a.nextStepAt); s.bind(a.unattended)
        try s.execute(db)
    }

    /// Removes messages the broker acknowledged, without an fsync of its own: a batch row whose
    /// every message is delivered is queued and deleted inside the next commit, or by
    /// `flushDeletes` (idle timer, `pruneStep`, `close`, or when 128 rows are queued). A delete
    /// lost in a crash only resends messages with their `msg_id`s (so does a crash between the
    /// deliveries of one row's messages). Seqs the store does not hold are ignored.
    public func deleteOutbox(_ seqs: [Int64]) throws {
        guard !seqs.isEmpty else { return }
        let done = ledger.withLock { l in seqs.compactMap { l.deliver($0) } }
        guard !done.isEmpty else { return }
        let queued = queuedDeletes.withLock { q in q += done; return q.count }
        if queued >= Self.deleteFlushThreshold { try flushDeletes() }
    }

    /// Writes the queued deletes now, with `synchronous = NORMAL` (no fsync).
    public func flushDeletes() throws {
        let deletes = queuedDeletes.withLock { q in defer { q = [] }; return q }
        guard !deletes.isEmpty else { return }
        do { try relaxed { db in try Self.delete(deletes, db) } } catch {
            queuedDeletes.withLock { $0 = deletes + $0 }
            throw error
        }
    }

    /// One write transaction whose BEGIN and COMMIT are compiled once (`Database.inTransaction`
    /// parses both on every call: ~10 µs of a press's path); rolled back if anything in it fails.
    static func transaction(_ db: Database, _ body: () throws -> Void) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
        do {
            try body()
            try db.cachedStatement(sql: "COMMIT").execute()
        } catch {
            // A failed COMMIT (SQLITE_FULL, an I/O error) may have rolled back already.
            if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
            throw error
        }
    }

    /// WAL writes SQLite made and writes that reached the file through the gathering VFS
    /// (`CWalBuffer`), over the process: for tests and the benchmark.
    public static var walWrites: (gathered: Int, flushed: Int) {
        var g: Int64 = 0, f: Int64 = 0
        onekey_walbuffer_counts(&g, &f)
        return (Int(g), Int(f))
    }

    static let deleteOutboxRow = "DELETE FROM outbox_batches WHERE first_seq = ?"

    static func delete(_ seqs: [Int64], _ db: Database) throws {
        // The usual case, a press's commit folding in the row its predecessor's PUBACKs freed:
        // one compiled statement per row instead of compiling an IN list for each count.
        if seqs.count <= 16 {
            var statement = StatementBinder(try db.cachedStatement(sql: deleteOutboxRow))
            for seq in seqs { statement.bind(seq); try statement.execute(db) }
            return
        }
        for chunk in stride(from: 0, to: seqs.count, by: 500).map({ Array(seqs[$0..<min($0 + 500, seqs.count)]) }) {
            try db.execute(sql: "DELETE FROM outbox_batches WHERE first_seq IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                           arguments: StatementArguments(chunk))
        }
    }

    /// Runs one transaction with `synchronous = NORMAL` (no fsync), then restores the setting.
    func relaxed<T>(_ body: (Database) throws -> T) throws -> T {
        try db.writeWithoutTransaction { db in
            if synchronousFull { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            defer { if synchronousFull { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
            var result: T?
            try db.inTransaction {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    // MARK: Reading

    static let batchesAfter = """
        SELECT first_seq, count, created_at, body FROM outbox_batches
        WHERE first_seq > ? AND first_seq + count > ? ORDER BY first_seq LIMIT ?
        """

    /// Undelivered messages after `seq`, ascending, at most `limit`. A row that cannot be read
    /// is dropped (its messages are lost: reported by `takeDamage`), so it cannot wedge the outbox.
    public func outbox(after seq: Int64, limit: Int) throws -> [OutboxRow] {
        var out: [OutboxRow] = []
        // A batch holding seqs after `seq` starts at most `maxMessages - 1` before it.
        var from = seq - Int64(OutboxBatch.maxMessages)
        while out.count < limit {
            let fetched = try db.read { db in
                try Row.fetchAll(db.cachedStatement(sql: Self.batchesAfter), arguments: [from, seq + 1, 32])
            }
            for r in fetched {
                from = r[0]
                guard let batch = readBatch(r) else { continue }
                let pending = ledger.withLock { l in batch.rows.filter { $0.seq > seq && l.isPending($0.seq) } }
                out += pending.prefix(limit - out.count)
                if out.count >= limit { break }
            }
            if fetched.count < 32 { break }
        }
        return out
    }

    private func readBatch(_ r: Row) -> OutboxBatch? {
        let first: Int64 = r[0], count: Int64 = r[1]
        do {
            let body: Data = r[3]
            return try OutboxBatch.decode(firstSeq: first, count: Int(count), createdAt: Timestamp(milliseconds: r[2]), body: [UInt8](body))
        } catch {
            let lost = ledger.withLock { l in l.drop(firstSeq: first, count: count) }
            damage.withLock { $0.append("\(error): \(lost) undelivered message(s) lost") }
            queuedDeletes.withLock { $0.append(first) }
            return nil
        }
    }

    /// What was found unreadable since the last call (the daemon logs it as critical).
    public func takeDamage() -> [String] { damage.withLock { d in defer { d = [] }; return d } }

    /// Undelivered messages: how many, the oldest, and per topic (reads every stored batch: an
    /// operator's command, not the alarm path).
    public func outboxSummary() throws -> (count: Int, oldest: Timestamp?, topics: [(topic: String, count: Int, since: Timestamp)]) {
        try flushDeletes()
        var topics: [String: (count: Int, since: Timestamp, order: Int64)] = [:]
        var oldest: Timestamp?
        var after: Int64 = 0
        while true {
            let rows = try outbox(after: after, limit: 1024)
            guard let last = rows.last else { break }
            for row in rows {
                oldest = min(oldest ?? row.createdAt, row.createdAt)
                let t = topics[row.message.topic]
                topics[row.message.topic] = ((t?.count ?? 0) + 1, min(t?.since ?? row.createdAt, row.createdAt), t?.order ?? row.seq)
            }
            after = last.seq
        }
        let list = topics.sorted { $0.value.order < $1.value.order }.map { (topic: $0.key, count: $0.value.count, since: $0.value.since) }
        return (undeliveredCount, oldest, list)
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

    /// The events of one alert: no index on `alert_id` (one page less per press), so the scan is
    /// bounded by the alert's life in the time-sorted event ids (issued by the same source as the
    /// alert's id, never going back): from a minute before it was raised to a day after it was
    /// resolved (ids run ahead of a wall clock stepped back by less than that), or to now while open.
    public func events(alert id: String, limit: Int = 10_000) throws -> [GatewayEvent] {
        try db.read { db in
            guard let a = try Row.fetchOne(db, sql: "SELECT raised_at, resolved_at FROM alerts WHERE id = ?", arguments: [id]) else { return [] }
            let low = IdentifierSource.prefix(at: Timestamp(milliseconds: (a["raised_at"] as Int64) - 60_000))
            let high = (a["resolved_at"] as Int64?).map { resolved in
                IdentifierSource.prefix(at: Timestamp(milliseconds: max(resolved, IdentifierSource.milliseconds(of: id) ?? 0) + 86_400_000)) + "~"
            } ?? "~"
            return try Row.fetchAll(db, sql: "SELECT * FROM events WHERE id >= ? AND id <= ? AND alert_id = ? ORDER BY id LIMIT ?",
                                    arguments: [low, high, id, limit]).compactMap(Self.event)
        }
    }

    /// Events received at or after `since` (oldest first, at most `limit`): the press deduplicator
    /// is seeded with them at start, so repeat frames still buffered across a restart stay repeats.
    /// Event ids are time-sortable and never go back (IdentifierSource), so the primary key bounds
    /// the search (no extra index written per press); a wall clock stepped back only widens it.
    public func recentEvents(since: Timestamp, limit: Int = 10_000) throws -> [GatewayEvent] {
        let lowest = IdentifierSource.prefix(at: since.adding(milliseconds: -60_000))
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE id >= ? AND received_at >= ? ORDER BY id LIMIT ?",
                             arguments: [lowest, since.milliseconds, limit]).compactMap(Self.event)
        }
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
             try String.fetchOne(db, sql: "SELECT MAX(last_key) FROM outbox_batches")].compactMap { $0 }
        }
    }

    /// Writes queued deletes and closes the database (checkpointing the WAL) at shutdown.
    public func close() throws {
        try? flushDeletes()
        try db.close()
    }

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
                     note: r["note"], test: r["test"], nextStepAt: ts("next_step_at"), unattended: r["unattended"])
    }

    static func event(_ r: Row) -> GatewayEvent? {
        guard let driver = DriverKind(rawValue: r["driver"]), let kind = EventKind(rawValue: r["kind"]) else { return nil }
        let raw: Data = r["raw"]
        return GatewayEvent(id: r["id"], device: r["device"], driver: driver, address: r["address"], kind: kind, code: r["code"],
                            receivedAt: Timestamp(milliseconds: r["received_at"]), raw: [UInt8](raw), alertID: r["alert_id"], test: r["test"])
    }
}

/// Which messages of the stored batch rows are still undelivered (in memory; rebuilt at open
/// with every stored message undelivered).
struct OutboxLedger {
    /// Undelivered seq → the first seq of its batch row.
    private var batchOf: [Int64: Int64] = [:]
    /// Batch row → how many of its messages are undelivered.
    private var remaining: [Int64: Int64] = [:]

    var pendingCount: Int { batchOf.count }
    func isPending(_ seq: Int64) -> Bool { batchOf[seq] != nil }
    /// Whether the batch row starting at `first` has a message not yet delivered.
    func isWaiting(row first: Int64) -> Bool { remaining[first] != nil }

    mutating func add(firstSeq: Int64, count: Int64) {
        guard count > 0 else { return }
        for s in firstSeq..<(firstSeq + count) where batchOf.updateValue(firstSeq, forKey: s) == nil {
            remaining[firstSeq, default: 0] += 1
        }
    }

    /// Marks `seq` delivered; returns its batch row's first seq when that was its last message.
    mutating func deliver(_ seq: Int64) -> Int64? {
        guard let first = batchOf.removeValue(forKey: seq), let left = remaining[first] else { return nil }
        if left <= 1 { remaining[first] = nil; return first }
        remaining[first] = left - 1
        return nil
    }

    /// Forgets a batch row's messages; returns how many were undelivered.
    mutating func drop(firstSeq: Int64, count: Int64) -> Int {
        remaining[firstSeq] = nil
        var n = 0
        for s in firstSeq..<(firstSeq + max(count, 0)) where batchOf[s] == firstSeq {
            batchOf[s] = nil
            n += 1
        }
        return n
    }
}
