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

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a fleet until the duration ends or SIGINT/SIGTERM, then stop gracefully."
    )

    @Argument(help: "The fleet folder.")
    var directory: String = "Devices"

    @Option(help: "Broker as HOST:PORT (overrides fleet.yaml).")
    var broker: String?

    @Option(help: "Seconds to run (default: until SIGINT/SIGTERM).")
    var duration: Double?

    @Option(help: "Write a JSON report to this file at the end.")
    var report: String?

    @Option(help: "Connection attempts per second for the whole fleet (overrides fleet.yaml).")
    var connectRate: Double?

    @Option(help: "Seconds between status lines when the output is not a terminal.")
    var statusInterval: Double = 5

    @Option(help: "Seconds to wait at the end for queued messages to be acknowledged.")
    var drainTimeout: Double = 10

    @Option(help: "Seconds from the start of a connection attempt to CONNACK before it is given up.")
    var connectTimeout: Double = 10

    @Option(help: ArgumentHelp("Keep each device's outbox on disk in this folder (SQLite, WAL): messages survive a crash and are sent by the next run.", valueName: "dir"))
    var stateDir: String?

    @Flag(help: "With --state-dir: move a damaged or emptied outbox aside and start afresh (sequence numbers restart at 1; messages in it are not sent).")
    var resetState = false

    @Option(help: ArgumentHelp("Run the timed events of this file (a `scenario:` list, as in fleet.yaml, which it replaces).", valueName: "file"))
    var scenario: String?

    @OptionGroup var sharding: ShardOptions
    @OptionGroup var start: StartOptions
    @Option(help: ArgumentHelp("Serve Prometheus metrics (GET /metrics) and readiness (GET /healthz) on this address, e.g. 127.0.0.1:9464.", valueName: "addr:port"))
    var metricsListen: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try sharding.resolve()
        _ = try start.resolve()
        do {
            let ranges = OptionRanges.run
            try ranges.check("--duration", duration)
            try ranges.check("--connect-rate", connectRate)
            try ranges.check("--status-interval", statusInterval)
            try ranges.check("--drain-timeout", drainTimeout)
            try ranges.check("--connect-timeout", connectTimeout)
        } catch { throw ValidationError("\(error)") }
        if let broker { _ = try parseBroker(broker) }
        if let metricsListen { try checkMetricsListen(metricsListen) }
        if resetState && stateDir == nil { throw ValidationError("--reset-state: only with --state-dir") }
    }

    func run() async throws {
        let logger = try logging.bootstrap()
        raiseDescriptorLimit()
        let shard = try sharding.resolve(), startAt = try start.resolve()
        var loaded = try loadFleet(directory, broker: broker, shard: shard)
        for warning in loaded.warnings { logger.warning("\(warning)") }
        if let scenario { loaded.spec.scenario = try loadScenario(scenario, fleet: loaded.spec, directory: directory) }
        let everyDevice = loaded.spec.devices
        do { loaded.spec = try loaded.spec.selecting(shard) } catch {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        let runID = start.runId ?? startAt?.runID ?? StartTime.runID(for: Date())
        var options = RunOptions(connectRate: connectRate)
        options.stateDirectory = stateDir
        options.connectTimeout = connectTimeout
        let fleet: Fleet
        let metrics: MetricsService?
        do {
            metrics = try metricsListen.map { try MetricsService.open(listen: $0, labels: MetricsLabels(runID: runID, shard: shard.description)) }
            options.metrics = metrics?.metrics
            options.recordLatencies = metrics != nil
            if let stateDir { try StateDirectory.claim(stateDir, reset: resetState).reportReset(logger) }
            fleet = try Fleet(spec: loaded.spec, options: options, logger: logger)
        } catch {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        let brokerText = "\(loaded.spec.broker.host):\(loaded.spec.broker.port)"
        print("sensorfleet: \(loaded.spec.devices.count) device\(loaded.spec.devices.count == 1 ? "" : "s") → \(brokerText) (TLS, MQTT \(loaded.spec.broker.protocolVersion.rawValue))\(shard == .whole ? "" : ", shard \(shard)"), run \(runID)\(startAt.map { " starting at \($0.date.iso8601Seconds)" } ?? "")")
        if let metrics { print("metrics: http://\(metrics.server.address)/metrics") }
        fflush(nil) // seen at once even when the output is a file or a pipe
        let reason = StopReason()
        let drainTimeout = self.drainTimeout
        let fleetService = FleetService(fleet: fleet, drainTimeout: drainTimeout, startAt: startAt, logger: logger, onStopping: { unacknowledged in
            print("stopping (\(await reason.settled())): \(unacknowledged) message(s) not yet acknowledged; waiting up to \(Int(drainTimeout)) s for them…")
        })
        // Stopped in reverse order: the duration and the status line first, then the fleet drains.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = metrics.map { [.init(service: $0)] } ?? []
        services += [
            .init(service: SignalReasonService(signals: stopSignals, reason: reason)),
            .init(service: fleetService),
            .init(service: StatusLineService(counters: fleet.counters, interval: statusInterval,
                                             isTerminal: isatty(STDOUT_FILENO) == 1, write: writeToStandardOutput)),
        ]
        var scenarioService: ScenarioService?
        if let plan = loaded.spec.scenario, !plan.events.isEmpty {
            let service = ScenarioService(fleet: fleet, scenario: plan, everyDevice: everyDevice, logger: logger, write: writeToStandardOutput)
            print("scenario: \(plan.events.count) event\(plan.events.count == 1 ? "" : "s") from \(plan.file)")
            services.append(.init(service: service, successTerminationBehavior: .ignore))
            scenarioService = service
        }
        if let duration {
            // Counted from the start time, not from launch.
            let wait = max(0, startAt?.date.timeIntervalSinceNow ?? 0)
            services.append(.init(service: DurationService(.seconds(duration + wait), reason: reason),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        }
        try await runServices(services, logger: logger)
        if fleetService.stoppedBeforeStart {
            printError("stopped (\(await reason.settled())) before the start time: nothing ran")
            throw ExitCode(1)
        }
        guard let summary = fleetService.summary else { throw ExitCode(1) }
        printSummary(summary)
        let t = summary.totals
        if let store = fleet.durableOutbox {
            if let reason = store.failureReason {
                printError("durable outbox: \(reason); \(t.notDurable) message(s) were kept in memory only")
            }
            if t.kept > 0 {
                print("not delivered: \(t.kept) message(s), kept in \(store.path) for the next run")
            }
        }
        let undelivered = t.droppedByReason[DropReason.unsent.rawValue] ?? 0
        if undelivered > 0 {
            printError("not delivered: \(undelivered) message(s) still queued at the end were dropped (use --state-dir to keep them)")
        }
        if let report {
            do {
                try PlainFile.write(RunReport(summary: summary, broker: brokerText, runID: runID, shard: shard.description, startLate: fleetService.startLate, scenario: scenarioService?.records).jsonData(), to: report)
                print("report written to \(report)")
            } catch {
                printError("cannot write the report to \(report): \((error as? PlainFile.Failure)?.reason ?? "\(error)")")
                throw ExitCode(1)
            }
        }
        if !summary.failedDevices.isEmpty {
            printError("\(summary.failedDevices.count) device(s) failed: \(summary.failedDevices.prefix(10).joined(separator: ", "))\(summary.failedDevices.count > 10 ? ", …" : "")")
            throw ExitCode(2)
        }
    }

    /// `text` cut or padded with spaces to `width` characters (UTF-16 units, as NSString's
    /// `padding(toLength:withPad:startingAt:)` counted; device ids are ASCII).
    static func column(_ text: String, width: Int) -> String {
        let units = Array(text.utf16)
        if units.count >= width { return String(decoding: units.prefix(width), as: UTF16.self) }
        return text + String(repeating: " ", count: width - units.count)
    }

    /// " (overflow 3, expired 1)", or "" when nothing was dropped.
    static func reasons(_ counts: [String: Int]) -> String {
        let parts = counts.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
    }

    private func printSummary(_ summary: FleetSummary) {
        let t = summary.totals
        print("""
        summary after \(String(cFormat: "%.1f", summary.durationSeconds)) s:
          devices       \(t.devices) (\(t.connected) connected at the end)
          published     \(t.accepted)
          acknowledged  \(t.acknowledged)
          dropped       \(t.dropped)\(Self.reasons(t.droppedByReason))
        \(t.restored > 0 || t.kept > 0 ? "  restored      \(t.restored) (from the durable outbox)\n  kept          \(t.kept) (in the durable outbox, for the next run)\n" : "")\
          errors        \(t.errors) (\(t.connectAttempts) connection attempts)
        """)
        if summary.devices.count <= 20 {
            for d in summary.devices {
                let error = d.lastError.map { "  last error: \($0)" } ?? ""
                print("  \(Self.column(d.id, width: 24)) seq \(d.lastSeq)  acked \(d.acknowledged)  dropped \(d.dropped)\(error)")
            }
        }
    }
}

/// `--scenario FILE`, checked against the fleet; its problems are printed like the fleet's.
func loadScenario(_ path: String, fleet: FleetSpec, directory: String) throws -> ScenarioSpec {
    do {
        return try ScenarioParser.load(path: path, fleet: fleet)
    } catch {
        printError("\(path): the scenario is not valid (\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")):")
        for issue in error.issues { printError("  ✗ \(issue)") }
        throw ExitCode(1)
    }
}

/// Each device holds up to three descriptors (its socket and libmosquitto's socketpair): take the
/// whole hard limit, not the soft default.
func raiseDescriptorLimit() {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(resource, &limit)
}

/// `--metrics-listen`'s ADDR:PORT, checked before anything runs.
func checkMetricsListen(_ text: String) throws {
    do { _ = try MetricsListenAddress(parsing: text) } catch { throw ValidationError(error.description) }
}

/// "HOST:PORT" or "[IPv6]:PORT".
func parseBroker(_ text: String) throws -> (String, Int) {
    let fail = ValidationError("--broker \(text): expected HOST:PORT, e.g. localhost:8883")
    guard let colon = text.lastIndex(of: ":") else { throw fail }
    var host = String(text[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { throw fail }
    return (host, port)
}
