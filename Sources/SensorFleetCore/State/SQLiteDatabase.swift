internal import CSQLite
import Synchronization

/// What SQLite refused: its result code and what it said.
struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The extended result code (e.g. `SQLITE_IOERR_FSYNC`); `code` is its primary part.
    let extendedCode: Int32
    /// `sqlite3_errmsg` when the error happened; nil when opening failed (SQLite then only
    /// names the code, which `codeDescription` does).
    let message: String?

    /// An error of our own about the database: `SQLITE_ERROR` with `message`.
    init(_ message: String) {
        self.init(extendedCode: SQLITE_ERROR, message: message)
    }

    init(extendedCode: Int32, message: String?) {
        self.extendedCode = extendedCode
        self.message = message
    }

    /// The primary result code (`SQLITE_FULL`, `SQLITE_IOERR`…).
    var code: Int32 { extendedCode & 0xff }

    /// The kinds of failure the outbox explains in words.
    enum Kind: Sendable, Equatable {
        case full, readOnly, cannotOpen, ioError, corrupt, notADatabase, other
    }

    var kind: Kind {
        switch code {
        case SQLITE_FULL: return .full
        case SQLITE_READONLY: return .readOnly
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_IOERR: return .ioError
        case SQLITE_CORRUPT: return .corrupt
        case SQLITE_NOTADB: return .notADatabase
        default: return .other
        }
    }

    /// "14 (unable to open database file)": the primary code and SQLite's words for it.
    var codeDescription: String {
        guard let words = sqlite3_errstr(code) else { return "\(code)" }
        return "\(code) (\(String(cString: words)))"
    }

    var description: String { "SQLite error \(code)" + (message.map { ": \($0)" } ?? "") }

    /// The error `code` of `connection`, with what it says about it (read before anything else
    /// runs on it: the next call replaces the message).
    fileprivate init(_ code: Int32, connection: OpaquePointer?) {
        self.init(extendedCode: code, message: connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) })
    }
}

/// A value bound to a `?` of a statement.
enum SQLiteValue {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

/// One connection to an SQLite file through the C API: statements, transactions, and the
/// handle closed exactly once (`close()`, else `deinit`). Not thread-safe (opened with
/// `SQLITE_OPEN_NOMUTEX`): the owner serialises every use, as `SQLiteQueue` does.
final class SQLiteDatabase {
    let path: String
    private var handle: OpaquePointer?
    /// Statements prepared once and reused (the outbox's insert, upsert and delete).
    private var cache: [String: SQLiteStatement] = [:]

    /// Opens (with `readOnly` false: creates) `path`, waits up to `busyTimeoutMilliseconds` for
    /// another connection's lock, turns extended result codes and foreign keys on, and reads the
    /// schema once so that a file that is not a database fails here rather than later.
    init(path: String, readOnly: Bool, busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        self.path = path
        var opened: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let opened else {
            // A failed open still allocates a handle (sqlite3_close(NULL) is harmless).
            sqlite3_close(opened)
            throw SQLiteError(extendedCode: code, message: nil)
        }
        handle = opened
        sqlite3_extended_result_codes(opened, 1)
        sqlite3_busy_timeout(opened, busyTimeoutMilliseconds)
        // What GRDB's DatabaseQueue did on every connection; our tables have no foreign keys
        // yet, a later schema's would be enforced.
        try execute("PRAGMA foreign_keys = ON")
        let probe = try prepare("SELECT * FROM sqlite_master LIMIT 1")
        _ = try probe.step()
    }

    deinit {
        cache.removeAll()
        // _v2: statements still alive elsewhere keep the connection until they are finalized.
        if let handle { sqlite3_close_v2(handle) }
    }

    /// Closes the connection now (finalizing the cached statements); an error if statements of
    /// its own are still alive elsewhere.
    func close() throws(SQLiteError) {
        guard let handle else { return }
        cache.removeAll()
        let code = sqlite3_close(handle)
        guard code == SQLITE_OK else { throw error(code) }
        self.handle = nil
    }

    fileprivate var connection: OpaquePointer {
        guard let handle else { preconditionFailure("\(path): the SQLite connection is closed") }
        return handle
    }

    /// The error `code` with SQLite's message for it.
    fileprivate func error(_ code: Int32) -> SQLiteError {
        SQLiteError(code, connection: handle)
    }

