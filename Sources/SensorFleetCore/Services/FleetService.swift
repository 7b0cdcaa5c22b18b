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

    /// - Parameters:
    ///   - fleet: a fleet that has not been started.
    ///   - drainTimeout: seconds to wait at the end for queued messages to be acknowledged.
    ///   - disconnectTimeout: seconds to wait for the broker to close the connections.
    ///   - onStarted: called once every device has been started.
    ///   - onStopping: called when the graceful stop begins, with the messages not yet
    ///     acknowledged (accepted or restored, neither acknowledged nor dropped).
    public init(
        fleet: Fleet, drainTimeout: Double, disconnectTimeout: Double = 3,
        onStarted: @escaping @Sendable () async -> Void = {},
        onStopping: @escaping @Sendable (_ unacknowledged: Int) async -> Void = { _ in }
    ) {
        self.fleet = fleet
        self.drainTimeout = drainTimeout
        self.disconnectTimeout = disconnectTimeout
        self.onStarted = onStarted
        self.onStopping = onStopping
    }

    /// What the fleet did; nil until `run()` has returned.
    public var summary: FleetSummary? { result.withLock { $0 } }

    public func run() async {
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
