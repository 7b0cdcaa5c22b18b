import Logging
import ServiceLifecycle
import Synchronization

/// A ``Fleet`` as a service: starts every device, runs until graceful shutdown, then stops the
/// fleet gracefully (no new readings, a bounded wait for acknowledgements, retained `offline`,
/// DISCONNECT) and keeps the summary for whoever reports it.
///
/// When the task is cancelled instead (another service failed), the fleet is stopped without
/// waiting.
public final class FleetService: Service, CustomStringConvertible {
    public let fleet: Fleet
    public let drainTimeout: Double
    public let disconnectTimeout: Double
    private let onStarted: @Sendable () async -> Void
    private let onStopping: @Sendable (_ unacknowledged: Int) async -> Void
    private let result = Mutex<FleetSummary?>(nil)
    public let startAt: StartTime?
    private let logger: Logger?
    private let late = Mutex<Double?>(nil)

    /// - Parameters:
    ///   - fleet: a fleet that has not been started.
    ///   - drainTimeout: seconds to wait at the end for queued messages to be acknowledged.
    ///   - disconnectTimeout: seconds to wait for the broker to close the connections.
    ///   - startAt: wait for this time before starting the devices (SIGTERM ends the wait and
    ///     the run: ``stoppedBeforeStart``); when it has passed, start at once and log how late.
    ///   - logger: where a late start is told.
    ///   - onStarted: called once every device has been started.
    ///   - onStopping: called when the graceful stop begins, with the messages not yet
    ///     acknowledged (accepted or restored, neither acknowledged nor dropped).
    public init(
        fleet: Fleet, drainTimeout: Double, disconnectTimeout: Double = 3, startAt: StartTime? = nil, logger: Logger? = nil,
        onStarted: @escaping @Sendable () async -> Void = {},
        onStopping: @escaping @Sendable (_ unacknowledged: Int) async -> Void = { _ in }
    ) {
        self.fleet = fleet
        self.drainTimeout = drainTimeout
        self.disconnectTimeout = disconnectTimeout
        self.onStarted = onStarted
        self.onStopping = onStopping
        self.startAt = startAt
        self.logger = logger
    }

    /// Seconds the start came after `startAt` (0: on time); nil without `startAt` or before it.
    public var startLate: Double? { late.withLock { $0.flatMap { $0 < 0 ? nil : $0 } } }

    /// True when graceful shutdown came during the wait for `startAt`: the fleet never started.
    public var stoppedBeforeStart: Bool { late.withLock { $0 == -1 } }

    /// What the fleet did; nil until `run()` has returned.
    public var summary: FleetSummary? { result.withLock { $0 } }

    public func run() async {
        if let startAt {
            do {
                let seconds = try await startAt.wait()
                late.withLock { $0 = seconds }
                if seconds > 0 {
                    logger?.warning("started \((seconds * 1000).rounded() / 1000) s after --start-at: ramping up at once")
                }
            } catch {
                // Told to stop before the start time: nothing ran, nothing to stop (the reactors
                // never started); `summary` stays nil and `stoppedBeforeStart` says why.
                late.withLock { $0 = -1 }
                return
            }
        }
        await fleet.start()
        await onStarted()
        do {
            try await gracefulShutdown()
        } catch {
            // Cancelled: nobody waits for a drain.
            let summary = await fleet.stop(drainTimeout: 0, disconnectTimeout: 0)
            result.withLock { $0 = summary }
            return
        }
        let now = fleet.counters.snapshot()
        await onStopping(now.accepted + now.restored - now.acknowledged - now.dropped)
        let summary = await fleet.stop(drainTimeout: drainTimeout, disconnectTimeout: disconnectTimeout)
        result.withLock { $0 = summary }
    }

    public var description: String { "FleetService" }
}
