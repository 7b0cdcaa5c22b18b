/// Counts one device's sequence numbers as they arrive: received, duplicates, out of order, and
/// which numbers are still missing (gaps). Sequence numbers start at 1.
public struct SequenceTracker: Sendable, Equatable {
    public private(set) var received = 0
    public private(set) var duplicates = 0
    /// Arrived after a higher number had arrived (filled a gap late).
    public private(set) var outOfOrder = 0
    /// Highest number seen.
    public private(set) var highest: UInt64 = 0
    /// Numbers below `highest` not seen yet.
    private var missing: Set<UInt64> = []

    public init() {}

    public mutating func record(_ seq: UInt64) {
        received += 1
        if seq > highest {
            if seq > highest + 1 {
                // Bounded so a wild seq cannot exhaust memory: beyond a million missing numbers
                // only the count matters.
                let gap = seq - highest - 1
                if gap <= 1_000_000 {
                    for s in (highest + 1)..<seq { missing.insert(s) }
                } else {
                    lostBeyondBound &+= gap
                }
            }
            highest = seq
        } else if missing.remove(seq) != nil {
            outOfOrder += 1
        } else {
            duplicates += 1
        }
    }

    private var lostBeyondBound: UInt64 = 0

    /// Numbers up to `lastSent` that never arrived: holes below the highest seen plus the tail
    /// after it (`lastSent` is the device's own last seq; pass `highest` when unknown).
    public func gaps(lastSent: UInt64? = nil) -> Int {
        let tail = (lastSent ?? highest) > highest ? Int((lastSent ?? highest) - highest) : 0
        return missing.count + Int(lostBeyondBound) + tail
    }

    /// Distinct messages that arrived.
    public var unique: Int { received - duplicates }
}
