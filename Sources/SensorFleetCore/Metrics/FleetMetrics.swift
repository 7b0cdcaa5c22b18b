#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Prometheus
import Synchronization

/// The labels every SensorFleet metric carries, and only these (plus `reason` where a metric
/// says so): never a device id, so a fleet of 10 000 devices is still one series per metric.
public struct MetricsLabels: Sendable, Equatable {
    /// The run's id (`run_id`); "" until runs have ids.
    public var runID: String
    /// This process's part of a sharded run, as "INDEX/COUNT" (`shard`); "0/1" when unsharded.
    public var shard: String

    /// - Parameters:
    ///   - runID: the run's id, "" when it has none.
    ///   - shard: "INDEX/COUNT", "0/1" when the run is not sharded.
    public init(runID: String = "", shard: String = "0/1") {
        self.runID = runID
        self.shard = shard
    }

    var pairs: [(String, String)] { [("run_id", runID), ("shard", shard)] }
}

/// The Prometheus view of a run: a `PrometheusCollectorRegistry` of our own (not the process-wide
/// default, so each run and each test has its own), fed at scrape time from the atomics the
/// engine keeps anyway (`FleetCounters`, the verifier's counts), plus the latency histograms,
/// which the fleet's `LatencyRecorder`s mirror into as they record.
///
/// Nothing here touches a device's hot path: a scrape reads the atomics and adds what changed
/// since the previous scrape to the Prometheus counters.
public final class FleetMetrics: Sendable {
    public let labels: MetricsLabels
    public let registry: PrometheusCollectorRegistry

    /// Upper bounds of the latency histograms' buckets, in seconds: 0.5 ms to 30 s.
    public static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    private struct Sources {
        var counters: FleetCounters?
        var durable: DurableOutbox?
        var verifier: Verifier?
        var gaps = 0
    }

    /// The values last added to each Prometheus counter, so a scrape adds only the difference.
    private struct Exported {
        var counts: [String: Int] = [:]
        var cpuSeconds = 0.0
    }

    private let sources = Mutex(Sources())
    private let exported = Mutex(Exported())

    private let devicesTargeted: Gauge
    private let devicesConnected: Gauge
    private let outboxMessages: Gauge
    private let outboxOnDisk: Gauge
    private let sent: Counter
    private let acknowledged: Counter
    private let received: Counter
    private let gaps: Counter
    private let duplicates: Counter
    private let overruns: Counter
    private let connectAttempts: Counter
    private let dropped: [DropReason: Counter]
    private let connectFailures: [ConnectFailureClass: Counter]
    private let publishLatency: DurationHistogram
    private let connectLatency: DurationHistogram
    private let endToEndLatency: DurationHistogram
    private let residentMemory: Gauge
    private let openFDs: Gauge
    private let cpuSeconds: Counter

