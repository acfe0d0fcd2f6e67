import Foundation
import GRDB
import OnekeyCore
import OnekeyHarness
import Testing
@testable import OnekeyDaemon

/// The press's statements are bound on SQLite directly (`StatementBinder`): every value kind
/// reads back as written — NULLs, an empty blob (not NULL), quotes, Chinese text, a 9 KB note —
/// and a statement that fails throws SQLite's code, changes nothing and stays usable.
@Suite struct StoreBindingTests {
    @Test func everyColumnOfAPressReadsBackAsWritten() throws {
        let dir = try TempDirectory.make("bindings")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(directory: dir)
        let t = Timestamp(milliseconds: 1_795_400_000_123)
        func id(_ tail: String) -> String { IdentifierSource.prefix(at: t) + tail }  // time-sortable, as issued
        let full = Alert(id: id("BINDFULL00000000"), device: "btn-1", kind: .medical, state: .acked, grid: "grid-7",
                         resident: "张伯伯（独居）", location: "第3网格 12栋", raisedAt: t, lastPressAt: t.adding(milliseconds: 5),
                         pressCount: 3, step: 2, paged: ["m-1", "m-\"2\""], ackedBy: "m-1", ackedAt: t.adding(milliseconds: 7),
                         resolvedAt: t.adding(milliseconds: 9), resolvedBy: "m-2", note: String(repeating: "长", count: 3000),
                         test: true, nextStepAt: t.adding(milliseconds: 60_000), unattended: true)
        let bare = Alert(id: id("BINDBARE00000000"), device: "btn-2", kind: .panic, grid: "", resident: "", location: "", raisedAt: t)
        let withRaw = GatewayEvent(id: id("BINDEVT100000000"), device: "btn-1", driver: .ev1527, address: "103E7", kind: .medical,
                                   code: "8", receivedAt: t, raw: [0, 0xFD, 0xFF, 0], alertID: full.id, test: true)
        let noRaw = GatewayEvent(id: id("BINDEVT200000000"), device: nil, driver: .surgard, address: "", kind: .panic,
                                 code: "", receivedAt: t.adding(milliseconds: 1), raw: [], alertID: nil)
        var batch = StoreBatch()
        batch.alerts = [full, bare]
        batch.events = [withRaw, noRaw]
        batch.devices = [DeviceState(id: "btn-1", online: false, lastSeen: t, batteryLow: true), DeviceState(id: "btn-2")]
        try store.write(batch)

        #expect(try store.alert(id: full.id) == full)
        #expect(try store.alert(id: bare.id) == bare)
        #expect(try store.recentEvents(since: t.adding(milliseconds: -1)) == [withRaw, noRaw])
        #expect(try store.devices() == batch.devices)
        // Stored as a zero-length blob: NULL would have failed `raw BLOB NOT NULL`, and typeof says so.
        let rawType = try store.db.read { db in try String.fetchOne(db, sql: "SELECT typeof(raw) FROM events WHERE id = ?", arguments: [noRaw.id]) }
        #expect(rawType == "blob")

        // Upserted in place: the second write of an alert replaces every column, NULLs included.
        var closed = full
        closed.ackedBy = nil; closed.note = nil; closed.nextStepAt = nil; closed.state = AlertState.resolved
        var again = StoreBatch()
        again.alerts = [closed]
        try store.write(again)
        #expect(try store.alert(id: full.id) == closed)
    }

    @Test func aFailingStatementThrowsSQLitesCodeAndStaysUsable() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL CHECK (length(v) < 4))")
            var s = StatementBinder(try db.cachedStatement(sql: "INSERT INTO t (k, v) VALUES (?, ?)"))
            s.bind(Int64(1)); s.bind("ok")
            try s.execute(db)
            s.bind(Int64(2)); s.bind("too long")
            #expect {
                try s.execute(db)
            } throws: { error in
                (error as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT
                    && (error as? DatabaseError)?.extendedResultCode == .SQLITE_CONSTRAINT_CHECK
            }
            s.bind(Int64(1)); s.bind(nil as String?)  // NOT NULL, and a duplicate key
            #expect(throws: DatabaseError.self) { try s.execute(db) }
            // Reset and unbound after each failure: the next row goes in with its own values.
            s.bind(Int64(3)); s.bind("yes")
            try s.execute(db)
            #expect(try Row.fetchAll(db, sql: "SELECT k, v FROM t ORDER BY k").map { "\($0[0] as Int64)=\($0[1] as String)" } == ["1=ok", "3=yes"])
        }
    }
}
