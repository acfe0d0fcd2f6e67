import Foundation
import Glibc
import OnekeyLinux

/// The WAL's blocks, written once when the store opens and only overwritten after that.
///
/// A commit that appends to the WAL file makes its `fdatasync` also write the file's new size and
/// block map through the file system's journal; a commit that overwrites blocks already in the
/// file syncs data only. Measured on the gateway's ext4 (a C loop, 1,000 commits of 5.4 KB each):
/// appending p50 184–238 µs, the same writes into blocks written before 102–132 µs. SQLite reuses
/// the WAL from its start after each checkpoint, so a long-running store overwrites — except
/// during the first cycle after it opens, and after each TRUNCATE checkpoint. So:
///   - at open, the WAL is extended with zeros to its working size (`walFrames` frames and some
///     headroom) and synced once: ~2.4 MB at 512-byte pages, once per start;
///   - the idle checkpoint is PASSIVE (StoreRetention.swift): the next commit restarts the WAL at
///     its start and the file keeps its blocks. `journal_size_limit` (4 MiB) stays above it.
/// Zeros past the last valid frame are not frames (their salts do not match the WAL header's):
/// recovery stops at the first of them, as it does at stale frames of an earlier cycle.
/// Device writes per commit fall too (no journal commit for the file's metadata): 17 → 9.6 KB.
/// On a file system with less than 16 times that space free, nothing is preallocated: the
/// space is left for presses (the WAL then grows as it always did).
extension Store {
    /// Bytes the WAL is extended to at open, for this store's page size.
    func walWorkingSize(pageSize: Int) -> Int {
        let frames = Self.walFrames + Self.walFrames / 8
        let bytes = 32 + frames * (pageSize + 24)
        return (bytes + 65_535) / 65_536 * 65_536
    }

    /// Extends `-wal` with zeros to `walWorkingSize` and syncs it; returns the bytes added.
    /// Best effort: any failure leaves the file at its old size and the store as it was.
    @discardableResult
    func preallocateWAL() -> Int {
        guard let pageSize = try? db.read({ db in try Int.fetchOne(db, sql: "PRAGMA page_size") }) ?? 0, pageSize > 0 else { return 0 }
        let target = walWorkingSize(pageSize: pageSize)
        let wal = path + "-wal"
        var fs = statvfs()
        guard statvfs(wal, &fs) == 0, Int(fs.f_bavail) * Int(fs.f_frsize) >= 16 * target else { return 0 }
        guard let fd = try? syscall("open \(wal)", { open(wal, O_WRONLY | O_CLOEXEC) }) else { return 0 }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) < target else { return 0 }
        let start = Int(st.st_size)
        // 4 KiB at a time: the page cache keeps the folios the writes made, and a commit that
        // later overwrites 5 KB of a 64 KiB folio dirties (and is charged write_bytes for) all of
        // it — measured 71 KB/commit against 9.5 KB, though the device wrote 9.6 KB either way.
        let zeros = [UInt8](repeating: 0, count: 4096)
        do {
            var offset = start
            while offset < target {
                let n = min(zeros.count, target - offset)
                let written = try zeros.withUnsafeBytes { p throws(SystemError) in
                    try syscall("pwrite \(wal)") { pwrite(fd, p.baseAddress, n, off_t(offset)) }
                }
                guard written > 0 else { throw SystemError("pwrite \(wal)", errno: EIO) }
                offset += written
            }
            try syscall("fdatasync \(wal)") { fdatasync(fd) }
            return target - start
        } catch {
            _ = ftruncate(fd, off_t(start))
            return 0
        }
    }
}
