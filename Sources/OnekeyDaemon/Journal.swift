import GRDB
import OnekeyCore
import OnekeyLinux

/// Between the gateway and the store (CONTRACT §10): stores each outcome, or — while the store
/// cannot write (disk full, I/O error, read-only) — holds it in memory, in order, and writes it
/// all once the store works again. The outbox the gateway sees is one sequence, ordered by seq,
/// of stored and held messages, so a page is never dropped because the store failed.
///
/// API (one thread: the event loop that owns the store):
/// ```
/// let journal = try Journal(store: store)
/// let r = journal.record(outcome, at: now)     // every outcome; r.durable false → NAK a Sur-Gard frame
///     r.messages  // its outbox rows with seqs, stored or held (publish via pending(after:))
///     r.log       // a critical line to log, or nil (first failure, then at most once a minute)
/// journal.pending(after: sentThrough, limit: n)  // what to publish next, stored and held, by seq
/// journal.delivered(seqs)                        // PUBACKed: held ones forgotten, stored ones deleted (no fsync)
/// let line = journal.retry()                     // timer (every 5 s): writes what is held (≤ 20,000 rows a
///                                                // call; again soon while held > 0); a line to log or nil
/// journal.fault    // String? for `status` and STATUS=; nil when the store writes
/// journal.depth    // undelivered messages, stored + held
/// journal.heldMessages, journal.heldEvents, journal.dropped
/// ```
/// Held items are bounded (`heldLimit` messages and as many events, default 100,000 each, plus a
/// tenth of slack): beyond, the oldest held are dropped and counted in `dropped` and in the fault
/// line, never silently.
/// Held alerts and devices are kept in their latest state only (one per id).
public final class Journal {
    public struct Recorded {
        /// On disk: a Sur-Gard message may be ACKed. False: it is held in memory (NAK it).
        public var durable: Bool
        public var messages: [OutboxRow]
        /// A line to log as critical, or nil (rate limited).
        public var log: String?
    }

    public let store: Store
    public let heldLimit: Int
    /// Rows (events + messages) `retry` writes per call, in transactions of `retryChunk`.
    public let retryBudget: Int
    public let retryChunk = 1000
    public private(set) var fault: String?
    public private(set) var dropped = 0

    private var heldEventList: [GatewayEvent] = []
    private var heldAlerts: [String: Alert] = [:]
    private var heldDevices: [String: DeviceState] = [:]
    /// Held outbox rows, ascending seq; `deliveredHeld` are skipped and compacted away lazily.
    private var heldOutbox: [OutboxRow] = []
    private var deliveredHeld: Set<Int64> = []
    /// Deletes of delivered stored rows that failed; tried again by `retry`.
    private var pendingDeletes: [Int64] = []
    private var lastFaultLog: UInt64?
    private let now: () -> UInt64

    public init(store: Store, heldLimit: Int = 100_000, retryBudget: Int = 20_000,
                monotonic: @escaping () -> UInt64 = monotonicNanos) throws {
        self.store = store
        self.heldLimit = heldLimit
        self.retryBudget = retryBudget
        self.now = monotonic
    }

    public var heldMessages: Int { heldOutbox.count - deliveredHeld.count }
    public var heldEvents: Int { heldEventList.count }
    /// Undelivered messages, stored (the store's own count) and held.
    public var depth: Int { store.undeliveredCount + heldMessages }
    /// Outcomes are held in memory: nothing new is stored until `retry` has written them.
    public var isHolding: Bool { !heldEventList.isEmpty || !heldAlerts.isEmpty || !heldDevices.isEmpty || !heldOutbox.isEmpty }

    // MARK: Writing

    /// Stores the outcome in one durable transaction; once a write has failed, holds every outcome
    /// (no write attempt on the alarm path) until `retry` has written everything held, so the
    /// order of the outbox is kept.
    public func record(_ outcome: DeskOutcome, at t: Timestamp) -> Recorded {
        guard outcome.changesState else { return Recorded(durable: !isHolding, messages: [], log: nil) }
        let batch = Store.batch(outcome, at: t, firstSeq: store.allocateSeqs(outcome.outbox.count))
        if isHolding {
            hold(batch)
            return Recorded(durable: false, messages: batch.outbox, log: faultLine(nil))
        }
        do {
            try store.write(batch)
            return Recorded(durable: true, messages: batch.outbox, log: nil)
        } catch {
            hold(batch)
            return Recorded(durable: false, messages: batch.outbox, log: faultLine(error))
        }
    }

