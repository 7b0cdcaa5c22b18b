/// The finite range of one numeric setting, stated once and used by the YAML loader (fleet.yaml,
/// device.yaml, templates, `outbox:`, sensors' parameters) and by the commands' `validate()`
/// alike, so a value is checked where it enters and nothing out of range reaches the engine.
///
/// Both bounds are inclusive and finite: NaN, ±infinity and anything outside are refused.
/// `-0` is taken as `0`. The ranges are listed in Devices/README.md ("Numbers and their ranges").
public struct SettingRange: Sendable, Equatable, CustomStringConvertible {
    /// Smallest value allowed.
    public let lower: Double
    /// Largest value allowed.
    public let upper: Double
    /// Whole numbers only.
    public let wholeNumber: Bool
    /// What the number counts, as in "a number of seconds" or "attempts per second".
    public let unit: String
    /// A sensible value, for the fix.
    public let example: String

    /// - Parameters:
    ///   - lower: smallest value allowed (finite).
    ///   - upper: largest value allowed (finite, ≥ lower).
    ///   - wholeNumber: whole numbers only.
    ///   - unit: what the number counts ("seconds", "bytes", "" for a plain number).
    ///   - example: a sensible value for the fix.
    public init(_ lower: Double, _ upper: Double, wholeNumber: Bool = false, unit: String = "", example: String) {
        precondition(lower.isFinite && upper.isFinite && lower <= upper, "a setting range must be finite")
        self.lower = lower
        self.upper = upper
        self.wholeNumber = wholeNumber
        self.unit = unit
        self.example = example
    }

    // MARK: Durations (seconds)

    /// Seconds between two readings of a device (`interval`): 1 ms to 1 day.
    public static let interval = SettingRange(0.001, 86_400, unit: "seconds", example: "5")
    /// How long a run or a bench lasts (`--duration`): 1 ms to 366 days.
    public static let duration = SettingRange(0.001, 31_622_400, unit: "seconds", example: "60")
    /// Warm-up of a bench (`--warmup`): 0 to 1 day.
    public static let warmup = SettingRange(0, 86_400, unit: "seconds", example: "5")
    /// From the start of a connection attempt to CONNACK (`--connect-timeout`): 0.1 s to 1 hour.
    public static let connectTimeout = SettingRange(0.1, 3_600, unit: "seconds", example: "10")
    /// Waiting for acknowledgements at the end (`--drain-timeout`): 0 to 1 hour.
    public static let drainTimeout = SettingRange(0, 3_600, unit: "seconds", example: "10")
    /// Serving the final metrics after a bench (`--metrics-linger`): 0 to 1 hour.
    public static let metricsLinger = SettingRange(0, 3_600, unit: "seconds", example: "30")
    /// Periodic status lines and file checks (`--status-interval`, `--watch-interval`): 0.1 s to 1 day.
    public static let pollInterval = SettingRange(0.1, 86_400, unit: "seconds", example: "5")
    /// Lifetime of a queued message (`outbox.ttl`): 1 ms to 366 days.
    public static let ttl = SettingRange(0.001, 31_622_400, unit: "seconds", example: "3600")
    /// Time a PUBACK may take (`outbox.ack_timeout`): 0.1 s to 1 hour.
    public static let ackTimeout = SettingRange(0.1, 3_600, unit: "seconds", example: "30")
    /// Time a `command` sensor may run (`timeout`): 0.1 s to 1 minute.
    public static let commandTimeout = SettingRange(0.1, 60, unit: "seconds", example: "2")
    /// One full wave of a `sine` sensor (`period`): 1 ms to 366 days.
    public static let period = SettingRange(0.001, 31_622_400, unit: "seconds", example: "3600")

    /// systemd's `$WATCHDOG_USEC` (whole microseconds): 1 ms to 1 day; outside, no pings.
    public static let watchdogMicroseconds = SettingRange(1_000, 86_400_000_000, wholeNumber: true,
                                                          unit: "microseconds", example: "30000000")

    // MARK: Rates (per second)

    /// Connection attempts per second for the whole fleet (`connect_rate`, `--connect-rate`).
    public static let connectRate = SettingRange(0.01, 1_000_000, unit: "attempts per second", example: "50")
    /// Messages per second of one device (`outbox.backlog_rate`, bench `--rate`).
    public static let messageRate = SettingRange(0.001, 1_000_000, unit: "messages per second", example: "100")
    /// Messages per second of the whole fleet (bench `--total-rate`).
    public static let totalMessageRate = SettingRange(0.001, 10_000_000, unit: "messages per second", example: "1000")

