#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization
import Glibc

/// The durable outbox inside a state folder: checked before it is used (a damaged or emptied
/// store never restarts seq at 1 silently), and the marker (state.json) that makes that possible.
extension StateDirectory {
    // MARK: Outbox check

    struct Marker: Codable {
        var storeID: String
        var updated: String
        var devices: [String: UInt64]
    }

    /// Checks (or, with `reset`, moves aside) the database; creates it with its id when fresh;
    /// writes state.json. Returns the database's id and what was moved aside.
    static func check(_ path: String, reset: Bool, resetFlag: String) throws(StateDirectoryError)
        -> (String, [String])
    {
        let database = PathText.appending(databaseName, to: path)
        let markerPath = PathText.appending(markerName, to: path)
        var moved: [String] = []
        if reset {
            let stamp = Date().formatted(.iso8601).replacing(":", with: "")
            for name in [databaseName, databaseName + "-wal", databaseName + "-shm", markerName] {
                let from = PathText.appending(name, to: path)
                guard FileManager.default.fileExists(atPath: from) else { continue }
                let to = "\(from).reset-\(stamp)"
                guard rename(from, to) == 0 else {
                    let code = errno
                    throw unusable(path, "cannot move \(from) aside: \(words(code, path: from))", fix: fixFor(code, path: path))
                }
                moved.append(to)
            }
        }
        let marker = readMarker(markerPath)
        let aside = PathText.appending("aside", to: path)
        let moveAside = "mkdir -p \(aside) && mv \(database)*\(marker == nil ? "" : " " + markerPath) \(aside)/"
        let startAfresh = "move it aside to start afresh at seq 1 (`\(moveAside)`), or run with \(resetFlag), "
            + "which does that; messages still in it are then not sent"
        var st = stat()
        let exists = stat(database, &st) == 0
        if !exists, let marker {
            throw StateDirectoryError(
                kind: .damaged,
                problem: "\(database) is missing, but \(markerPath) says this folder held the outbox of "
                    + "\(marker.devices.count) device(s)\(describe(marker.devices)) (last written \(marker.updated)): "
                    + "starting now would restart their seq at 1",
                fix: "put the database back if it was moved by mistake, or start afresh with \(resetFlag) "
                    + "(`rm \(markerPath)` does the same by hand)")
        }
        if exists, st.st_size == 0 {
            throw StateDirectoryError(
                kind: .damaged,
                problem: "\(database) is empty (0 bytes): it was emptied or cut short, and starting on it would "
                    + "restart every device's seq at 1",
                fix: startAfresh)
        }
        var lastSeqs: [String: UInt64] = [:]
        var storeID: String
        do {
            let db = try SQLiteDatabase(path: database, readOnly: false,
                                        busyTimeoutMilliseconds: DurableOutbox.busyTimeoutMilliseconds)
            if exists {
                let report = try db.transaction(.deferred) { try db.rows("PRAGMA quick_check") { $0.text(0) } }
                guard report == ["ok"] else {
                    throw StateDirectoryError(
                        kind: .damaged,
                        problem: "\(database) is damaged (SQLite's check: \(report.prefix(3).joined(separator: "; ")))",
                        fix: startAfresh)
                }
            }
            storeID = try db.transaction(.immediate) { () throws -> String in
                try DurableOutbox.createSchema(db)
                if let id = try db.text("SELECT value FROM meta WHERE key = 'store_id'") { return id }
                let id = UUID().uuidString
                try db.prepare("INSERT INTO meta (key, value) VALUES ('store_id', ?)").execute([.text(id)])
                return id
            }
            lastSeqs = try db.transaction(.deferred) { try DurableOutbox.lastSeqs(db) }
            try db.close()
        } catch let error as StateDirectoryError {
            throw error
        } catch let error as SQLiteError where [.corrupt, .notADatabase].contains(error.kind) {
            throw StateDirectoryError(kind: .damaged,
                                      problem: "\(database) is not a readable outbox database (\(error.message ?? "damaged"))",
                                      fix: startAfresh)
        } catch {
            throw unusable(path, DurableOutbox.describe(error, path: database), fix: "fix the cause, or choose another --state-dir")
        }
        if let marker, exists {
            if !marker.storeID.isEmpty, marker.storeID != storeID {
                throw StateDirectoryError(
                    kind: .damaged,
                    problem: "\(database) is not the database this folder held (\(markerPath) names another one): "
                        + "it was replaced, and its seqs may repeat ones already sent",
                    fix: "put the right database back, or \(startAfresh)")
            }
            let behind = marker.devices.filter { (lastSeqs[$0.key] ?? 0) < $0.value }.sorted { $0.key < $1.key }
            if let first = behind.first {
                throw StateDirectoryError(
                    kind: .damaged,
                    problem: "\(database) is behind \(markerPath): device `\(first.key)` is at seq "
                        + "\(lastSeqs[first.key] ?? 0) in the database but reached \(first.value)"
                        + (behind.count > 1 ? " (and \(behind.count - 1) more device(s))" : "")
                        + "; it was restored from an older copy, and starting on it would send those seqs again",
                    fix: startAfresh)
            }
        }
        writeMarker(markerPath, Marker(storeID: storeID, updated: Date().formatted(.iso8601), devices: lastSeqs))
        return (storeID, moved)
    }

    static func describe(_ devices: [String: UInt64]) -> String {
        guard let (id, seq) = devices.sorted(by: { $0.key < $1.key }).first else { return "" }
        return ", e.g. `\(id)` at seq \(seq)"
    }

    static func readMarker(_ path: String) -> Marker? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        // An unreadable state.json (cut short by a crash) still says the folder was in use.
        return (try? JSONDecoder().decode(Marker.self, from: data)) ?? Marker(storeID: "", updated: "unknown", devices: [:])
    }

    /// Writes state.json atomically (temporary file, fsync, rename). Failures are ignored: the
    /// database stays the record; the marker only guards against losing it.
    static func writeMarker(_ path: String, _ marker: Marker) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(marker) else { return }
        try? AtomicFile.write([UInt8](data), to: path, mode: 0o644)
    }

    /// Records the seqs reached so far in state.json (the outbox calls it every 30 s at most).
    func record(lastSeqs: [String: UInt64]) {
        var merged = Self.readMarker(markerPath)?.devices ?? [:]
        for (id, seq) in lastSeqs { merged[id] = max(merged[id] ?? 0, seq) }
        Self.writeMarker(markerPath, Marker(storeID: storeID, updated: Date().formatted(.iso8601), devices: merged))
    }
}

extension StateDirectory {
    /// Logs what `--reset-state` moved aside.
    public func reportReset(_ logger: Logger) {
        for file in movedAside { logger.notice("--reset-state: moved \(file) aside; sequence numbers start at 1") }
    }

    /// The agent's claim: a folder held by another process or a damaged outbox stop it (thrown);
    /// a folder it cannot create or write is logged, and the device runs on memory (it keeps
    /// reporting; the durable outbox says it is not durable).
    public static func claimForAgent(_ path: String, reset: Bool, logger: Logger) throws(StateDirectoryError) -> StateDirectory? {
        do {
            return try claim(path, reset: reset)
        } catch where error.kind == .unusable {
            logger.error("\(error.description); readings are kept in memory only")
            return nil
        }
    }
}
