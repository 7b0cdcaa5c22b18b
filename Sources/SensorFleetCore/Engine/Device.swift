import Foundation
import Logging
import MosquittoKit

/// What every device of a fleet shares: where to connect, the trust store, limits and counters.
final class FleetContext: Sendable {
    let broker: BrokerSpec
    /// The broker's address as resolved once at start (DNS never runs on a reactor thread).
    let connectHost: String
    let trust: TrustStore
    let tlsSettings: TLSSettings
    let limiter: ConnectRateLimiter
    let gate: ConnectGate
    let backoff: BackoffPolicy
    let counters: FleetCounters
    let logger: Logger
    let seed: UInt64
    let outbox: OutboxSpec
    let maxInflight: Int
    let connectTimeout: Double
    let load: LoadProfile?

    /// Counts a message accepted while the durable outbox could not write (memory only).
    func journalFallbacks() {
        counters.notDurable.add(1, ordering: .relaxed)
    }

    init(
        broker: BrokerSpec, connectHost: String, trust: TrustStore, tlsSettings: TLSSettings,
        limiter: ConnectRateLimiter, gate: ConnectGate, backoff: BackoffPolicy, counters: FleetCounters, logger: Logger,
        seed: UInt64, outbox: OutboxSpec, maxInflight: Int, connectTimeout: Double, load: LoadProfile? = nil
    ) {
        self.load = load
        self.broker = broker
        self.connectHost = connectHost
        self.trust = trust
        self.tlsSettings = tlsSettings
        self.limiter = limiter
        self.gate = gate
        self.backoff = backoff
        self.counters = counters
        self.logger = logger
        self.seed = seed
        self.outbox = outbox
        self.maxInflight = maxInflight
        self.connectTimeout = connectTimeout
    }
}

/// A device's figures at one moment.
public struct DeviceSnapshot: Sendable, Equatable, Codable {
    public var id: String
    public var connected: Bool
    public var published: Int
    public var acknowledged: Int
    public var dropped: Int
    public var lastSeq: UInt64
    public var queued: Int
    public var inflight: Int
    /// Connection attempts started.
    public var attempts: Int
    /// Connections that reached CONNACK.
    public var connects: Int
    public var errors: Int
    public var lastError: String?
    /// The last error will not fix itself by retrying (certificate, trust, authorisation).
    public var failing: Bool
    /// Real-sensor reads skipped (failed or out of range).
    public var sensorErrors: Int = 0
    /// `dropped` by `DropReason` raw value (reasons with a count only).
    public var droppedByReason: [String: Int] = [:]
}

/// One simulated device. Its state is confined to the reactor thread that owns its MQTT client,
/// the same way an actor's state is confined to its executor: timers, sensor reads, the outbox
/// and every libmosquitto call run there, with no hop between threads per message.
final class Device: MQTTClientDelegate {
    let spec: DeviceSpec
    private let context: FleetContext
    private let reactor: Reactor
    private var logger: Logger
    private var client: MQTTClient?
    private var tls: TLSContext?
    private var sensors: [DeviceSensor]
    private var outbox: Outbox
    /// libmosquitto message id → telemetry seq, for what was handed over and not acknowledged.
    private var inflight: [Int32: InflightEntry] = [:]
    private var ackTimer: ReactorTimer?
    private var dropCounts: [DropReason: Int] = [:]
    /// The durable outbox of this device's reactor (`run --state-dir`), nil in memory mode.
    var journal: OutboxJournal?
    /// Messages an earlier run left unacknowledged, oldest first; sent before and alongside live
    /// data at `outbox.backlogRate`.
    private var backlog: [Outbox.Entry] = []
    private var backlogHead = 0
    private var backlogTokens = 1.0
    private var backlogRefilledAt: UInt64 = 0
    private var backlogTimer: ReactorTimer?
    private(set) var restored = 0
    /// Left in the durable outbox at the end, for the next run.
    private(set) var kept = 0
    private var backoff: Backoff
    private var rng = SystemRandomNumberGenerator()
    private var tickTimer: ReactorTimer?
    private var connectTimer: ReactorTimer?
    private var nextTick: UInt64 = 0
    private var startedAt: UInt64 = 0
    private var connectedAt: UInt64 = 0
    private var running = false
    /// Readings go on (false once the fleet stops; connections go on until `disconnect()`).
    private var producing = false
    private var reportedErrors: Set<String> = []
    private var holdsGate = false
    private var payloadBuffer: [UInt8] = []
    private var readings: [(name: String, value: Double)] = []
    /// Seconds between readings (the spec's, or a load test's rate); a `set-interval` command
    /// changes it.
    private var interval: Double
    private let qos: Int
    /// Load test at "as fast as acknowledged": readings are made when the window has room.
    private let unpaced: Bool
    private let messageLimit: UInt64

