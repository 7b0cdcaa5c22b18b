import DequeModule
import Logging
import MosquittoKit
import Synchronization

/// Where `Delivery` hands messages over: the device's MQTT client (or, in unit tests, any
/// connection that can publish). Reactor thread only.
protocol DeliveryTransport: AnyObject {
    var isConnected: Bool { get }
    /// - Parameters:
    ///   - properties: MQTT 5 properties of every telemetry message (nil: none).
    ///   - topicAlias: send the topic as alias 1 after the first message of a connection (QoS 0).
    func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool,
                 properties: MQTTPublishProperties?, topicAlias: Bool) -> Result<Int32, MosquittoError>
    /// Closes the connection without DISCONNECT.
    func abort()
}

extension MQTTClient: DeliveryTransport {}

/// Finishes a queued payload as it is handed to a connection, with what depends on that
/// connection (Sparkplug B's seq, 0–255 per MQTT session). Reactor thread only.
protocol PayloadStamp: AnyObject {
    /// The bytes to send for `payload`, into `buffer`.
    func stamp(_ payload: [UInt8], into buffer: inout [UInt8])
    /// The stamped message was handed over.
    func stamped()
}

/// The session side of a device — what must survive a reconnect, kept apart from the connection
/// as mqtt-nio keeps its `MQTTSession`: the outbox, the backlog an earlier run left (and its
/// token bucket), the in-flight map, the durable outbox's writes, the PUBACK watchdog and the
/// accounting of every message accepted: acknowledged, dropped (by reason), or still pending.
/// Reactor-confined; every call is synchronous.
final class Delivery {
    let deviceID: String
    let topic: String
    let qos: Int
    /// MQTT 5 properties of every telemetry message, built once; nil: none.
    var properties: MQTTPublishProperties?
    /// Topic alias for telemetry (QoS 0 only, see `TelemetryProperties.topicAlias`).
    var topicAlias = false
    /// Finishes each payload as it goes out (Sparkplug B); nil: sent as queued.
    var stamp: PayloadStamp?
    private var stampBuffer: [UInt8] = []
    private let spec: OutboxSpec
    private let window: Int
    /// How long a PUBACK may be overdue on a live connection.
    let ackTimeout: Duration
    private let reactor: Reactor
    private let counters: FleetCounters
    private let logger: Logger

    /// The connection messages go out on, while there is one.
    weak var transport: DeliveryTransport?
    /// This reactor's writer into the durable outbox (`run --state-dir`); nil: memory only.
    var durable: DurableOutboxWriter?
    /// The broker's Receive Maximum from its CONNACK (MQTT 5): QoS 1/2 messages it accepts in
    /// flight. libmosquitto holds back what exceeds it; we do not hand that much over at all, so
    /// the PUBACK watchdog never runs for a message still waiting in libmosquitto.
    var brokerReceiveMaximum: Int?
    /// The in-flight window in force: ours, lowered to the broker's Receive Maximum at QoS 1/2.
    var effectiveWindow: Int {
        guard qos > 0, let brokerReceiveMaximum, brokerReceiveMaximum > 0 else { return window }
        return min(window, brokerReceiveMaximum)
    }
    /// Hand nothing more over (the connection is being renewed with a reloaded certificate).
    var isHeld = false
    /// Asked for a reading when the window has room and nothing is queued (unpaced load);
    /// returns false when it made none.
    var readingOnDemand: () -> Bool = { false }

    private var outbox: Outbox
    /// Messages an earlier run left unacknowledged, oldest first; sent before and alongside
    /// live data at `spec.backlogRate`.
    private var backlog: Deque<Outbox.Entry> = []
    private var backlogTokens = 1.0
    private var backlogRefilledAt = MonotonicInstant.zero
    private var backlogTimer: ReactorTimer?
    /// libmosquitto message id → the message handed over and not yet acknowledged.
    private var inflight: [Int32: InflightEntry] = [:]
    private var ackTimer: ReactorTimer?

    private(set) var accepted = 0
    private(set) var acknowledged = 0
    private(set) var dropped = 0
    private(set) var dropCounts: [DropReason: Int] = [:]
    private(set) var restored = 0
    /// Left in the durable outbox at the end, for the next run.
    private(set) var kept = 0

