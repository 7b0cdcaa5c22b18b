import Foundation
import Synchronization

/// How a device waits between connection attempts.
public struct BackoffPolicy: Sendable, Equatable {
    /// First ceiling of the random delay, in seconds.
    public var base: Double
    /// Largest ceiling, in seconds.
    public var cap: Double
    /// A connection that lasted this long resets the attempt count.
    public var resetAfter: Double

    public init(base: Double = 1, cap: Double = 120, resetAfter: Double = 30) {
        self.base = base
        self.cap = cap
        self.resetAfter = resetAfter
    }
}

/// Exponential backoff with full jitter (delay drawn from [0, min(cap, base·2ⁿ)]), so devices
/// that lost the broker together do not come back together. Failures that will not fix
/// themselves (untrusted broker, rejected certificate) jump to the cap, drawn from [cap/2, cap]
/// so they are never retried in a hot loop.
public struct Backoff: Sendable {
    public let policy: BackoffPolicy
    /// Failed attempts since the last reset.
    public private(set) var attempt = 0

    public init(policy: BackoffPolicy) { self.policy = policy }

    /// The ceiling for the next delay.
    public var ceiling: Double {
        min(policy.cap, policy.base * pow(2, Double(min(attempt, 62))))
    }

    /// Delay before the next attempt, after a failure; counts the failure.
    public mutating func nextDelay<R: RandomNumberGenerator>(permanent: Bool = false, using rng: inout R) -> Double {
        if permanent {
            attempt = max(attempt, Int(ceil(log2(policy.cap / policy.base))))
            return Double.random(in: (policy.cap / 2)...policy.cap, using: &rng)
        }
        let ceiling = self.ceiling
        attempt += 1
        return Double.random(in: 0...ceiling, using: &rng)
    }

    /// A connection that was up for `connectedFor` seconds ended: long enough resets the count.
    public mutating func connectionEnded(after connectedFor: Double) {
        if connectedFor >= policy.resetAfter { attempt = 0 }
    }
}

/// A fleet-wide limit on connection attempts per second, shared by all reactors: each attempt
/// reserves the next free slot (generic cell rate algorithm), so a restarted broker sees at most
/// `rate` handshakes a second (plus `burst`), spread evenly rather than in bursts.
public final class ConnectRateLimiter: Sendable {
    public let rate: Double
    public let burst: Int
    private let interval: UInt64
    private let theoreticalArrival = Mutex<UInt64>(0)

    /// - Parameters:
    ///   - rate: attempts per second, > 0.
    ///   - burst: attempts allowed at once after an idle period (1: strictly spread).
    public init(rate: Double, burst: Int = 1) {
        precondition(rate > 0)
        self.rate = rate
        self.burst = max(1, burst)
        interval = UInt64(1e9 / rate)
    }

    /// Reserves an attempt; returns the monotonic time (ns) at which it may start (≥ `now`).
    public func reserve(now: UInt64) -> UInt64 {
        theoreticalArrival.withLock { tat in
            let tolerance = interval &* UInt64(burst - 1)
            let earliest = tat > tolerance ? tat - tolerance : 0
            let slot = max(now, earliest)
            tat = max(tat, slot) &+ interval
            return slot
        }
    }
}

/// A fleet-wide cap on connections being set up at once (TCP + TLS + CONNACK). mosquitto's
/// listen backlog holds about 100 pending connects; past that the kernel drops SYNs and the
/// handshakes that do start time out, so a storm feeds itself. The rate limiter spaces attempts;
/// this keeps their number in flight below the backlog when the broker is slow to answer.
/// Waiters are woken first come, first served, each by its own callback (no polling).
public final class ConnectGate: Sendable {
    public let limit: Int
    private struct State {
        var inFlight = 0
        var waiters: [@Sendable () -> Void] = []
        var head = 0
    }
    private let state = Mutex(State())

    public init(limit: Int = 64) { self.limit = max(1, limit) }

    /// Takes a place now (true), or queues `wake`, which runs once a place is taken for it.
    public func enter(orWhenFree wake: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            if state.inFlight < limit && state.head == state.waiters.count {
                state.inFlight += 1
                return true
            }
            state.waiters.append(wake)
            return false
        }
    }

    /// Takes a place now, or fails.
    public func tryEnter() -> Bool {
        state.withLock { state in
            guard state.inFlight < limit && state.head == state.waiters.count else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Gives a place back; the longest waiter, if any, gets it.
    public func leave() {
        let next = state.withLock { state -> (@Sendable () -> Void)? in
            guard state.head < state.waiters.count else {
                state.inFlight -= 1
                return nil
            }
            let wake = state.waiters[state.head]
            state.head += 1
            if state.head == state.waiters.count {
                state.waiters.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return wake  // the place passes to it: inFlight unchanged
        }
        next?()
    }

    public var current: Int { state.withLock { $0.inFlight } }
    public var waiting: Int { state.withLock { $0.waiters.count - $0.head } }
}
