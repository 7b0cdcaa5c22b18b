import DequeModule
import Synchronization

/// A fleet-wide cap on connections being set up at once (TCP + TLS + CONNACK). mosquitto's
/// listen backlog holds about 100 pending connects; past that the kernel drops SYNs and the
/// handshakes that do start time out, so a storm feeds itself. The rate limiter spaces attempts;
/// this keeps their number in flight below the backlog when the broker is slow to answer.
/// Waiters are woken first come, first served, each by its own callback (no polling).
public final class ConnectGate: Sendable {
    public let limit: Int
    private struct State {
        var inFlight = 0
        var waiters: Deque<@Sendable () -> Void> = []
    }
    private let state = Mutex(State())

    public init(limit: Int = 64) { self.limit = max(1, limit) }

    /// Takes a place now (true), or queues `wake`, which runs once a place is taken for it.
    public func enter(orWhenFree wake: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            if state.inFlight < limit && state.waiters.isEmpty {
                state.inFlight += 1
                return true
            }
            state.waiters.append(wake)
            return false
        }
    }

    /// Takes a place now, or fails.
    public func tryEnter() -> Bool {
        state.withLock { state in
            guard state.inFlight < limit && state.waiters.isEmpty else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Gives a place back; the longest waiter, if any, gets it.
    public func leave() {
        let next = state.withLock { state -> (@Sendable () -> Void)? in
            guard let wake = state.waiters.popFirst() else {
                state.inFlight -= 1
                return nil
            }
            return wake  // the place passes to it: inFlight unchanged
        }
        next?()
    }

    public var current: Int { state.withLock { $0.inFlight } }
    public var waiting: Int { state.withLock { $0.waiters.count } }
}
