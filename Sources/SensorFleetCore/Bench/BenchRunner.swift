#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import Logging
import MosquittoKit
import ServiceLifecycle
import X509
import Histogram
import Synchronization

/// `sensorfleet bench`: the fleet engine of `run` with a load profile, a verifier, a per-second
/// time series and a report.
public struct BenchOptions: Sendable {
    /// The first `devices` devices of the fleet (by id); nil: all.
    public var devices: Int?
    public var connectRate: Double = 100
    /// Per device; 0: as fast as acknowledged.
    public var ratePerDevice: Double?
    public var totalRate: Double?
    public var qos: Int = 1
    /// Every device writes this format (`--payload-format`); nil: each its own `payload:`.
    public var payloadFormat: PayloadFormat?
    /// Overrides fleet.yaml's `broker.protocol` (`--protocol`).
    public var protocolVersion: MQTTVersion?
    /// MQTT 5 properties on every telemetry message (`--message-expiry`, `--content-type`,
    /// `--user-property`, `--topic-alias`), instead of the devices' `mqtt5:`; nil: theirs.
    public var telemetryProperties: TelemetryProperties?
    /// Whole payload size in bytes (padding inside the JSON); nil: no padding.
    public var payloadSize: Int?
    public var messagesPerDevice: Int?
    public var duration: Double = 10
    public var warmup: Double = 0
    /// The metrics endpoint's view (`--metrics-listen`), fed by the fleet and the verifier.
    public var metrics: FleetMetrics?
    public var bind: [String] = []
    public var verify = true
    public var verifierConnections: Int?
    /// One descriptor per client (refuse libmosquitto's socketpair).
    public var singleDescriptor = true
    public var reactorThreads: Int?
    /// Seconds to wait for the verifier to see the last messages after the fleet stopped.
    public var settleTimeout: Double = 5
    /// This process's share of the fleet, taken after `devices` (the first N devices are split).
    public var shard: Shard = .whole
    /// Wait for this time (verifier subscribed, nothing connected) before ramping up.
    public var startAt: StartTime?
    /// Written into the report; nil: ``StartTime/runID`` of `startAt`, or of the moment the
    /// bench started.
    public var runID: String?
    /// Timed events during the run (`--scenario`, or `scenario:` in fleet.yaml); their lines go
    /// to `onScenarioLine`.
    public var scenario: ScenarioSpec?
    public var onScenarioLine: @Sendable (String) -> Void = { _ in }

    public init() {}
}

public enum BenchRunner {
    /// The CN of the certificate in `certFile` (the observer's MQTT username), if it can be read.
    static func commonName(certFile: String) -> String? {
        guard let text = try? String(contentsOfFile: certFile, encoding: .utf8),
              let block = try? PEMReader.blocks(in: text).first(where: { $0.label == "CERTIFICATE" }),
              let certificate = try? Certificate(derEncoded: block.der)
        else { return nil }
        return CredentialChecker.commonNames(of: certificate.subject).first
    }