    /// Runs `sql` (one or more statements separated by `;`), ignoring rows.
    func execute(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(connection, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(code) }
    }

    /// A new prepared statement for `sql` (one statement).
    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(connection, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw error(code == SQLITE_OK ? SQLITE_MISUSE : code)
        }
        return SQLiteStatement(statement, connection: connection)
    }

    /// The prepared statement for `sql`, made once per connection.
    func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = cache[sql] { return statement }
        let statement = try prepare(sql)
        cache[sql] = statement
        return statement
    }

    /// Every row of `sql` with `arguments`, each turned into a value by `row`.
    func rows<T>(_ sql: String, _ arguments: [SQLiteValue] = [], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        var result: [T] = []
        while try statement.step() { result.append(try row(statement)) }
        return result
    }

    /// The first column of the first row of `sql` as text, nil when there is no row or it is NULL.
    func text(_ sql: String, _ arguments: [SQLiteValue] = []) throws -> String? {
        try rows(sql, arguments) { $0.isNull(0) ? nil : $0.text(0) }.first ?? nil
    }

    /// The first column of the first row of `sql` as an integer, nil when there is no row.
    func integer(_ sql: String, _ arguments: [SQLiteValue] = []) throws -> Int64? {
        try rows(sql, arguments) { $0.int64(0) }.first
    }

    enum TransactionKind: String {
        /// Takes the write lock at once, so two writers never meet half-way (where a busy
        /// timeout could not help): for writes.
        case immediate = "IMMEDIATE"
        /// Takes locks as statements need them: for reads.
        case deferred = "DEFERRED"
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it or the
    /// commit throws (the first error is thrown; SQLite may already have rolled back, e.g. on a
    /// full disk).
    func transaction<T>(_ kind: TransactionKind, _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind.rawValue) TRANSACTION")
        do {
            let result = try body()
            try execute("COMMIT TRANSACTION")
            return result
        } catch {
            if sqlite3_get_autocommit(connection) == 0 { try? execute("ROLLBACK TRANSACTION") }
            throw error
        }
    }
}

/// One connection used from several threads: each use holds its lock, as GRDB's `DatabaseQueue`
/// ran each use on one serial queue (a commit waits for the one before it).
final class SQLiteQueue: Sendable {
    private let database: Mutex<SQLiteDatabase>

    init(_ database: consuming sending SQLiteDatabase) {
        self.database = Mutex(database)
    }

    /// Runs `body` with the connection, alone.
    func use<T: Sendable>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try database.withLock { database in try body(database) }
    }
}

/// A prepared statement of a `SQLiteDatabase`, finalized in `deinit`. Columns count from 0,
/// `?` parameters from 1 (as in SQLite).
final class SQLiteStatement {
    private let handle: OpaquePointer
    /// Its connection, for error messages. Not the `SQLiteDatabase`: that one caches statements,
    /// and a statement keeping it alive would keep both forever. A connection closed with
    /// statements left lives on until they are finalized (`sqlite3_close_v2`).
    private let connection: OpaquePointer

    /// SQLite copies text and blobs at once (the Swift buffers live only during the call).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    fileprivate init(_ handle: OpaquePointer, connection: OpaquePointer) {
        self.handle = handle
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    /// Resets the statement and binds `values` to its parameters 1, 2…
    func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .integer(let number):
                code = sqlite3_bind_int64(handle, index, number)
            case .text(let text):
                code = text.withCString { sqlite3_bind_text(handle, index, $0, Int32(text.utf8.count), Self.transient) }
            case .blob(let bytes) where bytes.isEmpty:
                // A pointer to nothing would bind NULL; an empty payload is an empty blob.
                code = sqlite3_bind_zeroblob(handle, index, 0)
            case .blob(let bytes):
                code = bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), Self.transient) }
            }
            guard code == SQLITE_OK else { throw SQLiteError(code, connection: connection) }
        }
    }

    /// Steps once: true with a row to read, false when done.
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            // The error of the step, before reset makes SQLite forget the message.
            let error = SQLiteError(code, connection: connection)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Binds `values` and steps until done (an INSERT, UPDATE or DELETE), then resets.
    func execute(_ values: [SQLiteValue]) throws(SQLiteError) {
        try bind(values)
        while try step() {}
        sqlite3_reset(handle)
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
