#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle

/// Reloads a running device's certificate and key when asked (SIGHUP, through `hangups`) or when
/// the files change (checked every `watchInterval` seconds), and warns once a day when the
/// certificate is close to expiry. Runs until graceful shutdown.
///
/// A reload tells systemd (`RELOADING=1`, then `READY=1`); new files that are unusable are
/// logged and the previous identity is kept.
public struct CredentialWatchService<Hangups: AsyncSequence & Sendable>: Service, CustomStringConvertible
where Hangups.Element: Sendable {
    public let fleet: Fleet
    public let device: DeviceSpec
    public let watchInterval: Double
    public let hangups: Hangups
    public let notifier: SystemdNotifier
    public let logger: Logger

    /// - Parameters:
    ///   - fleet: the running fleet whose devices are reloaded.
    ///   - device: the device whose `certFile` and `keyFile` are watched.
    ///   - watchInterval: seconds between two looks at the files.
    ///   - hangups: one element per reload request, e.g. `UnixSignalsSequence(trapping: .sighup)`.
    ///   - notifier: systemd's notify socket (a no-op outside systemd).
    ///   - logger: where reloads and failures are told.
    public init(fleet: Fleet, device: DeviceSpec, watchInterval: Double, hangups: Hangups,
                notifier: SystemdNotifier, logger: Logger) {
        self.fleet = fleet
        self.device = device
        self.watchInterval = watchInterval
        self.hangups = hangups
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                do {
                    for try await _ in hangups.cancelOnGracefulShutdown() {
                        logger.notice("SIGHUP: reloading the certificate and key")
                        await reload()
                    }
                } catch {
                    // The request sequence failed or was cancelled: the file watch goes on.
                }
            }
            group.addTask { await watchFiles() }
        }
    }

    private func watchFiles() async {
        let watch = FileChangeWatch(paths: [device.certFile, device.keyFile])
        var lastExpiryCheck = Date.distantPast
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if Date().timeIntervalSince(lastExpiryCheck) >= 86_400 {
                lastExpiryCheck = Date()
                if let warning = CertificateClock.expiryWarning(certFile: device.certFile) { logger.warning("\(warning)") }
            }
            do {
                try await cancelWhenGracefulShutdown { [watchInterval] in try await Task.sleep(for: .seconds(watchInterval)) }
            } catch {
                return
            }
            if watch.changed() {
                logger.notice("the certificate or key file changed: reloading")
                await reload()
            }
        }
    }

    /// Re-reads the files; keeps the previous identity when the new one is unusable.
    public func reload() async {
        notifier.notify("RELOADING=1")
        let failures = await fleet.reloadCredentials()
        if let failure = failures[device.id] {
            logger.error("the new certificate or key is unusable, keeping the previous one: \(failure)")
        } else {
            logger.notice("certificate and key reloaded; reconnecting")
            if let warning = CertificateClock.expiryWarning(certFile: device.certFile) { logger.warning("\(warning)") }
        }
        notifier.notify("READY=1")
    }

    public var description: String { "CredentialWatchService" }
}
