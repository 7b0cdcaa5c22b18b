#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `type: thermal`: a room heated towards a setpoint by a heater under a thermostat with
/// hysteresis. Newton's law of cooling with the heater's steady-state rise:
/// dT/dt = (ambient + heating · heater_power − T) / tau, heating = 1 while the heater is on.
/// The heater switches on at setpoint − hysteresis/2 and off at setpoint + hysteresis/2.
public struct ThermalSpec: Sendable, Equatable {
    /// Temperature the room cools towards with the heater off (°C).
    public var ambient: Double
    /// Thermostat setpoint (°C).
    public var setpoint: Double
    /// Width of the band around the setpoint (°C).
    public var hysteresis: Double
    /// Time constant of the room, seconds.
    public var tau: Double
    /// How far above ambient the heater alone would bring the room (°C).
    public var heaterPower: Double
    /// Temperature at the start (°C).
    public var start: Double
    /// Standard deviation of the measurement noise (°C).
    public var noise: Double

    public init(ambient: Double = 10, setpoint: Double = 21, hysteresis: Double = 0.5, tau: Double = 1800,
                heaterPower: Double = 20, start: Double? = nil, noise: Double = 0) {
        self.ambient = ambient
        self.setpoint = setpoint
        self.hysteresis = hysteresis
        self.tau = tau
        self.heaterPower = heaterPower
        self.start = start ?? setpoint
        self.noise = noise
    }
}

/// The room's state. Integrated exactly between readings: the exponential towards the current
/// target, up to each switching instant of the thermostat.
final class ThermalModel {
    private(set) var spec: ThermalSpec
    private(set) var temperature: Double
    private(set) var heating: Bool
    private var time = 0.0
    private var rng: Xoshiro256StarStar
    private var spare: Double?

    init(spec: ThermalSpec, seed: UInt64) {
        self.spec = spec
        temperature = spec.start
        heating = spec.start < spec.setpoint
        rng = Xoshiro256StarStar(seed: seed)
    }

    /// A new setpoint from now on (a shadow's desired state, a command).
    func setSetpoint(_ value: Double) {
        guard value.isFinite else { return }
        spec.setpoint = value
    }

    /// Advances the room to `elapsed` seconds.
    func advance(to elapsed: Double) {
        var remaining = elapsed - time
        guard remaining > 0, remaining.isFinite else { return }
        time = elapsed
        let tau = max(spec.tau, 1e-9)
        let on = spec.setpoint - spec.hysteresis / 2, off = spec.setpoint + spec.hysteresis / 2
        var switches = 0
        var lastSwitchWasAtOnce = false
        while remaining > 0 {
            let target = spec.ambient + (heating ? spec.heaterPower : 0)
            let threshold = heating ? off : on
            // Time until T reaches the threshold on its way to the target, if it does.
            var until = Double.infinity
            let gap = temperature - target
            if gap != 0 {
                let ratio = (threshold - target) / gap
                if ratio > 0 && ratio < 1 { until = -tau * log(ratio) }
                else if (heating && temperature >= off) || (!heating && temperature <= on) { until = 0 }
            }
            if until == 0 && lastSwitchWasAtOnce {
                // Both thresholds at once (no hysteresis): the thermostat holds the temperature
                // where it is, switching as fast as it can; no time passes between the switches.
                remaining = 0
            } else if until <= remaining && switches < 100_000 {
                temperature = until == 0 ? temperature : threshold
                remaining -= until
                heating.toggle()
                switches += 1
                lastSwitchWasAtOnce = until == 0
            } else {
                temperature = target + gap * exp(-remaining / tau)
                remaining = 0
            }
        }
    }

    /// The temperature at `elapsed` seconds, with measurement noise.
    func read(elapsed: Double) -> Double {
        advance(to: elapsed)
        guard spec.noise > 0 else { return temperature }
        return temperature + spec.noise * nextGaussian()
    }

    private func nextGaussian() -> Double {
        rng.nextGaussian(spare: &spare)
    }
}
