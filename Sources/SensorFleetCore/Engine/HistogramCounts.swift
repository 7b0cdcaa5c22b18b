import Histogram

/// A ``LatencyRecorder`` histogram as it goes into a report: its non-empty buckets, each as
/// `[value, count]` (value: the highest value of the bucket, in microseconds). Recording each
/// value `count` times into a histogram of the same layout (1 µs … 1 h, 3 significant digits)
/// fills the same buckets, so histograms rebuilt from several reports add up exactly: the
/// percentiles of a merge are those of one histogram of all the samples.
public struct HistogramCounts: Sendable, Codable, Equatable {
    /// `[value µs, count]` of every non-empty bucket, in ascending value order.
    public var buckets: [[UInt64]]

    public init(_ histogram: Histogram<UInt64>) {
        buckets = histogram.recordedValues().map { [$0.value, $0.count] }
    }

    /// The histogram again (same layout as ``LatencyRecorder``'s).
    public var histogram: Histogram<UInt64> {
        var result = LatencyRecorder.emptyHistogram()
        for bucket in buckets where bucket.count == 2 && bucket[1] > 0 {
            _ = result.record(min(max(bucket[0], 1), LatencyRecorder.highest), count: bucket[1])
        }
        return result
    }

    /// The sum of the counts.
    public var totalCount: UInt64 { buckets.reduce(0) { $0 + ($1.count == 2 ? $1[1] : 0) } }
}
