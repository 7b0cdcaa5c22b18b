#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `battery:` in device.yaml: a battery that drains with every publish, every connect and with
/// time, reports its voltage as a reading, and at empty sends a last gasp and goes silent.
/// Capacity and costs are in mAh (milliampere-hours), as battery datasheets state them.
public struct BatterySpec: Sendable, Equatable {
    /// `capacity_mah`: charge when full.
    public var capacityMAh: Double
    /// `start_percent`: charge at power-on, 0–100.
    public var startPercent: Double = 100
    /// `publish_mah`: cost of one reading sent (radio on, a few ms at tens of mA).
    public var publishMAh: Double = 0.01
    /// `connect_mah`: cost of one connection (TLS handshake, radio).
    public var connectMAh: Double = 0.1
    /// `idle_mah_per_hour`: drawn all the time (sleep current × 1 h).
    public var idleMAhPerHour: Double = 0.5
    /// `sensor`: name of the voltage reading added to every message.
    public var sensor = "battery_v"
    /// `curve`: (percent, volts) points from empty to full; linear in between.
    public var curve: [(percent: Double, volts: Double)] = BatterySpec.liIonCurve
    /// `recharge`: solar charging by local time of day; nil: none.
    public var recharge: Recharge?

    /// A single Li-ion cell: 4.2 V full, 3.0 V empty.
    public static let liIonCurve: [(percent: Double, volts: Double)] = [
        (0, 3.0), (10, 3.5), (20, 3.65), (40, 3.75), (70, 3.9), (90, 4.05), (100, 4.2),
    ]

    /// Solar charging: `peak_mah_per_hour` at noon between `sunrise` and `sunset` (hours, local
    /// time), following half a sine; nothing at night.
    public struct Recharge: Sendable, Equatable {
        public var peakMAhPerHour: Double
        public var sunrise: Double = 6
        public var sunset: Double = 18

        public init(peakMAhPerHour: Double, sunrise: Double = 6, sunset: Double = 18) {
            self.peakMAhPerHour = peakMAhPerHour
            self.sunrise = sunrise
            self.sunset = sunset
        }

        /// mAh per hour at `hour` (0–24, local time).
        public func rate(atHour hour: Double) -> Double {
            guard hour > sunrise, hour < sunset else { return 0 }
            return peakMAhPerHour * sin(Double.pi * (hour - sunrise) / (sunset - sunrise))
        }
    }

    public init(capacityMAh: Double) { self.capacityMAh = capacityMAh }

    public static func == (a: BatterySpec, b: BatterySpec) -> Bool {
        a.capacityMAh == b.capacityMAh && a.startPercent == b.startPercent && a.publishMAh == b.publishMAh
            && a.connectMAh == b.connectMAh && a.idleMAhPerHour == b.idleMAhPerHour && a.sensor == b.sensor
            && a.curve.map(\.percent) == b.curve.map(\.percent) && a.curve.map(\.volts) == b.curve.map(\.volts)
            && a.recharge == b.recharge
    }

    /// Volts at `percent` charge, interpolated on `curve`.
    public func volts(atPercent percent: Double) -> Double {
        guard let first = curve.first, let last = curve.last else { return 0 }
        if percent <= first.percent { return first.volts }
        if percent >= last.percent { return last.volts }
        for (a, b) in zip(curve, curve.dropFirst()) where percent <= b.percent {
            let t = (percent - a.percent) / (b.percent - a.percent)
            return ((a.volts + t * (b.volts - a.volts)) * 1000).rounded() / 1000
        }
        return last.volts
    }

    /// Readings a device sends before it is empty, publishing every `interval` seconds with one
    /// connect, without recharge: the charge at start over the cost of one reading (its publish
    /// plus the idle drain of one interval). What `validate` prints and the tests check.
    public func publishesUntilEmpty(interval: Double) -> Int {
        let perPublish = publishMAh + idleMAhPerHour * interval / 3600
        let usable = capacityMAh * startPercent / 100 - connectMAh
        guard perPublish > 0, usable > 0 else { return 0 }
        return Int((usable / perPublish + 1e-9).rounded(.down))  // the engine allows the same 1e-9
    }

    /// Hours from power-on to empty at one reading per `interval`, without recharge.
    public func expectedLifeHours(interval: Double) -> Double {
        Double(publishesUntilEmpty(interval: interval)) * interval / 3600
    }
}
