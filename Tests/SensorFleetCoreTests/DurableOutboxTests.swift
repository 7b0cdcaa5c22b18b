import Foundation
import Logging
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// The durable outbox on a real folder: round trip across reopenings, a full disk and a
/// read-only folder (small tmpfs mounts, so the failures are the kernel's, not simulated).
@Suite(.serialized) struct DurableOutboxTests {
    static let logger = Logger(label: "durable-test")

    private func tempDir() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func payload(_ seq: UInt64, size: Int = 40) -> [UInt8] {
        Array("{\"seq\":\(seq)}".utf8) + [UInt8](repeating: 0x20, count: max(0, size - 12))
    }

    @Test("the store runs WAL with synchronous = FULL (a commit is fsynced: power-cut safe), not the NORMAL GRDB used to set")
    func walWithFullSync() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let database = try SQLiteDatabase(path: dir + "/probe.sqlite", readOnly: false, busyTimeoutMilliseconds: 1000)
        #expect(try database.integer("PRAGMA synchronous") == 2, "a new SQLite connection starts at FULL (2) too")
        try database.execute("PRAGMA synchronous = NORMAL")
        try DurableOutbox.useWAL(database)
        #expect(try database.text("PRAGMA journal_mode") == "wal")
        #expect(try database.integer("PRAGMA synchronous") == 2, "0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA")
    }

    @Test func messagesAndLastSeqSurviveAReopening() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = DurableOutbox(directory: dir, logger: Self.logger)
            #expect(store.isDurable && store.failureReason == nil)
            var batch = DurableOutbox.Batch()
            for seq in 1...10 as ClosedRange<UInt64> { batch.inserts.append(("a", seq, payload(seq))) }
            for seq in 1...3 as ClosedRange<UInt64> { batch.inserts.append(("b", seq, payload(seq))) }
            #expect(store.commit(batch))
            var acks = DurableOutbox.Batch()
            for seq in [1, 2, 5] as [UInt64] { acks.deletes.append(("a", seq)) }
            for seq in 1...3 as ClosedRange<UInt64> { acks.deletes.append(("b", seq)) }
            #expect(store.commit(acks))
            #expect(store.storedCount() == 7)
        }
        let reopened = DurableOutbox(directory: dir, logger: Self.logger)
        let restored = reopened.restore()
        #expect(restored["a"]?.lastSeq == 10)
        #expect(restored["a"]?.backlog.map(\.seq) == [3, 4, 6, 7, 8, 9, 10])
        #expect(restored["a"]?.backlog.first?.payload == payload(3))
        // Everything of b was acknowledged: no backlog, but its seq goes on from 3.
        #expect(restored["b"]?.lastSeq == 3)
        #expect(restored["b"]?.backlog.isEmpty == true)
        let journalMode = try String(contentsOfFile: dir + "/outbox.sqlite-wal", encoding: .isoLatin1)
        #expect(!journalMode.isEmpty, "WAL file expected beside the database")
    }

    static let canMount: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("mount-probe-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard shell("mount -t tmpfs -o size=64k tmpfs \(probe)") == 0 else { return false }
        return shell("umount \(probe)") == 0
    }()

    @discardableResult
    static func shell(_ command: String) -> Int32 {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", command + " >/dev/null 2>&1"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status >> 8) & 0xff
    }

    @Test(.enabled(if: canMount, "needs root to mount a small tmpfs"))
    func aFullDiskIsReportedAndNothingCommittedIsLost() throws {
        let dir = try tempDir()
        #expect(Self.shell("mount -t tmpfs -o size=256k tmpfs \(dir)") == 0)
        defer {
            StateDirectory.release(dir)
            Self.shell("umount \(dir)")
            try? FileManager.default.removeItem(atPath: dir)
        }
        let store = DurableOutbox(directory: dir, logger: Self.logger)
        #expect(store.isDurable)
        var committed: UInt64 = 0
        var failed = false
        for round in 0..<200 where !failed {
            var batch = DurableOutbox.Batch()
            for i in 0..<20 { batch.inserts.append(("dev", UInt64(round * 20 + i + 1), payload(0, size: 1000))) }
            if store.commit(batch) { committed += 20 } else { failed = true }
        }
        #expect(failed, "256 KiB should not hold 4 MB")
        #expect(store.failureReason?.contains("disk is full") == true, "\(store.failureReason ?? "nil")")
        #expect(!store.isDurable)
        // The rolled-back batch left the file whole: a reopening reads exactly what was committed.
        let restored = DurableOutbox(directory: dir, logger: Self.logger).restore()
        #expect(UInt64(restored["dev"]?.backlog.count ?? 0) == committed)
        #expect(restored["dev"]?.backlog.last?.seq == committed)
    }

    @Test(.enabled(if: canMount, "needs root to mount a tmpfs read-only"))
    func aReadOnlyFolderIsReportedAndTheStoreStaysIntact() throws {
        let dir = try tempDir()
        #expect(Self.shell("mount -t tmpfs -o size=1m tmpfs \(dir)") == 0)
        defer {
            StateDirectory.release(dir)
            Self.shell("umount \(dir)")
            try? FileManager.default.removeItem(atPath: dir)
        }
        do {
            let store = DurableOutbox(directory: dir, logger: Self.logger)
            var batch = DurableOutbox.Batch()
            batch.inserts = [("dev", 1, payload(1)), ("dev", 2, payload(2))]
            #expect(store.commit(batch))
        }
        #expect(Self.shell("mount -o remount,ro \(dir)") == 0)
        // Opening in a read-only folder: memory only, said so.
        let readOnly = DurableOutbox(directory: dir + "/fresh", logger: Self.logger)
        #expect(!readOnly.isDurable)
        #expect(readOnly.failureReason?.contains("read-only") == true, "\(readOnly.failureReason ?? "nil")")
        // The existing store on the read-only folder: refused clearly too, never damaged.
        let existing = DurableOutbox(directory: dir, logger: Self.logger)
        #expect(!existing.isDurable, "a read-only store must not claim durability")
        #expect(existing.failureReason?.contains(dir + "/outbox.sqlite") == true, "\(existing.failureReason ?? "nil")")
        #expect(Self.shell("mount -o remount,rw \(dir)") == 0)
        let again = DurableOutbox(directory: dir, logger: Self.logger)
        #expect(again.restore()["dev"]?.backlog.map(\.seq) == [1, 2])
    }

    @Test func aFileWhereTheFolderShouldBeIsAClearError() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "not a folder".write(toFile: dir + "/state", atomically: true, encoding: .utf8)
        let store = DurableOutbox(directory: dir + "/state", logger: Self.logger)
        #expect(!store.isDurable)
        #expect(store.failureReason?.contains(dir + "/state/outbox.sqlite") == true, "\(store.failureReason ?? "nil")")
        #expect(store.restore().isEmpty)
        #expect(!store.commit(DurableOutbox.Batch(inserts: [("x", 1, [1])])))
    }

    /// Prints what a batch costs (no assertion on time): insert N messages in one transaction,
    /// then delete them in another, as one reactor turn would.
    @Test func costPrintout() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = DurableOutbox(directory: dir, logger: Self.logger)
        let rounds = 50
        for batchSize in [1, 20, 200] {
            let before = (store.batches.load(ordering: .relaxed), store.batchNanos.load(ordering: .relaxed))
            for round in 0..<rounds {
                var insert = DurableOutbox.Batch()
                var delete = DurableOutbox.Batch()
                for i in 0..<batchSize {
                    let seq = UInt64(round * batchSize + i + 1)
                    insert.inserts.append(("dev-\(i % 10)", seq, payload(seq, size: 120)))
                    delete.deletes.append(("dev-\(i % 10)", seq))
                }
                #expect(store.commit(insert))
                #expect(store.commit(delete))
            }
            let batches = store.batches.load(ordering: .relaxed) - before.0
            let nanos = store.batchNanos.load(ordering: .relaxed) - before.1
            let perMessage = Double(nanos) / Double(rounds * batchSize) / 1000
            print("durable outbox cost: batch of \(batchSize): \(String(format: "%.2f", Double(nanos) / Double(batches) / 1e6)) ms per transaction, \(String(format: "%.1f", perMessage)) µs per message (insert + delete), synchronous=FULL, WAL")
        }
        #expect(store.storedCount() == 0)
    }
}
