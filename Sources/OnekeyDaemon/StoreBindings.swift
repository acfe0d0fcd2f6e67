import GRDB
import GRDBSQLite
import OnekeyCore

/// A press's statements bound and stepped on SQLite directly. GRDB's `execute(arguments:)`
/// boxes every value in a `DatabaseValue`, builds and validates a `StatementArguments` and goes
/// through its observation machinery: measured, that was half of a press's statement time (the
/// other half is SQLite's). The statements are still GRDB's cached ones, so GRDB keeps owning
/// their life; transaction state is SQLite's own, which GRDB reads.
struct StatementBinder {
    private let owner: Statement
    private let statement: OpaquePointer
    private var index: Int32 = 0
    /// The first bind that failed (SQLITE_NOMEM, SQLITE_TOOBIG): `execute` throws it, steps nothing.
    private var bindFailure: Int32 = SQLITE_OK

    init(_ statement: Statement) {
        owner = statement
        self.statement = statement.sqliteStatement
    }

    /// SQLite copies the value before the call returns (the Swift string's buffer is temporary).
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    private mutating func next() -> Int32 { index += 1; return index }
    private mutating func check(_ rc: Int32) { if rc != SQLITE_OK && bindFailure == SQLITE_OK { bindFailure = rc } }

    mutating func bind(_ v: String) {
        let i = next()
        check(v.withCString { sqlite3_bind_text(statement, i, $0, Int32(v.utf8.count), Self.transient) })
    }

    mutating func bind(_ v: String?) { if let v { bind(v) } else { check(sqlite3_bind_null(statement, next())) } }
    mutating func bind(_ v: Int64) { check(sqlite3_bind_int64(statement, next(), v)) }
    mutating func bind(_ v: Int64?) { if let v { bind(v) } else { check(sqlite3_bind_null(statement, next())) } }
    mutating func bind(_ v: Int) { bind(Int64(v)) }
    mutating func bind(_ v: Bool) { bind(Int64(v ? 1 : 0)) }
    mutating func bind(_ v: Timestamp) { bind(v.milliseconds) }
    mutating func bind(_ v: Timestamp?) { bind(v?.milliseconds) }

    mutating func bind(blob v: [UInt8]) {
        let i = next()
        // An empty blob is a zero-length blob, not NULL (a nil base address would bind NULL).
        if v.isEmpty { check(sqlite3_bind_zeroblob(statement, i, 0)); return }
        check(v.withUnsafeBytes { b in sqlite3_bind_blob(statement, i, b.baseAddress, Int32(b.count), Self.transient) })
    }

    /// Steps the statement to its end, then resets it and clears its bindings; throws SQLite's
    /// error (extended code and message) as GRDB would.
    mutating func execute(_ db: Database) throws {
        precondition(index == sqlite3_bind_parameter_count(statement), "\(index) values bound for: \(owner.sql)")
        var failure: DatabaseError?
        if bindFailure != SQLITE_OK {
            failure = DatabaseError(resultCode: ResultCode(rawValue: bindFailure), message: String(cString: sqlite3_errstr(bindFailure)), sql: owner.sql)
        } else {
            var rc = sqlite3_step(statement)
            while rc == SQLITE_ROW { rc = sqlite3_step(statement) }
            if rc != SQLITE_DONE {
                failure = DatabaseError(resultCode: ResultCode(rawValue: sqlite3_extended_errcode(db.sqliteConnection)),
                                        message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: owner.sql)
            }
        }
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        index = 0
        bindFailure = SQLITE_OK
        if let failure { throw failure }
    }
}
