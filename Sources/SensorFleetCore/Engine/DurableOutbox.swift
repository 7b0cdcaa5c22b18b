import Glibc
import Logging
import MosquittoKit
import Synchronization

/// The durable outbox of `run --state-dir DIR` (and of the agent): one SQLite database in WAL
/// mode, `DIR/outbox.sqlite`, holding every accepted message until its PUBACK and each device's
/// last sequence number. Thread-safe (one connection, each use under its lock); each reactor
/// writes its own batches through a `DurableOutboxWriter`.
///
/// Durability: WAL with `synchronous = FULL` (see `useWAL`): a committed batch is on the disk
/// (the WAL fsynced) before its messages count as accepted, so it survives `kill -9`, a crash of
/// the process and a power cut.
/// When a write fails (disk full, read-only folder, I/O error) the transaction rolls back, the
/// store says why once, and from then on the fleet runs on memory only: messages are still
/// accepted and sent, and each one is counted as `notDurable`. The file is never left half
/// written (SQLite's transactions).
public final class DurableOutbox: Sendable {
    /// What an earlier run left for one device.
    public struct Restored: Sendable {
        public var lastSeq: UInt64
        /// Messages never acknowledged, oldest first.
        public var backlog: [(seq: UInt64, payload: [UInt8])]
    }

    public let path: String
    /// The claimed state folder (lock and state.json); nil when it could not be claimed.
    public let stateDirectory: StateDirectory?
    private let queue: SQLiteQueue?
    /// Seqs committed since state.json was last written, and when that was (monotonic ns).
    private let unrecorded = Mutex<(seqs: [String: UInt64], at: UInt64)>(([:], 0))
    /// How often state.json gets the seqs reached (it only guards against losing the database).
    static let markerInterval: UInt64 = 30_000_000_000
    /// How long a connection waits for another one's lock (a reader in another process).
    static let busyTimeoutMilliseconds: Int32 = 10_000
    private let failure = Mutex<String?>(nil)
    private let logger: Logger
    /// Messages accepted while the store could not write (memory only).
    public let notDurable = Atomic<Int>(0)
    /// Batches committed, and the time they took (for the benchmark printout).
    public let batches = Atomic<Int>(0)
    public let batchNanos = Atomic<Int>(0)

    /// Opens (or creates) `directory/outbox.sqlite`. Never throws: a folder that cannot hold the
    /// store, is held by another process or holds a damaged store is reported in
    /// `failureReason`, and the store works as memory only. The folder is claimed for this
    /// process (`StateDirectory.claim`) unless it already is: the commands claim it first, to
    /// refuse to start with the reason.
    /// - Parameters:
    ///   - directory: the state folder.
    ///   - logger: where an unusable store is reported.
    ///   - claim: false opens another process's store read-only, without claiming the folder
    ///     or creating anything, to look into it (tests, tools); it never writes.
    public init(directory: String, logger: Logger, claim: Bool = true) {
        path = PathText.appending(StateDirectory.databaseName, to: directory)
        self.logger = logger
        var opened: SQLiteQueue?
        var claimed: StateDirectory?
        do {
            if claim {
                claimed = try StateDirectory.claim(directory)
                let database = try SQLiteDatabase(path: path, readOnly: false, busyTimeoutMilliseconds: Self.busyTimeoutMilliseconds)
                try Self.useWAL(database)
                try database.transaction(.immediate) { try Self.createSchema(database) }
                opened = SQLiteQueue(database)
            } else {
                opened = SQLiteQueue(try SQLiteDatabase(path: path, readOnly: true, busyTimeoutMilliseconds: Self.busyTimeoutMilliseconds))
            }
        } catch {
            let path = self.path
            let reason = (error as? StateDirectoryError).map { "\(path): \($0.description)" } ?? Self.describe(error, path: path)
            failure.withLock { $0 = reason }
            if claim {
                logger.error("durable outbox unavailable: \(reason); messages are kept in memory only for this run (counted as not durable)")
            } else {
                logger.debug("durable outbox not readable: \(reason)")
            }
        }
        queue = opened
        stateDirectory = claimed
    }