    // MARK: Sizes and counts

    /// Messages one device may queue (`outbox.max_messages`, `outbox_limit`).
    public static let outboxMessages = SettingRange(1, 10_000_000, wholeNumber: true, unit: "messages", example: "1000")
    /// Payload bytes one device may queue (`outbox.max_bytes`): up to 1 GiB.
    public static let outboxBytes = SettingRange(1, 1_073_741_824, wholeNumber: true, unit: "bytes", example: "1048576")
    /// Padding of a bench payload (`--payload-size`): up to 10 MB.
    public static let payloadSize = SettingRange(0, 10_000_000, wholeNumber: true, unit: "bytes", example: "100")
    /// Devices of a bench (`--devices`) or of one template (`count`).
    public static let devices = SettingRange(1, 1_000_000, wholeNumber: true, unit: "devices", example: "1000")
    /// New devices `provision` creates (`--devices`).
    public static let newDevices = SettingRange(0, 1_000_000, wholeNumber: true, unit: "devices", example: "10")
    /// Messages per device of a bench (`--messages`).
    public static let messagesPerDevice = SettingRange(1, 1_000_000_000, wholeNumber: true, unit: "messages", example: "1000")
    /// Verifier connections of a bench (`--verifier-connections`).
    public static let verifierConnections = SettingRange(1, 64, wholeNumber: true, unit: "connections", example: "2")
    /// Reactor threads (`--threads`).
    public static let reactorThreads = SettingRange(1, 256, wholeNumber: true, unit: "threads", example: "2")
    /// A TCP port (`broker.port`, `--port`).
    public static let port = SettingRange(1, 65_535, wholeNumber: true, example: "8883")
    /// MQTT keep-alive (`broker.keepalive`).
    public static let keepAlive = SettingRange(5, 65_535, wholeNumber: true, unit: "seconds", example: "30")
    /// MQTT QoS (`qos`, `--qos`): 0 at most once, 1 at least once, 2 exactly once.
    public static let qos = SettingRange(0, 2, wholeNumber: true, example: "1")
    /// MQTT 5 session expiry interval (`session_expiry`): 0 (the session ends with the
    /// connection) to 4,294,967,295 (0xFFFFFFFF, the session never expires).
    /// MQTT 5 message expiry interval of telemetry (`mqtt5.message_expiry`): 1 s to 4,294,967,295 s.
    public static let messageExpiry = SettingRange(1, 4_294_967_295, wholeNumber: true, unit: "seconds", example: "60")
    public static let sessionExpiry = SettingRange(0, 4_294_967_295, wholeNumber: true, unit: "seconds", example: "3600")
    /// Digits after the decimal point of a reading (`precision`).
    public static let precision = SettingRange(0, 10, wholeNumber: true, unit: "digits", example: "2")
    /// A CPU number (`cpufreq` sensor's `cpu`).
    public static let cpu = SettingRange(0, 4_095, wholeNumber: true, example: "0")
    /// First number of a template (`start`).
    public static let templateStart = SettingRange(0, 2_147_483_647, wholeNumber: true, example: "1")

    // MARK: Sensor parameters

    /// A reading or a bound of one (`value`, `min`, `max`, `mean`, `start`, `amplitude`,
    /// `offset`, a counter's `step`): ±10¹⁵, so that differences and sums stay finite and
    /// exact to the unit.
    public static let reading = SettingRange(-1e15, 1e15, example: "21.5")
    /// A spread (`stddev`, `noise`): 0 to 10¹⁵.
    public static let spread = SettingRange(0, 1e15, example: "0.5")
    /// The largest move of a random walk (`step`): 10⁻⁹ to 10¹⁵.
    public static let walkStep = SettingRange(1e-9, 1e15, example: "0.1")
    /// Factor applied to a `file` or `command` sensor's number (`scale`): ±10¹⁵.
    public static let scale = SettingRange(-1e15, 1e15, example: "0.001")

    // MARK: Physical models, replay and faults

