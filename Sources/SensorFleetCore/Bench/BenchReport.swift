#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// What `sensorfleet bench` measured; written as JSON (`--report`), schema in docs/bench.md.
public struct BenchReport: Sendable, Codable {
    public struct Settings: Sendable, Codable {
        public var broker: String
        public var devices: Int
        public var connectRate: Double
        /// Messages per second per device; 0: as fast as acknowledged.
        public var ratePerDevice: Double
        public var qos: Int
        public var payloadBytes: Int
        public var messagesPerDevice: Int?
        public var durationS: Double
        public var warmupS: Double
        public var bind: [String]
        public var verifierConnections: Int
        public var descriptorsPerClient: Int
        public var reactorThreads: Int
        /// `json`, `template` or `influx` (the devices' own when `--payload-format` was not given:
        /// the first device's).
        public var payloadFormat: String?
        /// MQTT protocol version, "3.1.1" or "5".
        public var mqttProtocol: String?
    }

    public struct Latency: Sendable, Codable {
        /// Verifier: receive time − the payload's timestamp (same clock, same machine).
        public var endToEnd: LatencySummary
        /// Hand-over to libmosquitto → PUBACK (QoS 1) or written to the socket (QoS 0).
        public var puback: LatencySummary
    }

    public struct Second: Sendable, Codable {
        /// Seconds since the start (warm-up included; `measured` tells).
        public var t: Double
        /// Wall-clock time at the end of this second, Unix milliseconds (aligns shards' series).
        public var wallMs: Int64?
        public var measured: Bool
        public var connected: Int
        public var sent: Int
        public var acked: Int
        public var received: Int
        public var errors: Int
        public var overruns: Int
        public var e2eP50Ms: Double
        public var e2eP99Ms: Double
        public var e2eMaxMs: Double
        public var pubackP99Ms: Double
    }

    public struct DeviceCounts: Sendable, Codable {
        public var id: String
        public var sent: Int
        public var received: Int
        public var gaps: Int
        public var duplicates: Int
        public var outOfOrder: Int
        public var dropped: Int
    }

    /// Memory and CPU around connecting (whole process, getrusage and /proc/self/statm).
    public struct Resources: Sendable, Codable {
        /// RSS after loading the fleet, before any connection.
        public var rssBeforeKb: Int
        /// RSS at the end of the measured window.
        public var rssConnectedKb: Int
        public var connectedAtStop: Int
        public var rssPerConnectedDeviceKb: Double
        /// Seconds from start until every device was connected (nil: never all).
        public var allConnectedAfterS: Double?
        /// Process CPU from start until all were connected, and per device.
        public var cpuConnectingS: Double?
        public var cpuPerConnectMs: Double?
        /// Process CPU from all connected to the end of the window, and that window's length.
        public var cpuAfterConnectedS: Double?
        public var secondsAfterConnected: Double?
    }

    /// The latency histograms themselves (microseconds), so that `report merge` can add shards'
    /// histograms exactly.
    public struct Histograms: Sendable, Codable {
        public var endToEnd: HistogramCounts
        public var puback: HistogramCounts
        public var connect: HistogramCounts
    }