    /// WAL mode (readers in other processes do not block the writer), `synchronous = FULL`, and
    /// a WAL file that is not empty: a read-only reader (`claim: false`, a second process)
    /// cannot open a WAL database whose `-wal` file is missing (SQLITE_CANTOPEN), so one empty
    /// transaction's worth is written if need be.
    ///
    /// FULL, not NORMAL: under GRDB this store asked for FULL, but GRDB's WAL set-up ran after
    /// and set NORMAL, so until the move to the C API (issue 15) the WAL was synced only at
    /// checkpoints and a power cut could undo the last commits — then `state.json` (synced every
    /// 30 s) could name seqs the database no longer had, and the agent refused to start until
    /// `--reset-state`. The docs promised power-cut safety; FULL keeps that promise. Its price:
    /// one fsync per transaction (here ≈ 2 ms instead of 0.05 ms; one transaction per reactor
    /// turn, so it is paid per batch, not per message).
    static func useWAL(_ database: SQLiteDatabase) throws {
        let mode = try database.text("PRAGMA journal_mode = WAL")
        guard mode == "wal" else {
            throw SQLiteError("could not activate WAL Mode at path: \(database.path)")
        }
        try database.execute("PRAGMA synchronous = FULL")
        var st = stat()
        if stat(database.path + "-wal", &st) != 0 || st.st_size == 0 {
            try database.transaction(.immediate) {
                try database.execute("CREATE TABLE wal_probe (id INTEGER PRIMARY KEY); DROP TABLE wal_probe")
            }
        }
    }