    private(set) var seq: UInt64 = 0
    private(set) var published = 0
    private(set) var acknowledged = 0
    private(set) var dropped = 0
    private(set) var connects = 0
    private(set) var attempts = 0
    private(set) var errors = 0
    /// Real-sensor reads that failed or were out of range (skipped, not sent).
    private(set) var sensorErrors = 0
    private(set) var commandsReceived = 0
    /// A reloaded certificate waits for what is in flight, then the connection is renewed.
    private var reloadPending = false
    private(set) var credentialReloads = 0
    private var reportedSensorErrors: Set<String> = []
    private(set) var lastError: MosquittoError?
    private var lastErrorText: String?

    init(spec: DeviceSpec, context: FleetContext, reactor: Reactor) {
        self.spec = spec
        self.context = context
        self.reactor = reactor
        var logger = context.logger
        logger[metadataKey: "device"] = "\(spec.id)"
        self.logger = logger
        sensors = spec.sensors.map {
            DeviceSensor(spec: $0, fleetSeed: context.seed, deviceID: spec.id, sysfsRoot: spec.sysfsRoot)
        }
        outbox = Outbox(spec: context.outbox)
        backoff = Backoff(policy: context.backoff)
        readings.reserveCapacity(spec.sensors.count)
        let load = context.load
        if let rate = load?.rate, rate > 0 { interval = 1 / rate } else { interval = spec.interval }
        unpaced = load?.rate == 0
        qos = load?.qos ?? spec.qos
        messageLimit = load?.messagesPerDevice.map { UInt64(max(0, $0)) } ?? UInt64.max
    }

    var isConnected: Bool { client?.isConnected ?? false }
    var pending: Int { outbox.count + inflight.count + backlogCount }
    private var backlogCount: Int { backlog.count - backlogHead }

    /// Takes over what an earlier run left: the seq goes on from its last one, and its
    /// unacknowledged messages become the backlog. Before `start()`.
    func restore(_ state: DurableOutbox.Restored) {
        seq = state.lastSeq
        let now = MonotonicClock.now()
        backlog = state.backlog.map { Outbox.Entry(seq: $0.seq, payload: $0.payload, enqueuedAt: now) }
        restored = backlog.count
        context.counters.restored.add(backlog.count, ordering: .relaxed)
    }
    var isClosed: Bool { client == nil || client?.state == .idle }

    // MARK: Life cycle (reactor thread)

    /// Starts readings (the first one at a random point of the first interval, so a fleet does
    /// not publish in lock-step) and the first connection attempt.
    func start() {
        running = true
        producing = true
        startedAt = MonotonicClock.now()
        if !unpaced && messageLimit > 0 {
            let offset = UInt64(Double.random(in: 0..<interval, using: &rng) * 1e9)
            nextTick = startedAt &+ offset
            tickTimer = reactor.schedule(at: nextTick) { [unowned self] in self.tick() }
        }
        requestConnect(after: 0)
    }

    /// Stops readings; what is queued keeps going out, and a device that is offline keeps
    /// reconnecting (with its backoff) until `disconnect()`, so a stop can drain its outbox.
    func stopProducing() {
        producing = false
        tickTimer?.cancel()
    }