    init(
        deviceID: String, topic: String, qos: Int, outbox spec: OutboxSpec, window: Int,
        ackTimeout: Duration, reactor: Reactor, counters: FleetCounters, logger: Logger
    ) {
        self.deviceID = deviceID
        self.topic = topic
        self.qos = qos
        self.spec = spec
        self.window = qos == 0 ? 64 : max(1, window)
        self.ackTimeout = ackTimeout
        self.reactor = reactor
        self.counters = counters
        self.logger = logger
        outbox = Outbox(spec: spec)
    }

    var queued: Int { outbox.count + backlog.count }
    var inflightCount: Int { inflight.count }
    var pending: Int { outbox.count + inflight.count + backlog.count }

    /// Takes over what an earlier run left (before the device starts).
    func restore(_ entries: [(seq: UInt64, payload: [UInt8])], now: MonotonicInstant) {
        backlog = Deque(entries.map { Outbox.Entry(seq: $0.seq, payload: $0.payload, enqueuedAt: now) })
        restored = backlog.count
        counters.restored.add(backlog.count, ordering: .relaxed)
    }

    // MARK: Accepting

    /// Accepts a message for publishing: into the outbox (and the durable outbox), or counted
    /// as dropped when a full outbox refuses it.
    func enqueue(_ entry: Outbox.Entry) {
        switch outbox.append(entry) {
        case .accepted(let evicted):
            if let durable {
                // Accepted once it is on disk (the reactor's batch commits after this turn).
                durable.insert(device: deviceID, seq: entry.seq, payload: entry.payload) { [unowned self] onDisk in
                    if !onDisk { self.counters.notDurable.add(1, ordering: .relaxed) }
                    self.countAccepted()
                }
            } else {
                countAccepted()
            }
            forget(evicted)
            drop(.overflow, count: evicted.count)
        case .refused:
            countAccepted()
            drop(.refused)
        }
    }

    private func countAccepted() {
        accepted += 1
        counters.accepted.add(1, ordering: .relaxed)
    }

    /// Drops what waited in the outbox longer than its TTL.
    func expire(now: MonotonicInstant) {
        let expired = outbox.expire(now: now)
        forget(expired)
        drop(.expired, count: expired.count)
    }

    func drop(_ reason: DropReason, count: Int = 1) {
        guard count > 0 else { return }
        dropped += count
        dropCounts[reason, default: 0] += count
        counters.drop(reason, count: count)
    }

    /// Removes settled messages (acknowledged or dropped) from the durable outbox.
    private func forget(_ entries: [Outbox.Entry]) {
        guard let durable else { return }
        for entry in entries { durable.delete(device: deviceID, seq: entry.seq) }
    }

    // MARK: Handing over

    /// The backlog's token bucket: `backlogRate` per second, bursts of up to one second's worth.
    private func backlogAllowance(now: MonotonicInstant) -> Bool {
        let rate = spec.backlogRate
        let elapsed = now.seconds(since: backlogRefilledAt)
        backlogRefilledAt = now
        backlogTokens = min(max(1, rate), backlogTokens + elapsed * rate)
        return backlogTokens >= 1
    }

