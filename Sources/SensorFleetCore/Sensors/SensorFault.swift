#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One entry of a sensor's `faults:` list: what goes wrong, and when.
///
/// Nothing in the telemetry says a fault is on (as with real hardware); every fault's start and
/// end go to the fleet's `labels:` file (``FaultLabelWriter``).
public struct FaultSpec: Sendable, Equatable {
    /// What the fault does to each reading it covers.
    public enum Kind: Sendable, Equatable {
        /// Repeats the last reading reported before the fault started.
        case stuck
        /// Adds `rate` × seconds since the fault started.
        case drift(rate: Double)
        /// Adds `amount`.
        case offset(amount: Double)
        /// One reading × `factor`, or + `amount` (exactly one of them is set).
        case spike(factor: Double?, amount: Double?)
        /// The reading is missing from the payload.
        case dropout
        /// Adds gaussian noise of standard deviation `sigma`.
        case noise(sigma: Double)
        /// Reports `value`, one the hardware cannot report as a measurement (85 for a DS18B20).
        case outOfRange(value: Double)

        /// The name in device.yaml and in the labels file.
        public var name: String {
            switch self {
            case .stuck: "stuck"
            case .drift: "drift"
            case .offset: "offset"
            case .spike: "spike"
            case .dropout: "dropout"
            case .noise: "noise"
            case .outOfRange: "out_of_range"
            }
        }
    }

    /// How long one occurrence lasts.
    public enum Length: Sendable, Equatable {
        /// Seconds from its first reading (`duration`, `for`): it covers the readings made before then.
        case seconds(Double)
        /// A number of readings (`readings`): the same readings whatever the timing.
        case readings(Int)
    }

    /// When it happens.
    public enum Trigger: Sendable, Equatable {
        /// At each reading without this fault on, it starts with `probability` (drawn from the
        /// sensor's seeded generator at every reading, so the same seed gives the same draws).
        case random(probability: Double, length: Length)
        /// Once, at the first reading `from` seconds or more after the device started.
        case window(from: Double, length: Length)
    }

    public var kind: Kind
    public var trigger: Trigger

    public init(kind: Kind, trigger: Trigger) {
        self.kind = kind
        self.trigger = trigger
    }

    /// Names of the fault kinds, as device.yaml spells them.
    public static let kindNames = ["stuck", "drift", "offset", "spike", "dropout", "noise", "out_of_range"]
}

/// The moment a reading is made, as the sensors and their faults see it.
struct ReadingMoment {
    /// Seconds since the device started.
    var elapsed: Double
    /// The seq the message carrying this reading will have.
    var seq: UInt64
    /// Wall time of the reading, milliseconds since 1970.
    var wallMillis: Int64
}

/// The faults of one sensor of one device while it runs: its `faults:` entries and those started
/// at run time (``start(_:length:)``, the scenario's `fault` action). Confined to the device's
/// reactor like the sensor itself; a class so that a fault still on when the device goes away is
/// closed in the labels file (`still_on: true`).
final class SensorFaults {
    private struct Occurrence {
        var kind: FaultSpec.Kind
        /// Index in `specs`; nil: started at run time.
        var entry: Int?
        var number: UInt64
        var startSeq: UInt64
        var startMillis: Int64
        var startElapsed: Double
        var length: FaultSpec.Length
        var readingsDone = 0
        var lastSeq: UInt64
        var lastMillis: Int64
        /// What `stuck` repeats.
        var held: [Double]
    }

    let deviceID: String
    let sensorName: String
    let specs: [FaultSpec]
    private let labels: FaultLabelWriter?
    private let publisher: FaultLabelPublisher?
    /// Draws of the triggers: one per `random` entry per reading.
    private var triggerRNG: Xoshiro256StarStar
    /// Values of `noise` faults, apart so that noise does not move the triggers' draws.
    private var noiseRNG: Xoshiro256StarStar
    private var active: [Occurrence] = []
    private var windowTaken: [Bool]
    private var pending: [(FaultSpec.Kind, FaultSpec.Length)] = []
    private var lastReported: [Double] = []
    private var count: UInt64 = 0