    /// Nothing left to send, or nothing will get it out (a failure that does not fix itself).
    var isSettled: Bool { pending == 0 || (!isConnected && (lastError?.isPermanent ?? false)) }

    /// Seconds a PUBACK may be overdue on a live connection.
    private var ackTimeout: Double { context.outbox.ackTimeout ?? Double(context.broker.keepAlive) }

    private func drop(_ reason: DropReason, count: Int = 1) {
        guard count > 0 else { return }
        dropped += count
        dropCounts[reason, default: 0] += count
        context.counters.drop(reason, count: count)
    }

    /// Publishes the retained `offline` status (a clean DISCONNECT suppresses the will) and
    /// disconnects.
    func disconnect() {
        running = false
        producing = false
        connectTimer?.cancel()
        backlogTimer?.cancel()
        guard let client else { return }
        if client.isConnected {
            publishStatus("offline")
            client.disconnect()
        } else {
            client.abort()
        }
    }

    /// Counts what never reached the broker as dropped and frees the client.
    func finish() {
        leaveGate()
        let left = outbox.count + inflight.count + backlogCount
        if let journal, journal.store.isDurable {
            // On disk already: the next run sends them.
            kept += left
            context.counters.kept.add(left, ordering: .relaxed)
            journal.flush()
        } else {
            drop(.unsent, count: left)
        }
        backlog.removeAll()
        backlogHead = 0
        backlogTimer?.cancel()
        outbox = Outbox(spec: context.outbox)
        inflight.removeAll()
        ackTimer?.cancel()
        if client?.isConnected == true { context.counters.connected.subtract(1, ordering: .relaxed) }
        client?.destroy()
        client = nil
    }

    func snapshot() -> DeviceSnapshot {
        DeviceSnapshot(
            id: spec.id, connected: isConnected, published: published, acknowledged: acknowledged,
            dropped: dropped, lastSeq: seq, queued: outbox.count + backlogCount, inflight: inflight.count,
            attempts: attempts, connects: connects, errors: errors, lastError: lastErrorText,
            failing: lastError?.isPermanent ?? false, sensorErrors: sensorErrors,
            droppedByReason: Dictionary(uniqueKeysWithValues: dropCounts.map { ($0.key.rawValue, $0.value) })
        )
    }

    // MARK: Readings

    private func tick() {
        guard running, producing else { return }
        let now = MonotonicClock.now()
        produceReading(now: now)
        // Next deadline from the previous one, not from now, so the rate does not drift. Timers
        // fire with 1 ms granularity, so readings due within the tolerance (one interval, at
        // least 2 ms) are made now in a small burst; older ones are skipped and counted as
        // overruns: a device that falls behind is never silently slowed.
        let step = max(1, UInt64(interval * 1e9))
        let tolerance = max(step, 2_000_000)
        nextTick &+= step
        if nextTick &+ tolerance < now {
            let missed = (now - tolerance - nextTick) / step + 1
            nextTick &+= missed * step
            context.counters.overruns.add(Int(missed), ordering: .relaxed)
        }
        var burst = 0
        while nextTick <= now && burst < 1024 && seq < messageLimit {
            produceReading(now: now)
            nextTick &+= step
            burst += 1
        }
        let expired = outbox.expire(now: now)
        forget(expired)
        drop(.expired, count: expired.count)
        if seq < messageLimit {
            tickTimer = reactor.schedule(at: nextTick) { [unowned self] in self.tick() }
        }
        pump()
    }

