#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One simulated sensor: deterministic for a given spec and seed (see ``SensorSeed``).
///
/// Every reading is finite and inside the kind's bounds: `uniform` draws in [min, max],
/// `gaussian` is clamped to the bounds it has, `randomWalk` reflects at min and max. Rounding to
/// ``SensorSpec/precision`` happens last and is clamped back into the bounds.
public struct SimulatedSensor: Sendable {
    public let spec: SensorSpec
    private var rng: Xoshiro256StarStar
    /// Current position of a random walk.
    private var walk: Double
    /// Readings taken so far (counter).
    private var count: UInt64 = 0
    /// The second value of the last Box–Muller pair.
    private var spareGaussian: Double?
    private let roundingScale: Double?

    /// - Parameters:
    ///   - spec: what to simulate.
    ///   - seed: usually `SensorSeed.derive(fleetSeed:deviceID:sensorName:)`.
    public init(spec: SensorSpec, seed: UInt64) {
        self.spec = spec
        self.rng = Xoshiro256StarStar(seed: seed)
        if case .randomWalk(let start, _, let lo, let hi) = spec.kind {
            let (a, b) = Self.ordered(lo, hi)
            walk = Self.clamp(start.isFinite ? start : a, a, b)
        } else {
            walk = 0
        }
        if let p = spec.precision, (0...15).contains(p) {
            var scale = 1.0
            for _ in 0..<p { scale *= 10 }
            roundingScale = scale
        } else {
            roundingScale = nil
        }
    }

    /// Next reading.
    /// - Parameter elapsed: seconds since the device started (used by `sine`).
    /// - Returns: the reading, rounded to `spec.precision` when set.
    public mutating func read(elapsed: Double) -> Double {
        var lo = -Double.greatestFiniteMagnitude
        var hi = Double.greatestFiniteMagnitude
        var fallback = 0.0
        var value: Double
        switch spec.kind {
        case .constant(let v):
            value = v
        case .uniform(let a, let b):
            (lo, hi) = Self.ordered(a, b)
            fallback = lo
            value = lo + (hi - lo) * rng.nextUnit()
        case .gaussian(let mean, let stddev, let minimum, let maximum):
            if let minimum { lo = minimum }
            if let maximum { hi = maximum }
            (lo, hi) = Self.ordered(lo, hi)
            fallback = mean
            value = mean + stddev * nextGaussian()
        case .randomWalk(_, let step, let a, let b):
            (lo, hi) = Self.ordered(a, b)
            fallback = lo
            if count > 0 {
                let move = (rng.nextUnit() * 2 - 1) * step
                walk = Self.reflect(walk + move, lo, hi)
            }
            value = walk
        case .sine(let period, let amplitude, let offset, let noise):
            fallback = offset
            let phase = period != 0 && period.isFinite ? 2 * Double.pi * elapsed / period : 0
            value = offset + amplitude * sin(phase)
            if noise != 0 { value += noise * nextGaussian() }
        case .counter(let start, let step):
            fallback = start
            value = start + Double(count) * step
        case .system, .route, .thermal, .diurnal, .replay:
            // Not simulated here: read through SystemSensor or the models (DeviceSensor).
            value = .nan
        }
        count &+= 1
        if let scale = roundingScale {
            let scaled = value * scale
            if scaled.isFinite { value = scaled.rounded(.toNearestOrAwayFromZero) / scale }
        }
        if !value.isFinite { value = fallback.isFinite ? fallback : 0 }
        return Self.clamp(value, lo, hi)
    }

    /// Standard normal via Box–Muller, using both values of each pair.
    private mutating func nextGaussian() -> Double {
        rng.nextGaussian(spare: &spareGaussian)
    }

    @inline(__always)
    static func ordered(_ a: Double, _ b: Double) -> (Double, Double) {
        // NaN bounds mean "no bound".
        let x = a.isNaN ? -Double.greatestFiniteMagnitude : a
        let y = b.isNaN ? Double.greatestFiniteMagnitude : b
        return x <= y ? (x, y) : (y, x)
    }

    @inline(__always)
    static func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double {
        v < lo ? lo : (v > hi ? hi : v)
    }

    /// Folds `v` back into [lo, hi] as if the bounds were mirrors (handles steps wider than the range).
    static func reflect(_ v: Double, _ lo: Double, _ hi: Double) -> Double {
        if v >= lo && v <= hi { return v }
        let range = hi - lo
        guard range > 0, range.isFinite, v.isFinite else { return clamp(v.isFinite ? v : lo, lo, hi) }
        var t = (v - lo).truncatingRemainder(dividingBy: 2 * range)
        if t < 0 { t += 2 * range }
        if t > range { t = 2 * range - t }
        return clamp(lo + t, lo, hi)
    }
}
