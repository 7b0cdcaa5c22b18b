import Foundation

/// The JSON that `sensorfleet run --report FILE` writes (schema in README.md).
public struct RunReport: Codable, Sendable, Equatable {
    public struct Device: Codable, Sendable, Equatable {
        public var published: Int
        public var acknowledged: Int
        public var dropped: Int
        public var last_seq: UInt64
        public var connects: Int
        public var errors: Int
        public var connected_at_end: Bool
        public var last_error: String?
        public var dropped_by_reason: [String: Int]?
    }

    public var broker: String
    public var devices: Int
    /// Devices connected when the run ended (before the final DISCONNECT).
    public var connected: Int
    public var published: Int
    public var acknowledged: Int
    public var dropped: Int
    public var errors: Int
    public var connect_attempts: Int
    public var overruns: Int
    /// `dropped` split by reason: overflow, refused, expired, broker_refused, connection_lost, unsent.
    public var dropped_by_reason: [String: Int]?
    /// PUBACKs overdue on a live connection (each aborted and reconnected that connection).
    public var ack_timeouts: Int?
    public var duration_s: Double
    public var failed_devices: [String]
    public var per_device: [String: Device]

    public init(summary: FleetSummary, broker: String) {
        self.broker = broker
        devices = summary.totals.devices
        connected = summary.totals.connected
        published = summary.totals.accepted
        acknowledged = summary.totals.acknowledged
        dropped = summary.totals.dropped
        errors = summary.totals.errors
        connect_attempts = summary.totals.connectAttempts
        overruns = summary.totals.overruns
        dropped_by_reason = summary.totals.droppedByReason
        ack_timeouts = summary.totals.ackTimeouts
        duration_s = (summary.durationSeconds * 1000).rounded() / 1000
        failed_devices = summary.failedDevices
        per_device = Dictionary(uniqueKeysWithValues: summary.devices.map {
            ($0.id, Device(
                published: $0.accepted, acknowledged: $0.acknowledged, dropped: $0.dropped, last_seq: $0.lastSeq,
                connects: $0.connects, errors: $0.errors, connected_at_end: $0.connected, last_error: $0.lastError,
                dropped_by_reason: $0.droppedByReason.isEmpty ? nil : $0.droppedByReason
            ))
        })
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