    private func produceReading(now: UInt64) {
        let elapsed = Double(now &- startedAt) / 1e9
        readings.removeAll(keepingCapacity: true)
        for i in sensors.indices {
            switch sensors[i].read(elapsed: elapsed) {
            case .success(let value): readings.append((sensors[i].name, value))
            case .failure(let error): sensorFailed(sensors[i].name, error)
            }
        }
        seq += 1
        if let load = context.load {
            let micros = WallClock.micros()
            TelemetryPayload.encode(
                device: spec.id, seq: seq, timestampMillis: micros / 1000, readings: readings,
                timestampMicros: micros, padding: load.padding, into: &payloadBuffer)
        } else {
            TelemetryPayload.encode(
                device: spec.id, seq: seq, timestampMillis: WallClock.millis(), readings: readings, into: &payloadBuffer
            )
        }
        enqueue(Outbox.Entry(seq: seq, payload: payloadBuffer, enqueuedAt: now))
    }

    /// A failed read is skipped: the message goes out without that reading. Each distinct
    /// failure is logged once, then only counted.
    private func sensorFailed(_ name: String, _ error: SensorReadError) {
        sensorErrors += 1
        if reportedSensorErrors.count < 100, reportedSensorErrors.insert("\(name): \(error)").inserted {
            logger.warning("sensor \(name): reading skipped: \(error)")
        }
    }

    private func enqueue(_ entry: Outbox.Entry) {
        switch outbox.append(entry) {
        case .accepted(let evicted):
            if let journal {
                // Accepted once it is on disk (the reactor's batch commits after this turn).
                journal.insert(device: spec.id, seq: entry.seq, payload: entry.payload) { [unowned self] onDisk in
                    if !onDisk { self.context.journalFallbacks() }
                    self.accepted()
                }
            } else {
                accepted()
            }
            forget(evicted)
            drop(.overflow, count: evicted.count)
        case .refused:
            accepted()
            drop(.refused)
        }
    }

    private func accepted() {
        published += 1
        context.counters.published.add(1, ordering: .relaxed)
    }

    /// Removes messages that are settled (acknowledged or dropped) from the durable outbox.
    private func forget(_ entries: [Outbox.Entry]) {
        guard let journal else { return }
        for entry in entries { journal.delete(device: spec.id, seq: entry.seq) }
    }

    private func forget(seq: UInt64) {
        journal?.delete(device: spec.id, seq: seq)
    }

    /// The backlog's token bucket: `backlogRate` per second, bursts of up to one second's worth.
    private func backlogAllowance(now: UInt64) -> Bool {
        let rate = context.outbox.backlogRate
        let elapsed = Double(now &- backlogRefilledAt) / 1e9
        backlogRefilledAt = now
        backlogTokens = min(max(1, rate), backlogTokens + elapsed * rate)
        return backlogTokens >= 1
    }