    /// - Parameter labels: the `run_id` and `shard` every series carries.
    public init(labels: MetricsLabels = MetricsLabels()) {
        self.labels = labels
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let base = labels.pairs
        func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: describe(name, help), labels: base)
        }
        func counter(_ name: String, _ help: String, reason: String? = nil) -> Counter {
            registry.makeCounter(descriptor: describe(name, help), labels: base + (reason.map { [("reason", $0)] } ?? []))
        }
        func histogram(_ name: String, _ help: String) -> DurationHistogram {
            registry.makeDurationHistogram(
                descriptor: describe(name, help), labels: base,
                buckets: Self.latencyBuckets.map { .nanoseconds(Int64(($0 * 1e9).rounded())) })
        }
        devicesTargeted = gauge("sensorfleet_devices_targeted", "Devices this process runs.")
        devicesConnected = gauge("sensorfleet_devices_connected", "Devices connected to the broker now.")
        outboxMessages = gauge("sensorfleet_outbox_messages", "Messages accepted and not yet acknowledged or dropped (queued and in flight), all devices.")
        outboxOnDisk = gauge("sensorfleet_outbox_disk_messages", "Of those, kept in the durable outbox (--state-dir); 0 without one.")
        sent = counter("sensorfleet_messages_sent_total", "Telemetry messages accepted for publishing.")
        acknowledged = counter("sensorfleet_messages_acknowledged_total", "Messages acknowledged by the broker (PUBACK; written out for QoS 0).")
        received = counter("sensorfleet_messages_received_total", "Messages the bench verifier received (duplicates included).")
        gaps = counter("sensorfleet_messages_gaps_total", "Messages sent that the bench verifier never received, counted when the bench ends.")
        duplicates = counter("sensorfleet_messages_duplicates_total", "Messages the bench verifier received more than once.")
        overruns = counter("sensorfleet_reading_overruns_total", "Readings due while the previous one was still being produced.")
        connectAttempts = counter("sensorfleet_connect_attempts_total", "Connection attempts.")
        var dropped: [DropReason: Counter] = [:]
        for reason in DropReason.allCases {
            dropped[reason] = counter("sensorfleet_messages_dropped_total", "Messages accepted but never delivered, by reason.", reason: reason.rawValue)
        }
        self.dropped = dropped
        var failures: [ConnectFailureClass: Counter] = [:]
        for kind in ConnectFailureClass.allCases {
            failures[kind] = counter("sensorfleet_connect_failures_total", "Connection attempts that failed before CONNACK, by class of failure.", reason: kind.rawValue)
        }
        connectFailures = failures
        publishLatency = histogram("sensorfleet_publish_latency_seconds", "From the hand-over to libmosquitto to PUBACK (QoS 1) or write-out (QoS 0).")
        connectLatency = histogram("sensorfleet_connect_latency_seconds", "TCP, TLS and CONNECT up to CONNACK, for each successful connect.")
        endToEndLatency = histogram("sensorfleet_end_to_end_latency_seconds", "From the payload's timestamp to its arrival at the bench verifier.")
        residentMemory = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        openFDs = gauge("process_open_fds", "Number of open file descriptors.")
        cpuSeconds = counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
    }

    /// Reads `fleet`'s counters from now on and mirrors its latency recorders (when the run
    /// records latencies) into the histograms. Called by `Fleet.init`.
    func attach(_ counters: FleetCounters, durable: DurableOutbox?) {
        sources.withLock {
            $0.counters = counters
            $0.durable = durable
        }
        if let recorder = counters.publishLatency { recorder.mirror(into: Self.recording(into: publishLatency)) }
        if let recorder = counters.connectLatency { recorder.mirror(into: Self.recording(into: connectLatency)) }
    }

    /// Reads the bench verifier's counts from now on and mirrors its end-to-end latencies.
    func attach(verifier: Verifier) {
        sources.withLock { $0.verifier = verifier }
        verifier.latency.mirror(into: Self.recording(into: endToEndLatency))
    }

    /// Adds the bench's gaps, known once it has ended.
    func addGaps(_ count: Int) {
        sources.withLock { $0.gaps += max(0, count) }
    }

    private static func recording(into histogram: DurationHistogram) -> @Sendable (UInt64) -> Void {
        { micros in histogram.record(.microseconds(Int64(clamping: micros))) }
    }

    /// Ready once at least one device is connected (the agent has one; for a fleet, one
    /// connection proves the broker, the CA and the credentials work).
    public var isReady: Bool {
        guard let counters = sources.withLock({ $0.counters }) else { return false }
        return counters.connected.load(ordering: .relaxed) > 0
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, brought up to date first.
    public func exposition() -> [UInt8] {
        update()
        return registry.emitToBuffer()
    }

    /// Copies the atomics into the Prometheus metrics.
    public func update() {
        let (counters, durable, verifier, gapCount) = sources.withLock { ($0.counters, $0.durable, $0.verifier, $0.gaps) }
        let usage = ProcessMetrics.read()
        exported.withLock { exported in
            func advance(_ counter: Counter, _ key: String, to value: Int) {
                let delta = value - (exported.counts[key] ?? 0)
                if delta > 0 {
                    counter.increment(by: Int64(delta))
                    exported.counts[key] = value
                }
            }
            if let counters {
                let t = counters.snapshot()
                devicesTargeted.set(Double(t.devices))
                devicesConnected.set(Double(t.connected))
                let unacknowledged = max(0, t.accepted + t.restored - t.acknowledged - t.dropped - t.kept)
                outboxMessages.set(Double(unacknowledged))
                outboxOnDisk.set(durable?.isDurable == true ? Double(max(0, unacknowledged - t.notDurable)) : 0)
                advance(sent, "sent", to: t.accepted)
                advance(acknowledged, "acknowledged", to: t.acknowledged)
                advance(overruns, "overruns", to: t.overruns)
                advance(connectAttempts, "connectAttempts", to: t.connectAttempts)
                for reason in DropReason.allCases {
                    advance(dropped[reason]!, "dropped." + reason.rawValue, to: counters.dropped(reason))
                }
                for kind in ConnectFailureClass.allCases {
                    advance(connectFailures[kind]!, "connectFailures." + kind.rawValue, to: counters.connectFailures(kind))
                }
            }
            if let verifier {
                advance(received, "received", to: verifier.received.load(ordering: .relaxed))
                advance(duplicates, "duplicates", to: verifier.duplicates.load(ordering: .relaxed))
            }
            advance(gaps, "gaps", to: gapCount)
            residentMemory.set(Double(usage.residentBytes))
            openFDs.set(Double(usage.openFileDescriptors))
            let cpuDelta = usage.cpuSeconds - exported.cpuSeconds
            if cpuDelta > 0 {
                cpuSeconds.increment(by: cpuDelta)
                exported.cpuSeconds = usage.cpuSeconds
            }
        }
    }
}

/// The process's own figures, as Prometheus' client libraries export them.
public struct ProcessMetrics: Sendable {
    public var residentBytes: Int
    public var cpuSeconds: Double
    public var openFileDescriptors: Int

    /// Reads /proc/self/statm, getrusage and /proc/self/fd.
    public static func read() -> ProcessMetrics {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { max(0, $0 - 1) } ?? 0
        return ProcessMetrics(residentBytes: ProcessUsage.currentRSSKB() * 1024, cpuSeconds: ProcessUsage.cpuSeconds(),
                              openFileDescriptors: fds)
    }
}