    /// A probability per reading (a fault's `probability`): 0 to 1.
    public static let probability = SettingRange(0, 1, example: "0.01")
    /// How long a fault lasts (`duration`, `for`): 1 ms to 366 days.
    public static let faultDuration = SettingRange(0.001, 31_622_400, unit: "seconds", example: "30")
    /// When a fault starts after the device (`from`): 0 to 366 days.
    public static let faultStart = SettingRange(0, 31_622_400, unit: "seconds", example: "60")
    /// How many readings a fault covers (`readings`).
    public static let faultReadings = SettingRange(1, 1_000_000_000, wholeNumber: true, unit: "readings", example: "5")
    /// A route's speed (`speed`, `speeds`): 0.001 to 100000 km/h.
    public static let routeSpeed = SettingRange(0.001, 100_000, unit: "km/h", example: "40")
    /// A latitude in degrees.
    public static let latitude = SettingRange(-90, 90, unit: "degrees", example: "52.52")
    /// A longitude in degrees.
    public static let longitude = SettingRange(-180, 180, unit: "degrees", example: "13.405")
    /// A room's time constant (`tau`): 1 s to 366 days.
    public static let timeConstant = SettingRange(1, 31_622_400, unit: "seconds", example: "1800")
    /// The local hour of a daily peak (`peak_hour`): 0 to 24.
    public static let hourOfDay = SettingRange(0, 24, unit: "hours", example: "15")
    /// How much faster a recording is replayed (`speed`): 0.001 to 1000000.
    public static let replaySpeed = SettingRange(0.001, 1_000_000, example: "10")

    // MARK: Checking

    /// "a number of seconds from 0.001 to 86400 (1 day)".
    public var expected: String {
        let kind = (wholeNumber ? "a whole number" : "a number") + (unit.isEmpty ? "" : " of \(unit)")
        var text = "\(kind) from \(Self.format(lower)) to \(Self.format(upper))"
        if unit == "seconds", let human = Self.humanSeconds(upper) { text += " (\(human))" }
        return text
    }

    public var description: String { expected }

    /// Whether `value` is finite, inside the bounds and (when asked) whole.
    public func contains(_ value: Double) -> Bool {
        value.isFinite && value >= lower && value <= upper && (!wholeNumber || value == value.rounded())
    }

    /// Why `value` is refused ("got nan, which is not a number"), or nil when it is allowed.
    public func problem(with value: Double) -> String? {
        if value.isNaN { return "expected \(expected), got nan (not a number)" }
        if value.isInfinite { return "expected \(expected), got \(value < 0 ? "-inf" : "inf") (infinite)" }
        if wholeNumber && value != value.rounded() { return "expected \(expected), got \(Self.format(value)) (not whole)" }
        if value < lower || value > upper { return "expected \(expected), got \(Self.format(value))" }
        return nil
    }

    /// `value` with `-0` made `0`, or the problem for `flag` (a command-line option such as
    /// `--duration`), saying the range and how to fix it.
    /// - Parameters:
    ///   - flag: the option as the user types it.
    ///   - value: what the user gave.
    @discardableResult
    public func check(flag: String, _ value: Double) throws(SettingError) -> Double {
        if let problem = problem(with: value) {
            throw SettingError(setting: flag, problem: problem,
                               fix: "give \(flag) \(wholeNumber ? "a whole number" : "a finite number") from \(Self.format(lower)) to \(Self.format(upper)), e.g. \(flag) \(example)")
        }
        return value == 0 ? 0 : value
    }

    /// Same as ``check(flag:_:)-(String,Double)`` for a whole-number option.
    @discardableResult
    public func check(flag: String, _ value: Int) throws(SettingError) -> Int {
        try check(flag: flag, Double(value))
        return value
    }

    /// Same as ``check(flag:_:)-(String,Double)`` for an option that may be absent.
    public func check(flag: String, _ value: Double?) throws(SettingError) {
        if let value { try check(flag: flag, value) }
    }

    /// Same as ``check(flag:_:)-(String,Int)`` for an option that may be absent.
    public func check(flag: String, _ value: Int?) throws(SettingError) {
        if let value { try check(flag: flag, value) }
    }

    /// A bound as the user would write it: `86400`, `0.001`, `1e+15`.
    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        if abs(value) >= 1e15 { return value < 0 ? "-1e15" : (value == 1e15 ? "1e15" : String(value)) }
        return String(value)
    }

    private static func humanSeconds(_ seconds: Double) -> String? {
        switch seconds {
        case 86_400: return "1 day"
        case 3_600: return "1 hour"
        case 60: return "1 minute"
        case 31_622_400: return "366 days"
        default: return nil
        }
    }
}

/// A numeric option outside its ``SettingRange``: which option, what was expected, how to fix it.
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The option, e.g. `--duration`.
    public var setting: String
    /// What is wrong and what was expected.
    public var problem: String
    /// How to fix it.
    public var fix: String

    public var description: String { "\(setting): \(problem) — fix: \(fix)" }
}