    /// The tables of the outbox (idempotent).
    static func createSchema(_ db: SQLiteDatabase) throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS message (
                device TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
                PRIMARY KEY (device, seq)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS device (device TEXT PRIMARY KEY NOT NULL, last_seq INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
            """)
    }

    /// Each device's highest seq, from its row and its stored messages.
    static func lastSeqs(_ db: SQLiteDatabase) throws -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        let rows = try db.rows("""
            SELECT device, max(seq) AS seq FROM (
                SELECT device, last_seq AS seq FROM device UNION ALL SELECT device, max(seq) FROM message GROUP BY device)
            GROUP BY device
            """) { row in (row.text(0), row.int64(1)) }
        for (device, seq) in rows { result[device] = UInt64(max(0, seq)) }
        return result
    }

    /// Why the store works as memory only, or nil while it writes to disk.
    public var failureReason: String? { failure.withLock { $0 } }
    public var isDurable: Bool { queue != nil && failureReason == nil }

    /// Everything the earlier runs left: per device, last seq and the unacknowledged backlog.
    public func restore() -> [String: Restored] {
        guard let queue, isDurable else { return [:] }
        do {
            return try queue.use { db in
                try db.transaction(.deferred) {
                    var result: [String: Restored] = [:]
                    let devices = try db.rows("SELECT device, last_seq FROM device") { ($0.text(0), $0.int64(1)) }
                    for (id, lastSeq) in devices { result[id] = Restored(lastSeq: UInt64(lastSeq), backlog: []) }
                    let messages = try db.prepare("SELECT device, seq, payload FROM message ORDER BY device, seq")
                    while try messages.step() {
                        let id = messages.text(0)
                        let seq = UInt64(messages.int64(1))
                        result[id, default: Restored(lastSeq: 0, backlog: [])].backlog.append((seq, messages.blob(2)))
                        if seq > result[id]!.lastSeq { result[id]!.lastSeq = seq }
                    }
                    return result
                }
            }
        } catch {
            fail(error)
            return [:]
        }
    }

    /// Messages stored now, all devices (for tests and the end-of-run report).
    public func storedCount() -> Int {
        guard let queue, isDurable else { return 0 }
        let count = try? queue.use { db in
            try db.transaction(.deferred) { try db.integer("SELECT count(*) FROM message") ?? 0 }
        }
        return Int(count ?? 0)
    }

    struct Batch {
        var inserts: [(device: String, seq: UInt64, payload: [UInt8])] = []
        var deletes: [(device: String, seq: UInt64)] = []
        var isEmpty: Bool { inserts.isEmpty && deletes.isEmpty }
    }

    /// Writes one batch in one transaction. False when the store does not write (anymore).
    func commit(_ batch: Batch) -> Bool {
        guard let queue, isDurable else { return false }
        let started = MonotonicInstant.now()
        do {
            try queue.use { db in
                try db.transaction(.immediate) {
                    if !batch.inserts.isEmpty {
                        let insert = try db.cached("INSERT OR REPLACE INTO message (device, seq, payload) VALUES (?, ?, ?)")
                        var last: [String: UInt64] = [:]
                        for item in batch.inserts {
                            try insert.execute([.text(item.device), .integer(Int64(item.seq)), .blob(item.payload)])
                            last[item.device] = max(last[item.device] ?? 0, item.seq)
                        }
                        let seq = try db.cached("""
                            INSERT INTO device (device, last_seq) VALUES (?, ?)
                            ON CONFLICT(device) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)
                            """)
                        for (device, value) in last { try seq.execute([.text(device), .integer(Int64(value))]) }
                    }
                    if !batch.deletes.isEmpty {
                        let delete = try db.cached("DELETE FROM message WHERE device = ? AND seq = ?")
                        for item in batch.deletes { try delete.execute([.text(item.device), .integer(Int64(item.seq))]) }
                    }
                }
            }
            batches.add(1, ordering: .relaxed)
            let now = MonotonicInstant.now()
            batchNanos.add(Int(clamping: now.nanoseconds(since: started)), ordering: .relaxed)
            if let stateDirectory, !batch.inserts.isEmpty { recordSeqs(batch, in: stateDirectory, now: now) }
            return true
        } catch {
            fail(error)
            return false
        }
    }

    /// Keeps the seqs reached for state.json, and writes it when it is 30 s old.
    private func recordSeqs(_ batch: Batch, in stateDirectory: StateDirectory, now: MonotonicInstant) {
        let due: [String: UInt64]? = unrecorded.withLock { state in
            for item in batch.inserts { state.seqs[item.device] = max(state.seqs[item.device] ?? 0, item.seq) }
            guard now.nanoseconds &- state.at >= Self.markerInterval else { return nil }
            defer { state = ([:], now.nanoseconds) }
            return state.seqs
        }
        if let due { stateDirectory.record(lastSeqs: due) }
    }

    private func fail(_ error: any Error) {
        let reason = Self.describe(error, path: path)
        let first = failure.withLock { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        if first {
            logger.error("durable outbox stopped writing: \(reason); from now on messages are kept in memory only (counted as not durable); what is already in \(path) stays intact for the next run")
        }
    }

    static func describe(_ error: any Error, path: String) -> String {
        if let error = error as? SQLiteError {
            switch error.kind {
            case .full: return "\(path): the disk is full (free space, then restart to write again)"
            case .readOnly: return "\(path): the state folder or file is read-only (make it writable for this user)"
            case .cannotOpen: return "\(path): cannot open or create the database (does the folder exist and is it writable?)"
            case .ioError: return "\(path): I/O error (\(error.message ?? "no detail"))"
            case .corrupt, .notADatabase: return "\(path): not a valid outbox database (move it away to start afresh)"
            case .other: return "\(path): \(error.message ?? error.codeDescription)"
            }
        }
        return "\(path): \(error)"
    }
}

/// One reactor's pending writes to the durable outbox, committed as one transaction per reactor
/// turn. Reactor-confined.
final class DurableOutboxWriter {
    let store: DurableOutbox
    private let reactor: Reactor
    private var batch = DurableOutbox.Batch()
    /// Called after the commit (or the failure to commit) with how many inserts it carried.
    private var onCommit: [(Bool) -> Void] = []
    private var flushTimer: ReactorTimer?

    init(store: DurableOutbox, reactor: Reactor) {
        self.store = store
        self.reactor = reactor
    }

    /// Queues an insert; `committed(true)` runs once it is on disk, `committed(false)` if the
    /// store could not write it (memory only).
    func insert(device: String, seq: UInt64, payload: [UInt8], committed: @escaping (Bool) -> Void) {
        batch.inserts.append((device, seq, payload))
        onCommit.append(committed)
        scheduleFlush()
    }

    func delete(device: String, seq: UInt64) {
        batch.deletes.append((device, seq))
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard flushTimer == nil else { return }
        // Runs after this turn's timers and events: everything they produced goes in one transaction.
        flushTimer = reactor.schedule(after: .zero) { [unowned self] in self.flush() }
    }

    /// Commits what is pending now.
    func flush() {
        flushTimer?.cancel()
        flushTimer = nil
        guard !batch.isEmpty else { return }
        let pending = batch
        let callbacks = onCommit
        batch = DurableOutbox.Batch()
        onCommit = []
        let ok = store.commit(pending)
        for callback in callbacks { callback(ok) }
    }
}
