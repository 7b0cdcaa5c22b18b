import Glibc

/// The real-time clock (CLOCK_REALTIME), for payload timestamps only; deadlines and intervals
/// use `MonotonicInstant`.
enum WallClock {
    /// Milliseconds since 1970.
    static func millis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Microseconds since 1970.
    static func micros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}
