internal import CEpoll
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import HeapModule
import Synchronization

/// What epoll reported for a source's descriptor.
public struct ReactorEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readable = ReactorEvents(rawValue: CEpoll_IN)
    public static let writable = ReactorEvents(rawValue: CEpoll_OUT)
    public static let error = ReactorEvents(rawValue: CEpoll_ERR)
    public static let hangUp = ReactorEvents(rawValue: CEpoll_HUP)
}

/// Something a reactor waits on: one descriptor at a time, registered with `Reactor.register`.
/// Every method is called on the reactor's thread.
public protocol ReactorSource: AnyObject {
    /// epoll reported `events` on the source's descriptor.
    func reactorHandle(events: ReactorEvents)
    /// About once a second: keep-alives, time-outs.
    func reactorHousekeeping(now: MonotonicInstant)
    /// End of the turn, for a source that asked with `Reactor.flushAtEndOfTurn`.
    func reactorFlush()
}

/// A timer scheduled on a reactor. Cancel it from the reactor's thread only.
public final class ReactorTimer {
    public let deadline: MonotonicInstant
    /// The reactor may wake for this timer as late as this (`deadline` plus its leeway), so that
    /// timers due close together fire in one wake-up. It never fires before `deadline`.
    let latest: MonotonicInstant
    fileprivate var work: (() -> Void)?
    let sequence: UInt64

    init(deadline: MonotonicInstant, latest: MonotonicInstant? = nil, sequence: UInt64, work: @escaping () -> Void) {
        self.deadline = deadline
        self.latest = max(deadline, latest ?? deadline)
        self.sequence = sequence
        self.work = work
    }

    public var isCancelled: Bool { work == nil }
    public func cancel() { work = nil }
}

/// Orders timers by deadline, then by the order they were scheduled in.
private struct TimerEntry: Comparable {
    let timer: ReactorTimer
    static func < (a: TimerEntry, b: TimerEntry) -> Bool {
        a.timer.deadline != b.timer.deadline ? a.timer.deadline < b.timer.deadline : a.timer.sequence < b.timer.sequence
    }
    static func == (a: TimerEntry, b: TimerEntry) -> Bool { a.timer === b.timer }
}

/// One event-loop thread that owns a set of sources (libmosquitto clients) and waits on their
/// descriptors with epoll. It is also a `SerialExecutor`: an actor whose `unownedExecutor` is a
/// reactor's runs on that thread (jobs come in through the same queue as `execute`), and code
/// the reactor calls directly (epoll events, timers) enters such an actor with
/// `assumeIsolated`, which this executor checks. Timers live in one heap per reactor (or, with
/// SENSORFLEET_TIMER_WHEEL=1, one timing wheel: TimerWheel), so 10,000 periodic devices cost no
/// thread and no sleeping task each.
public final class Reactor: @unchecked Sendable {
    public let name: String
    private let epfd: Int32
    private let wakeFD: Int32
    private static let wakeToken: UInt64 = .max

    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// The loop thread's pthread id (0 until it runs): `isCurrent` is one atomic load.
    private let threadID = Atomic<UInt>(0)

    // Reactor-thread state.
    private var deferred: [() -> Void] = []
    private var wheel: TimerWheel
    /// Every timer, in deadline order, then schedule order. With the wheel on, only those due in
    /// the current `runTimers` (collected from the wheel, or scheduled with a deadline already
    /// past).
    private var timers = Heap<TimerEntry>()
    private var timerSequence: UInt64 = 0
    /// The `now` of the last `runTimers`: the wheel holds only deadlines after it.
    private var collectedUpTo = MonotonicInstant.zero
    private var sources: [ReactorSource?] = []
    private var freeSlots: [Int] = []
    private var nextHousekeeping = MonotonicInstant.zero
    public private(set) var sourceCount = 0
    /// Sources that buffered writes this turn (flushed before waiting again).
    private var dirty: [ReactorSource] = []