    /// Hands queued messages to libmosquitto while connected, keeping at most the in-flight
    /// window there: its own queue has no bound, and what it already holds it re-sends itself
    /// after a reconnect, so we never publish a message twice.
    private func pump() {
        guard let client, client.isConnected else { return }
        if reloadPending {
            // New certificate: hand nothing more over; reconnect once the broker has it all.
            if inflight.isEmpty { client.disconnect() }
            return
        }
        let window = qos == 0 ? 64 : context.maxInflight
        let now = MonotonicClock.now()
        while inflight.count < window {
            if outbox.isEmpty && backlogCount == 0 && unpaced && producing && seq < messageLimit {
                produceReading(now: MonotonicClock.now())
            }
            // The backlog of an earlier run first (it is older), at its own rate; live data alongside.
            let fromBacklog = backlogCount > 0 && backlogAllowance(now: now)
            let entry: Outbox.Entry
            if fromBacklog {
                entry = backlog[backlogHead]
            } else if let first = outbox.first {
                entry = first
            } else {
                if backlogCount > 0, backlogTimer == nil || backlogTimer!.isCancelled {
                    backlogTimer = reactor.schedule(after: 1 / context.outbox.backlogRate) { [unowned self] in
                        self.backlogTimer = nil
                        self.pump()
                    }
                }
                return
            }
            let result = entry.payload.withUnsafeBytes { raw in
                client.publish(topic: spec.topic, payload: raw, qos: qos)
            }
            switch result {
            case .success(let mid):
                if fromBacklog {
                    backlogHead += 1
                    backlogTokens -= 1
                    if backlogHead == backlog.count { backlog.removeAll(); backlogHead = 0 }
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

    /// Wakes up when the oldest PUBACK falls due; one timer per device, armed only while
    /// something is in flight.
    private func armAckTimer() {
        guard ackTimer == nil || ackTimer!.isCancelled else { return }
        guard let oldest = inflight.values.map(\.sentAt).min() else { return }
        ackTimer = reactor.schedule(at: oldest &+ UInt64(ackTimeout * 1e9)) { [unowned self] in
            self.ackTimer = nil
            self.checkAcknowledgements()
        }
    }

    /// A PUBACK overdue on a live connection means the connection is dead (a stalled socket that
    /// keeps TCP open, a broker that stopped answering): abort it, so the reconnect comes now and
    /// not after libmosquitto's keep-alive (up to 2 × keep-alive); libmosquitto re-sends what it
    /// holds after the reconnect.
    private func checkAcknowledgements() {
        guard let client, client.isConnected, let oldest = inflight.values.map(\.sentAt).min() else { return }
        let now = MonotonicClock.now()
        let limit = UInt64(ackTimeout * 1e9)
        if now &- oldest >= limit {
            context.counters.ackTimeouts.add(1, ordering: .relaxed)
            logger.warning("no PUBACK for \(inflight.count) message(s) within \(ackTimeout) s: taking the connection for dead and reconnecting")
            client.abort()
        } else {
            armAckTimer()
        }
    }

    private func publishStatus(_ status: String) {
        guard let client else { return }
        _ = Array(status.utf8).withUnsafeBytes { raw in
            client.publish(topic: spec.statusTopic, payload: raw, qos: 1, retain: true)
        }
    }

    // MARK: Connection (the supervisor's policy, applied per device)

    private func requestConnect(after delay: Double) {
        guard running else { return }
        connectTimer?.cancel()
        connectTimer = reactor.schedule(after: delay) { [unowned self] in
            self.waitForSlot()
        }
    }

    /// Backoff first, then a place among the connects in flight (queued, first come first
    /// served), then a slot from the fleet-wide rate limiter.
    private func waitForSlot() {
        let box = UncheckedBox(self)
        let reactor = self.reactor
        let entered = context.gate.enter {
            reactor.execute { box.value.gateEntered() }
        }
        if entered { gateEntered() }
    }

    private func gateEntered() {
        holdsGate = true
        guard running else { leaveGate(); return }
        let slot = context.limiter.reserve(now: MonotonicClock.now())
        connectTimer = reactor.schedule(at: slot) { [unowned self] in self.attemptConnect() }
    }

    private func leaveGate() {
        if holdsGate {
            holdsGate = false
            context.gate.leave()
        }
    }

    private func attemptConnect() {
        guard running, client?.state ?? .idle == .idle else { leaveGate(); return }
        do throws(MosquittoError) {
            let client: MQTTClient
            if let existing = self.client { client = existing } else { client = try makeClient() }
            self.client = client
            attempts += 1
            context.counters.connectAttempts.add(1, ordering: .relaxed)
            client.connect()
        } catch {
            leaveGate()
            failed(error)
        }
    }

    private func makeClient() throws(MosquittoError) -> MQTTClient {
        let tls: TLSContext
        if let existing = self.tls {
            tls = existing
        } else {
            tls = try TLSContext(trust: context.trust, certFile: spec.certFile, keyFile: spec.keyFile, settings: context.tlsSettings)
            self.tls = tls
        }
        let options = MQTTClientOptions(
            clientID: spec.id, host: context.connectHost, port: context.broker.port,
            keepAlive: context.broker.keepAlive, useMQTT5: context.broker.protocolVersion == .v5,
            cleanSession: spec.cleanSession, bindAddress: context.load?.takeBindAddress() ?? context.broker.bindAddress,
            will: MQTTWill(topic: spec.statusTopic, payload: Array("offline".utf8), qos: 1, retain: true),
            tls: tls, connectTimeout: context.connectTimeout, maxInflight: context.maxInflight,
            // Ten messages a second or more: batch a turn's writes; slower devices keep the memory.
            batchWrites: unpaced || interval <= 0.1
        )
        let client = try MQTTClient(reactor: reactor, options: options)
        client.delegate = self
        return client
    }

    private func failed(_ error: MosquittoError, beforeCONNACK: Bool = true) {
        var error = error
        // A broker that refuses us (CONNACK refusal, TLS alert) closes the connection with our
        // CONNECT unread, and the reset can throw its answer away: a bare "connection lost"
        // before CONNACK, right after such a refusal and with no connection since, is taken as
        // the same refusal, so the backoff stays at the cap and the report keeps the reason.
        if beforeCONNACK, !error.isPermanent, let previous = lastError, previous.isPermanent,
           error.code == MosquittoError.connectionLostCode || error.code == MosquittoError.systemCallFailedCode {
            error = previous
        }
        errors += 1
        context.counters.errors.add(1, ordering: .relaxed)
        lastError = error
        let text = error.description
        lastErrorText = text
        // Each distinct failure is reported once per device, then only counted.
        if reportedErrors.insert(text).inserted {
            logger.warning("connection failed: \(text)\(error.isPermanent ? " (will not fix itself: retrying at most every \(Int(context.backoff.cap)) s)" : "")")
        } else {
            logger.debug("connection failed again: \(text)")
        }
        requestConnect(after: backoff.nextDelay(permanent: error.isPermanent, using: &rng))
    }

    func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool) {
        leaveGate()
        connects += 1
        connectedAt = MonotonicClock.now()
        context.load?.connectLatency.record(nanos: connectedAt &- client.connectStartedAt)
        lastError = nil
        context.counters.connected.add(1, ordering: .relaxed)
        logger.debug("connected", metadata: ["session_present": "\(sessionPresent)"])
        publishStatus("online")
        client.subscribe(commandsTopic, qos: 1)
        // libmosquitto re-sends what it holds on this connection: their PUBACK clocks start now.
        let now = MonotonicClock.now()
        for mid in inflight.keys { inflight[mid]!.sentAt = now }
        if qos > 0 && !inflight.isEmpty { ackTimer?.cancel(); ackTimer = nil; armAckTimer() }
        pump()
    }

    /// Reads the certificate and key again (rotated files); on success the next connection
    /// uses them, and a live connection is renewed once nothing is in flight. Returns the
    /// error when the new files are unusable (the old identity stays in use).
    func reloadCredentials() -> String? {
        let fresh: TLSContext
        do throws(MosquittoError) {
            fresh = try TLSContext(trust: context.trust, certFile: spec.certFile, keyFile: spec.keyFile, settings: context.tlsSettings)
        } catch {
            return "\(error)"
        }
        tls = fresh
        credentialReloads += 1
        guard let client else { return nil }
        if let error = client.replaceTLS(fresh) { return "\(error)" }
        if client.isConnected {
            reloadPending = true
            pump()
        }
        return nil
    }

    func clientDidClose(_ client: MQTTClient, error: MosquittoError?) {
        leaveGate()
        if reloadPending && error == nil && running {
            // Our own disconnect after a certificate reload: reconnect at once, no backoff.
            reloadPending = false
            if connectedAt != 0 {
                context.counters.connected.subtract(1, ordering: .relaxed)
                connectedAt = 0
            }
            logger.info("reconnecting with the reloaded certificate")
            requestConnect(after: 0)
            return
        }
        reloadPending = false
        let wasConnected = connectedAt != 0
        if connectedAt != 0 {
            context.counters.connected.subtract(1, ordering: .relaxed)
            backoff.connectionEnded(after: Double(MonotonicClock.now() &- connectedAt) / 1e9)
            connectedAt = 0
        }
        if qos == 0 && !inflight.isEmpty {
            // QoS 0 handed over but not yet written is gone with the socket.
            for entry in inflight.values { forget(seq: entry.seq) }
            drop(.connectionLost, count: inflight.count)
            inflight.removeAll()
        }
        guard running else { return }
        failed(error ?? MosquittoError(code: MosquittoError.connectionLostCode), beforeCONNACK: !wasConnected)
    }

    func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int) {
        guard let done = inflight.removeValue(forKey: messageID) else { return }
        context.load?.publishLatency.record(nanos: MonotonicClock.now() &- done.sentAt)
        forget(seq: done.seq)
        if reasonCode >= 0x80 {
            drop(.brokerRefused)
            errors += 1
            context.counters.errors.add(1, ordering: .relaxed)
            let text = "broker refused a publish on \(spec.topic): \(MQTTReasonCode.describe(reasonCode))"
            lastErrorText = text
            if reportedErrors.insert(text).inserted { logger.warning("\(text)") }
        } else {
            acknowledged += 1
            context.counters.acknowledged.add(1, ordering: .relaxed)
        }
        pump()
    }

    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer) {
        self.client(client, didReceive: topic, payload: payload, responseTopic: nil, correlationData: nil)
    }

    // MARK: Commands (see DeviceCommands)

    var commandsTopic: String { "devices/\(spec.id)/commands" }
    var repliesTopic: String { "devices/\(spec.id)/replies" }

    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer,
                responseTopic: String?, correlationData: [UInt8]?) {
        guard topic == commandsTopic else { return }
        commandsReceived += 1
        let reply = DeviceCommands.handle(payload, deviceID: spec.id, target: self)
        // A response topic outside this device's own topics would be refused by the ACL.
        let replyTopic = responseTopic.flatMap { $0.hasPrefix("devices/\(spec.id)/") && !$0.contains("+") && !$0.contains("#") ? $0 : nil } ?? repliesTopic
        let result = reply.withUnsafeBytes { raw in
            client.publish(topic: replyTopic, payload: raw, qos: 1, correlationData: correlationData)
        }
        if case .failure(let error) = result { logger.warning("cannot send the reply on \(replyTopic): \(error)") }
        pump()
    }
}

