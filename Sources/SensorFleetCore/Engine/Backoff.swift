#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// The policy as given, with non-finite or negative values taken as the defaults' bounds
    /// (the settings are range-checked where they enter; this only keeps the engine from trapping).
    public init(policy: BackoffPolicy) {
        var policy = policy
        if !(policy.cap > 0 && policy.cap.isFinite) { policy.cap = BackoffPolicy().cap }
        if !(policy.base > 0 && policy.base.isFinite) { policy.base = min(BackoffPolicy().base, policy.cap) }
        policy.base = min(policy.base, policy.cap)
        self.policy = policy
    }

    /// The ceiling for the next delay.
    public var ceiling: Double {
        min(policy.cap, policy.base * pow(2, Double(min(attempt, 62))))
    }

    /// Delay before the next attempt, after a failure; counts the failure.
    public mutating func nextDelay<R: RandomNumberGenerator>(permanent: Bool = false, using rng: inout R) -> Double {
        if permanent {
            // Enough doublings that the ceiling is the cap (at most 62: 2^62 × any base > any cap).
            attempt = max(attempt, Int(min(62, max(0, ceil(log2(policy.cap / policy.base))))))
            return Double.random(in: (policy.cap / 2)...policy.cap, using: &rng)
        }
        let ceiling = self.ceiling
        attempt = min(attempt + 1, 1 << 20)
        return Double.random(in: 0...ceiling, using: &rng)
    }

    /// A connection that was up for `connectedFor` seconds ended: long enough resets the count.
    public mutating func connectionEnded(after connectedFor: Double) {
        if connectedFor >= policy.resetAfter { attempt = 0 }
    }
}
