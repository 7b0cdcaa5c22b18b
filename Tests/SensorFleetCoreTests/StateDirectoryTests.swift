import Foundation
import Logging
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// The state folder of `run --state-dir` / the agent: claimed once, never silently restarted at
/// seq 1, and errors about it in plain words.
@Suite(.serialized) struct StateDirectoryTests {
    static let logger = Logger(label: "state-test")

    private func tempDir() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A state folder used by a run: device `dev` reached seq `seqs`, all acknowledged but the
    /// last two. Returns its path.
    private func usedFolder(seqs: UInt64 = 10) throws -> String {
        let dir = try tempDir()
        let store = DurableOutbox(directory: dir, logger: Self.logger)
        #expect(store.isDurable)
        var batch = DurableOutbox.Batch()
        for seq in 1...seqs { batch.inserts.append(("dev", seq, Array("{\"seq\":\(seq)}".utf8))) }
        #expect(store.commit(batch))
        var acks = DurableOutbox.Batch()
        for seq in 1...(seqs - 2) { acks.deletes.append(("dev", seq)) }
        #expect(store.commit(acks))
        return dir
    }

    /// A copy of `dir`'s files in a new folder (a second process would see them so; this one
    /// already holds `dir`).
    private func copy(_ dir: String, only names: [String]? = nil) throws -> String {
        let target = try tempDir()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name != "lock" {
            if let names, !names.contains(where: { name.hasPrefix($0) }) { continue }
            try FileManager.default.copyItem(atPath: "\(dir)/\(name)", toPath: "\(target)/\(name)")
        }
        return target
    }

    /// The outbox of `dir`, opened as another program would (to damage or roll it back).
    private func openDatabase(_ dir: String) throws -> SQLiteDatabase {
        try SQLiteDatabase(path: dir + "/outbox.sqlite", readOnly: false, busyTimeoutMilliseconds: 10_000)
    }

    private func expectRefusal(_ dir: String, kind: StateDirectoryError.Kind, _ words: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try StateDirectory.claim(dir)
            Issue.record("the folder was claimed", sourceLocation: sourceLocation)
        } catch {
            #expect(error.kind == kind, sourceLocation: sourceLocation)
            for word in words { #expect(error.description.contains(word), "\(error.description)", sourceLocation: sourceLocation) }
            #expect(!error.description.contains("NSCocoaErrorDomain"), sourceLocation: sourceLocation)
        }
    }