    static func seconds(_ d: Duration) -> Double {
        ((Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }

    /// Runs a bench. `onSecond` gets each second's sample (for the live line).
    public static func run(
        fleet spec: FleetSpec, options: BenchOptions, logger: Logger,
        onSecond: @escaping @Sendable (BenchReport.Second, Int) -> Void = { _, _ in }
    ) async throws -> BenchReport {
        var spec = spec
        if let n = options.devices {
            guard n >= 1, n <= spec.devices.count else {
                throw FleetStartError(description: "--devices \(n): the fleet has \(spec.devices.count) devices; pass 1…\(spec.devices.count), or add devices with a template in fleet.yaml and `sensorfleet provision`")
            }
            spec.devices = Array(spec.devices.prefix(n))
        }
        let everyDevice = spec.devices  // a scenario chooses among these, so shards agree
        do { spec = try spec.selecting(options.shard) } catch { throw FleetStartError(description: error.description) }
        let count = spec.devices.count
        try applyProtocol(options, to: &spec)
        var rate: Double? = options.ratePerDevice
        if let total = options.totalRate { rate = total / Double(count) }

        // Descriptors: raise the soft limit, then check the fleet fits before connecting.
        DescriptorBudget.singleDescriptorClients = options.singleDescriptor
        let limit = DescriptorBudget.raiseLimit()
        let perClient = DescriptorBudget.perClient
        let verifierConnections = options.verify ? max(1, min(options.verifierConnections ?? max(1, min(4, count / 250)), count)) : 0
        let needed = (count + verifierConnections) * perClient + DescriptorBudget.openNow() + 32
        if needed > limit {
            let fits = max(0, (limit - DescriptorBudget.openNow() - 32) / perClient - verifierConnections)
            throw FleetStartError(description: "\(count) devices do not fit: they need about \(needed) file descriptors (\(perClient) per libmosquitto client\(perClient == 3 ? ": its socket and a socketpair" : "") + the verifier's), and this process may open \(limit) (RLIMIT_NOFILE, soft raised to hard). Pass --devices \(fits) or fewer, raise the hard limit (ulimit -Hn as root), or run shards of the fleet in several processes")
        }
        if options.singleDescriptor && !DescriptorBudget.isInterposed {
            logger.warning("one descriptor per client is not available in this process (socketpair is not interposed): 3 per client")
        }

        let formats = try payloadFormats(options, spec)
        // Payload size: padding so the whole payload is about `payloadSize` bytes.
        var padding = 0
        if let size = options.payloadSize, let first = spec.devices.first {
            switch formats[0] {
            case .json:
                let sample = TelemetryPayload.encode(
                    device: first.id, seq: 1, timestampMillis: WallClock.millis(),
                    readings: first.sensors.map { ($0.name, 12.345) })
                let withMicros = sample.count + ",\"tus\":".utf8.count + 16
                padding = max(0, size - withMicros - ",\"pad\":\"\"".utf8.count)
            case .influx:
                var sample: [UInt8] = []
                formats[0].encode(device: first.id, seq: 1, timestampMicros: WallClock.micros(),
                                  readings: first.sensors.map { ($0.name, 12.345) }, into: &sample)
                padding = max(0, size - sample.count - ",pad=\"\"".utf8.count)
            case .template:
                throw FleetStartError(description: "--payload-size pads JSON and influx payloads; a template's size is that of its text: leave out --payload-size, or write the size into the template")
            }
        }
        // A source address that is not this machine's fails every connect in bind(), before a
        // packet leaves: say so now, naming the address rather than the broker.
        for address in options.bind {
            if let problem = SourceAddress.problem(address) { throw FleetStartError(description: problem) }
        }
        let pace: PublishSettings.Pace
        switch rate {
        case nil: pace = .deviceInterval
        case let rate? where rate > 0: pace = .every(.saturating(seconds: 1 / rate))
        default: pace = .asFastAsAcknowledged
        }
        let publishing = PublishSettings(
            pace: pace, qos: options.qos, messagesPerDevice: options.messagesPerDevice,
            format: TelemetryFormat(payload: options.payloadFormat, padding: padding, microsecondTimestamps: true),
            bindAddresses: options.bind)

        let broker = spec.broker
        let runOptions = {
            var o = RunOptions(reactorThreads: options.reactorThreads, connectRate: options.connectRate)
            o.publishing = publishing
            o.recordLatencies = true
            o.metrics = options.metrics
            return o
        }()
        let fleet = try Fleet(spec: spec, options: runOptions, logger: logger)
        let publishLatency = fleet.counters.publishLatency!
        let connectLatency = fleet.counters.connectLatency!

        var verifier: Verifier?
        let observerName = Self.commonName(certFile: spec.directory + "/broker/observer/cert.pem") ?? Provisioner.observerID
        if options.verify {
            let observer = spec.directory + "/broker/observer"
            let settings = Verifier.Settings(
                host: try Fleet.resolve(broker.host), port: broker.port, caFile: broker.caFile,
                certFile: observer + "/cert.pem", keyFile: observer + "/key.pem",
                tls: broker.tlsSettings,
                connections: verifierConnections, bindAddress: options.bind.first,
                observerName: observerName)
            guard FileManager.default.fileExists(atPath: settings.certFile) else {
                throw FleetStartError(description: "the verifier needs the observer identity \(settings.certFile): run `sensorfleet provision \(spec.directory)`, or pass --no-verify")
            }
            let made = try Verifier(settings: settings, topics: spec.devices.map { ($0.id, $0.topic) }, formats: formats, logger: logger)
            try await made.start(timeout: 15)
            verifier = made
            options.metrics?.attach(verifier: made)
        }

        // A shared start: wait (SIGTERM ends the wait), or ramp at once and say how late.
        var startLate: Double?
        if let startAt = options.startAt {
            do {
                startLate = try await startAt.wait()
            } catch {
                await verifier?.stop()
                throw FleetStartError(description: "stopped before the start time \(startAt.date.iso8601Seconds)")
            }
            if let late = startLate, late > 0 {
                logger.warning("started \(String(cFormat: "%.3f", late)) s after --start-at \(startAt.date.iso8601Seconds): ramping up at once")
            }
        }
        let rssBefore = ProcessUsage.currentRSSKB()
        let startedAt = Date()
        let cpuAtStart = ProcessUsage.cpuSeconds()
        let verifierCPUAtStart = await verifier?.threadCPUSeconds() ?? 0
        await fleet.start()
        // The scenario runs beside the measurement; leaving this scope cancels what is left of it.
        let scenario = options.scenario.flatMap { $0.events.isEmpty ? nil : $0 }.map {
            ScenarioService(fleet: fleet, scenario: $0, everyDevice: everyDevice, logger: logger, write: options.onScenarioLine)
        }
        async let scenarioDone: Void = { try? await scenario?.runEvents() }()
        let clock = ContinuousClock()
        let began = clock.now
        var series: [BenchReport.Second] = []
        var last = fleet.counters.snapshot()
        var lastReceived = 0
        var lastVerifierErrors = 0
        var measuredFrom: (sent: Int, received: Int, at: ContinuousClock.Instant)?
        if options.warmup <= 0 { measuredFrom = (0, 0, began) }
        let end = options.warmup + options.duration
        var tick = 1
        let target = count
        var completedAt: ContinuousClock.Instant?
        var allConnected: (at: ContinuousClock.Instant, cpu: Double)?
        /// All messages of a `--messages` run sent, acknowledged and (when verifying) received.
        func complete() -> Bool {
            guard let limit = options.messagesPerDevice else { return false }
            let now = fleet.counters.snapshot()
            let received = verifier?.received.load(ordering: .relaxed) ?? 0
            return now.accepted >= limit * count && now.acknowledged + now.dropped >= limit * count
                && (!options.verify || received >= now.acknowledged)
        }
        var firstAckWithoutDelivery: ContinuousClock.Instant?
        let silentVerifierLimit = 5.0
        while true {
            let deadline = began + .seconds(Double(tick))
            // Check for completion every 10 ms so a finite run's rate is not rounded to seconds.
            while clock.now < deadline {
                if allConnected == nil, fleet.counters.connected.load(ordering: .relaxed) >= count {
                    allConnected = (clock.now, ProcessUsage.cpuSeconds())
                }
                if completedAt == nil, complete() { completedAt = clock.now; break }
                if Task.isShuttingDownGracefully { break }
                try? await Task.sleep(until: min(deadline, clock.now + .milliseconds(10)), clock: clock)
            }
            let elapsed = Double(tick)
            let now = fleet.counters.snapshot()
            let received = verifier?.received.load(ordering: .relaxed) ?? 0
            // A broker may grant every SUBSCRIBE and filter at delivery (mosquitto's acl_file
            // does): then the devices' own messages are the probe. Nothing of what the broker
            // acknowledged for 5 s means the observer may not read.
            if let verifier, received == 0, now.acknowledged > 0 {
                let since = firstAckWithoutDelivery ?? clock.now
                firstAckWithoutDelivery = since
                if clock.now - since >= .seconds(silentVerifierLimit) {
                    _ = await fleet.stop(drainTimeout: 0, disconnectTimeout: 1)
                    await verifier.stop()
                    throw FleetStartError(description:
                        "the verifier received none of the \(now.acknowledged) messages the broker acknowledged in "
                        + "\(Int(silentVerifierLimit)) s: its subscriptions were granted, but nothing is delivered to it "
                        + "(mosquitto's acl_file grants every SUBSCRIBE and drops what the observer `\(observerName)` "
                        + "may not read). " + Verifier.aclAdvice(observer: observerName, topics: spec.devices.map(\.topic)))
                }
            }
            let verifierErrors = verifier?.errors.load(ordering: .relaxed) ?? 0
            let e2e = verifier?.latency.takeInterval()
            let puback = publishLatency.takeInterval()
            func ms(_ v: UInt64) -> Double { (Double(v) / 10).rounded() / 100 }
            let second = BenchReport.Second(
                t: elapsed, wallMs: Int64((startedAt.timeIntervalSince1970 + elapsed) * 1000), measured: elapsed > options.warmup, connected: now.connected,
                sent: now.accepted - last.accepted, acked: now.acknowledged - last.acknowledged,
                received: received - lastReceived, errors: now.errors - last.errors + verifierErrors - lastVerifierErrors,
                overruns: now.overruns - last.overruns,
                e2eP50Ms: e2e.map { $0.totalCount == 0 ? 0 : ms($0.valueAtPercentile(50)) } ?? 0,
                e2eP99Ms: e2e.map { $0.totalCount == 0 ? 0 : ms($0.valueAtPercentile(99)) } ?? 0,
                e2eMaxMs: e2e.map { $0.totalCount == 0 ? 0 : ms($0.max) } ?? 0,
                pubackP99Ms: puback.totalCount == 0 ? 0 : ms(puback.valueAtPercentile(99)))
            series.append(second)
            onSecond(second, target)
            last = now
            lastReceived = received
            lastVerifierErrors = verifierErrors
            if measuredFrom == nil && elapsed >= options.warmup {
                // End of the warm-up: latencies from here on.
                verifier?.latency.reset()
                publishLatency.reset()
                measuredFrom = (now.accepted, received, clock.now)
            }
            tick += 1
            if elapsed >= end { break }
            if completedAt != nil { break }
            // SIGINT/SIGTERM under a service group: end the measurement here and report it.
            if Task.isShuttingDownGracefully { break }
        }
        let measuredEnd = completedAt ?? clock.now
        let rssConnected = ProcessUsage.currentRSSKB()
        let connectedAtStop = fleet.counters.connected.load(ordering: .relaxed)
        let snapshotAtEnd = fleet.counters.snapshot()
        let receivedAtEnd = verifier?.received.load(ordering: .relaxed) ?? 0
        let cpuAtEnd = ProcessUsage.cpuSeconds()
        let verifierCPUAtEnd = await verifier?.threadCPUSeconds()
        let summary = await fleet.stop(drainTimeout: 10, disconnectTimeout: 3)

        // Let the verifier see the tail: until every acknowledged message arrived, or no
        // progress for a while.
        var counts: [String: SequenceTracker] = [:]
        let verifierCPU = verifierCPUAtEnd.map { $0 - verifierCPUAtStart }
        if let verifier {
            let settleDeadline = Date().addingTimeInterval(options.settleTimeout)
            var previous = -1
            var still = 0
            while Date() < settleDeadline {
                let got = verifier.received.load(ordering: .relaxed)
                if got >= summary.totals.accepted - summary.totals.dropped { break }
                if got == previous { still += 1; if still >= 10 { break } } else { still = 0 }
                previous = got
                try? await Task.sleep(for: .milliseconds(100))
            }
            counts = await verifier.counts()
            await verifier.stop()
        }

        var gaps = 0, duplicates = 0, outOfOrder = 0, receivedTotal = 0
        var perDevice: [BenchReport.DeviceCounts] = []
        defer { options.metrics?.addGaps(gaps) }
        for device in summary.devices {
            let tracker = counts[device.id] ?? SequenceTracker()
            let deviceGaps = options.verify ? tracker.gaps(lastSent: device.lastSeq) : 0
            gaps += deviceGaps
            duplicates += tracker.duplicates
            outOfOrder += tracker.outOfOrder
            receivedTotal += tracker.received
            if summary.devices.count <= 1000 {
                perDevice.append(BenchReport.DeviceCounts(
                    id: device.id, sent: Int(device.lastSeq), received: tracker.received, gaps: deviceGaps,
                    duplicates: tracker.duplicates, outOfOrder: tracker.outOfOrder, dropped: device.dropped))
            }
        }
        let window = measuredFrom.map { measuredEnd - $0.at } ?? .zero
        let windowSeconds = max(0.001, Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18)
        let sentInWindow = snapshotAtEnd.accepted - (measuredFrom?.sent ?? 0)
        let receivedInWindow = receivedAtEnd - (measuredFrom?.received ?? 0)
        let totals = summary.totals
        let e2eTotal = verifier?.latency.total
        var distribution: [[Double]] = []
        if let e2eTotal, e2eTotal.totalCount > 0 {
            for p in [0.0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100] {
                distribution.append([p, Double(e2eTotal.valueAtPercentile(p)) / 1000])
            }
        }
        let connectFailures = max(0, totals.connectAttempts - summary.devices.reduce(0) { $0 + $1.connects })
        let settings = BenchReport.Settings(
            broker: "\(broker.host):\(broker.port)", devices: count, connectRate: options.connectRate,
            ratePerDevice: rate ?? (1 / (spec.devices.first?.interval ?? 1)), qos: options.qos,
            payloadBytes: options.payloadSize ?? 0, messagesPerDevice: options.messagesPerDevice,
            durationS: options.duration, warmupS: options.warmup, bind: options.bind,
            verifierConnections: verifierConnections, descriptorsPerClient: perClient,
            reactorThreads: options.reactorThreads ?? max(1, min(ProcessInfo.processInfo.activeProcessorCount, (count + 499) / 500)),
            payloadFormat: formats.first?.name, mqttProtocol: spec.broker.protocolVersion.rawValue)
        var report = BenchReport(
            runId: options.runID ?? options.startAt?.runID ?? StartTime.runID(for: startedAt),
            shard: options.shard.description, startLateS: startLate.map { ($0 * 1000).rounded() / 1000 },
            startedAt: startedAt.iso8601Seconds, settings: settings,
            sent: totals.accepted, acknowledged: totals.acknowledged, received: receivedTotal, gaps: gaps,
            duplicates: duplicates, outOfOrder: outOfOrder, dropped: totals.dropped, overruns: totals.overruns,
            connectAttempts: totals.connectAttempts, connectFailures: connectFailures, errors: totals.errors,
            connectedAtEnd: totals.connected,
            msgsPerS: (Double(sentInWindow) / windowSeconds * 10).rounded() / 10,
            receivedPerS: (Double(receivedInWindow) / windowSeconds * 10).rounded() / 10,
            measuredS: (windowSeconds * 1000).rounded() / 1000,
            latencyMs: .init(endToEnd: LatencySummary(e2eTotal ?? LatencyRecorder().total), puback: LatencySummary(publishLatency.total)),
            connectMs: LatencySummary(connectLatency.total), e2eDistribution: distribution,
            histograms: .init(endToEnd: HistogramCounts(e2eTotal ?? LatencyRecorder().total),
                              puback: HistogramCounts(publishLatency.total),
                              connect: HistogramCounts(connectLatency.total)),
            cpuSeconds: ((cpuAtEnd - cpuAtStart) * 1000).rounded() / 1000,
            verifierCpuSeconds: verifierCPU.map { ($0 * 1000).rounded() / 1000 },
            peakRssKb: ProcessUsage.peakRssKb(),
            resources: BenchReport.Resources(
                rssBeforeKb: rssBefore, rssConnectedKb: rssConnected, connectedAtStop: connectedAtStop,
                rssPerConnectedDeviceKb: connectedAtStop > 0 ? (Double(rssConnected - rssBefore) / Double(connectedAtStop) * 10).rounded() / 10 : 0,
                allConnectedAfterS: allConnected.map { seconds($0.at - began) },
                cpuConnectingS: allConnected.map { (($0.cpu - cpuAtStart) * 1000).rounded() / 1000 },
                cpuPerConnectMs: allConnected.map { (($0.cpu - cpuAtStart) / Double(max(1, count)) * 1e6).rounded() / 1000 },
                cpuAfterConnectedS: allConnected.map { ((cpuAtEnd - $0.cpu) * 1000).rounded() / 1000 },
                secondsAfterConnected: allConnected.map { seconds(measuredEnd - $0.at) }),
            timeSeries: series,
            devices: perDevice.isEmpty ? nil : perDevice,
            verified: options.verify && gaps == 0 && duplicates == 0 && totals.dropped == 0 && receivedTotal == totals.accepted,
            scenario: scenario?.records)
        report.connectHint = report.histograms.flatMap { DelayedAckHint.hint(connect: $0.connect) }
        return report
    }
}
