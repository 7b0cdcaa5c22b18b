import HeapModule

/// A reactor's timers, in a hierarchical timing wheel: scheduling and collecting a timer cost
/// O(1) instead of the O(log n) of a heap (with 10,000 devices each holding a reading timer and a
/// PUBACK watchdog, the heap's sift-down was the reactor's largest own cost).
///
/// Time is cut into ticks of 2^20 ns (≈ 1.05 ms). The fine wheel holds timers due in the next
/// 3,841–4,096 ticks (≈ 4 s), one slot per tick; the coarse wheel holds those due up to ≈ 18 min
/// ahead, one bucket per 256 ticks (≈ 268 ms), moved into the fine wheel as the cursor
/// approaches; later deadlines wait in a heap and enter the coarse wheel when they come in
/// range. A slot keeps exact deadlines: `collect` hands over only timers whose deadline has
/// passed, so nothing fires early, and the caller orders what it collected.
///
/// Cancelled timers are dropped when their slot (bucket, heap entry) is next visited.
struct TimerWheel {
    static let tickShift: UInt64 = 20
    private static let slotBits = 12
    private static let slotCount = 1 << slotBits
    private static let slotMask = slotCount - 1
    /// Ticks per coarse bucket (a power of two).
    private static let bucketShift: UInt64 = 8
    private static let bucketTicks: UInt64 = 1 << bucketShift
    /// The fine wheel spans this many buckets: [cursor's bucket, + 16).
    private static let fineBuckets: UInt64 = UInt64(slotCount) >> bucketShift

    /// The fine wheel, indexed by tick & slotMask: ticks in
    /// [cursor, (cursor's bucket + fineBuckets) << bucketShift).
    private var fine: [[ReactorTimer]]
    /// The coarse wheel, indexed by bucket & slotMask: buckets in
    /// [cursor's bucket + fineBuckets, cursor's bucket + slotCount).
    private var coarse: [[ReactorTimer]]
    /// Deadlines beyond the coarse wheel.
    private var far = Heap<FarTimer>()
    /// The tick `collect` looks at next; no timer in the wheels is due before it.
    private(set) var cursor: UInt64
    /// Timers held in each part (cancelled ones included until dropped).
    private var fineCount = 0
    private var coarseCount = 0
    var count: Int { fineCount + coarseCount + far.count }
    /// No live timer's `latest` is before this (nil: not known): `earliestWake` answers from it
    /// without scanning. Lowered by `insert`, dropped once reached; a timer cancelled or fired
    /// since only makes it early, which costs one wake-up that finds nothing, never a late one.
    private var wakeFloor: MonotonicInstant?
    /// Reused by `collect` so that draining a slot allocates nothing.
    private var scratch: [ReactorTimer] = []

    init(now: MonotonicInstant) {
        fine = Array(repeating: [], count: TimerWheel.slotCount)
        coarse = Array(repeating: [], count: TimerWheel.slotCount)
        cursor = TimerWheel.tick(of: now)
    }

    static func tick(of instant: MonotonicInstant) -> UInt64 { instant.nanoseconds >> tickShift }

    private var cursorBucket: UInt64 { cursor >> TimerWheel.bucketShift }

    mutating func insert(_ timer: ReactorTimer) {
        if let floor = wakeFloor, timer.latest < floor { wakeFloor = timer.latest }
        place(timer)
    }

    /// Puts a timer where its deadline belongs relative to the cursor (a deadline already past
    /// goes in the cursor's slot, collected next time).
    private mutating func place(_ timer: ReactorTimer) {
        let tick = max(cursor, TimerWheel.tick(of: timer.deadline))
        let bucket = tick >> TimerWheel.bucketShift
        if bucket < cursorBucket + TimerWheel.fineBuckets {
            fine[Int(tick & UInt64(TimerWheel.slotMask))].append(timer)
            fineCount += 1
        } else if bucket < cursorBucket + UInt64(TimerWheel.slotCount) {
            coarse[Int(bucket & UInt64(TimerWheel.slotMask))].append(timer)
            coarseCount += 1
        } else {
            far.insert(FarTimer(timer: timer))
        }
    }

