#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `type: diurnal`: mean + amplitude · cos(2π (hour − peak_hour) / 24) + noise, where hour is the
/// local time of day (fractional hours) at the reading.
public struct DiurnalSpec: Sendable, Equatable {
    public var mean: Double
    public var amplitude: Double
    /// Local hour of the maximum, 0 ≤ peak_hour < 24.
    public var peakHour: Double
    /// Standard deviation of gaussian noise.
    public var noise: Double
    /// An IANA time zone (`Europe/Berlin`); nil: the machine's local time (TZ, /etc/localtime).
    public var timeZone: String?

    public init(mean: Double, amplitude: Double, peakHour: Double = 15, noise: Double = 0, timeZone: String? = nil) {
        self.mean = mean
        self.amplitude = amplitude
        self.peakHour = peakHour
        self.noise = noise
        self.timeZone = timeZone
    }
}

final class DiurnalModel {
    let spec: DiurnalSpec
    private let zone: ZoneInfo?
    private var rng: Xoshiro256StarStar
    private var spare: Double?
    /// UTC offset in seconds, looked up again once a minute of wall time has passed.
    private var offset = 0
    private var offsetValidUntil = Int64.min

    init(spec: DiurnalSpec, seed: UInt64) {
        self.spec = spec
        zone = spec.timeZone.flatMap { ZoneInfo.shared($0) }
        rng = Xoshiro256StarStar(seed: seed)
    }

    /// The local hour of day (0 ≤ h < 24) at `wallMillis`.
    func localHour(wallMillis: Int64) -> Double {
        if wallMillis >= offsetValidUntil || wallMillis < offsetValidUntil - 60_000 {
            offset = Self.utcOffset(at: wallMillis, zone: zone)
            offsetValidUntil = wallMillis + 60_000
        }
        let local = (wallMillis + Int64(offset) * 1000) % 86_400_000
        return Double(local < 0 ? local + 86_400_000 : local) / 3_600_000
    }

    static func utcOffset(at wallMillis: Int64, zone: ZoneInfo?) -> Int {
        // Whole seconds, rounded down (as Foundation's `secondsFromGMT(for:)` took the instant).
        if let zone { return zone.utcOffset(at: wallMillis >= 0 ? wallMillis / 1000 : -((-wallMillis + 999) / 1000)) }
        var seconds = time_t(wallMillis / 1000)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return 0 }
        return Int(parts.tm_gmtoff)
    }

    func read(wallMillis: Int64) -> Double {
        let hour = localHour(wallMillis: wallMillis)
        var value = spec.mean + spec.amplitude * cos(2 * .pi * (hour - spec.peakHour) / 24)
        if spec.noise > 0 { value += spec.noise * nextGaussian() }
        return value
    }

    private func nextGaussian() -> Double {
        rng.nextGaussian(spare: &spare)
    }
}
