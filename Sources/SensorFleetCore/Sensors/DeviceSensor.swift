/// A device's sensor: simulated (always gives a reading) or real (may fail; the failure is
/// skipped and counted by the device).
enum DeviceSensor {
    case simulated(SimulatedSensor)
    case system(SystemSensor)

    init(spec: SensorSpec, fleetSeed: UInt64, deviceID: String, sysfsRoot: String) {
        if case .system(let source, let minimum, let maximum) = spec.kind {
            self = .system(SystemSensor(spec: spec, source: source, minimum: minimum, maximum: maximum, root: sysfsRoot))
        } else {
            self = .simulated(SimulatedSensor(
                spec: spec, seed: SensorSeed.derive(fleetSeed: fleetSeed, deviceID: deviceID, sensorName: spec.name)))
        }
    }

    var name: String {
        switch self {
        case .simulated(let sensor): sensor.spec.name
        case .system(let sensor): sensor.spec.name
        }
    }

    mutating func read(elapsed: Double) -> Result<Double, SensorReadError> {
        switch self {
        case .simulated(var sensor):
            let value = sensor.read(elapsed: elapsed)
            self = .simulated(sensor)
            return .success(value)
        case .system(let sensor):
            return sensor.read()
        }
    }
}
