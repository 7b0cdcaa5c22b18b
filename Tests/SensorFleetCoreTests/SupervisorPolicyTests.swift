import Synchronization
import MosquittoKit
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

/// A deterministic generator so the tests see the same draws every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct BackoffTests {
    @Test func ceilingDoublesFromTheBaseUpToTheCap() {
        var backoff = Backoff(policy: BackoffPolicy(base: 1, cap: 120, resetAfter: 30))
        var rng = SeededGenerator(state: 1)
        var ceilings: [Double] = []
        for _ in 0..<10 {
            ceilings.append(backoff.ceiling)
            _ = backoff.nextDelay(using: &rng)
        }
        #expect(ceilings == [1, 2, 4, 8, 16, 32, 64, 120, 120, 120])
    }

    @Test func delaysAreFullJitterWithinTheCeiling() {
        var rng = SeededGenerator(state: 42)
        var samples: [Double] = []
        for _ in 0..<2000 {
            var backoff = Backoff(policy: BackoffPolicy(base: 1, cap: 120))
            for _ in 0..<3 { _ = backoff.nextDelay(using: &rng) }
            samples.append(backoff.nextDelay(using: &rng))  // 4th attempt: ceiling 8
        }
        #expect(samples.allSatisfy { $0 >= 0 && $0 <= 8 })
        // Full jitter spreads over the whole range, not around a point.
        #expect(samples.contains { $0 < 1 } && samples.contains { $0 > 7 })
        let mean = samples.reduce(0, +) / Double(samples.count)
        #expect(abs(mean - 4) < 0.4)
    }

    @Test func neverExceedsTheCapAfterManyFailures() {
        var backoff = Backoff(policy: BackoffPolicy(base: 0.5, cap: 10))
        var rng = SeededGenerator(state: 7)
        for _ in 0..<500 { #expect(backoff.nextDelay(using: &rng) <= 10) }
    }

    @Test func aLongConnectionResetsTheAttemptsAShortOneDoesNot() {
        var backoff = Backoff(policy: BackoffPolicy(base: 1, cap: 120, resetAfter: 30))
        var rng = SeededGenerator(state: 3)
        for _ in 0..<5 { _ = backoff.nextDelay(using: &rng) }
        #expect(backoff.ceiling == 32)
        backoff.connectionEnded(after: 29.9)
        #expect(backoff.ceiling == 32)
        backoff.connectionEnded(after: 30)
        #expect(backoff.attempt == 0)
        #expect(backoff.ceiling == 1)
    }

    @Test func permanentFailuresGoStraightToTheCapWithoutAHotLoop() {
        var backoff = Backoff(policy: BackoffPolicy(base: 1, cap: 120))
        var rng = SeededGenerator(state: 9)
        for _ in 0..<200 {
            let delay = backoff.nextDelay(permanent: true, using: &rng)
            #expect(delay >= 60 && delay <= 120)
        }
        // After a permanent failure an ordinary one stays at the cap's ceiling.
        #expect(backoff.ceiling == 120)
    }
}

@Suite struct ConnectRateLimiterTests {
    @Test func slotsAreSpreadAtTheConfiguredRate() {
        let limiter = ConnectRateLimiter(rate: 100)  // one every 10 ms
        let start: UInt64 = 5_000_000_000
        let slots = (0..<1000).map { _ in limiter.reserve(now: MonotonicInstant(nanoseconds: start)).nanoseconds }
        #expect(slots.first == start)
        for (a, b) in zip(slots, slots.dropFirst()) { #expect(b - a == 10_000_000) }
        // 1,000 attempts at 100/s take 10 s: no second holds more than 100.
        var perSecond: [UInt64: Int] = [:]
        for slot in slots { perSecond[(slot - start) / 1_000_000_000, default: 0] += 1 }
        #expect(perSecond.values.allSatisfy { $0 <= 100 })
        #expect(perSecond.count == 10)
    }

    @Test func anIdleLimiterGrantsAtOnceAndABurstAllowsThatMany() {
        let limiter = ConnectRateLimiter(rate: 10, burst: 3)
        let now: UInt64 = 1_000_000_000_000
        func reserve(_ at: UInt64) -> UInt64 { limiter.reserve(now: MonotonicInstant(nanoseconds: at)).nanoseconds }
        #expect(reserve(now) == now)
        #expect(reserve(now) == now)
        #expect(reserve(now) == now)
        #expect(reserve(now) == now + 100_000_000)
        // Long idle: back to granting at once.
        #expect(reserve(now + 60_000_000_000) == now + 60_000_000_000)
    }
}

@Suite struct OutboxEvictionTests {
    /// The entries a full `drop_oldest` outbox pushed out for `entry`.
    private func append(_ entry: Outbox.Entry, to outbox: inout Outbox) -> Outbox.Entry? {
        guard case .accepted(let evicted) = outbox.append(entry) else { return nil }
        return evicted.first
    }

