import ArgumentParser
import Foundation
import Logging
import SensorFleetCore
import Synchronization

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

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        do {
            try OptionRanges.agent.check("--watch-interval", watchInterval)
            try OptionRanges.agent.check("--drain-timeout", drainTimeout)
        } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        let logger = try logging.bootstrap()
        let notifier = SystemdNotifier()
        let earlyStop = StopRequest(signals: [SIGINT, SIGTERM])
        let hangups = SignalStream(SIGHUP)

        // A Pi boots at 1970 (or at its last shutdown) until NTP answers: certificate checks
        // would fail for the wrong reason. Wait for a sane clock, telling systemd we are alive.
        if !CertificateClock.isSane() {
            logger.warning("the clock says \(Date()), before \(CertificateClock.saneYear): waiting for time synchronisation before checking certificates")
            notifier.notify("READY=1\nSTATUS=waiting for a synchronised clock")
            if let stop = await waitForClock(notifier: notifier, stop: earlyStop, until: { CertificateClock.isSane() }) {
                print("stopping (\(stop)) before the clock was set")
                return
            }
            logger.notice("clock synchronised: \(Date())")
        }

        var keyFile = key
        if keyFile == nil, let credentials = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"],
           FileManager.default.fileExists(atPath: "\(credentials)/key.pem") {
            keyFile = "\(credentials)/key.pem"
        }
        var loaded: LoadedFleet?
        while loaded == nil {
            do {
                loaded = try AgentLoader.load(deviceDirectory: deviceDirectory, fleetDirectory: fleet, keyFile: keyFile)
            } catch where CertificateClock.onlyClockBehind(error) {
                // The clock is sane but behind the certificate's start: wait for NTP, not for a restart loop.
                for issue in error.issues { logger.warning("\(issue)") }
                logger.warning("waiting for the clock to reach the certificates' start of validity")
                notifier.notify("READY=1\nSTATUS=waiting for the clock (certificate not valid yet)")
                let retryAt = Date().addingTimeInterval(30)
                if let stop = await waitForClock(notifier: notifier, stop: earlyStop, until: { Date() >= retryAt }) {
                    print("stopping (\(stop)) while waiting for the clock")
                    return
                }
            } catch {
                printError("\(deviceDirectory): the device cannot run (\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")):")
                for issue in error.issues { printError("  ✗ \(issue)") }
                throw ExitCode(1)
            }
        }
        guard let loaded else { throw ExitCode(1) }
        for warning in loaded.warnings { logger.warning("\(warning)") }
        guard let device = loaded.spec.devices.first else { throw ExitCode(1) }

        let runner: Fleet
        do {
            var options = RunOptions(reactorThreads: 1)
            options.stateDirectory = stateDir ?? ProcessInfo.processInfo.environment["STATE_DIRECTORY"].flatMap {
                // systemd may list several folders, separated by ':'.
                $0.split(separator: ":").first.map(String.init)
            }
            if options.stateDirectory == nil {
                logger.warning("no --state-dir and no $STATE_DIRECTORY: readings are kept in memory only and lost on a crash")
            }
            if let stateDirectory = options.stateDirectory {
                try StateDirectory.claimForAgent(stateDirectory, reset: resetState, logger: logger)?.reportReset(logger)
            }
            runner = try Fleet(spec: loaded.spec, options: options, logger: logger)
        } catch {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        await runner.start()
        print("sensorfleet agent: device \(device.id) (\(device.sensors.count) sensor\(device.sensors.count == 1 ? "" : "s"), every \(device.interval) s) → \(loaded.spec.broker.host):\(loaded.spec.broker.port) (TLS, MQTT \(loaded.spec.broker.protocolVersion.rawValue))")
        if let interval = notifier.watchdogInterval {
            // From the reactor's own timer: a stuck event loop stops the pings and systemd restarts us.
            runner.onEveryReactor(every: interval) { notifier.notify("WATCHDOG=1") }
        }
        notifier.notify("READY=1\nSTATUS=running device \(device.id)")

        let watch = FileChangeWatch(paths: [device.certFile, device.keyFile])
        let stopReason = await withTaskGroup(of: String.self) { group -> String in
            group.addTask { await earlyStop.wait() }
            group.addTask {
                for await _ in hangups.stream {
                    logger.notice("SIGHUP: reloading the certificate and key")
                    await reload(runner, logger: logger, notifier: notifier, device: device)
                }
                return "signal stream ended"
            }
            group.addTask {
                var lastExpiryCheck = Date.distantPast
                while !Task.isCancelled {
                    if Date().timeIntervalSince(lastExpiryCheck) >= 86_400 {
                        lastExpiryCheck = Date()
                        if let warning = CertificateClock.expiryWarning(certFile: device.certFile) { logger.warning("\(warning)") }
                    }
                    try? await Task.sleep(for: .seconds(watchInterval))
                    if Task.isCancelled { break }
                    if watch.changed() {
                        logger.notice("the certificate or key file changed: reloading")
                        await reload(runner, logger: logger, notifier: notifier, device: device)
                    }
                }
                return "watch ended"
            }
            let first = await group.next() ?? "stopped"
            group.cancelAll()
            hangups.finish()
            return first
        }
        notifier.notify("STOPPING=1\nSTATUS=stopping (\(stopReason))")
        print("stopping (\(stopReason)): waiting up to \(Int(drainTimeout)) s for acknowledgements…")
        let summary = await runner.stop(drainTimeout: drainTimeout)
        let t = summary.totals
        print("summary after \(String(format: "%.1f", summary.durationSeconds)) s: published \(t.accepted), acknowledged \(t.acknowledged), dropped \(t.dropped), errors \(t.errors)")
    }

    private func reload(_ runner: Fleet, logger: Logger, notifier: SystemdNotifier, device: DeviceSpec) async {
        notifier.notify("RELOADING=1")
        let failures = await runner.reloadCredentials()
        if let failure = failures[device.id] {
            logger.error("the new certificate or key is unusable, keeping the previous one: \(failure)")
        } else {
            logger.notice("certificate and key reloaded; reconnecting")
            if let warning = CertificateClock.expiryWarning(certFile: device.certFile) { logger.warning("\(warning)") }
        }
        notifier.notify("READY=1")
    }

    /// Polls `until` every second (pinging the watchdog); returns the signal's name when asked
    /// to stop meanwhile.
    private func waitForClock(notifier: SystemdNotifier, stop: StopRequest, until: () -> Bool) async -> String? {
        while !until() {
            if let reason = stop.reason { return reason }
            if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
            try? await Task.sleep(for: .seconds(1))
        }
        return stop.reason
    }
}

/// SIGINT/SIGTERM for the whole run: remembered (for the waits before the main loop) and
/// awaitable once (the main loop). One dispatch source per signal: a second `signal(SIG_IGN)`
/// after libdispatch installed its handler would silence the signal.
final class StopRequest: @unchecked Sendable {
    private final class Slot: Sendable { let value = Mutex<String?>(nil) }
    private let slot = Slot()
    private let stream: AsyncStream<String>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let slot = self.slot
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.stream = stream
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let name = number == SIGINT ? "SIGINT" : "SIGTERM"
                slot.value.withLock { $0 = $0 ?? name }
                continuation.yield(name)
            }
            source.resume()
            return source
        }
    }

    var reason: String? { slot.value.withLock { $0 } }

    /// The first signal (also one received before the call). Call once.
    func wait() async -> String {
        for await name in stream { return name }
        return reason ?? "signal"
    }
}

/// Every delivery of one signal, as a stream (SIGHUP may come many times).
final class SignalStream: @unchecked Sendable {
    let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let source: any DispatchSourceSignal

    init(_ number: Int32) {
        (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        signal(number, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        let continuation = self.continuation
        source.setEventHandler { continuation.yield() }
        source.resume()
    }

    func finish() { continuation.finish() }
}
