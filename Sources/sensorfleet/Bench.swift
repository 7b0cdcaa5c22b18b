import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SensorFleetCore
import ServiceLifecycle

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-test a broker with the fleet: steady rates, a verifier counting what arrived, JSON/HTML reports.",
        discussion: """
        Report schema: docs/bench.md.

        QoS 2, a payload template and MQTT 5 properties from the command line:
          sensorfleet bench Devices --qos 2 --protocol 5 --messages 100 \\
            --payload-format template --payload-template '{"id":"{{id}}","n":{{seq}},"at":{{ts_us}},"t":{{temperature}}}' \\
            --message-expiry 60 --content-type application/json --user-property 'site={id}-north'
        A template must hold {{seq}} and a time ({{ts_ms}}, {{ts_us}} or {{ts_iso}}): the verifier reads them back.
        """
    )

    @Argument(help: "The fleet folder (provisioned; templates in fleet.yaml stand for many devices).")
    var directory: String = "Devices"
    @Option(help: "Broker as HOST:PORT (default: fleet.yaml's broker).")
    var broker: String?
    @Option(help: "Use the first N devices of the fleet (by id).")
    var devices: Int?
    @Option(help: "Connections per second while ramping up.")
    var connectRate: Double = 100
    @Option(help: "Messages per second per device, or `max` for as fast as the broker acknowledges (default: each device's interval).")
    var rate: String?
    @Option(help: "Messages per second for the whole fleet (split evenly); instead of --rate.")
    var totalRate: Double?
    @Option(help: "QoS 0, 1 or 2.")
    var qos: Int = 1
    @Option(help: "Payload size in bytes (padding inside the JSON, or a `pad` string field in influx).")
    var payloadSize: Int?
    @Option(help: ArgumentHelp("Payload format of every device: json, influx or template (default: each device's `payload:`).", valueName: "format"))
    var payloadFormat: String?
    @Option(help: ArgumentHelp("The template text for --payload-format template, with {{seq}}, {{ts_ms}}/{{ts_us}}/{{ts_iso}}, {{id}}, {{<sensor>}}.", valueName: "text"))
    var payloadTemplate: String?
    @Option(help: ArgumentHelp("A file holding the template for --payload-format template.", valueName: "path"))
    var payloadTemplateFile: String?
    @Option(help: ArgumentHelp("Measurement of --payload-format influx (default telemetry).", valueName: "name"))
    var influxMeasurement: String?
    @Option(name: .customLong("protocol"), help: ArgumentHelp("MQTT version, 3.1.1 or 5 (default: fleet.yaml's broker.protocol).", valueName: "version"))
    var mqttProtocol: String?
    @Option(help: ArgumentHelp("MQTT 5: message expiry interval of every telemetry message, in seconds.", valueName: "seconds"))
    var messageExpiry: Int?
    @Option(help: ArgumentHelp("MQTT 5: content type of every telemetry message, e.g. application/json.", valueName: "type"))
    var contentType: String?
    @Option(help: ArgumentHelp("MQTT 5: a user property on every telemetry message, NAME=VALUE ({id} is the device id); repeatable.", valueName: "name=value"))
    var userProperty: [String] = []
    @Flag(help: "MQTT 5: send the telemetry topic as topic alias 1 after the first message (QoS 0 only).")
    var topicAlias = false
    @Option(help: "Messages per device, then stop (the run ends when all are acknowledged and verified).")
    var messages: Int?
    @Option(help: "Seconds measured (after the warm-up).")
    var duration: Double = 10
    @Option(help: "Seconds of warm-up (connecting, first messages) not counted in rates and latencies.")
    var warmup: Double = 0
    @Option(help: "Source addresses, comma-separated (e.g. 127.0.0.1,127.0.0.2), handed out round-robin.")
    var bind: String?
    @Option(help: "Write the JSON report here.")
    var report: String?
    @Option(help: "Write the HTML report here.")
    var html: String?
    @Option(help: "Verifier connections (default: 1 per 250 devices, 1 to 4).")
    var verifierConnections: Int?
    @Flag(help: "Do not run the verifier (publishing cost only).")
    var noVerify = false
    @Flag(help: "Keep libmosquitto's socketpair (3 descriptors per client instead of 1).")
    var threeDescriptors = false
    @Option(help: "Reactor threads (default: one per core, at most one per 500 devices).")
    var threads: Int?
    @Option(help: ArgumentHelp("Run the timed events of this file during the bench (a `scenario:` list, as in fleet.yaml, which it replaces), e.g. a reconnect storm.", valueName: "file"))
    var scenario: String?

    @OptionGroup var sharding: ShardOptions
    @OptionGroup var start: StartOptions
    @Option(help: ArgumentHelp("Serve Prometheus metrics (GET /metrics) and readiness (GET /healthz) on this address, e.g. 127.0.0.1:9464.", valueName: "addr:port"))
    var metricsListen: String?
    @Option(help: ArgumentHelp("With --metrics-listen: keep serving the final values this many seconds after the bench ends, so that a scraper (Prometheus every 15 s) gets them; SIGTERM ends the wait.", valueName: "seconds"))
    var metricsLinger: Double = 0
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try sharding.resolve()
        _ = try start.resolve()
        if rate != nil && totalRate != nil { throw ValidationError("--rate and --total-rate: give one of them") }
        do {
            let ranges = OptionRanges.bench
            try ranges.check("--devices", devices)
            try ranges.check("--connect-rate", connectRate)
            try ranges.check("--qos", qos)
            try ranges.check("--rate", text: rate, allowed: ["max"])
            try ranges.check("--total-rate", totalRate)
            try ranges.check("--payload-size", payloadSize)
            try ranges.check("--messages", messages)
            try ranges.check("--duration", duration)
            try ranges.check("--warmup", warmup)
            try ranges.check("--verifier-connections", verifierConnections)
            try ranges.check("--threads", threads)
            try ranges.check("--metrics-linger", metricsLinger)
            try ranges.check("--message-expiry", messageExpiry)
        } catch { throw ValidationError("\(error)") }
        _ = try payloadChoice()
        _ = try protocolChoice()
        if let metricsListen { try checkMetricsListen(metricsListen) }
    }

    func run() async throws {
        let logger = try logging.bootstrap()
        let loaded = try loadFleet(directory, broker: broker, shard: try sharding.resolve(), firstDevices: devices)
        for warning in loaded.warnings { printError("  ! \(warning)") }
        var options = BenchOptions()
        options.scenario = loaded.spec.scenario
        if let scenario { options.scenario = try loadScenario(scenario, fleet: loaded.spec, directory: directory) }
        let onTerminal = isatty(STDOUT_FILENO) == 1
        options.onScenarioLine = { line in writeToStandardOutput(onTerminal ? "\r\u{1B}[2K" + line : line) }
        options.devices = devices
        options.connectRate = connectRate
        if let rate { options.ratePerDevice = rate == "max" ? 0 : Double(rate) }
        options.totalRate = totalRate
        options.qos = qos
        options.payloadSize = payloadSize
        options.payloadFormat = try payloadChoice()
        (options.protocolVersion, options.telemetryProperties) = try protocolChoice()
        options.messagesPerDevice = messages
        options.duration = duration
        options.warmup = warmup
        options.bind = bind.map { $0.split(separator: ",").map { $0.trimmingSpaces() } } ?? []
        options.verify = !noVerify
        options.verifierConnections = verifierConnections
        options.singleDescriptor = !threeDescriptors
        options.reactorThreads = threads
        options.shard = try sharding.resolve()
        options.startAt = try start.resolve()
        // Decided here, so the report and the metrics' `run_id` label say the same.
        let runID = start.runId ?? options.startAt?.runID ?? StartTime.runID(for: Date())
        options.runID = runID
        let metrics: MetricsService?
        let labels = MetricsLabels(runID: runID, shard: options.shard.description)
        do { metrics = try metricsListen.map { try MetricsService.open(listen: $0, labels: labels) } } catch {
            printError("bench: \(error)")
            throw ExitCode(1)
        }
        options.metrics = metrics?.metrics
        if let metrics { print("metrics: http://\(metrics.server.address)/metrics") }
        let terminal = isatty(STDOUT_FILENO) == 1
        let bench = BenchService(spec: loaded.spec, options: options, logger: logger) { second, target in
            let line = "\(String(cFormat: "%5.0f", second.t)) s  connected \(second.connected)/\(target)  sent/s \(second.sent)  received/s \(second.received)  p99 \(second.e2eP99Ms) ms  errors \(second.errors)\(second.overruns > 0 ? "  overruns \(second.overruns)" : "")\(second.measured ? "" : "  (warm-up)")"
            writeToStandardOutput(terminal ? "\r\u{1B}[2K" + line : line + "\n")
        }
        do {
            // SIGINT/SIGTERM end the measurement early; the report covers what was measured.
            let main: any Service = metrics != nil && metricsLinger > 0 ? LingerAfter(bench, seconds: metricsLinger) : bench
            try await runServices((metrics.map { [.init(service: $0)] } ?? []) + [.init(service: main, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger)
        } catch let error as FleetStartError {
            if terminal { print("") }
            printError("bench: \(error.description)")
            throw ExitCode(1)
        }
        guard let result = bench.report else { throw ExitCode(1) }
        if terminal { print("") }
        let r = result
        print("""
        bench \(r.runId ?? "") shard \(r.shard ?? "0/1"): \(r.settings.devices) devices, QoS \(r.settings.qos), \(r.measuredS) s measured
          sent \(r.sent)  acknowledged \(r.acknowledged)  received \(r.received)  gaps \(r.gaps)  duplicates \(r.duplicates)  out of order \(r.outOfOrder)
          dropped \(r.dropped)  overruns \(r.overruns)  connect failures \(r.connectFailures)  errors \(r.errors)
          \(r.msgsPerS) msg/s sent, \(r.receivedPerS) msg/s received
          end-to-end ms  p50 \(r.latencyMs.endToEnd.p50)  p90 \(r.latencyMs.endToEnd.p90)  p99 \(r.latencyMs.endToEnd.p99)  p99.9 \(r.latencyMs.endToEnd.p999)  max \(r.latencyMs.endToEnd.max)
          PUBACK ms      p50 \(r.latencyMs.puback.p50)  p90 \(r.latencyMs.puback.p90)  p99 \(r.latencyMs.puback.p99)  p99.9 \(r.latencyMs.puback.p999)  max \(r.latencyMs.puback.max)
          connect ms     p50 \(r.connectMs.p50)  p90 \(r.connectMs.p90)  p99 \(r.connectMs.p99)  p99.9 \(r.connectMs.p999)  max \(r.connectMs.max)
          cpu \(r.cpuSeconds) s (verifier thread \(r.verifierCpuSeconds.map { "\($0)" } ?? "–") s)  peak RSS \(r.peakRssKb) KB
          memory \(r.resources.rssPerConnectedDeviceKb) KB RSS per connected device (\(r.resources.connectedAtStop) connected)  all connected after \(r.resources.allConnectedAfterS.map { "\($0) s" } ?? "–")  CPU per connect \(r.resources.cpuPerConnectMs.map { "\($0) ms" } ?? "–")
          \(r.verified ? "VERIFIED: every message sent arrived exactly once" : (options.verify ? "NOT VERIFIED" : "not verified (--no-verify)"))
        """)
        if let hint = r.connectHint { print("  connect times: \(hint)") }
        do {
            if let report { try PlainFile.write(r.jsonData(), to: report); print("report written to \(report)") }
            if let html { try PlainFile.write(Array(BenchHTML.render(r).utf8), to: html); print("HTML report written to \(html)") }
        } catch {
            printError("cannot write the report: \(error)")
            throw ExitCode(1)
        }
        if options.verify && !r.verified { throw ExitCode(3) }
    }
}

extension Bench {
    /// `--payload-format` and its companions; nil: each device's own format.
    func payloadChoice() throws -> PayloadFormat? {
        let names = PayloadFormat.names.joined(separator: ", ")
        guard let payloadFormat else {
            if payloadTemplate != nil || payloadTemplateFile != nil || influxMeasurement != nil {
                throw ValidationError("--payload-template, --payload-template-file and --influx-measurement go with --payload-format (template or influx)")
            }
            return nil
        }
        switch payloadFormat {
        case "json":
            if payloadTemplate != nil || payloadTemplateFile != nil || influxMeasurement != nil {
                throw ValidationError("--payload-format json takes no template or measurement")
            }
            return .json
        case "influx":
            if payloadTemplate != nil || payloadTemplateFile != nil {
                throw ValidationError("--payload-template goes with --payload-format template, not influx")
            }
            var line = InfluxLine()
            if let influxMeasurement {
                if let problem = InfluxLine.problem(with: influxMeasurement, what: "measurement") {
                    throw ValidationError("--influx-measurement: \(problem); give a name such as telemetry")
                }
                line.measurement = influxMeasurement
            }
            return .influx(line)
        case "template":
            if influxMeasurement != nil { throw ValidationError("--influx-measurement goes with --payload-format influx") }
            let text: String
            switch (payloadTemplate, payloadTemplateFile) {
            case (let inline?, nil): text = inline
            case (nil, let path?):
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("--payload-template-file \(path): cannot read it (\(FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"))")
                }
                text = String(decoding: data, as: UTF8.self)
            case (nil, nil):
                throw ValidationError("--payload-format template needs the template: --payload-template '…' or --payload-template-file PATH")
            default:
                throw ValidationError("--payload-template and --payload-template-file: give one of them")
            }
            do {
                return .template(try PayloadTemplate(parsing: text))
            } catch {
                throw ValidationError("--payload-template: line \(error.line): \(error.message)")
            }
        default:
            throw ValidationError("--payload-format \(payloadFormat): expected one of \(names)")
        }
    }

    /// `--protocol` and the MQTT 5 properties; nil where not given.
    func protocolChoice() throws -> (MQTTVersion?, TelemetryProperties?) {
        var version: MQTTVersion?
        if let mqttProtocol {
            guard let parsed = MQTTVersion(rawValue: mqttProtocol) else {
                throw ValidationError("--protocol \(mqttProtocol): expected 3.1.1 or 5")
            }
            version = parsed
        }
        var properties = TelemetryProperties()
        properties.messageExpiry = messageExpiry.map { UInt32($0) }
        if let contentType {
            guard !contentType.isEmpty, contentType.utf8.count <= 65_535, !contentType.contains("\u{0}") else {
                throw ValidationError("--content-type: expected a MIME type such as application/json")
            }
            properties.contentType = contentType
        }
        for entry in userProperty {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ValidationError("--user-property \(entry): expected NAME=VALUE, e.g. --user-property site=north")
            }
            let name = String(entry[..<eq]), value = String(entry[entry.index(after: eq)...])
            guard !name.contains("\u{0}"), !value.contains("\u{0}"), name.utf8.count <= 65_535, value.utf8.count <= 65_535 else {
                throw ValidationError("--user-property \(name): name and value are texts of at most 65,535 bytes without NUL")
            }
            properties.userProperties.append(.init(name: name, value: value))
        }
        properties.topicAlias = topicAlias
        if topicAlias && qos > 0 {
            throw ValidationError("--topic-alias is used at --qos 0 only (at QoS \(qos) libmosquitto re-sends an unacknowledged message after a reconnect with the alias only)")
        }
        let given = properties.hasProperties || properties.topicAlias
        if given && version == .v311 {
            throw ValidationError("--message-expiry, --content-type, --user-property and --topic-alias are MQTT 5 properties: use --protocol 5")
        }
        return (version, given ? properties : nil)
    }
}