    /// Hands every live timer whose deadline is at or before `now` to `due` (in no particular
    /// order), drops cancelled ones it meets, and moves the cursor to `now`'s tick.
    mutating func collect(now: MonotonicInstant, _ due: (ReactorTimer) -> Void) {
        let nowTick = TimerWheel.tick(of: now)
        if let floor = wakeFloor, floor <= now { wakeFloor = nil }
        while true {
            drainSlot(Int(cursor & UInt64(TimerWheel.slotMask)), now: now, due)
            if cursor >= nowTick { break }
            if fineCount > 0 {
                cursor += 1
                if cursor & (TimerWheel.bucketTicks - 1) == 0 { cascade() }
                continue
            }
            // An empty fine wheel: on to the next bucket at once, or, with the coarse wheel empty
            // too, to the bucket where the heap's first timer enters the coarse wheel (a reactor
            // idle for hours, or a test that moves time by days, does not walk every tick).
            var bucket = cursorBucket + 1
            if coarseCount == 0 {
                let farBucket = far.min.map { TimerWheel.tick(of: $0.timer.deadline) >> TimerWheel.bucketShift } ?? .max
                let entering = farBucket >= UInt64(TimerWheel.slotCount) ? farBucket - UInt64(TimerWheel.slotCount) + 1 : 0
                bucket = max(bucket, min(nowTick >> TimerWheel.bucketShift, entering))
            }
            if bucket > nowTick >> TimerWheel.bucketShift {
                cursor = nowTick
            } else {
                cursor = bucket << TimerWheel.bucketShift
                cascade()
            }
        }
    }

    private mutating func drainSlot(_ index: Int, now: MonotonicInstant, _ due: (ReactorTimer) -> Void) {
        if fine[index].isEmpty { return }
        swap(&scratch, &fine[index])
        for timer in scratch {
            if timer.isCancelled {
                fineCount -= 1
            } else if timer.deadline <= now {
                fineCount -= 1
                due(timer)
            } else {
                fine[index].append(timer)
            }
        }
        scratch.removeAll(keepingCapacity: true)
    }

    /// The cursor entered a new bucket: the fine wheel now reaches one bucket further (taken
    /// from the coarse wheel), and the coarse wheel one bucket further (taken from the heap).
    private mutating func cascade() {
        let newest = cursorBucket + TimerWheel.fineBuckets - 1
        let index = Int(newest & UInt64(TimerWheel.slotMask))
        if !coarse[index].isEmpty {
            swap(&scratch, &coarse[index])
            coarseCount -= scratch.count
            for timer in scratch where !timer.isCancelled { place(timer) }
            scratch.removeAll(keepingCapacity: true)
        }
        let end = cursorBucket + UInt64(TimerWheel.slotCount)
        while let first = far.min, TimerWheel.tick(of: first.timer.deadline) >> TimerWheel.bucketShift < end {
            let timer = far.removeMin().timer
            if !timer.isCancelled { place(timer) }
        }
    }

    /// When to wake next for the timers, if before `limit`: the earliest `latest` (deadline
    /// plus leeway) of the live timers; at that moment every timer due by then fires together.
    /// Looks at the fine wheel only, up to `limit`: a caller that wakes at least every few
    /// seconds (the reactor wakes every second for housekeeping) misses nothing, since the fine
    /// wheel spans ≥ 3,841 ticks (≈ 4 s). Drops the cancelled timers of the slots it looks at.
    mutating func earliestWake(before limit: MonotonicInstant) -> MonotonicInstant? {
        if let floor = wakeFloor { return floor < limit ? floor : nil }
        if fineCount == 0 { return nil }
        var bound = limit
        var found = false
        let last = cursor + UInt64(TimerWheel.slotCount) - TimerWheel.bucketTicks
        var tick = cursor
        // A slot's timers are due no earlier than the slot's start (but for past deadlines placed
        // in the cursor's slot), so the scan ends at the first slot starting after `bound`.
        while tick <= last, tick == cursor || tick << TimerWheel.tickShift < bound.nanoseconds {
            let index = Int(tick & UInt64(TimerWheel.slotMask))
            if !fine[index].isEmpty {
                var cancelled = 0
                for timer in fine[index] {
                    if timer.isCancelled { cancelled += 1; continue }
                    if timer.latest < bound { bound = timer.latest; found = true }
                }
                if cancelled > 0 {
                    fine[index].removeAll { $0.isCancelled }
                    fineCount -= cancelled
                }
            }
            tick += 1
        }
        // Nothing before `bound`, up to where the scan went (the fine wheel's end, at the latest).
        wakeFloor = min(bound, MonotonicInstant(nanoseconds: tick << TimerWheel.tickShift))
        return found ? bound : nil
    }
}

/// A timer beyond the coarse wheel, ordered by deadline.
private struct FarTimer: Comparable {
    let timer: ReactorTimer
    static func < (a: FarTimer, b: FarTimer) -> Bool { a.timer.deadline < b.timer.deadline }
    static func == (a: FarTimer, b: FarTimer) -> Bool { a.timer === b.timer }
}
