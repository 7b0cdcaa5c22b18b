import Synchronization

/// How devices publish during a load test (`sensorfleet bench`), on top of their spec.
public struct LoadProfile: Sendable {
    /// Messages per second per device; nil keeps each device's `interval`; 0 publishes as fast as
    /// the broker acknowledges (keeping the in-flight window full).
    public var rate: Double?
    /// Overrides each device's QoS.
    public var qos: Int?
    /// `x` characters of padding inside the JSON payload.
    public var padding: Int
    /// Messages each device publishes, then stops producing; nil: until the fleet stops.
    public var messagesPerDevice: Int?
    /// Where PUBACK (QoS 1) or write-out (QoS 0) latency goes, from the hand-over to libmosquitto.
    public let publishLatency: LatencyRecorder
    /// TCP + TLS + CONNACK time of every successful connect.
    public let connectLatency: LatencyRecorder
    /// Source addresses, handed out round-robin to devices as they first connect.
    public var bindAddresses: [String] = []
    private let nextBind = RoundRobin()

    /// The source address for the next device; nil when none is set.
    func takeBindAddress() -> String? {
        guard !bindAddresses.isEmpty else { return nil }
        let n = nextBind.value.add(1, ordering: .relaxed).oldValue
        return bindAddresses[n % bindAddresses.count]
    }

    public init(
        rate: Double? = nil, qos: Int? = nil, padding: Int = 0, messagesPerDevice: Int? = nil,
        publishLatency: LatencyRecorder = LatencyRecorder(), connectLatency: LatencyRecorder = LatencyRecorder()
    ) {
        self.rate = rate
        self.qos = qos
        self.padding = padding
        self.messagesPerDevice = messagesPerDevice
        self.publishLatency = publishLatency
        self.connectLatency = connectLatency
    }
}

final class RoundRobin: Sendable {
    let value = Atomic<Int>(0)
}
