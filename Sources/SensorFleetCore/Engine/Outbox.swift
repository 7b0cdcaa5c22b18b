import DequeModule
import MosquittoKit

/// What a full outbox does with one more message.
public enum OutboxFullPolicy: String, Sendable, Equatable, Codable, CaseIterable {
    /// Evict the oldest queued messages (counted as dropped, reason `overflow`) to make room.
    case dropOldest = "drop_oldest"
    /// Keep what is queued and refuse the new message (counted as dropped, reason `refused`).
    case refuseNewest = "refuse_newest"
}

/// Bounds and timers of each device's outbox. Loaded from fleet.yaml (`outbox:`).
public struct OutboxSpec: Sendable, Equatable {
    /// Messages a device may hold that libmosquitto does not hold yet.
    public var maxMessages: Int
    /// Payload bytes a device may hold (same scope as `maxMessages`).
    public var maxBytes: Int
    public var whenFull: OutboxFullPolicy
    /// Seconds a message may wait in the outbox before it is dropped as expired; nil: for ever.
    public var ttl: Double?
    /// Seconds a QoS 1 message may wait for its PUBACK on a live connection; past that the
    /// connection is taken for dead and aborted (libmosquitto re-sends after the reconnect).
    /// nil: the broker keep-alive.
    public var ackTimeout: Double?
    /// Messages per second per device that a durable backlog left by an earlier run is sent at.
    public var backlogRate: Double

    public init(
        maxMessages: Int = 1000, maxBytes: Int = 1 << 20, whenFull: OutboxFullPolicy = .dropOldest,
        ttl: Double? = nil, ackTimeout: Double? = nil, backlogRate: Double = 100
    ) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.whenFull = whenFull
        self.ttl = ttl
        self.ackTimeout = ackTimeout
        self.backlogRate = backlogRate
    }
}

/// Why an accepted message was not delivered.
public enum DropReason: String, Sendable, CaseIterable, Codable {
    /// Evicted by a newer message from a full outbox (`drop_oldest`).
    case overflow
    /// Refused by a full outbox (`refuse_newest`).
    case refused
    /// Waited longer than the outbox TTL.
    case expired
    /// The broker answered PUBACK with a failure reason code (MQTT 5), e.g. not authorised.
    case brokerRefused = "broker_refused"
    /// QoS 0 handed to libmosquitto and lost with the connection.
    case connectionLost = "connection_lost"
    /// Still queued when the run ended (and not kept in a durable outbox).
    case unsent
}

/// Messages waiting for the broker, oldest first, bounded by count and bytes.
struct Outbox {
    struct Entry {
        var seq: UInt64
        var payload: [UInt8]
        /// When it was accepted (for the TTL).
        var enqueuedAt: MonotonicInstant
    }

    enum Admission {
        /// Queued; `evicted` were pushed out to make room (oldest first).
        case accepted(evicted: [Entry])
        /// Not queued: the outbox is full and the policy is `refuse_newest`, or the message alone
        /// is larger than `maxBytes`.
        case refused
    }

    private var storage: Deque<Entry> = []
    let spec: OutboxSpec
    private(set) var bytes = 0

    init(spec: OutboxSpec) {
        var spec = spec
        spec.maxMessages = max(1, spec.maxMessages)
        spec.maxBytes = max(1, spec.maxBytes)
        self.spec = spec
    }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }
    var first: Entry? { storage.first }

    mutating func append(_ entry: Entry) -> Admission {
        let size = entry.payload.count
        guard size <= spec.maxBytes else { return .refused }
        var evicted: [Entry] = []
        while count >= spec.maxMessages || bytes + size > spec.maxBytes {
            guard spec.whenFull == .dropOldest, let old = removeFirst() else { return .refused }
            evicted.append(old)
        }
        storage.append(entry)
        bytes += size
        return .accepted(evicted: evicted)
    }

    /// Removes, oldest first, the entries older than the TTL.
    mutating func expire(now: MonotonicInstant) -> [Entry] {
        guard let ttl = spec.ttl, let oldest = first else { return [] }
        let limit = Duration.saturating(seconds: ttl)
        guard now.duration(since: oldest.enqueuedAt) > limit else { return [] }
        var expired: [Entry] = []
        while let entry = first, now.duration(since: entry.enqueuedAt) > limit {
            expired.append(entry)
            removeFirst()
        }
        return expired
    }

    @discardableResult
    mutating func removeFirst() -> Entry? {
        guard let entry = storage.popFirst() else { return nil }
        bytes -= entry.payload.count
        return entry
    }

    /// Empties the outbox and returns what it held, oldest first.
    mutating func removeAll() -> [Entry] {
        let all = Array(storage)
        storage.removeAll()
        bytes = 0
        return all
    }
}

/// A QoS 1 message handed to libmosquitto and not yet acknowledged.
struct InflightEntry {
    var seq: UInt64
    /// When it was handed over, or when the connection that re-sends it came up.
    var sentAt: MonotonicInstant
}