    @Test func aFreshFolderStartsAtSeqOneAndRecordsItsDatabase() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let claim = try StateDirectory.claim(dir + "/new/state")
        #expect(!claim.storeID.isEmpty)
        #expect(FileManager.default.fileExists(atPath: claim.markerPath))
        #expect(StateDirectory.readMarker(claim.markerPath)?.storeID == claim.storeID)
        let store = DurableOutbox(directory: dir + "/new/state", logger: Self.logger)
        #expect(store.isDurable)
        #expect(store.restore().isEmpty)
        // Claiming again in the same process is the same claim (the commands claim before the engine opens the store).
        #expect(try StateDirectory.claim(dir + "/new/state") === claim)
    }

    @Test func aFolderOfAnEarlierRunGoesOnFromItsSeq() throws {
        let used = try usedFolder()
        let copied = try copy(used)
        let claim = try StateDirectory.claim(copied)
        #expect(!claim.storeID.isEmpty)
        let restored = DurableOutbox(directory: copied, logger: Self.logger).restore()
        #expect(restored["dev"]?.lastSeq == 10)
        #expect(restored["dev"]?.backlog.map(\.seq) == [9, 10])
    }

    @Test func aReaderLooksIntoAnotherProcesssFolderWithoutClaimingIt() throws {
        let used = try usedFolder()
        let copied = try copy(used)
        let reader = DurableOutbox(directory: copied, logger: Self.logger, claim: false)
        #expect(reader.storedCount() == 2)
        #expect(reader.restore()["dev"]?.lastSeq == 10)
        #expect(reader.stateDirectory == nil)
        #expect(StateDirectory.existingClaim(copied) == nil)
        #expect(!FileManager.default.fileExists(atPath: copied + "/lock"))
        // Nothing there yet: not readable, and nothing created.
        let empty = try tempDir()
        #expect(DurableOutbox(directory: empty, logger: Self.logger, claim: false).storedCount() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)
    }

    @Test func aZeroLengthDatabaseIsRefusedWithTheMoveAside() throws {
        let dir = try tempDir()
        _ = FileManager.default.createFile(atPath: dir + "/outbox.sqlite", contents: Data())
        expectRefusal(dir, kind: .damaged, ["\(dir)/outbox.sqlite", "empty (0 bytes)", "mv \(dir)/outbox.sqlite", "--reset-state"])
        // The command the message gives leads to a fresh start.
        do {
            _ = try StateDirectory.claim(dir)
        } catch {
            let command = try #require(error.description.split(separator: "`").first { $0.hasPrefix("mkdir -p") })
            try runTool("/bin/sh", ["-c", String(command)])
            let claim = try StateDirectory.claim(dir)
            #expect(DurableOutbox(directory: dir, logger: Self.logger).restore().isEmpty)
            #expect(FileManager.default.fileExists(atPath: claim.path + "/aside/outbox.sqlite"))
        }
    }

    @Test func aDamagedDatabaseIsRefused() throws {
        // Garbage where the database should be.
        let garbage = try tempDir()
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: garbage + "/outbox.sqlite"))
        expectRefusal(garbage, kind: .damaged, ["\(garbage)/outbox.sqlite", "mv ", "--reset-state"])

        // A real outbox with a page overwritten.
        let used = try usedFolder(seqs: 400)
        let copied = try copy(used)
        try openDatabase(copied).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copied + "/outbox.sqlite"))
        try handle.seek(toOffset: 4096 + 100)
        handle.write(Data(repeating: 0xA5, count: 2000))
        try handle.close()
        expectRefusal(copied, kind: .damaged, ["\(copied)/outbox.sqlite", "mv "])
    }

    @Test func aMissingDatabaseWhereStateJSONSaysThereWasOneIsRefused() throws {
        let used = try usedFolder()
        let copied = try copy(used, only: ["state.json"])
        expectRefusal(copied, kind: .damaged, ["\(copied)/outbox.sqlite is missing", "restart their seq at 1", "--reset-state"])
    }

    @Test func aDatabaseRestoredFromAnOlderCopyIsRefused() throws {
        let used = try usedFolder()
        let copied = try copy(used)
        let db = try openDatabase(copied)
        try db.transaction(.immediate) { try db.execute("DELETE FROM message; UPDATE device SET last_seq = 4") }
        try db.close()
        expectRefusal(copied, kind: .damaged, ["behind", "`dev` is at seq 4", "reached 10"])
    }

    @Test func anotherDatabaseInPlaceOfTheFoldersIsRefused() throws {
        let used = try usedFolder()
        let other = try usedFolder()
        let copied = try copy(used, only: ["state.json"])
        for name in ["outbox.sqlite", "outbox.sqlite-wal"] where FileManager.default.fileExists(atPath: "\(other)/\(name)") {
            try FileManager.default.copyItem(atPath: "\(other)/\(name)", toPath: "\(copied)/\(name)")
        }
        expectRefusal(copied, kind: .damaged, ["not the database this folder held"])
    }

    @Test func resetMovesTheDamagedDatabaseAsideAndStartsAtSeqOne() throws {
        let dir = try tempDir()
        _ = FileManager.default.createFile(atPath: dir + "/outbox.sqlite", contents: Data())
        let claim = try StateDirectory.claim(dir, reset: true)
        #expect(claim.movedAside.count == 1)
        #expect(claim.movedAside.allSatisfy { FileManager.default.fileExists(atPath: $0) && $0.contains("outbox.sqlite.reset-") })
        let store = DurableOutbox(directory: dir, logger: Self.logger)
        #expect(store.isDurable)
        #expect(store.restore().isEmpty)
    }

    @Test func aFileInTheWayIsSaidInWords() throws {
        let dir = try tempDir()
        try "x".write(toFile: dir + "/file", atomically: true, encoding: .utf8)
        expectRefusal(dir + "/file/state", kind: .unusable, ["a file is in the way", "\(dir)/file is a file, not a folder"])
    }

    @Test func aFolderThatMayNotBeCreatedIsSaidInWords() throws {
        // /sys refuses new folders (EPERM/EROFS, even for root); no mount needed.
        expectRefusal("/sys/sensorfleet-state-test", kind: .unusable, ["cannot create the folder /sys/sensorfleet-state-test"])
        #expect(!StateDirectory.words(EROFS, path: "/x").contains("Error"))
        #expect(StateDirectory.words(EROFS, path: "/x") == "the file system is read-only")
        #expect(StateDirectory.words(EACCES, path: "/a/b").contains("permission denied"))
    }
}
