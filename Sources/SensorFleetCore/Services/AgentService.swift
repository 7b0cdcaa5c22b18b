#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What `sensorfleet agent` runs: one device folder, its fleet and where its state goes.
public struct AgentOptions: Sendable {
    /// The device folder (`device.yaml`, `cert.pem`, `key.pem`).
    public var deviceDirectory: String
    /// The folder with fleet.yaml; nil: the device folder's parent.
    public var fleetDirectory: String?
    /// The private key instead of device.yaml's `key:`.
    public var keyFile: String?
    /// Folder of the durable outbox; nil: memory only.
    public var stateDirectory: String?
    /// Seconds between two looks at the certificate and key files.
    public var watchInterval: Double = 10
    /// Seconds to wait at the end for queued messages to be acknowledged.
    public var drainTimeout: Double = 5
    /// Signals that reload the certificate and key.
    public var reloadSignals: [UnixSignal] = [.sighup]
    /// The metrics endpoint's view (`--metrics-listen`); turns the latency histograms on.
    public var metrics: FleetMetrics?

    /// - Parameters:
    ///   - deviceDirectory: the device folder.
    ///   - fleetDirectory: the folder with fleet.yaml (default: the device folder's parent).
    ///   - keyFile: the private key; default: `$CREDENTIALS_DIRECTORY/key.pem` when that file
    ///     exists (systemd's `LoadCredential`), else device.yaml's.
    ///   - stateDirectory: the durable outbox's folder; default: the first folder of
    ///     `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else none.
    ///   - environment: normally `ProcessInfo.processInfo.environment`.
    public init(deviceDirectory: String, fleetDirectory: String? = nil, keyFile: String? = nil,
                stateDirectory: String? = nil, environment: [String: String] = [:]) {
        self.deviceDirectory = deviceDirectory
        self.fleetDirectory = fleetDirectory
        self.keyFile = keyFile
        if keyFile == nil, let credentials = environment["CREDENTIALS_DIRECTORY"],
           FileManager.default.fileExists(atPath: "\(credentials)/key.pem") {
            self.keyFile = "\(credentials)/key.pem"
        }
        // systemd may list several folders, separated by ':'.
        self.stateDirectory = stateDirectory ?? environment["STATE_DIRECTORY"].flatMap {
            $0.split(separator: ":").first.map(String.init)
        }
    }
}

/// `sensorfleet agent` as a service: waits for a sane clock (a Pi without RTC boots in 1970),
/// loads its one device, then runs a ``FleetService`` and a ``CredentialWatchService`` in a
/// service group of their own until graceful shutdown. Tells systemd `READY=1`, `WATCHDOG=1`
/// (from the event loop), `RELOADING=1` and `STOPPING=1`.
///
/// Throws ``FleetValidationError`` when the device cannot run and ``FleetStartError`` when the
/// fleet cannot be made; returns normally after a graceful stop, with ``summary`` set when the
/// device had started.
public final class AgentService: Service, CustomStringConvertible {
    public let options: AgentOptions
    private let notifier: SystemdNotifier
    private let reason: StopReason
    private let logger: Logger
    private let say: @Sendable (String) -> Void
    private let result = Mutex<FleetSummary?>(nil)

    /// - Parameters:
    ///   - options: the device and its settings.
    ///   - notifier: systemd's notify socket (a no-op outside systemd).
    ///   - reason: why the run ends, for the `stopping (…)` line.
    ///   - logger: the agent's logger.
    ///   - say: prints a line for the user (standard output).
    public init(options: AgentOptions, notifier: SystemdNotifier, reason: StopReason, logger: Logger,
                say: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.notifier = notifier
        self.reason = reason
        self.logger = logger
        self.say = say
    }

    /// The fleet's summary after a graceful stop; nil when it stopped before the device started.
    public var summary: FleetSummary? { result.withLock { $0 } }

