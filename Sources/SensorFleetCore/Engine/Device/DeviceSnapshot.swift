/// A device's figures at one moment.
public struct DeviceSnapshot: Sendable, Equatable, Codable {
    public var id: String
    public var connected: Bool
    /// Telemetry messages accepted for publishing (into the outbox; on disk first with a durable
    /// outbox). Reports call this `published`.
    public var accepted: Int
    public var acknowledged: Int
    public var dropped: Int
    public var lastSeq: UInt64
    public var queued: Int
    public var inflight: Int
    /// Connection attempts started.
    public var attempts: Int
    /// Connections that reached CONNACK.
    public var connects: Int
    public var errors: Int
    public var lastError: String?
    /// The last error will not fix itself by retrying (certificate, trust, authorisation).
    public var failing: Bool
    /// Real-sensor reads skipped (failed or out of range).
    public var sensorErrors: Int = 0
    /// `dropped` by `DropReason` raw value (reasons with a count only).
    public var droppedByReason: [String: Int] = [:]

    enum CodingKeys: String, CodingKey {
        case id, connected, accepted = "published", acknowledged, dropped, lastSeq, queued, inflight
        case attempts, connects, errors, lastError, failing, sensorErrors, droppedByReason
    }
}