    @Test func keepsOrderAndDropsTheOldestWhenFull() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 3))
        var evicted: [UInt64] = []
        for seq in 1...5 as ClosedRange<UInt64> {
            if let old = append(.init(seq: seq, payload: [UInt8(seq)], enqueuedAt: .zero), to: &outbox) { evicted.append(old.seq) }
        }
        #expect(evicted == [1, 2])
        #expect(outbox.count == 3)
        var order: [UInt64] = []
        while let entry = outbox.removeFirst() { order.append(entry.seq) }
        #expect(order == [3, 4, 5])
        #expect(outbox.isEmpty)
    }

    @Test func survivesManyCyclesWithoutLosingEntries() {
        var outbox = Outbox(spec: OutboxSpec(maxMessages: 100))
        var next: UInt64 = 1
        var expected: UInt64 = 1
        for round in 0..<1000 {
            for _ in 0..<(round % 7 + 1) {
                if let evicted = append(.init(seq: next, payload: [], enqueuedAt: .zero), to: &outbox) {
                    // Full: the oldest goes, and it is exactly the one we would have taken next.
                    #expect(evicted.seq == expected)
                    expected += 1
                }
                next += 1
            }
            #expect(outbox.count <= 100)
            for _ in 0..<(round % 5 + 1) {
                guard let entry = outbox.removeFirst() else { break }
                #expect(entry.seq == expected)
                expected += 1
            }
        }
        #expect(UInt64(outbox.count) == next - expected)
    }
}

@Suite struct ConnectGateTests {
    @Test func admitsUpToTheLimitAndAgainAfterALeave() {
        let gate = ConnectGate(limit: 3)
        #expect(gate.tryEnter() && gate.tryEnter() && gate.tryEnter())
        #expect(!gate.tryEnter())
        #expect(gate.current == 3)
        gate.leave()
        #expect(gate.tryEnter())
        #expect(!gate.tryEnter())
    }

    @Test func waitersAreWokenFirstComeFirstServedWithThePlaceHandedOver() {
        let gate = ConnectGate(limit: 1)
        let woken = Mutex<[Int]>([])
        #expect(gate.enter { woken.withLock { $0.append(0) } })
        for i in 1...3 { #expect(!gate.enter { woken.withLock { $0.append(i) } }) }
        #expect(gate.waiting == 3)
        gate.leave()
        #expect(woken.withLock { $0 } == [1])
        #expect(gate.current == 1, "the place passed to the waiter")
        #expect(!gate.tryEnter(), "no overtaking while others wait")
        gate.leave(); gate.leave()
        #expect(woken.withLock { $0 } == [1, 2, 3])
        gate.leave()
        #expect(gate.current == 0 && gate.waiting == 0)
    }

    @Test func holdsItsLimitUnderConcurrentUse() async {
        let gate = ConnectGate(limit: 5)
        let peak = await withTaskGroup(of: Int.self) { group -> Int in
            for _ in 0..<8 {
                group.addTask {
                    var seen = 0
                    for _ in 0..<2_000 where gate.tryEnter() {
                        seen = max(seen, gate.current)
                        gate.leave()
                    }
                    return seen
                }
            }
            return await group.reduce(0) { max($0, $1) }
        }
        #expect(peak <= 5)
        #expect(gate.current == 0)
    }
}

/// The engine's last line behind the range checks: no setting, however extreme, makes a timer,
/// a backoff or a rate limiter trap.
@Suite struct EngineArithmeticTests {
    static let extremes: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, -1, 1e-308, 1e308, .leastNonzeroMagnitude, .greatestFiniteMagnitude]

    @Test func durationsFromAnySecondsSaturate() {
        for value in Self.extremes {
            let duration = Duration.saturating(seconds: value)
            #expect(duration >= .zero)
            _ = MonotonicInstant.now().advanced(by: duration)
            _ = duration.saturatingNanoseconds
        }
        #expect(Duration.saturating(seconds: 1.5) == .milliseconds(1500))
        #expect(MonotonicInstant.distantFuture.advanced(by: .seconds(1)) == .distantFuture)
    }

    @Test func backoffWithAnyPolicyGivesAFiniteDelay() {
        var rng = SystemRandomNumberGenerator()
        for base in Self.extremes {
            for cap in Self.extremes {
                var backoff = Backoff(policy: BackoffPolicy(base: base, cap: cap))
                for permanent in [false, true, false] {
                    let delay = backoff.nextDelay(permanent: permanent, using: &rng)
                    #expect(delay.isFinite && delay >= 0, "base \(base), cap \(cap): \(delay)")
                }
            }
        }
    }

    @Test func aRateLimiterAtAnyRateGivesSlots() {
        for rate in [1e-9, 1e-3, 1, 1e9, 1e300] {
            let limiter = ConnectRateLimiter(rate: rate)
            let now = MonotonicInstant.now()
            let first = limiter.reserve(now: now)
            let second = limiter.reserve(now: now)
            #expect(first == now && second >= first)
        }
    }
}
