import Synchronization
import Testing

@testable import MosquittoKit

/// The reactor's timers: the timing wheel alone (with instants chosen by the test, so hours pass
/// in no time), and on a real reactor thread (order, never early, cancel).
@Suite struct ReactorTests {
    private static let ms: UInt64 = 1_000_000

    private static func timer(_ deadline: UInt64, _ sequence: UInt64, _ fired: @escaping () -> Void = {}) -> ReactorTimer {
        ReactorTimer(deadline: MonotonicInstant(nanoseconds: deadline), sequence: sequence, work: fired)
    }

    // MARK: TimerWheel

    @Test func theWheelHandsOverEachTimerOnceAtTheFirstCollectAtOrAfterItsDeadline() {
        let start: UInt64 = 5_000_000 * ReactorTests.ms
        var wheel = TimerWheel(now: MonotonicInstant(nanoseconds: start))
        var generator = SystemRandomNumberGenerator()
        // Deadlines from the current tick to past the coarse wheel (≈ 18 min) and the heap beyond.
        var deadlines: [UInt64] = []
        for i in 0..<5_000 {
            let span: UInt64 = [2 * ReactorTests.ms, 5_000 * ReactorTests.ms, 30_000 * ReactorTests.ms, 3_000_000 * ReactorTests.ms][i % 4]
            deadlines.append(start + UInt64.random(in: 0...span, using: &generator))
        }
        for (i, deadline) in deadlines.enumerated() { wheel.insert(ReactorTests.timer(deadline, UInt64(i))) }
        #expect(wheel.count == deadlines.count)
        var firedAt: [UInt64: UInt64] = [:]
        var now = start
        var previous: UInt64?
        while now < start + 3_100_000 * ReactorTests.ms {
            wheel.collect(now: MonotonicInstant(nanoseconds: now)) { timer in
                #expect(timer.deadline.nanoseconds <= now, "fired early")
                #expect(previous.map { timer.deadline.nanoseconds > $0 } ?? true, "fired late")
                #expect(firedAt[timer.sequence] == nil, "fired twice")
                firedAt[timer.sequence] = now
            }
            previous = now
            // Steps from sub-millisecond to several seconds, so some collects cross many buckets.
            now += [300_000, 7 * ReactorTests.ms, 1_000 * ReactorTests.ms, 9_000 * ReactorTests.ms][Int.random(in: 0..<4, using: &generator)]
        }
        #expect(firedAt.count == deadlines.count)
        #expect(wheel.count == 0)
    }

    @Test func cancelledTimersAreDroppedAndNeverHandedOver() {
        let start: UInt64 = 1_000 * ReactorTests.ms
        var wheel = TimerWheel(now: MonotonicInstant(nanoseconds: start))
        let timers = (0..<300).map { ReactorTests.timer(start + UInt64($0) * 10_000 * ReactorTests.ms, UInt64($0)) }
        for timer in timers { wheel.insert(timer) }
        for (i, timer) in timers.enumerated() where i % 3 == 0 { timer.cancel() }
        var fired = 0
        wheel.collect(now: MonotonicInstant(nanoseconds: start + 4_000_000 * ReactorTests.ms)) { timer in
            #expect(!timer.isCancelled)
            fired += 1
        }
        #expect(fired == 200)
        #expect(wheel.count == 0)
    }

    @Test func theNextWakeIsTheEarliestDeadlineAndACancelledTimerCostsAtMostOneEarlyWake() {
        let start: UInt64 = 77 * ReactorTests.ms + 123
        var wheel = TimerWheel(now: MonotonicInstant(nanoseconds: start))
        let early = ReactorTests.timer(start + 250 * ReactorTests.ms + 17, 1)
        let later = ReactorTests.timer(start + 250 * ReactorTests.ms + 400_000, 2)
        let far = ReactorTests.timer(start + 600_000 * ReactorTests.ms, 3)
        for timer in [later, early, far] { wheel.insert(timer) }
        let limit = MonotonicInstant(nanoseconds: start + 1_000 * ReactorTests.ms)
        #expect(wheel.earliestWake(before: limit) == early.deadline)
        // A cancelled timer may still set one wake-up (early, never late); the collect at that
        // wake-up finds nothing to run, and the next answer is exact again.
        early.cancel()
        #expect(wheel.earliestWake(before: limit)! <= later.deadline)
        var fired = 0
        wheel.collect(now: early.deadline) { _ in fired += 1 }
        #expect(fired == 0)
        #expect(wheel.earliestWake(before: limit) == later.deadline)
        #expect(wheel.earliestWake(before: MonotonicInstant(nanoseconds: start + 100 * ReactorTests.ms)) == nil)
        later.cancel()
        wheel.collect(now: later.deadline) { _ in fired += 1 }
        #expect(fired == 0)
        #expect(wheel.earliestWake(before: limit) == nil)
        #expect(wheel.count == 1)
    }

