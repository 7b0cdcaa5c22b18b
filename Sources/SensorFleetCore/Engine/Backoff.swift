import Foundation

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
