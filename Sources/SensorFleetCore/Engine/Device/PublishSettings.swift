import MosquittoKit

/// How the devices of a run publish, where it differs from their device.yaml: the load tester
/// (`sensorfleet bench`) sets it; a plain run keeps the defaults. Plain values only: the engine
/// knows a schedule and a payload format, not the tool that asked for them.
public struct PublishSettings: Sendable, Equatable {
    /// When readings are made.
    public enum Pace: Sendable, Equatable {
        /// Every device at its own `interval` (device.yaml).
        case deviceInterval
        /// Every device once per `Duration`.
        case every(Duration)
        /// As fast as the broker acknowledges: a reading whenever the in-flight window has room.
        case asFastAsAcknowledged
    }

    public var pace: Pace
    /// Overrides each device's QoS.
    public var qos: Int?
    /// Readings each device makes, then it stops producing; nil: until the fleet stops.
    public var messagesPerDevice: Int?
    public var format: TelemetryFormat
    /// Source addresses, handed out round-robin to devices as they first connect; empty: the
    /// broker spec's `bind_address`.
    public var bindAddresses: [String]

    public init(
        pace: Pace = .deviceInterval, qos: Int? = nil, messagesPerDevice: Int? = nil,
        format: TelemetryFormat = TelemetryFormat(), bindAddresses: [String] = []
    ) {
        self.pace = pace
        self.qos = qos
        self.messagesPerDevice = messagesPerDevice
        self.format = format
        self.bindAddresses = bindAddresses
    }
}

/// The payload format of a run where it overrides the devices' own (`bench --payload-format`),
/// and the extras a load test adds.
public struct TelemetryFormat: Sendable, Equatable {
    /// Every device writes this format instead of its `payload:`; nil: each its own.
    public var payload: PayloadFormat?
    /// `"pad"`: this many `x` characters (a payload of a chosen size; JSON and influx).
    public var padding: Int
    /// `"tus"`: the send time in microseconds since 1970 (end-to-end latency at µs resolution; JSON).
    public var microsecondTimestamps: Bool

    public init(payload: PayloadFormat? = nil, padding: Int = 0, microsecondTimestamps: Bool = false) {
        self.payload = payload
        self.padding = padding
        self.microsecondTimestamps = microsecondTimestamps
    }
}
