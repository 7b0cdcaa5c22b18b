/// A device's sensor: simulated (always gives a reading), a physical model or a replay, or real
/// (may fail; the failure is skipped and counted by the device); with its faults, if any.
struct DeviceSensor {
    enum Source {
        case simulated(SimulatedSensor)
        case system(SystemSensor)
        case route(RouteModel)
        case thermal(ThermalModel)
        case diurnal(DiurnalModel)
        case replay(ReplayModel)
    }

    let spec: SensorSpec
    private(set) var source: Source
    /// The sensor's faults; nil when it has none and no label file could record one started at
    /// run time.
    private(set) var faults: SensorFaults?
    private let seed: UInt64
    private let deviceID: String
    private let labels: FaultLabelWriter?
    private let publisher: FaultLabelPublisher?

    /// - Parameters:
    ///   - labels: the fleet's fault labels file; faults started at run time need it too.
    ///   - publisher: the device's publisher of label records (`labels_topic`).
    init(spec: SensorSpec, fleetSeed: UInt64, deviceID: String, sysfsRoot: String, labels: FaultLabelWriter? = nil,
         publisher: FaultLabelPublisher? = nil) {
        self.spec = spec
        self.publisher = publisher
        self.deviceID = deviceID
        self.labels = labels
        let seed = SensorSeed.derive(fleetSeed: fleetSeed, deviceID: deviceID, sensorName: spec.name)
        self.seed = seed
        switch spec.kind {
        case .system(let source, let minimum, let maximum):
            self.source = .system(SystemSensor(spec: spec, source: source, minimum: minimum, maximum: maximum, root: sysfsRoot))
        case .route(let route): self.source = .route(RouteModel(spec: route))
        case .thermal(let thermal): self.source = .thermal(ThermalModel(spec: thermal, seed: seed))
        case .diurnal(let diurnal): self.source = .diurnal(DiurnalModel(spec: diurnal, seed: seed))
        case .replay(let replay): self.source = .replay(ReplayModel(spec: replay))
        default: self.source = .simulated(SimulatedSensor(spec: spec, seed: seed))
        }
        if !spec.faults.isEmpty {
            faults = SensorFaults(specs: spec.faults, seed: seed, deviceID: deviceID, sensorName: spec.name, labels: labels,
                                  publisher: publisher)
        }
    }

    var name: String { spec.name }

    /// Reads the sensor and appends its readings (one, or a route's several; none when it
    /// failed, or a dropout is on), with its faults applied.
    /// - Returns: why a real sensor gave no reading, nil otherwise.
    mutating func read(_ moment: ReadingMoment, into readings: inout [(name: String, value: Double)]) -> SensorReadError? {
        let first = readings.count
        var failure: SensorReadError?
        switch source {
        case .simulated(var sensor):
            let value = sensor.read(elapsed: moment.elapsed)
            source = .simulated(sensor)
            readings.append((spec.name, value))
        case .system(let sensor):
            switch sensor.read() {
            case .success(let value): readings.append((spec.name, value))
            case .failure(let error): failure = error
            }
        case .route(let model):
            model.read(elapsed: moment.elapsed, into: &readings, precision: spec.precision)
        case .thermal(let model):
            readings.append((spec.name, SensorFaults.rounded(model.read(elapsed: moment.elapsed), spec.precision)))
        case .diurnal(let model):
            readings.append((spec.name, SensorFaults.rounded(model.read(wallMillis: moment.wallMillis), spec.precision)))
        case .replay(let model):
            if let value = model.read(elapsed: moment.elapsed) {
                readings.append((spec.name, SensorFaults.rounded(value, spec.precision)))
            }
        }
        faults?.apply(moment, readings: &readings, first: first, precision: spec.precision)
        return failure
    }

    /// One reading as a value (the first, for a route), for callers that read one sensor alone.
    mutating func read(elapsed: Double) -> Result<Double, SensorReadError> {
        var readings: [(name: String, value: Double)] = []
        let moment = ReadingMoment(elapsed: elapsed, seq: 0, wallMillis: WallClock.millis())
        if let error = read(moment, into: &readings) { return .failure(error) }
        guard let value = readings.first?.value else { return .failure(SensorReadError("no reading this time")) }
        return .success(value)
    }

    /// Starts fault `kind` at the sensor's next reading, for `length`; it is recorded in the
    /// labels file like the sensor's own faults.
    mutating func startFault(_ kind: FaultSpec.Kind, length: FaultSpec.Length) {
        if faults == nil {
            faults = SensorFaults(specs: [], seed: seed, deviceID: deviceID, sensorName: spec.name, labels: labels,
                                  publisher: publisher)
        }
        faults?.start(kind, length: length)
    }

    /// Changes a `thermal` sensor's setpoint from now on; false for any other kind.
    @discardableResult
    func setSetpoint(_ value: Double) -> Bool {
        guard case .thermal(let model) = source else { return false }
        model.setSetpoint(value)
        return true
    }
}