    /// - Parameters:
    ///   - seed: the sensor's seed (``SensorSeed``); the faults' generators are derived from it,
    ///     so a sensor's own readings are the same with and without faults.
    ///   - labels: where starts and ends are recorded; nil: nowhere.
    ///   - publisher: publishes each record over MQTT too (`labels_topic`).
    init(specs: [FaultSpec], seed: UInt64, deviceID: String, sensorName: String, labels: FaultLabelWriter?,
         publisher: FaultLabelPublisher? = nil) {
        self.publisher = publisher
        self.specs = specs
        self.deviceID = deviceID
        self.sensorName = sensorName
        self.labels = labels
        triggerRNG = Xoshiro256StarStar(seed: SplitMix64.mix(seed ^ 0x6661_756c_7473_0001))  // "faults", 1
        noiseRNG = Xoshiro256StarStar(seed: SplitMix64.mix(seed ^ 0x6661_756c_7473_0002))
        windowTaken = Array(repeating: false, count: specs.count)
    }

    deinit {
        for occurrence in active { record(end: occurrence, stillOn: true) }
    }

    /// Whether any fault is on.
    var isActive: Bool { !active.isEmpty }

    /// Starts `kind` at the next reading, for `length`; recorded like any other fault.
    func start(_ kind: FaultSpec.Kind, length: FaultSpec.Length) {
        pending.append((kind, length))
    }

    /// Applies the faults to the readings this sensor just appended (`readings[first...]`);
    /// `failed`: the sensor gave none this time (a fault still starts and ends on schedule).
    func apply(_ moment: ReadingMoment, readings: inout [(name: String, value: Double)], first: Int, precision: Int?) {
        // Faults whose time is up end before this reading.
        var i = 0
        while i < active.count {
            let occurrence = active[i]
            let over: Bool
            switch occurrence.length {
            case .seconds(let seconds): over = moment.elapsed >= occurrence.startElapsed + seconds
            case .readings(let n): over = occurrence.readingsDone >= n
            }
            if over {
                record(end: occurrence, stillOn: false)
                active.remove(at: i)
            } else {
                i += 1
            }
        }
        // New ones: every random entry draws at every reading, on or not, so the draws of the
        // same seed fall on the same seqs.
        for (index, spec) in specs.enumerated() {
            switch spec.trigger {
            case .random(let probability, let length):
                let draw = triggerRNG.nextUnit()
                if draw < probability, !active.contains(where: { $0.entry == index }) {
                    begin(spec.kind, entry: index, length: length, moment, readings, first)
                }
            case .window(let from, let length):
                guard !windowTaken[index], moment.elapsed >= from else { continue }
                windowTaken[index] = true
                if case .seconds(let seconds) = length, moment.elapsed >= from + seconds { continue }
                begin(spec.kind, entry: index, length: length, moment, readings, first)
            }
        }
        for (kind, length) in pending { begin(kind, entry: nil, length: length, moment, readings, first) }
        pending.removeAll()

        let end = readings.count
        var dropped = false
        if !active.isEmpty {
            for k in active.indices {
                active[k].readingsDone += 1
                active[k].lastSeq = moment.seq
                active[k].lastMillis = moment.wallMillis
                let occurrence = active[k]
                for r in first..<end {
                    let base = readings[r].value
                    var value = base
                    switch occurrence.kind {
                    case .stuck:
                        let slot = r - first
                        value = slot < occurrence.held.count ? occurrence.held[slot] : base
                    case .drift(let rate): value = base + rate * max(0, moment.elapsed - occurrence.startElapsed)
                    case .offset(let amount): value = base + amount
                    case .spike(let factor, let amount): value = factor.map { base * $0 } ?? (base + (amount ?? 0))
                    case .dropout: dropped = true
                    case .noise(let sigma): value = base + sigma * nextGaussian()
                    case .outOfRange(let v): value = v
                    }
                    readings[r].value = Self.rounded(value, precision)
                }
            }
        }
        if dropped {
            readings.removeSubrange(first..<end)
        } else if end > first {
            lastReported = readings[first..<end].map(\.value)
        }
    }

