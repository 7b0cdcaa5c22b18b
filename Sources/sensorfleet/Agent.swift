import ArgumentParser
import Foundation
import Logging
import SensorFleetCore
import ServiceLifecycle

struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one device for real (e.g. on a Raspberry Pi) until SIGINT/SIGTERM; made for systemd.",
        discussion: """
            DEVICE_DIR holds device.yaml, cert.pem and key.pem; the broker and CA come from the \
            fleet.yaml of its parent folder (or --fleet). Under systemd (Type=notify) it sends \
            READY=1 once started and WATCHDOG=1 from its event loop; the key may come from \
            LoadCredential ($CREDENTIALS_DIRECTORY/key.pem). SIGHUP, or a change of the \
            certificate or key files, reloads them and reconnects. Until the clock is set \
            (year < \(CertificateClock.saneYear), a Pi without RTC before NTP) it waits instead \
            of refusing certificates.
            """
    )

    @Argument(help: "The device folder.")
    var deviceDirectory: String = "."

    @Option(help: "The folder with fleet.yaml (default: the device folder's parent).")
    var fleet: String?

    @Option(help: "Private key file (default: $CREDENTIALS_DIRECTORY/key.pem when set, else device.yaml's key).")
    var key: String?

    @Option(help: "Folder of the durable outbox (SQLite): readings survive a crash, a reboot or an outage. Default: $STATE_DIRECTORY (systemd's StateDirectory=); without either, memory only.")
    var stateDir: String?

    @Flag(help: "Move a damaged or emptied outbox in the state folder aside and start afresh (sequence numbers restart at 1).")
    var resetState = false

    @Option(help: "Seconds between checks of the certificate and key files for changes.")
    var watchInterval: Double = 10

    @Option(help: "Seconds to wait at the end for queued messages to be acknowledged.")
    var drainTimeout: Double = 5

    @Option(help: ArgumentHelp("Serve Prometheus metrics (GET /metrics) and readiness (GET /healthz) on this address, e.g. 127.0.0.1:9464.", valueName: "addr:port"))
    var metricsListen: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        do {
            try OptionRanges.agent.check("--watch-interval", watchInterval)
            try OptionRanges.agent.check("--drain-timeout", drainTimeout)
        } catch { throw ValidationError("\(error)") }
        if let metricsListen { try checkMetricsListen(metricsListen) }
    }

    func run() async throws {
        let logger = try logging.bootstrap()
        var options = AgentOptions(deviceDirectory: deviceDirectory, fleetDirectory: fleet, keyFile: key,
                                   stateDirectory: stateDir, environment: ProcessInfo.processInfo.environment)
        options.watchInterval = watchInterval
        options.drainTimeout = drainTimeout
        let metrics: MetricsService?
        do { metrics = try metricsListen.map { try MetricsService.open(listen: $0) } } catch {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        options.metrics = metrics?.metrics
        let reason = StopReason()
        let agent = AgentService(options: options, notifier: SystemdNotifier(), reason: reason, logger: logger) { line in
            print(line)
        }
        do {
            // One process per state folder, before anything runs (the lock lives as long as we do).
            if let stateDirectory = options.stateDirectory {
                try StateDirectory.claimForAgent(stateDirectory, reset: resetState, logger: logger)?.reportReset(logger)
            }
            try await runServices((metrics.map { [.init(service: $0)] } ?? []) + [
                .init(service: SignalReasonService(signals: stopSignals, reason: reason)),
                .init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup),
            ], logger: logger)
        } catch let error as FleetValidationError {
            printError("\(deviceDirectory): the device cannot run (\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")):")
            for issue in error.issues { printError("  ✗ \(issue)") }
            throw ExitCode(1)
        } catch let error as FleetStartError {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        } catch let error as StateDirectoryError {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        // Stopped before the device started (e.g. while waiting for the clock): nothing to sum up.
        guard let summary = agent.summary else { return }
        let t = summary.totals
        print("summary after \(String(format: "%.1f", summary.durationSeconds)) s: published \(t.accepted), acknowledged \(t.acknowledged), dropped \(t.dropped), errors \(t.errors)")
    }
}