    public init(name: String) throws(MosquittoError) {
        MosquittoLibrary.initialize()
        self.name = name
        wheel = TimerWheel(now: .now())
        epfd = CEpoll_create()
        wakeFD = CEpoll_eventfd()
        guard epfd >= 0, wakeFD >= 0 else {
            throw MosquittoError(code: MosquittoError.systemCallFailedCode, detail: "epoll/eventfd: \(String(cString: strerror(CEpoll_errno())))")
        }
        _ = CEpoll_watch(epfd, wakeFD, CEpoll_IN, Reactor.wakeToken)
    }

    deinit {
        close(epfd)
        close(wakeFD)
    }

    /// `start()` was called.
    public var hasStarted: Bool { started.load(ordering: .acquiring) }
    private let started = Atomic<Bool>(false)

    /// Starts the thread. Call once.
    public func start() {
        started.store(true, ordering: .releasing)
        Reactor.detachThread(name: name, stackSize: 1 << 20) { [self] in
            self.threadID.store(UInt(pthread_self()), ordering: .releasing)
            self.loop()
            self.finished.signal()
        }
    }

    /// A detached pthread (as Foundation's `Thread` made; `join` waits on `finished`, not on
    /// the thread) with a `stackSize`-byte stack, running `body`. It is named `name` for
    /// `top -H` and gdb (Foundation's `Thread.name` never reached the kernel on Linux). The
    /// closure goes to the thread in a retained box, released there.
    private static func detachThread(name: String, stackSize: Int, _ body: @escaping () -> Void) {
        // Allocated rather than `pthread_attr_t()`: pthread_attr_init is what initialises it.
        let attributes = UnsafeMutablePointer<pthread_attr_t>.allocate(capacity: 1)
        pthread_attr_init(attributes)
        defer {
            pthread_attr_destroy(attributes)
            attributes.deallocate()
        }
        pthread_attr_setdetachstate(attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(attributes, stackSize)
        let box = Unmanaged.passRetained(ReactorThreadStart(name: name, body: body)).toOpaque()
        var thread: pthread_t = 0
        let rc = pthread_create(&thread, attributes, reactorThreadMain, box)
        if rc != 0 {
            Unmanaged<ReactorThreadStart>.fromOpaque(box).release()
            preconditionFailure("reactor \(name): cannot start its thread: \(String(cString: strerror(rc)))")
        }
    }

    /// True on this reactor's own thread.
    @inline(__always)
    public var isCurrent: Bool {
        threadID.load(ordering: .acquiring) == UInt(pthread_self())
    }

    /// Stops the process with `message` unless called on this reactor's thread.
    public func preconditionIsCurrent(_ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
        precondition(isCurrent, "not on reactor \(name): \(message())", file: file, line: line)
    }

    /// Runs `work` on the reactor thread, soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(work) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Runs `work` on the reactor thread and returns its result.
    public func submit<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            execute { continuation.resume(returning: work()) }
        }
    }

    /// Asks the loop to end after this turn; `join` waits for it.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        execute {}
    }

    /// Blocks until the loop has ended (after `stop`). Not from the reactor thread.
    public func join() { finished.wait(); finished.signal() }

    // MARK: Reactor-thread API

    /// Runs `work` after the current event batch (reactor thread only); used to deliver results
    /// without re-entering the caller.
    public func deferToNextTurn(_ work: @escaping () -> Void) { deferred.append(work) }

    /// Schedules `work` at a monotonic deadline. Reactor thread only.
    ///
    /// It runs at the deadline, or, with SENSORFLEET_TIMER_SLACK=1, up to a leeway of 1/1000 of
    /// the delay (at most 10 ms) later, so that the reactor wakes once for timers whose leeways
    /// overlap. Off by default: measured at 10,000 devices, it brought no CPU gain beyond the
    /// noise, raised the PUBACK latency the bench reports (p50 0.12 → 0.6 ms: the PUBACK waits
    /// while the turn makes the other readings) and slowed the connect ramp (38 → 40–65 s).
    @discardableResult
    public func schedule(at deadline: MonotonicInstant, _ work: @escaping () -> Void) -> ReactorTimer {
        timerSequence &+= 1
        var latest = deadline
        if Reactor.useTimerSlack {
            let now = MonotonicInstant.now()
            if deadline > now {
                let leeway = min(Reactor.maxTimerSlackNanoseconds, (deadline.nanoseconds - now.nanoseconds) / 1000)
                latest = MonotonicInstant(nanoseconds: deadline.nanoseconds.addingReportingOverflow(leeway).overflow ? .max : deadline.nanoseconds + leeway)
            }
        }
        let timer = ReactorTimer(deadline: deadline, latest: latest, sequence: timerSequence, work: work)
        if Reactor.useTimerWheel && deadline > collectedUpTo {
            wheel.insert(timer)
        } else {
            timers.insert(TimerEntry(timer: timer))
        }
        return timer
    }

    /// Schedules `work` after `delay`. Reactor thread only.
    @discardableResult
    public func schedule(after delay: Duration, _ work: @escaping () -> Void) -> ReactorTimer {
        schedule(at: MonotonicInstant.now().advanced(by: delay), work)
    }

    /// Adds a source; returns its token for `watch`/`unregister`. Reactor thread only.
    public func register(_ source: ReactorSource) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() { slot = free; sources[slot] = source } else { slot = sources.count; sources.append(source) }
        sourceCount += 1
        return slot
    }

    /// Removes a source (its descriptor leaves the epoll set when it is closed).
    public func unregister(token: Int) {
        sources[token] = nil
        freeSlots.append(token)
        sourceCount -= 1
    }

    /// Waits for `events` on `fd` on behalf of the source `token` (adds or changes the watch).
    public func watch(fd: Int32, events: ReactorEvents, token: Int, modify: Bool) {
        if modify {
            _ = CEpoll_modify(epfd, fd, events.rawValue, UInt64(token))
        } else {
            _ = CEpoll_watch(epfd, fd, events.rawValue, UInt64(token))
        }
    }

    /// `source` has buffered writes: `reactorFlush()` runs before the loop waits again.
    public func flushAtEndOfTurn(_ source: ReactorSource) { dirty.append(source) }

    // MARK: Loop

    private func loop() {
        let capacity = 256
        var tokens = [UInt64](repeating: 0, count: capacity)
        var events = [UInt32](repeating: 0, count: capacity)
        nextHousekeeping = MonotonicInstant.now().advanced(by: .seconds(1))
        while true {
            let timeout = computeTimeout()
            let n = CEpoll_wait(epfd, &tokens, &events, Int32(capacity), timeout)
            for i in 0..<Int(max(0, n)) {
                let token = tokens[i]
                if token == Reactor.wakeToken {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                if let source = sources[Int(token)] {
                    source.reactorHandle(events: ReactorEvents(rawValue: events[i]))
                }
            }
            drainInbox()
            runDeferred()
            let now = MonotonicInstant.now()
            runTimers(now: now)
            if now >= nextHousekeeping {
                nextHousekeeping = now.advanced(by: .seconds(1))
                for case let source? in sources { source.reactorHousekeeping(now: now) }
            }
            runDeferred()
            flushDirty()
            if stopRequested.load(ordering: .acquiring) {
                drainInbox()
                runDeferred()
                break
            }
        }
    }

    private func flushDirty() {
        while !dirty.isEmpty {
            let batch = dirty
            dirty.removeAll(keepingCapacity: true)
            for source in batch { source.reactorFlush() }
        }
    }

    private func drainInbox() {
        wakePending.store(false, ordering: .releasing)
        let work = inbox.withLock { queue -> [@Sendable () -> Void] in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }

    private func runDeferred() {
        while !deferred.isEmpty {
            let work = deferred
            deferred.removeAll(keepingCapacity: true)
            for item in work { item() }
        }
    }

    /// Timers in the heap by default; SENSORFLEET_TIMER_WHEEL=1 puts them in the wheel. Measured
    /// at 10,000 idle devices, the wheel took the timers' share of the profile from 4.5 % (heap)
    /// to 3.3 %, below what the shared machine's noise lets an idle-CPU figure show. But in a
    /// fresh-clone CI run with it on, StormTests' broker restart saw 265 connections in one
    /// second against a limit of 250 (+ 4 % + 2): the connect limiter hands out start times
    /// 4 ms apart, and timers that fire late together start together. Off until that is
    /// understood (its own tests pass either way).
    static let useTimerWheel = getenv("SENSORFLEET_TIMER_WHEEL").map { String(cString: $0) == "1" } ?? false
    /// Leeway for timers (see `schedule(at:_:)`), off unless SENSORFLEET_TIMER_SLACK=1; needs the wheel.
    static let useTimerSlack = useTimerWheel && getenv("SENSORFLEET_TIMER_SLACK").map { String(cString: $0) == "1" } ?? false
    static let maxTimerSlackNanoseconds: UInt64 = 10_000_000

    private func runTimers(now: MonotonicInstant) {
        collectedUpTo = max(collectedUpTo, now)
        if Reactor.useTimerWheel {
            wheel.collect(now: now) { timers.insert(TimerEntry(timer: $0)) }
        }
        while let first = timers.min, first.timer.deadline <= now {
            _ = timers.removeMin()
            if let work = first.timer.work {
                first.timer.work = nil
                work()
            }
        }
    }

    private func computeTimeout() -> Int32 {
        if !deferred.isEmpty || !dirty.isEmpty { return 0 }
        let now = MonotonicInstant.now()
        var deadline = nextHousekeeping
        while let first = timers.min, first.timer.isCancelled { _ = timers.removeMin() }
        if let first = timers.min, first.timer.deadline < deadline { deadline = first.timer.deadline }
        if Reactor.useTimerWheel, let wake = wheel.earliestWake(before: deadline) { deadline = wake }
        if deadline <= now { return 0 }
        // Round up so a timer is never woken for early and spun on.
        return Int32(min(1000, (deadline.nanoseconds - now.nanoseconds + 999_999) / 1_000_000))
    }
}

// MARK: The reactor's thread

/// What a reactor's new thread runs, handed to it through `pthread_create`'s argument.
private final class ReactorThreadStart {
    let name: String
    let body: () -> Void
    init(name: String, body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// The thread's start routine: takes the box (balancing `passRetained`), names the thread, runs.
private func reactorThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ReactorThreadStart>.fromOpaque(argument!).takeRetainedValue()
    setCurrentThreadName(start.name)
    start.body()
    return nil
}

/// Names the calling thread (what `top -H` and `ps -L` show) as `pthread_setname_np` does for
/// itself (Swift's Glibc module does not export it): the kernel's `comm`, at most 15 bytes. Best
/// effort, like any thread name. The reactors' threads and the metrics server's use it.
public func setCurrentThreadName(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

// MARK: The reactor as an actor executor

extension Reactor: SerialExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        execute { [unowned self] in job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// `assumeIsolated` on an actor of this reactor, from code the reactor runs directly.
    public func checkIsolated() {
        precondition(isCurrent, "expected to run on reactor \(name)")
    }

    public func isIsolatingCurrentContext() -> Bool? { isCurrent }
}

/// A value confined to one reactor, carried across threads and checked on use: reading `value`
/// anywhere but on its reactor's thread stops the process (as swift-nio's `NIOLoopBound`).
public struct ReactorBound<Value>: @unchecked Sendable {
    private let wrapped: Value
    public let reactor: Reactor

    /// Wraps `value`; on `reactor`'s thread only.
    public init(_ value: Value, on reactor: Reactor) {
        reactor.preconditionIsCurrent("ReactorBound made off its reactor")
        wrapped = value
        self.reactor = reactor
    }

    /// Wraps a `value` made before `reactor`'s thread started, handing it over to that thread:
    /// nothing else can have used it yet, and from now on only the reactor may.
    public init(_ value: Value, handingTo reactor: Reactor) {
        precondition(!reactor.hasStarted, "ReactorBound(handingTo:) after reactor \(reactor.name) started; use init(_:on:) on its thread")
        wrapped = value
        self.reactor = reactor
    }

    public var value: Value {
        reactor.preconditionIsCurrent("ReactorBound used off its reactor")
        return wrapped
    }
}
