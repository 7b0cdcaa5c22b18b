import Foundation
import MosquittoKit
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// The outbox's bounds (count and bytes), its two policies when full, its TTL, and the
/// `outbox:` section of fleet.yaml.
@Suite struct OutboxTests {
    private func entry(_ seq: UInt64, bytes: Int = 10, at time: UInt64 = 0) -> Outbox.Entry {
        Outbox.Entry(seq: seq, payload: [UInt8](repeating: UInt8(seq & 0xff), count: bytes), enqueuedAt: MonotonicInstant(nanoseconds: time))
    }

    private func seqs(_ outbox: inout Outbox) -> [UInt64] { outbox.removeAll().map(\.seq) }

    @Test func dropOldestEvictsTheOldestWhenTheCountIsReached() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 3, maxBytes: 1000))
        var evicted: [UInt64] = []
        for seq in 1...5 as ClosedRange<UInt64> {
            guard case .accepted(let out) = outbox.append(entry(seq)) else { Issue.record("refused \(seq)"); return }
            evicted += out.map(\.seq)
        }
        #expect(evicted == [1, 2])
        #expect(outbox.count == 3 && outbox.bytes == 30)
        #expect(seqs(&outbox) == [3, 4, 5])
        #expect(outbox.bytes == 0)
    }

    @Test func dropOldestEvictsAsManyAsTheBytesNeed() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 100, maxBytes: 100))
        for seq in 1...4 as ClosedRange<UInt64> { _ = outbox.append(entry(seq, bytes: 25)) }
        #expect(outbox.bytes == 100)
        guard case .accepted(let evicted) = outbox.append(entry(5, bytes: 60)) else { Issue.record("refused"); return }
        #expect(evicted.map(\.seq) == [1, 2, 3])
        #expect(outbox.bytes == 85)
        #expect(seqs(&outbox) == [4, 5])
    }

    @Test func refuseNewestKeepsTheQueueAndRefuses() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 2, maxBytes: 1000, whenFull: .refuseNewest))
        _ = outbox.append(entry(1))
        _ = outbox.append(entry(2))
        guard case .refused = outbox.append(entry(3)) else { Issue.record("accepted past the bound"); return }
        // The byte bound refuses too.
        var small = Outbox(spec: OutboxSpec(maxMessages: 10, maxBytes: 25, whenFull: .refuseNewest))
        _ = small.append(entry(1))
        _ = small.append(entry(2))
        guard case .refused = small.append(entry(3)) else { Issue.record("accepted past the byte bound"); return }
        #expect(seqs(&outbox) == [1, 2])
        #expect(seqs(&small) == [1, 2])
    }

    @Test func aMessageLargerThanTheByteBoundIsRefusedWithoutEvictingAnything() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 10, maxBytes: 50))
        _ = outbox.append(entry(1, bytes: 40))
        guard case .refused = outbox.append(entry(2, bytes: 51)) else { Issue.record("accepted"); return }
        #expect(seqs(&outbox) == [1])
    }

    @Test func ttlExpiresOnlyWhatIsOlder() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 10, ttl: 2))
        let second: UInt64 = 1_000_000_000
        _ = outbox.append(entry(1, at: 1 * second))
        _ = outbox.append(entry(2, at: 2 * second))
        _ = outbox.append(entry(3, at: 4 * second))
        #expect(outbox.expire(now: MonotonicInstant(nanoseconds: 3 * second)).isEmpty)
        #expect(outbox.expire(now: MonotonicInstant(nanoseconds: 4 * second + 1)).map(\.seq) == [1, 2])
        #expect(outbox.bytes == 10)
        #expect(seqs(&outbox) == [3])
        var forever = Outbox(spec: OutboxSpec(maxMessages: 10))
        _ = forever.append(entry(1, at: 0))
        #expect(forever.expire(now: MonotonicInstant(nanoseconds: 1_000 * second)).isEmpty)
    }

    @Test func manyAppendsAndRemovalsKeepOrderAndBytes() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 50, maxBytes: 10_000))
        var expected: [UInt64] = []
        var next: UInt64 = 1
        for round in 0..<200 {
            for _ in 0..<(round % 7) {
                _ = outbox.append(entry(next, bytes: Int(next % 13) + 1))
                expected.append(next)
                next += 1
                if expected.count > 50 { expected.removeFirst() }
            }
            for _ in 0..<(round % 5) where !expected.isEmpty {
                #expect(outbox.removeFirst()?.seq == expected.removeFirst())
            }
            #expect(outbox.bytes == expected.reduce(0) { $0 + Int($1 % 13) + 1 })
        }
        #expect(seqs(&outbox) == expected)
    }

    // MARK: fleet.yaml

    @Test func outboxSectionIsRead() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", """
                outbox:
                  max_messages: 500
                  max_bytes: 65536
                  when_full: refuse_newest
                  ttl: 600
                  ack_timeout: 7.5
                  backlog_rate: 20
                """)
            try fleet.write("d/device.yaml", TempFleet.deviceYAML())
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            #expect(spec.outbox == OutboxSpec(maxMessages: 500, maxBytes: 65536, whenFull: .refuseNewest, ttl: 600,
                                              ackTimeout: 7.5, backlogRate: 20))
        }
    }

    @Test func outboxDefaultsAndTheOlderKey() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "outbox_limit: 42\n")
            try fleet.write("d/device.yaml", TempFleet.deviceYAML())
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            #expect(spec.outbox == OutboxSpec(maxMessages: 42))
            #expect(spec.outbox.whenFull == .dropOldest && spec.outbox.ttl == nil && spec.outbox.maxBytes == 1 << 20)
        }
    }

    @Test func outboxMistakesNameTheFieldAndTheFix() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", """
                outbox_limit: 10
                outbox:
                  max_messages: 0
                  max_bytes: lots
                  when_full: drop_newest
                  ttl: -1
                  ack_timeout: 0
                  backlog_rate: 0
                  max_size: 3
                """)
            try fleet.write("d/device.yaml", TempFleet.deviceYAML())
            let issues = parseIssues(fleet)
            let file = fleet.path("fleet.yaml")
            let both = try issue(in: issues, file: file, field: "outbox_limit")
            #expect(both.problem.contains("both set") && both.fix.contains("remove `outbox_limit`"))
            #expect(try issue(in: issues, file: file, field: "outbox.max_messages").line == 3)
            #expect(try issue(in: issues, file: file, field: "outbox.max_bytes").problem.contains("got"))
            let policy = try issue(in: issues, file: file, field: "outbox.when_full")
            #expect(policy.problem.contains("\"drop_oldest\" or \"refuse_newest\"") && policy.problem.contains("drop_newest"))
            #expect(try issue(in: issues, file: file, field: "outbox.ttl").fix.contains("outbox.ttl"))
            #expect(try issue(in: issues, file: file, field: "outbox.ack_timeout").problem.contains("0.1"))
            _ = try issue(in: issues, file: file, field: "outbox.backlog_rate")
            let unknown = try issue(in: issues, file: file, field: "outbox.max_size")
            #expect(unknown.problem.contains("unknown key"))
        }
    }

    // MARK: counters

    @Test func countersSplitDropsByReason() {
        let counters = FleetCounters()
        counters.drop(.overflow, count: 3)
        counters.drop(.expired)
        counters.drop(.unsent, count: 0)
        let totals = counters.snapshot()
        #expect(totals.dropped == 4)
        #expect(totals.droppedByReason["overflow"] == 3 && totals.droppedByReason["expired"] == 1)
        #expect(totals.droppedByReason["unsent"] == 0)
        #expect(totals.droppedByReason.count == DropReason.allCases.count)
    }
}