    public func run() async throws {
        // Trapped from the start: a SIGHUP while waiting for the clock must not end the agent.
        let reloads = await UnixSignalsSequence(trapping: options.reloadSignals)

        // A Pi boots at 1970 (or at its last shutdown) until NTP answers: certificate checks
        // would fail for the wrong reason. Wait for a sane clock, telling systemd we are alive.
        if !CertificateClock.isSane() {
            logger.warning("the clock says \(Date()), before \(CertificateClock.saneYear): waiting for time synchronisation before checking certificates")
            notifier.notify("READY=1\nSTATUS=waiting for a synchronised clock")
            guard await waitForClock(until: { CertificateClock.isSane() }) else {
                say("stopping (\(await reason.settled())) before the clock was set")
                return
            }
            logger.notice("clock synchronised: \(Date())")
        }

        var loaded: LoadedFleet?
        while loaded == nil {
            do {
                loaded = try AgentLoader.load(deviceDirectory: options.deviceDirectory, fleetDirectory: options.fleetDirectory,
                                              keyFile: options.keyFile)
            } catch {
                // The device cannot run (exit 1)…
                guard CertificateClock.onlyClockBehind(error) else { throw error }
                // …unless the clock is sane but behind the certificate's start: wait for NTP, not
                // for a restart loop.
                for issue in error.issues { logger.warning("\(issue)") }
                logger.warning("waiting for the clock to reach the certificates' start of validity")
                notifier.notify("READY=1\nSTATUS=waiting for the clock (certificate not valid yet)")
                let retryAt = Date().addingTimeInterval(30)
                guard await waitForClock(until: { Date() >= retryAt }) else {
                    say("stopping (\(await reason.settled())) while waiting for the clock")
                    return
                }
            }
        }
        guard let loaded, let device = loaded.spec.devices.first else {
            throw FleetStartError(description: "\(options.deviceDirectory): no device to run")
        }
        for warning in loaded.warnings { logger.warning("\(warning)") }
        if !loaded.spec.broker.tls && !loaded.spec.broker.allowPlaintext {
            // A device in the field over plain TCP is refused unless asked for twice.
            throw FleetStartError(description: "the fleet's broker.tls is false (plain TCP): the agent refuses to send this "
                + "device's readings unencrypted and to an unauthenticated broker; give the broker a TLS listener and remove "
                + "broker.tls, or, on a network you trust, set broker.allow_plaintext: true as well in fleet.yaml")
        }

        if options.stateDirectory == nil {
            logger.warning("no --state-dir and no $STATE_DIRECTORY: readings are kept in memory only and lost on a crash")
        }
        let fleet: Fleet
        do {
            var runOptions = RunOptions(reactorThreads: 1)
            runOptions.stateDirectory = options.stateDirectory
            // A Pi may boot before its network: start, keep the readings, look the name up again.
            runOptions.resolveBrokerLater = true
            runOptions.metrics = options.metrics
            runOptions.recordLatencies = options.metrics != nil
            fleet = try Fleet(spec: loaded.spec, options: runOptions, logger: logger)
        } catch let error as FleetStartError {
            throw error
        } catch {
            throw FleetStartError(description: "\(error)")
        }

        let broker = loaded.spec.broker
        let fleetService = FleetService(
            fleet: fleet, drainTimeout: options.drainTimeout,
            onStarted: { [notifier, say] in
                say("sensorfleet agent: device \(device.id) (\(device.sensors.count) sensor\(device.sensors.count == 1 ? "" : "s"), every \(device.interval) s) → \(broker.host):\(broker.port) (\(broker.tls ? "TLS" : "PLAIN TCP, UNENCRYPTED"), MQTT \(broker.protocolVersion.rawValue))")
                if let interval = notifier.watchdogInterval {
                    // From the reactor's own timer: a stuck event loop stops the pings and systemd restarts us.
                    fleet.onEveryReactor(every: interval) { notifier.notify("WATCHDOG=1") }
                }
                notifier.notify("READY=1\nSTATUS=running device \(device.id)")
            },
            onStopping: { [notifier, reason, say, options] _ in
                let why = await reason.settled()
                notifier.notify("STOPPING=1\nSTATUS=stopping (\(why))")
                say("stopping (\(why)): waiting up to \(Int(options.drainTimeout)) s for acknowledgements…")
            })
        let watch = CredentialWatchService(
            fleet: fleet, device: device, watchInterval: options.watchInterval, hangups: reloads,
            notifier: notifier, logger: logger)
        // Graceful shutdown of this service reaches the inner group: the watch stops first, then
        // the fleet drains.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [
            .init(service: fleetService), .init(service: watch),
        ], logger: logger))
        try await group.run()
        result.withLock { $0 = fleetService.summary }
    }

    /// Polls `until` every second (pinging the watchdog); false when graceful shutdown (or
    /// cancellation) came first.
    private func waitForClock(until: () -> Bool) async -> Bool {
        while !until() {
            if Task.isShuttingDownGracefully || Task.isCancelled { return false }
            if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                return false
            }
        }
        return true
    }

    public var description: String { "AgentService" }
}