    @Test func theNextWakeIsTheEarliestLatestMomentSoTimersDueCloseTogetherShareIt() {
        let start: UInt64 = 500 * ReactorTests.ms
        var wheel = TimerWheel(now: MonotonicInstant(nanoseconds: start))
        func timer(_ deadline: UInt64, leeway: UInt64, _ sequence: UInt64) -> ReactorTimer {
            ReactorTimer(deadline: MonotonicInstant(nanoseconds: start + deadline),
                         latest: MonotonicInstant(nanoseconds: start + deadline + leeway), sequence: sequence, work: {})
        }
        let limit = MonotonicInstant(nanoseconds: start + 1_000 * ReactorTests.ms)
        let lenient = timer(100 * ReactorTests.ms, leeway: 10 * ReactorTests.ms, 1)
        wheel.insert(lenient)
        #expect(wheel.earliestWake(before: limit) == lenient.latest)
        // A timer without leeway due inside the first one's leeway sets the wake-up.
        let strict = timer(104 * ReactorTests.ms, leeway: 0, 2)
        wheel.insert(strict)
        #expect(wheel.earliestWake(before: limit) == strict.deadline)
        // One due later, even with a shorter leeway, does not.
        wheel.insert(timer(120 * ReactorTests.ms, leeway: 1 * ReactorTests.ms, 3))
        #expect(wheel.earliestWake(before: limit) == strict.deadline)
        // At that wake-up both due timers fire, the later one not yet.
        var fired: [UInt64] = []
        wheel.collect(now: strict.deadline) { fired.append($0.sequence) }
        #expect(fired.sorted() == [1, 2])
        #expect(wheel.count == 1)
    }

    @Test func aTimerFarAheadOrAtTheEndOfTimeWaitsWithoutFiring() {
        let start: UInt64 = 3 * ReactorTests.ms
        var wheel = TimerWheel(now: MonotonicInstant(nanoseconds: start))
        wheel.insert(ReactorTimer(deadline: .distantFuture, sequence: 1, work: {}))
        let day = ReactorTests.timer(start + 86_400_000 * ReactorTests.ms, 2)
        wheel.insert(day)
        var fired: [UInt64] = []
        wheel.collect(now: MonotonicInstant(nanoseconds: start + 86_399_000 * ReactorTests.ms)) { fired.append($0.sequence) }
        #expect(fired.isEmpty)
        wheel.collect(now: day.deadline) { fired.append($0.sequence) }
        #expect(fired == [2])
        #expect(wheel.count == 1)
    }

    // MARK: On a reactor

    /// Waits (bounded: 5 s) until `done` says the timers ran.
    private static func waitUntil(_ done: @escaping @Sendable () -> Bool) async throws {
        for _ in 0..<500 where !done() { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func timersDueInOneTurnRunInDeadlineOrderThenScheduleOrderAndNeverEarly() async throws {
        let log = Mutex<[Int]>([])
        let early = Mutex(0)
        let reactor = try Reactor(name: "reactor-test")
        reactor.start()
        defer { reactor.stop() }
        await reactor.submit {
            let base = MonotonicInstant.now().advanced(by: .milliseconds(30))
            // Scheduled out of order, several on one deadline, one nanosecond apart on others.
            let plan: [(Int, UInt64)] = [(3, 2), (1, 0), (4, 2), (2, 1), (5, 2), (0, 0)]
            var order = 0
            for (label, offset) in plan {
                order += 1
                let deadline = MonotonicInstant(nanoseconds: base.nanoseconds + offset)
                reactor.schedule(at: deadline) {
                    if MonotonicInstant.now() < deadline { early.withLock { $0 += 1 } }
                    log.withLock { $0.append(label) }
                }
            }
        }
        try await ReactorTests.waitUntil { log.withLock { $0.count } == 6 }
        // Deadline order; on deadline base+0, label 1 was scheduled before 0; on base+2, 3, 4, 5.
        #expect(log.withLock { $0 } == [1, 0, 2, 3, 4, 5])
        #expect(early.withLock { $0 } == 0)
    }

    @Test func aTimerScheduledFromATimerWithAPastDeadlineRunsInTheSameTurnInOrder() async throws {
        let log = Mutex<[String]>([])
        let reactor = try Reactor(name: "reactor-test")
        reactor.start()
        defer { reactor.stop() }
        await reactor.submit {
            let base = MonotonicInstant.now().advanced(by: .milliseconds(20))
            reactor.schedule(at: base) {
                log.withLock { $0.append("a") }
                reactor.schedule(at: base) { log.withLock { $0.append("c") } }
                reactor.schedule(at: .zero) { log.withLock { $0.append("b") } }
            }
            reactor.schedule(at: base.advanced(by: .nanoseconds(1))) { log.withLock { $0.append("d") } }
        }
        try await ReactorTests.waitUntil { log.withLock { $0.count } == 4 }
        // "b" is due at zero (before "d"), "c" at base but scheduled after "d": deadline first.
        #expect(log.withLock { $0 } == ["a", "b", "c", "d"])
    }

    @Test func cancelledTimersDoNotRunAndManyTimersAllRun() async throws {
        let fired = Atomic<Int>(0)
        let cancelledRan = Atomic<Int>(0)
        let reactor = try Reactor(name: "reactor-test")
        reactor.start()
        defer { reactor.stop() }
        await reactor.submit {
            for i in 0..<2_000 {
                let timer = reactor.schedule(after: .milliseconds(Int64(i % 200))) {
                    if i % 4 == 0 { cancelledRan.add(1, ordering: .relaxed) } else { fired.add(1, ordering: .relaxed) }
                }
                if i % 4 == 0 { timer.cancel() }
            }
            // Far ahead: must neither fire nor keep the reactor from sleeping or stopping.
            reactor.schedule(after: .seconds(7_200)) { cancelledRan.add(1, ordering: .relaxed) }
        }
        try await ReactorTests.waitUntil { fired.load(ordering: .relaxed) == 1_500 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.load(ordering: .relaxed) == 1_500)
        #expect(cancelledRan.load(ordering: .relaxed) == 0)
    }
}
