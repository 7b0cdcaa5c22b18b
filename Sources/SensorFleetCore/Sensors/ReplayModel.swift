/// `type: replay`: one column of a recorded CSV or JSONL file, played back at the recorded
/// times (relative to the first row), `speed` times faster, optionally looped.
public struct ReplaySpec: Sendable, Equatable {
    /// Absolute path of the file (for messages).
    public var file: String
    public var column: String
    /// Seconds of each row after the first row (non-decreasing, the first is 0).
    public var times: [Double]
    /// The column's value at each row; nil: the cell was empty (the reading is missing then).
    public var values: [Double?]
    public var speed: Double
    public var loop: Bool

    public init(file: String, column: String, times: [Double], values: [Double?], speed: Double = 1, loop: Bool = false) {
        self.file = file
        self.column = column
        self.times = times
        self.values = values
        self.speed = speed
        self.loop = loop
    }

    /// Length of one round when looping: the recording plus its last gap (or 1 s for one row).
    public var period: Double {
        guard let last = times.last else { return 0 }
        let gap = times.count >= 2 ? times[times.count - 1] - times[times.count - 2] : 1
        return last + (gap > 0 ? gap : 1)
    }
}

/// Plays a ``ReplaySpec``: at `elapsed` seconds the value is the one of the last row whose
/// recorded time (÷ speed) is not after it; after the last row, the last value stays (or, with
/// `loop`, the file starts again one last gap later).
final class ReplayModel {
    let spec: ReplaySpec
    private var cursor = 0

    init(spec: ReplaySpec) { self.spec = spec }

    /// The row in effect at `elapsed` seconds.
    func row(at elapsed: Double) -> Int {
        let times = spec.times
        guard !times.isEmpty else { return 0 }
        var t = max(0, elapsed) * spec.speed
        if spec.loop {
            let period = spec.period
            if period > 0, t.isFinite { t = t.truncatingRemainder(dividingBy: period) }
        }
        if cursor >= times.count || times[cursor] > t { cursor = 0 }
        while cursor + 1 < times.count && times[cursor + 1] <= t { cursor += 1 }
        return cursor
    }

    /// The value at `elapsed` seconds; nil when the recorded cell was empty.
    func read(elapsed: Double) -> Double? {
        guard !spec.values.isEmpty else { return nil }
        return spec.values[row(at: elapsed)]
    }
}
