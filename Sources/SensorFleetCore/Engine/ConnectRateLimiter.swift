import MosquittoKit
import Synchronization

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
        interval = Duration.saturating(seconds: 1 / rate).saturatingNanoseconds
    }

    /// Reserves an attempt; returns the time at which it may start (≥ `now`).
    public func reserve(now: MonotonicInstant) -> MonotonicInstant {
        theoreticalArrival.withLock { tat in
            let tolerance = interval.multipliedReportingOverflow(by: UInt64(burst - 1))
            let earliest = tolerance.overflow ? 0 : (tat > tolerance.partialValue ? tat - tolerance.partialValue : 0)
            let slot = max(now.nanoseconds, earliest)
            let next = max(tat, slot).addingReportingOverflow(interval)
            tat = next.overflow ? .max : next.partialValue
            return MonotonicInstant(nanoseconds: slot)
        }
    }
}
