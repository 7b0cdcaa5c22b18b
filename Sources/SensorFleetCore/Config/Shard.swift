
/// One process's share of a fleet: shard `index` of `count` (`--shard I/N`).
///
/// The fleet's devices in id order (templates expanded) are split into `count` contiguous
/// ranges; shard `i` of a fleet of `K` devices owns positions `[⌊K·i/N⌋, ⌊K·(i+1)/N⌋)`, k6's
/// execution-segment rule. Each shard computes its share alone, from `K`, `i` and `N`: the shards
/// are disjoint, together cover the fleet, and differ in size by at most one device. A device is
/// the same device in every shard layout (its id, client id, certificate, and its sensors' seeds,
/// which derive from the fleet seed and the device id — ``SensorSeed``).
public struct Shard: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// 0-based, below `count`.
    public let index: Int
    /// How many shards the fleet is split into (1…``maximumCount``).
    public let count: Int

    /// The whole fleet: shard 0 of 1.
    public static let whole = Shard(checkedIndex: 0, count: 1)
    /// More shards than this is a typo.
    public static let maximumCount = 100_000
    /// The Kubernetes Indexed Job's variable that `--shard auto` reads the index from.
    public static let indexVariable = "JOB_COMPLETION_INDEX"
    /// The variable that `--shard auto` reads the shard count from when `--shards` is not given.
    public static let countVariable = "SENSORFLEET_SHARDS"

    private init(checkedIndex: Int, count: Int) {
        self.index = checkedIndex
        self.count = count
    }

    /// - Parameters:
    ///   - index: 0…count-1.
    ///   - count: 1…``maximumCount``.
    /// - Throws: ``ShardError`` when either is out of range.
    public init(index: Int, count: Int) throws(ShardError) {
        guard (1...Self.maximumCount).contains(count) else {
            throw ShardError("--shard \(index)/\(count): the shard count must be 1…\(Self.maximumCount)")
        }
        guard (0..<count).contains(index) else {
            throw ShardError("--shard \(index)/\(count): the index must be 0…\(count - 1) (shards are numbered from 0)")
        }
        self.init(checkedIndex: index, count: count)
    }

    /// The positions this shard owns in a fleet of `total` devices (sorted by id).
    public func range(of total: Int) -> Range<Int> {
        // Int64 products: 10^5 shards × 10^13 devices stay below 2^63.
        let lower = Int(Int64(total) * Int64(index) / Int64(count))
        let upper = Int(Int64(total) * Int64(index + 1) / Int64(count))
        return lower..<upper
    }

    /// The positions this shard owns when only the first `firstDevices` of `total` devices are
    /// used (`bench --devices N --shard I/N`: the first N, then split).
    public func positions(of total: Int, firstDevices: Int?) -> Range<Int> {
        range(of: min(total, max(0, firstDevices ?? total)))
    }

    /// This shard's part of `items` (the fleet's devices in id order).
    public func select<T>(_ items: [T]) -> [T] { Array(items[range(of: items.count)]) }

    /// "I/N".
    public var description: String { "\(index)/\(count)" }

    /// Reads `--shard`: `I/N`, or `auto` (the index from `JOB_COMPLETION_INDEX`, the count from
    /// `shards` (`--shards`) or else `SENSORFLEET_SHARDS`).
    /// - Parameters:
    ///   - text: the value of `--shard`.
    ///   - shards: the value of `--shards`, if given.
    ///   - environment: the process environment.
    /// - Throws: ``ShardError`` naming the flag or variable, what was expected and how to fix it.
    public static func parse(_ text: String, shards: Int? = nil, environment: [String: String]) throws(ShardError) -> Shard {
        let trimmed = text.trimmingSpaces()
        if trimmed == "auto" {
            let count: Int
            if let shards {
                count = shards
            } else if let value = environment[countVariable] {
                guard let parsed = Int(value.trimmingSpaces()), parsed >= 1 else {
                    throw ShardError("\(countVariable)=\"\(value)\": expected the number of shards (a whole number ≥ 1), e.g. the Indexed Job's `completions`")
                }
                count = parsed
            } else {
                throw ShardError("--shard auto: the shard count is unknown; pass --shards N or set \(countVariable)=N (the Indexed Job's `completions`)")
            }
            guard let value = environment[indexVariable] else {
                throw ShardError("--shard auto: \(indexVariable) is not set; it is set by a Kubernetes Indexed Job (completionMode: Indexed). Elsewhere pass --shard I/N")
            }
            guard let index = Int(value.trimmingSpaces()) else {
                throw ShardError("\(indexVariable)=\"\(value)\": expected a whole number 0…\(count - 1)")
            }
            guard (1...maximumCount).contains(count) else {
                throw ShardError("--shard auto: the shard count \(count) must be 1…\(maximumCount) (--shards or \(countVariable))")
            }
            guard (0..<count).contains(index) else {
                throw ShardError("\(indexVariable)=\(index) is out of range for \(count) shards: expected 0…\(count - 1); make --shards or \(countVariable) equal to the Job's `completions`")
            }
            return Shard(checkedIndex: index, count: count)
        }
        if shards != nil {
            throw ShardError("--shards: only with --shard auto (--shard I/N gives the count itself)")
        }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw ShardError("--shard \(text): expected I/N (shard I of N, numbered from 0, e.g. 0/3) or `auto`")
        }
        return try Shard(index: index, count: count)
    }
}

/// A `--shard` value, `--shards`, `JOB_COMPLETION_INDEX` or `SENSORFLEET_SHARDS` that cannot be
/// used; the message says which and how to fix it.
public struct ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension FleetSpec {
    /// The fleet with only `shard`'s devices (the spec's devices are sorted by id).
    /// - Throws: ``ShardError`` when the shard is empty (more shards than devices).
    public func selecting(_ shard: Shard) throws(ShardError) -> FleetSpec {
        guard shard != .whole else { return self }
        var copy = self
        copy.devices = shard.select(devices)
        guard !copy.devices.isEmpty else {
            throw ShardError("shard \(shard) of a fleet of \(devices.count) device\(devices.count == 1 ? "" : "s") is empty: use at most \(devices.count) shards")
        }
        return copy
    }
}