    /// Hands queued messages to the connection while it is up, keeping at most the in-flight
    /// window there: libmosquitto's own queue has no bound, and what it already holds it re-sends
    /// itself after a reconnect, so a message is never published twice.
    func pump() {
        guard let transport, transport.isConnected, !isHeld else { return }
        let now = MonotonicInstant.now()
        let window = effectiveWindow
        while inflight.count < window {
            if outbox.isEmpty && backlog.isEmpty { _ = readingOnDemand() }
            // The backlog of an earlier run first (it is older), at its own rate; live data alongside.
            let fromBacklog = !backlog.isEmpty && backlogAllowance(now: now)
            let entry: Outbox.Entry
            if fromBacklog {
                entry = backlog[0]
            } else if let first = outbox.first {
                entry = first
            } else {
                if !backlog.isEmpty, backlogTimer?.isCancelled ?? true {
                    backlogTimer = reactor.schedule(after: .saturating(seconds: 1 / spec.backlogRate)) { [unowned self] in
                        self.backlogTimer = nil
                        self.pump()
                    }
                }
                return
            }
            if let stamp { stamp.stamp(entry.payload, into: &stampBuffer) }
            let result = (stamp == nil ? entry.payload : stampBuffer).withUnsafeBytes { raw in
                transport.publish(topic: topic, payload: raw, qos: qos, retain: false,
                                  properties: properties, topicAlias: topicAlias && qos == 0)
            }
            switch result {
            case .success(let mid):
                stamp?.stamped()
                if fromBacklog {
                    backlog.removeFirst()
                    backlogTokens -= 1
                } else {
                    outbox.removeFirst()
                }
                inflight[mid] = InflightEntry(seq: entry.seq, sentAt: now)
                if qos > 0 { armAckTimer() }
            case .failure(let error):
                // Not connected after all (the close is on its way) or refused locally: keep the
                // message for the next connection.
                logger.debug("publish deferred", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// PUBACK (QoS 1), PUBCOMP (QoS 2: libmosquitto reports a QoS 2 message once, when its
    /// PUBCOMP arrives, or at a PUBREC with a refusal), or written out (QoS 0). Returns the
    /// broker's refusal in words, if any.
    func didComplete(messageID: Int32, reasonCode: Int) -> String? {
        guard let done = inflight.removeValue(forKey: messageID) else { return nil }
        counters.publishLatency?.record(nanos: MonotonicInstant.now().nanoseconds(since: done.sentAt))
        durable?.delete(device: deviceID, seq: done.seq)
        if reasonCode >= 0x80 {
            drop(.brokerRefused)
            return "broker refused a publish on \(topic): \(MQTTReasonCode.describe(reasonCode))"
        }
        acknowledged += 1
        counters.acknowledged.add(1, ordering: .relaxed)
        return nil
    }

    /// A connection came up: libmosquitto re-sends what it holds, so their PUBACK clocks start now.
    func connectionUp() {
        let now = MonotonicInstant.now()
        for mid in inflight.keys { inflight[mid]!.sentAt = now }
        if qos > 0 && !inflight.isEmpty {
            ackTimer?.cancel()
            ackTimer = nil
            armAckTimer()
        }
        pump()
    }

    /// The connection is gone: QoS 0 handed over but not yet written is gone with the socket.
    func connectionDown() {
        guard qos == 0, !inflight.isEmpty else { return }
        for entry in inflight.values { durable?.delete(device: deviceID, seq: entry.seq) }
        drop(.connectionLost, count: inflight.count)
        inflight.removeAll()
    }

    // MARK: PUBACK watchdog

    /// Wakes up when the oldest PUBACK falls due; one timer per device, armed only while
    /// something is in flight.
    private func armAckTimer() {
        guard ackTimer?.isCancelled ?? true else { return }
        guard let oldest = inflight.values.lazy.map(\.sentAt).min() else { return }
        ackTimer = reactor.schedule(at: oldest.advanced(by: ackTimeout)) { [unowned self] in
            self.ackTimer = nil
            self.checkAcknowledgements()
        }
    }

    /// A PUBACK overdue on a live connection means the connection is dead (a stalled socket that
    /// keeps TCP open, a broker that stopped answering): abort it, so the reconnect comes now and
    /// not after libmosquitto's keep-alive (up to 2 × keep-alive); libmosquitto re-sends what it
    /// holds after the reconnect.
    private func checkAcknowledgements() {
        guard let transport, transport.isConnected, let oldest = inflight.values.lazy.map(\.sentAt).min() else { return }
        if MonotonicInstant.now().duration(since: oldest) >= ackTimeout {
            counters.ackTimeouts.add(1, ordering: .relaxed)
            logger.warning("no PUBACK for \(inflight.count) message(s) within \(ackTimeout.seconds) s: taking the connection for dead and reconnecting")
            transport.abort()
        } else {
            armAckTimer()
        }
    }

    // MARK: The end

    /// Stops the timers; what never reached the broker is kept on disk (durable outbox) or
    /// counted as dropped (`unsent`).
    func finish() {
        let left = pending
        if let durable, durable.store.isDurable {
            kept += left
            counters.kept.add(left, ordering: .relaxed)
            durable.flush()
        } else {
            drop(.unsent, count: left)
        }
        backlog.removeAll()
        backlogTimer?.cancel()
        _ = outbox.removeAll()
        inflight.removeAll()
        ackTimer?.cancel()
    }
}
