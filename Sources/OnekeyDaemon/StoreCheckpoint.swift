import GRDB
import GRDBSQLite
import Synchronization

/// Checkpoints happen after a press's pages are out, never inside its commit. SQLite's
/// `wal_autocheckpoint` runs the checkpoint in the commit that crosses the limit, before
/// `COMMIT` returns: that press's page waited for ~700 page reads and writes (measured: 3–15 ms,
/// the bench's worst frame→page). Instead `wal_autocheckpoint` is 0, a WAL hook counts the
/// frames after each commit, and the gateway calls `checkpointIfDue` from a loop timer once the
/// current wake-up's pages are published. A flood that never lets that timer run is bounded by
/// `write` itself checkpointing at four times the limit.
extension Store {
    /// Frames in the WAL after the last commit, as SQLite's WAL hook reports them.
    final class WALFrameCount: Sendable {
        let frames = Atomic<Int>(0)
    }

    /// Replaces SQLite's auto-checkpoint hook (off: `wal_autocheckpoint = 0`) with one that only counts.
    static func countWALFrames(_ queue: DatabaseQueue, into counter: WALFrameCount) throws {
        try queue.writeWithoutTransaction { db in
            _ = sqlite3_wal_hook(db.sqliteConnection, { context, _, _, n in
                Unmanaged<WALFrameCount>.fromOpaque(context!).takeUnretainedValue().frames.store(Int(n), ordering: .relaxed)
                return SQLITE_OK
            }, Unmanaged.passUnretained(counter).toOpaque())
        }
    }

    /// The WAL holds `walFrames` frames or more: time to checkpoint, off the alarm path.
    public var checkpointDue: Bool { walFrameCount.frames.load(ordering: .relaxed) >= Self.walFrames }

    /// Checkpoints (PASSIVE) if `checkpointDue`; returns whether it did.
    @discardableResult
    public func checkpointIfDue() throws -> Bool {
        guard checkpointDue else { return false }
        try checkpoint(truncate: false)
        return true
    }

    /// After a commit: only a flood that starved the gateway's checkpoint timer checkpoints here.
    func checkpointIfFlooded() {
        guard walFrameCount.frames.load(ordering: .relaxed) >= 4 * Self.walFrames else { return }
        try? checkpoint(truncate: false)  // a failure is retried by the next commit or the timer
    }
}
