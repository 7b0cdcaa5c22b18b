#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
    /// `--run-id`, or `run-<start time>` (``StartTime/runID``).
    public var run_id: String?
    /// "I/N" (`--shard`); "0/1" for the whole fleet.
    public var shard: String?
    /// Seconds this process started after `--start-at` (nil without it).
    public var start_late_s: Double?
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
    /// The scenario's events as they ran, with their devices (`--scenario`, `scenario:`); nil without one.
    public var scenario: [ScenarioRecord]?

    /// - Parameters:
    ///   - summary: what the fleet did.
    ///   - broker: "HOST:PORT".
    ///   - runID: the run id; `shard`: "I/N"; `startLate`: seconds after `--start-at`.
    public init(summary: FleetSummary, broker: String, runID: String? = nil, shard: String? = nil, startLate: Double? = nil,
                scenario: [ScenarioRecord]? = nil) {
        self.scenario = scenario
        self.broker = broker
        run_id = runID
        self.shard = shard
        start_late_s = startLate.map { ($0 * 1000).rounded() / 1000 }
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