extension Device: CommandTarget {
    func commandReadNow() -> (seq: UInt64, readings: [(name: String, value: Double)]) {
        produceReading(now: MonotonicClock.now())
        return (seq, readings)
    }

    var commandInterval: Double { interval }

    func commandSetInterval(_ seconds: Double) {
        interval = seconds
        guard running else { return }
        tickTimer?.cancel()
        nextTick = MonotonicClock.now() &+ UInt64(seconds * 1e9)
        tickTimer = reactor.schedule(at: nextTick) { [unowned self] in self.tick() }
    }

    func commandConfig() -> [String: Any] {
        [
            "id": spec.id, "interval": interval, "qos": spec.qos, "topic": spec.topic,
            "broker": "\(context.broker.host):\(context.broker.port)",
            "protocol": context.broker.protocolVersion.rawValue,
            "sensors": spec.sensors.map { sensor -> [String: Any] in
                var entry: [String: Any] = ["name": sensor.name, "type": Self.typeName(sensor.kind)]
                if let unit = sensor.unit { entry["unit"] = unit }
                return entry
            },
        ]
    }

    func commandStats() -> DeviceSnapshot { snapshot() }

    var commandUptime: Double { Double(MonotonicClock.now() &- startedAt) / 1e9 }

    static func typeName(_ kind: SensorKind) -> String {
        switch kind {
        case .constant: "constant"
        case .uniform: "uniform"
        case .gaussian: "gaussian"
        case .randomWalk: "random_walk"
        case .sine: "sine"
        case .counter: "counter"
        case .system(let source, _, _): source.typeName
        }
    }
}

enum WallClock {
    /// Milliseconds since 1970 (CLOCK_REALTIME), for payload timestamps.
    static func millis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Microseconds since 1970 (CLOCK_REALTIME).
    static func micros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}
