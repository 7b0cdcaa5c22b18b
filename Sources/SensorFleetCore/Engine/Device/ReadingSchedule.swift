import MosquittoKit
import Synchronization

/// When a device makes its readings: a timer on the device's reactor at a fixed interval (the
/// next deadline follows from the previous one, so the rate does not drift), small bursts to
/// catch up, overruns counted, an optional message limit, or — for a load test run as fast as
/// acknowledged — no timer at all (`Delivery` asks for a reading when its window has room).
/// Reactor-confined, like the device that owns it.
final class ReadingSchedule {
    /// Seconds between readings; a `set-interval` command changes it.
    private(set) var interval: Duration
    /// No timer: readings are made on demand (`wantsReadingOnDemand`).
    let unpaced: Bool
    /// Readings to make in this run, then stop.
    let limit: UInt64
    /// Readings made in this run.
    private(set) var made: UInt64 = 0
    private(set) var producing = false

    private let reactor: Reactor
    private let counters: FleetCounters
    private var timer: ReactorTimer?
    private var next = MonotonicInstant.zero

    /// Makes one reading at the given time. Set by the owner before `start`.
    var produce: (MonotonicInstant) -> Void = { _ in }
    /// Runs after each tick's readings (expiry, hand-over to the connection).
    var afterTick: (MonotonicInstant) -> Void = { _ in }

    init(interval: Duration, unpaced: Bool, limit: UInt64, reactor: Reactor, counters: FleetCounters) {
        self.interval = interval
        self.unpaced = unpaced
        self.limit = limit
        self.reactor = reactor
        self.counters = counters
    }

    /// Ten readings a second or more (or unpaced): worth batching a reactor turn's writes.
    var isFast: Bool { unpaced || interval <= .milliseconds(100) }

    var hasRoom: Bool { made < limit }

    /// An unpaced schedule wants a reading now (the window has room and the limit is not reached).
    var wantsReadingOnDemand: Bool { unpaced && producing && made < limit }

    /// Counts a reading made (by the timer, on demand, or by a command).
    func noteReading() { made &+= 1 }

    /// The first reading comes at `offset` into the first interval, so a fleet does not publish
    /// in lock-step.
    func start(now: MonotonicInstant, offset: Duration) {
        producing = true
        guard !unpaced, limit > 0 else { return }
        next = now.advanced(by: offset)
        arm()
    }

    /// No more readings.
    func stop() {
        producing = false
        timer?.cancel()
    }

    /// From the next reading on, every `interval`; the next one comes one interval from now.
    func setInterval(_ interval: Duration) {
        self.interval = interval
        guard producing, !unpaced else { return }
        timer?.cancel()
        next = MonotonicInstant.now().advanced(by: interval)
        arm()
    }

    private func arm() {
        timer = reactor.schedule(at: next) { [unowned self] in self.tick() }
    }

    private func tick() {
        guard producing else { return }
        let now = MonotonicInstant.now()
        produce(now)
        // Timers fire with 1 ms granularity, so readings due within the tolerance (one interval,
        // at least 2 ms) are made now in a small burst; older ones are skipped and counted as
        // overruns: a device that falls behind is never silently slowed.
        let step = max(1, interval.saturatingNanoseconds)
        let tolerance = max(step, 2_000_000)
        next = MonotonicInstant(nanoseconds: next.nanoseconds.addingReportingOverflow(step).overflow ? .max : next.nanoseconds + step)
        if next.nanoseconds < now.nanoseconds, now.nanoseconds - next.nanoseconds > tolerance {
            let missed = (now.nanoseconds - tolerance - next.nanoseconds) / step + 1
            next = MonotonicInstant(nanoseconds: next.nanoseconds &+ missed &* step)
            counters.overruns.add(Int(clamping: missed), ordering: .relaxed)
        }
        var burst = 0
        while next <= now && burst < 1024 && made < limit {
            produce(now)
            next = MonotonicInstant(nanoseconds: next.nanoseconds &+ step)
            burst += 1
        }
        if made < limit { arm() }
        afterTick(now)
    }
}
