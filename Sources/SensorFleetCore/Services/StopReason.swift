import ServiceLifecycle
import Synchronization
import UnixSignals

/// Why a run ends, in the words the command line prints ("SIGTERM", "duration reached"): the
/// first cause recorded wins.
public final class StopReason: Sendable {
    private let reason = Mutex<String?>(nil)

    public init() {}

    /// Records `text` unless a cause is already known.
    public func record(_ text: String) {
        reason.withLock { $0 = $0 ?? text }
    }

    /// The cause recorded so far.
    public var current: String? { reason.withLock { $0 } }

    /// The cause, waiting up to `timeout` for it: the service group and ``SignalReasonService``
    /// hear the same signal at the same moment, and the group may be a step ahead.
    /// - Parameter fallback: what to say when nothing was recorded in time.
    public func settled(within timeout: Duration = .seconds(1), fallback: String = "graceful shutdown") async -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let current { return current }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return current ?? fallback
    }
}

/// Names the signal that stopped the run: records SIGINT or SIGTERM in a ``StopReason`` while the
/// service group (which has them as its graceful-shutdown signals) shuts the services down.
///
/// List it first in the group: services stop in reverse order, so it is still listening while the
/// others shut down.
public struct SignalReasonService: Service, CustomStringConvertible {
    public let signals: [UnixSignal]
    public let reason: StopReason

    /// - Parameters:
    ///   - signals: the group's graceful-shutdown signals.
    ///   - reason: where the first one's name goes.
    public init(signals: [UnixSignal], reason: StopReason) {
        self.signals = signals
        self.reason = reason
    }

    public func run() async {
        for await signal in await UnixSignalsSequence(trapping: signals).cancelOnGracefulShutdown() {
            reason.record(signal.description)
        }
    }

    public var description: String { "SignalReasonService" }
}

/// Ends a run after a fixed time the way a signal does: records "duration reached" and returns,
/// and the group (configured with `successTerminationBehavior: .gracefullyShutdownGroup`) shuts
/// the other services down gracefully.
public struct DurationService: Service, CustomStringConvertible {
    public let duration: Duration
    public let reason: StopReason

    public init(_ duration: Duration, reason: StopReason) {
        self.duration = duration
        self.reason = reason
    }

    public func run() async {
        do {
            try await cancelWhenGracefulShutdown { [duration] in try await Task.sleep(for: duration) }
        } catch {
            return  // shut down or cancelled before the time was up
        }
        reason.record("duration reached")
    }

    public var description: String { "DurationService" }
}
