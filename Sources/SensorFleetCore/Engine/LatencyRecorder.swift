import Histogram
import Synchronization

/// An HDR histogram of latencies in microseconds (1 µs to 1 h, 3 significant digits), safe to
/// record into from any thread: the whole run, plus the current one-second interval that the
/// live line and the time series read and reset.
public final class LatencyRecorder: Sendable {
    public static let highest: UInt64 = 3_600_000_000

    /// An empty histogram of the recorder's layout (1 µs … 1 h, 3 significant digits).
    public static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
    }

    private struct State {
        var total = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: LatencyRecorder.highest, numberOfSignificantValueDigits: .three)
        var interval = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: LatencyRecorder.highest, numberOfSignificantValueDigits: .three)
        var recording = true
        /// Also receives every latency, whatever `recording` says (the live metrics endpoint).
        var mirror: (@Sendable (UInt64) -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Records one latency in microseconds (clamped to 1 µs … 1 h).
    public func record(micros: UInt64) {
        let value = min(max(micros, 1), LatencyRecorder.highest)
        let mirror = state.withLock { state -> (@Sendable (UInt64) -> Void)? in
            if state.recording {
                _ = state.total.record(value)
                _ = state.interval.record(value)
            }
            return state.mirror
        }
        mirror?(value)
    }

    /// Hands every latency recorded from now on (in microseconds, clamped) to `body` as well,
    /// warm-up and after `freeze()` included: a cumulative view such as a Prometheus histogram.
    public func mirror(into body: @escaping @Sendable (UInt64) -> Void) {
        state.withLock { $0.mirror = body }
    }

    /// Records nanoseconds.
    public func record(nanos: UInt64) { record(micros: nanos / 1000) }

    /// Drops what was recorded so far (the end of the warm-up).
    public func reset() {
        state.withLock {
            $0.total.reset()
            $0.interval.reset()
        }
    }

    /// Stops recording (after the measured window).
    public func freeze() { state.withLock { $0.recording = false } }

    /// The last interval's histogram; starts a new interval.
    public func takeInterval() -> Histogram<UInt64> {
        state.withLock {
            let taken = $0.interval
            $0.interval.reset()
            return taken
        }
    }

    public var total: Histogram<UInt64> { state.withLock { $0.total } }
}

/// p50, p90, p99, p99.9 and max of a histogram, in milliseconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var count: UInt64
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double

    enum CodingKeys: String, CodingKey {
        case count, p50, p90, p99, p999 = "p99_9", max, mean
    }

    public init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }
        if count == 0 {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
        } else {
            p50 = ms(histogram.valueAtPercentile(50))
            p90 = ms(histogram.valueAtPercentile(90))
            p99 = ms(histogram.valueAtPercentile(99))
            p999 = ms(histogram.valueAtPercentile(99.9))
            max = ms(histogram.max)
            mean = (histogram.mean / 1000 * 1000).rounded() / 1000
        }
    }
}