    public var version = 2
    /// The run this report belongs to (`--run-id`; default from `--start-at`, see ``StartTime/runID``).
    public var runId: String?
    /// "I/N": this process's shard; "0/1" for the whole fleet. A merged report lists its parts in `shards`.
    public var shard: String?
    /// Seconds this shard started after `--start-at` (0: on time; nil: no `--start-at`).
    public var startLateS: Double?
    /// The reports merged into this one (`report merge`), one row per shard.
    public var shards: [ShardRow]?
    public var startedAt: String
    public var settings: Settings
    /// Messages accepted for publishing (whole run, warm-up included).
    public var sent: Int
    public var acknowledged: Int
    /// Messages the verifier received (duplicates included).
    public var received: Int
    public var gaps: Int
    public var duplicates: Int
    public var outOfOrder: Int
    public var dropped: Int
    public var overruns: Int
    public var connectAttempts: Int
    public var connectFailures: Int
    public var errors: Int
    public var connectedAtEnd: Int
    /// Sent and received per second over the measured window (after warm-up).
    public var msgsPerS: Double
    public var receivedPerS: Double
    public var measuredS: Double
    public var latencyMs: Latency
    public var connectMs: LatencySummary
    /// Latency distribution (end to end): value in ms at each percentile.
    public var e2eDistribution: [[Double]]
    /// nil in reports written before version 2 (they cannot be merged).
    public var histograms: Histograms?
    public var cpuSeconds: Double
    public var verifierCpuSeconds: Double?
    public var peakRssKb: Int
    public var resources: Resources
    public var timeSeries: [Second]
    /// Per device, only for fleets of at most 1,000 devices.
    public var devices: [DeviceCounts]?
    /// True when every message sent arrived exactly once and nothing was dropped.
    public var verified: Bool
    /// The scenario's events as they ran (`bench --scenario`, or `scenario:` in fleet.yaml).
    public var scenario: [ScenarioRecord]? = nil
    /// Set when the connect times cluster at Linux's delayed-ACK interval: what causes it and
    /// how to fix it (``DelayedAckHint``). Absent otherwise, and in older reports.
    public var connectHint: String? = nil

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> BenchReport {
        let decoder = JSONDecoder()
        // snake_case → camelCase, except `p99_9`, which is its own key.
        decoder.keyDecodingStrategy = .custom { path in
            let key = path.last!.stringValue
            if key == "p99_9" { return AnyKey(key) }
            var result = ""
            var upper = false
            for c in key {
                if c == "_" { upper = true; continue }
                result += upper ? c.uppercased() : String(c)
                upper = false
            }
            return AnyKey(result)
        }
        return try decoder.decode(BenchReport.self, from: data)
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// Connect times that sit at Linux's delayed-ACK interval (40 ms, plus the handshake) are the
/// broker's Nagle, not its speed: with mosquitto's default `set_tcp_nodelay false` its last small
/// write of the handshake waits until the client's delayed ACK releases it. A load test that
/// reports connect latency says so instead of reporting the artifact as the broker's.
public enum DelayedAckHint {
    /// The band connects fall in when they wait for a delayed ACK (µs): 40 ms minimum delay,
    /// less a little for timer rounding, plus up to 25 ms of handshake.
    public static let band: ClosedRange<UInt64> = 38_000...65_000

    /// A hint when at least 10 connects were measured, at least 60 % of them fall in `band` and
    /// at most 10 % are faster (the delay is a floor under nearly every connect); nil otherwise.
    public static func hint(connect: HistogramCounts) -> String? {
        var total: UInt64 = 0, inBand: UInt64 = 0, below: UInt64 = 0
        for bucket in connect.buckets where bucket.count == 2 {
            total += bucket[1]
            if band.contains(bucket[0]) { inBand += bucket[1] } else if bucket[0] < band.lowerBound { below += bucket[1] }
        }
        guard total >= 10, inBand * 10 >= total * 6, below * 10 <= total else { return nil }
        let percent = Int((Double(inBand) / Double(total) * 100).rounded())
        return "\(percent) % of connects took \(band.lowerBound / 1000)–\(band.upperBound / 1000) ms, the delayed-ACK interval "
            + "(~40 ms on Linux): the broker holds its last handshake write until the client's delayed ACK "
            + "(Nagle; mosquitto's default set_tcp_nodelay false). Add `set_tcp_nodelay true` to the broker's "
            + "configuration (sensorfleet provision writes it); connects then take a few ms."
    }
}

/// Whole-process CPU time and peak RSS (getrusage).
public enum ProcessUsage {
    public static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    public static func peakRssKb() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss)
    }

    /// Resident set size now, in KB (/proc/self/statm).
    public static func currentRSSKB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = text.split(separator: " ")
        guard parts.count > 1, let pages = Int(parts[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }
}