    /// Writes what is held, oldest first, at most `retryBudget` rows per call (call it again soon
    /// while `heldMessages + heldEvents > 0` and it returned no fault). Alerts and devices go with
    /// the last transaction, after every message: a crash half-way never leaves an alert stored in
    /// a state whose pages are not. Also retries failed deletes. Returns a line to log, or nil.
    @discardableResult
    public func retry() -> String? {
        if !pendingDeletes.isEmpty, (try? store.deleteOutbox(pendingDeletes)) != nil { pendingDeletes = [] }
        guard isHolding else { return nil }
        compactHeld()
        var written = 0
        while isHolding && written < retryBudget {
            var b = StoreBatch()
            b.events = Array(heldEventList.prefix(retryChunk))
            b.outbox = Array(heldOutbox.prefix(retryChunk))
            let last = b.events.count == heldEventList.count && b.outbox.count == heldOutbox.count
            if last {
                b.alerts = Array(heldAlerts.values)
                b.devices = Array(heldDevices.values)
            }
            do { try store.write(b) } catch { return faultLine(error) }
            heldEventList.removeFirst(b.events.count)
            heldOutbox.removeFirst(b.outbox.count)
            written += b.events.count + b.outbox.count
            if last { heldAlerts = [:]; heldDevices = [:] }
        }
        guard !isHolding else { return nil }
        let line = recoveredLine()
        fault = nil
        lastFaultLog = nil
        return line
    }

    private func hold(_ batch: StoreBatch) {
        heldEventList += batch.events
        for a in batch.alerts { heldAlerts[a.id] = a }
        for d in batch.devices { heldDevices[d.id] = d }
        heldOutbox += batch.outbox
        // Trimmed in steps of a tenth of the limit, so a flood costs amortized O(1) per item.
        let slack = max(1, heldLimit / 10)
        if heldEventList.count > heldLimit + slack {
            let excess = heldEventList.count - heldLimit
            heldEventList.removeFirst(excess)
            dropped += excess
        }
        if heldOutbox.count > heldLimit + slack {
            compactHeld()
            let excess = max(0, heldOutbox.count - heldLimit)
            heldOutbox.removeFirst(excess)
            dropped += excess
        }
    }

    private func compactHeld() {
        guard !deliveredHeld.isEmpty else { return }
        heldOutbox.removeAll { deliveredHeld.contains($0.seq) }
        deliveredHeld = []
    }

    // MARK: The outbox as the gateway sees it

    /// Undelivered messages with seq > `after`, ascending, stored and held merged.
    public func pending(after: Int64, limit: Int) -> [OutboxRow] {
        var stored: [OutboxRow] = []
        if store.undeliveredCount > 0 {
            do { stored = try store.outbox(after: after, limit: limit) } catch {
                // Stored rows exist but cannot be read: sending held ones now would reorder them.
                if fault == nil { fault = "store cannot read the outbox: \(Self.describe(error))" }
                return []
            }
        }
        var held: [OutboxRow] = []
        var i = Self.firstIndex(in: heldOutbox, after: after)
        while i < heldOutbox.count && held.count < limit {
            if !deliveredHeld.contains(heldOutbox[i].seq) { held.append(heldOutbox[i]) }
            i += 1
        }
        if held.isEmpty { return stored }
        if stored.isEmpty { return held }
        return Array((stored + held).sorted { $0.seq < $1.seq }.prefix(limit))
    }

    /// The broker acknowledged these seqs.
    public func delivered(_ seqs: [Int64]) {
        var fromStore: [Int64] = []
        for s in seqs {
            let i = Self.firstIndex(in: heldOutbox, after: s - 1)
            if i < heldOutbox.count && heldOutbox[i].seq == s { deliveredHeld.insert(s) } else { fromStore.append(s) }
        }
        if deliveredHeld.count > 1024 { compactHeld() }
        guard !fromStore.isEmpty else { return }
        do { try store.deleteOutbox(fromStore) } catch { pendingDeletes += fromStore }
    }

    private static func firstIndex(in rows: [OutboxRow], after seq: Int64) -> Int {
        var lo = 0, hi = rows.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if rows[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    // MARK: Fault reporting

    public static let faultLogInterval: UInt64 = 60_000_000_000

    private func faultLine(_ error: Error?) -> String? {
        if let error { fault = "store cannot write (\(Self.describe(error)))" }
        let t = now()
        if let last = lastFaultLog, t &- last < Self.faultLogInterval { return nil }
        lastFaultLog = t
        return "\(fault ?? "store cannot write"): holding \(heldMessages) message(s) and \(heldEvents) event(s) in memory"
            + (dropped > 0 ? ", \(dropped) dropped beyond \(heldLimit)" : "") + "; Sur-Gard messages are NAKed"
    }

    private func recoveredLine() -> String {
        "store writes again: everything held in memory is stored" + (dropped > 0 ? " (\(dropped) item(s) had been dropped)" : "")
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError {
            let name: String
            switch e.resultCode {
            case .SQLITE_FULL: name = "SQLITE_FULL"
            case .SQLITE_IOERR: name = "SQLITE_IOERR"
            case .SQLITE_READONLY: name = "SQLITE_READONLY"
            case .SQLITE_CORRUPT: name = "SQLITE_CORRUPT"
            case .SQLITE_CANTOPEN: name = "SQLITE_CANTOPEN"
            default: name = "SQLite code \(e.extendedResultCode.rawValue)"
            }
            return "\(e.message ?? "error"), \(name)"
        }
        return "\(error)"
    }
}