    private func begin(_ kind: FaultSpec.Kind, entry: Int?, length: FaultSpec.Length, _ moment: ReadingMoment,
                       _ readings: [(name: String, value: Double)], _ first: Int) {
        count &+= 1
        var length = length
        if case .spike = kind { length = .readings(1) }  // a spike is one reading
        let held = lastReported.isEmpty ? readings[first...].map(\.value) : lastReported
        let occurrence = Occurrence(
            kind: kind, entry: entry, number: count, startSeq: moment.seq, startMillis: moment.wallMillis,
            startElapsed: moment.elapsed, length: length, lastSeq: moment.seq, lastMillis: moment.wallMillis, held: held)
        active.append(occurrence)
        guard labels != nil || publisher != nil else { return }
        var line = labelHead("start", occurrence)
        TelemetryPayload.appendASCII(",\"seq\":", to: &line)
        TelemetryPayload.appendUnsigned(moment.seq, to: &line)
        TelemetryPayload.appendASCII(",\"ts\":", to: &line)
        TelemetryPayload.appendSigned(moment.wallMillis, to: &line)
        TelemetryPayload.appendASCII(",\"source\":", to: &line)
        TelemetryPayload.appendString(entry.map { "faults[\($0)]" } ?? "runtime", to: &line)
        TelemetryPayload.appendASCII("}\n", to: &line)
        labels?.write(line)
        publisher?.publish(line.dropLast())
    }

    private func record(end occurrence: Occurrence, stillOn: Bool) {
        guard labels != nil || (publisher != nil && !stillOn) else { return }
        var line = labelHead("end", occurrence)
        TelemetryPayload.appendASCII(",\"start_seq\":", to: &line)
        TelemetryPayload.appendUnsigned(occurrence.startSeq, to: &line)
        TelemetryPayload.appendASCII(",\"start_ts\":", to: &line)
        TelemetryPayload.appendSigned(occurrence.startMillis, to: &line)
        TelemetryPayload.appendASCII(",\"end_seq\":", to: &line)
        TelemetryPayload.appendUnsigned(occurrence.lastSeq, to: &line)
        TelemetryPayload.appendASCII(",\"end_ts\":", to: &line)
        TelemetryPayload.appendSigned(occurrence.lastMillis, to: &line)
        TelemetryPayload.appendASCII(",\"readings\":", to: &line)
        TelemetryPayload.appendUnsigned(UInt64(occurrence.readingsDone), to: &line)
        if stillOn { TelemetryPayload.appendASCII(",\"still_on\":true", to: &line) }
        TelemetryPayload.appendASCII("}\n", to: &line)
        labels?.write(line)
        // A fault still on when the device goes away is not published: the device is gone.
        if !stillOn { publisher?.publish(line.dropLast()) }
    }

    private func labelHead(_ event: StaticString, _ occurrence: Occurrence) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(200)
        TelemetryPayload.appendASCII("{\"event\":\"", to: &line)
        TelemetryPayload.appendASCII(event, to: &line)
        TelemetryPayload.appendASCII("\",\"device\":", to: &line)
        TelemetryPayload.appendString(deviceID, to: &line)
        TelemetryPayload.appendASCII(",\"sensor\":", to: &line)
        TelemetryPayload.appendString(sensorName, to: &line)
        TelemetryPayload.appendASCII(",\"fault\":", to: &line)
        TelemetryPayload.appendString(occurrence.kind.name, to: &line)
        TelemetryPayload.appendASCII(",\"fault_no\":", to: &line)
        TelemetryPayload.appendUnsigned(occurrence.number, to: &line)
        return line
    }

    private var spare: Double?

    private func nextGaussian() -> Double {
        noiseRNG.nextGaussian(spare: &spare)
    }

    static func rounded(_ value: Double, _ precision: Int?) -> Double {
        guard let precision, (0...15).contains(precision) else { return value }
        var scale = 1.0
        for _ in 0..<precision { scale *= 10 }
        let scaled = value * scale
        return scaled.isFinite ? scaled.rounded(.toNearestOrAwayFromZero) / scale : value
    }
}
