internal import CMosquitto
import Foundation
import Synchronization

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC): for deadlines, never for timestamps.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// A timer scheduled on a reactor. Cancel it from the reactor's thread only.
public final class ReactorTimer {
    public private(set) var deadline: UInt64
    fileprivate var work: (() -> Void)?
    fileprivate let sequence: UInt64

    fileprivate init(deadline: UInt64, sequence: UInt64, work: @escaping () -> Void) {
        self.deadline = deadline
        self.sequence = sequence
        self.work = work
    }

    public var isCancelled: Bool { work == nil }
    public func cancel() { work = nil }
}

/// One event-loop thread that owns a set of libmosquitto clients and waits on their sockets with
/// epoll. Every libmosquitto call for those clients happens on this thread; other threads hand
/// work over with `execute` (a locked queue plus an eventfd wake-up). Timers live in one heap
/// per reactor, so 10,000 periodic devices cost no thread and no sleeping task each.
public final class Reactor: @unchecked Sendable {
    public let name: String
    let epfd: Int32
    let wakeFD: Int32
    private static let wakeToken: UInt64 = .max

    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let threadID = Mutex<pthread_t?>(nil)

    // Reactor-thread state.
    private var deferred: [() -> Void] = []
    private var heap: [ReactorTimer] = []
    private var timerSequence: UInt64 = 0
    private var slots: [MQTTClient?] = []
    private var freeSlots: [Int] = []
    private var nextMisc: UInt64 = 0
    private(set) var clientCount = 0
    /// Clients that wrote into their write buffer this turn (flushed before waiting again).
    private var dirty: [MQTTClient] = []

    /// Reactor thread only: `client` has buffered writes to flush at the end of this turn.
    func markDirty(_ client: MQTTClient) { dirty.append(client) }

    private func flushDirty() {
        while !dirty.isEmpty {
            let clients = dirty
            dirty.removeAll(keepingCapacity: true)
            for client in clients { client.flushWrites() }
        }
    }

    public init(name: String) throws(MosquittoError) {
        MosquittoLibrary.initialize()
        self.name = name
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard epfd >= 0, wakeFD >= 0 else {
            throw MosquittoError(code: Int32(MOSQ_ERR_ERRNO.rawValue), detail: "epoll/eventfd: \(String(cString: strerror(CMosquitto_errno())))")
        }
        _ = CMosquitto_epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, CMosquitto_EPOLLIN, Reactor.wakeToken)
    }

    deinit {
        close(epfd)
        close(wakeFD)
    }

    /// Starts the thread. Call once.
    public func start() {
        let thread = Thread { [self] in
            self.threadID.withLock { $0 = pthread_self() }
            self.loop()
            self.finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// True on this reactor's own thread.
    public var isCurrent: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
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
    func deferToNextTurn(_ work: @escaping () -> Void) { deferred.append(work) }

    /// Schedules `work` at a monotonic deadline. Reactor thread only.
    @discardableResult
    public func schedule(at deadline: UInt64, _ work: @escaping () -> Void) -> ReactorTimer {
        timerSequence &+= 1
        let timer = ReactorTimer(deadline: deadline, sequence: timerSequence, work: work)
        heapPush(timer)
        return timer
    }

    /// Schedules `work` after `seconds`. Reactor thread only.
    @discardableResult
    public func schedule(after seconds: Double, _ work: @escaping () -> Void) -> ReactorTimer {
        schedule(at: MonotonicClock.now() &+ UInt64(max(0, seconds) * 1e9), work)
    }

    func attach(_ client: MQTTClient) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() { slot = free; slots[slot] = client } else { slot = slots.count; slots.append(client) }
        clientCount += 1
        return slot
    }

    func detach(slot: Int) {
        slots[slot] = nil
        freeSlots.append(slot)
        clientCount -= 1
    }

    // MARK: Loop

    private func loop() {
        let maxEvents = 256
        let eventSize = CMosquitto_epoll_event_size()
        let events = UnsafeMutableRawPointer.allocate(byteCount: eventSize * maxEvents, alignment: 8)
        defer { events.deallocate() }
        nextMisc = MonotonicClock.now() &+ 1_000_000_000
        while true {
            let timeout = computeTimeout()
            let n = epoll_wait(epfd, events.assumingMemoryBound(to: epoll_event.self), Int32(maxEvents), timeout)
            if n > 0 {
                for i in 0..<Int(n) {
                    let ev = (events + i * eventSize).assumingMemoryBound(to: epoll_event.self)
                    let token = CMosquitto_epoll_event_u64(ev)
                    if token == Reactor.wakeToken {
                        var value: UInt64 = 0
                        _ = read(wakeFD, &value, 8)
                        continue
                    }
                    if let client = slots[Int(token)] {
                        client.handle(events: CMosquitto_epoll_event_events(ev))
                    }
                }
            }
            drainInbox()
            runDeferred()
            let now = MonotonicClock.now()
            runTimers(now: now)
            if now >= nextMisc {
                nextMisc = now &+ 1_000_000_000
                for case let client? in slots { client.misc(now: now) }
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

    private func runTimers(now: UInt64) {
        while let first = heap.first, first.deadline <= now {
            heapPopFirst()
            if let work = first.work {
                first.work = nil
                work()
            }
        }
    }

    private func computeTimeout() -> Int32 {
        if !deferred.isEmpty || !dirty.isEmpty { return 0 }
        let now = MonotonicClock.now()
        var deadline = nextMisc
        while let first = heap.first, first.isCancelled { heapPopFirst() }
        if let first = heap.first, first.deadline < deadline { deadline = first.deadline }
        if deadline <= now { return 0 }
        // Round up so a timer is never woken for early and spun on.
        return Int32(min(1000, (deadline - now + 999_999) / 1_000_000))
    }

    // MARK: Binary heap of timers (deadline, then sequence)

    private func less(_ a: ReactorTimer, _ b: ReactorTimer) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
    }

    private func heapPush(_ timer: ReactorTimer) {
        heap.append(timer)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(heap[i], heap[parent]) { heap.swapAt(i, parent); i = parent } else { break }
        }
    }

    private func heapPopFirst() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        let count = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < count && less(heap[l], heap[smallest]) { smallest = l }
            if r < count && less(heap[r], heap[smallest]) { smallest = r }
            if smallest == i { break }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }
}
