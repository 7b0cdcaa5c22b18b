#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC, nanoseconds since boot): for deadlines and
/// intervals, never for timestamps (see `WallClock` in SensorFleetCore). Arithmetic saturates:
/// a deadline past the end of time stays at `.distantFuture`, never traps.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    @inlinable
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    @inline(__always)
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
    }

    public static let zero = MonotonicInstant(nanoseconds: 0)
    public static let distantFuture = MonotonicInstant(nanoseconds: .max)

    @inlinable
    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// `self` moved later by `duration` (negative durations count as zero).
    @inlinable
    public func advanced(by duration: Duration) -> MonotonicInstant {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(duration.saturatingNanoseconds)
        return MonotonicInstant(nanoseconds: overflow ? .max : sum)
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    @inlinable
    public func duration(since earlier: MonotonicInstant) -> Duration {
        nanoseconds > earlier.nanoseconds ? .nanoseconds(Int64(clamping: nanoseconds - earlier.nanoseconds)) : .zero
    }

    /// Nanoseconds from `earlier` to `self` (0 when `earlier` is later): for latency recorders.
    @inlinable
    public func nanoseconds(since earlier: MonotonicInstant) -> UInt64 {
        nanoseconds > earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0
    }

    /// Seconds from `earlier` to `self` (0 when `earlier` is later).
    @inlinable
    public func seconds(since earlier: MonotonicInstant) -> Double {
        Double(nanoseconds(since: earlier)) / 1e9
    }
}

extension Duration {
    /// A duration of `seconds`, never trapping: NaN and negative values are zero, values past
    /// what `UInt64` nanoseconds hold (584 years) are that much. Settings are range-checked where
    /// they enter; this is the engine's last line, not its validation.
    @inlinable
    public static func saturating(seconds: Double) -> Duration {
        guard seconds > 0 else { return .zero }  // NaN compares false
        guard seconds < 9.2e9 else { return .nanoseconds(Int64.max) }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// Whole nanoseconds, zero for negative durations, `UInt64.max` past that range.
    @inlinable
    public var saturatingNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 || seconds > 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(max(0, attoseconds) / 1_000_000_000))
        return overflow2 ? .max : sum
    }

    /// The duration in seconds, as a `Double`.
    @inlinable
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
