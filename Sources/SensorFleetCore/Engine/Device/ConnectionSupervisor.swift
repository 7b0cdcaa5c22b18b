import Logging
import MosquittoKit
import Synchronization

/// One device's connection life: backoff → a place among the connects in flight (the fleet's
/// gate, first come first served) → a slot from the fleet-wide rate limiter → connect → CONNACK
/// or a classified failure → backoff again. Also the device's identity: its TLS context, built
/// once and rebuilt when the certificate is reloaded. Reactor-confined.
final class ConnectionSupervisor {
    private let spec: DeviceSpec
    private let context: FleetContext
    private let reactor: Reactor
    private let logger: Logger

    /// Receives the client's events (the device).
    weak var delegate: MQTTClientDelegate?
    /// Batch a reactor turn's writes on the next connection (devices at ≥ 10 msg/s).
    var batchWrites = false
    /// The will of each CONNECT, asked for before every attempt (Sparkplug B: an NDEATH with a
    /// new bdSeq); nil: the retained `offline` status, set once.
    var nextWill: (() -> MQTTWill)?

    private(set) var client: MQTTClient?
    private var tls: TLSContext?
    private var backoff: Backoff
    private var rng = SystemRandomNumberGenerator()
    private var timer: ReactorTimer?
    private var holdsGate = false
    private var running = false
    private var connectedAt: MonotonicInstant?
    private var reportedErrors: Set<String> = []

    private(set) var attempts = 0
    private(set) var connects = 0
    private(set) var errors = 0
    private(set) var lastError: MosquittoError?
    private(set) var lastErrorText: String?
    private(set) var credentialReloads = 0
    /// A reloaded certificate waits for what is in flight, then the connection is renewed.
    private(set) var renewing = false
    /// A simulated network loss or power cut (scenarios, reboots, an empty battery): no
    /// connection attempt before this instant.
    private(set) var heldUntil: MonotonicInstant?

    init(spec: DeviceSpec, context: FleetContext, reactor: Reactor, logger: Logger) {
        self.spec = spec
        self.context = context
        self.reactor = reactor
        self.logger = logger
        backoff = Backoff(policy: context.backoff)
    }

    var isConnected: Bool { client?.isConnected ?? false }
    var isClosed: Bool { client == nil || client?.state == .idle }
    /// The last failure will not fix itself by retrying.
    var isFailing: Bool { lastError?.isPermanent ?? false }

    // MARK: Life cycle

    func start() {
        running = true
        connect(after: .zero)
    }

    /// No more attempts; a live connection gets the retained `offline` status and DISCONNECT.
    func stop(offlineStatus: () -> Void) {
        running = false
        timer?.cancel()
        guard let client else { return }
        if client.isConnected {
            offlineStatus()
            client.disconnect()
        } else {
            client.abort()
        }
    }

    /// Frees the client (after `stop`).
    func finish() {
        leaveGate()
        if client?.isConnected == true { context.counters.connected.subtract(1, ordering: .relaxed) }
        client?.destroy()
        client = nil
    }

    // MARK: Attempts

    private func connect(after delay: Duration) {
        guard running else { return }
        timer?.cancel()
        var delay = delay
        if heldUntil == MonotonicInstant.forever { return }  // an empty battery: silent until `resume()`
        if let heldUntil {
            let now = MonotonicInstant.now()
            if now < heldUntil { delay = max(delay, heldUntil.duration(since: now)) } else { self.heldUntil = nil }
        }
        timer = reactor.schedule(after: delay) { [unowned self] in self.waitForSlot() }
    }

    // MARK: Simulated outages

    /// The network goes away until `until`: the socket is closed without DISCONNECT (the broker
    /// notices and publishes the will), and no attempt is made before `until`; then the device
    /// reconnects at once (no backoff: nothing failed). What libmosquitto holds (QoS 1/2 in
    /// flight) stays on the handle and is sent again after the reconnect.
    func dropConnection(until: MonotonicInstant) {
        heldUntil = max(heldUntil ?? until, until)
        guard running else { return }
        timer?.cancel()
        if let client, client.state != .idle {
            client.abort()  // closed(error:) follows and waits for the hold to end
        } else {
            connect(after: .zero)
        }
    }

    /// Ends a hold now (a device that booted again after its battery recovered, a stopping run).
    func resume() {
        guard heldUntil != nil else { return }  // not held: its own schedule (or backoff) stands
        heldUntil = nil
        guard running, client?.state ?? .idle == .idle else { return }
        connect(after: .zero)
    }

    /// Backoff first, then a place among the connects in flight (queued, first come first
    /// served), then a slot from the fleet-wide rate limiter.
    private func waitForSlot() {
        let reactor = self.reactor
        let waiter = ReactorBound(self, on: reactor)
        let entered = context.gate.enter {
            reactor.execute { waiter.value.gateEntered() }
        }
        if entered { gateEntered() }
    }

    private func gateEntered() {
        holdsGate = true
        guard running else { leaveGate(); return }
        let slot = context.limiter.reserve(now: MonotonicInstant.now())
        timer = reactor.schedule(at: slot) { [unowned self] in self.attempt() }
    }

    private func leaveGate() {
        if holdsGate {
            holdsGate = false
            context.gate.leave()
        }
    }

    private func attempt() {
        guard running, client?.state ?? .idle == .idle else { leaveGate(); return }
        if let heldUntil, MonotonicInstant.now() < heldUntil {
            // The hold began while this attempt waited for its slot.
            leaveGate()
            connect(after: .zero)
            return
        }
        guard let host = context.resolver.address else {
            // The name never resolved (no network yet): an attempt that failed at its first step;
            // ask again, and back off like any failure.
            leaveGate()
            attempts += 1
            context.counters.connectAttempts.add(1, ordering: .relaxed)
            context.resolver.refresh()
            failed(MosquittoError(code: MosquittoError.nameResolutionCode, detail: context.resolver.lastError))
            return
        }
        do throws(MosquittoError) {
            let client: MQTTClient
            if let existing = self.client { client = existing } else { client = try makeClient(host: host) }
            if client.options.host != host { client.retarget(host: host) }
            self.client = client
            if let nextWill, let error = client.setWill(nextWill()) { throw error }
            attempts += 1
            context.counters.connectAttempts.add(1, ordering: .relaxed)
            client.connect()
        } catch {
            leaveGate()
            failed(error)
        }
    }

    private func makeClient(host: String) throws(MosquittoError) -> MQTTClient {
        let tls: TLSContext?
        if let existing = self.tls {
            tls = existing
        } else if let trust = context.trust {
            let made = try TLSContext(trust: trust, certFile: spec.certFile, keyFile: spec.keyFile, settings: context.tlsSettings)
            self.tls = made
            tls = made
        } else {
            tls = nil
        }
        let options = MQTTClientOptions(
            clientID: spec.id, host: host, port: context.broker.port,
            keepAlive: context.broker.keepAlive, useMQTT5: context.broker.protocolVersion == .v5,
            cleanSession: spec.cleanSession, bindAddress: context.takeBindAddress(),
            will: nextWill == nil ? spec.statusTopic.map { MQTTWill(topic: $0, payload: Array(willPayload.utf8), qos: 1, retain: true) } : nil,
            tls: tls, connectTimeout: context.connectTimeout.seconds, maxInflight: context.maxInflight,
            batchWrites: batchWrites, sessionExpiry: spec.sessionExpiry,
            username: spec.username, password: spec.password?.value
        )
        let client = try MQTTClient(reactor: reactor, options: options)
        client.delegate = delegate
        return client
    }

    /// The will: `offline`, or with `status_format: json` `{"reason":"connection_lost","status":"offline"}`.
    var willPayload: String {
        context.behaviour.statusFormat == .json
            ? DeviceBehaviourJSON.string(["status": .string("offline"), "reason": .string("connection_lost")]) : "offline"
    }

    // MARK: Outcomes (called by the device, the client's delegate)

    /// CONNACK with success.
    func connected(_ client: MQTTClient) {
        leaveGate()
        connects += 1
        let now = MonotonicInstant.now()
        connectedAt = now
        context.counters.connectLatency?.record(nanos: now.nanoseconds(since: client.connectStartedAt))
        lastError = nil
        context.counters.connected.add(1, ordering: .relaxed)
    }

    /// The connection, or the attempt at one, is over: reconnect at once after our own renewal,
    /// otherwise after the backoff.
    func closed(error: MosquittoError?) {
        leaveGate()
        let wasConnected = connectedAt != nil
        if let connectedAt {
            context.counters.connected.subtract(1, ordering: .relaxed)
            backoff.connectionEnded(after: MonotonicInstant.now().seconds(since: connectedAt))
            self.connectedAt = nil
        }
        if renewing && error == nil && running {
            // Our own disconnect after a certificate reload: reconnect at once, no backoff.
            renewing = false
            logger.info("reconnecting with the reloaded certificate")
            connect(after: .zero)
            return
        }
        renewing = false
        guard running else { return }
        if let heldUntil, MonotonicInstant.now() < heldUntil {
            // Our own simulated outage: not a failure; reconnect when it ends.
            connect(after: .zero)
            return
        }
        failed(error ?? MosquittoError(code: MosquittoError.connectionLostCode), beforeCONNACK: !wasConnected)
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
        lastError = error
        if beforeCONNACK { context.counters.connectFailed(ConnectFailureClass(error)) }
        // The broker may have moved (or the network only now come up): a fresh lookup, at most
        // one at a time and one per `refreshAfter` for the whole fleet.
        if !error.isPermanent { context.resolver.refresh() }
        note(error: error.description, permanent: error.isPermanent)
        connect(after: .saturating(seconds: backoff.nextDelay(permanent: error.isPermanent, using: &rng)))
    }

    /// Counts an error; each distinct one is logged once per device, then only counted.
    func note(error text: String, permanent: Bool = false, prefix: String = "connection failed: ") {
        errors += 1
        context.counters.errors.add(1, ordering: .relaxed)
        lastErrorText = text
        if reportedErrors.insert(text).inserted {
            logger.warning("\(prefix)\(text)\(permanent ? " (will not fix itself: retrying at most every \(Int(context.backoff.cap)) s)" : "")")
        } else {
            logger.debug("connection failed again: \(text)")
        }
    }

    // MARK: Credentials

    /// Reads the certificate and key again (rotated files); on success the next connection uses
    /// them, and a live connection is renewed once nothing is in flight (`renewing`). Returns
    /// the error when the new files are unusable (the old identity stays in use).
    func reloadCredentials() -> String? {
        guard let trust = context.trust else { return nil }
        let fresh: TLSContext
        do throws(MosquittoError) {
            fresh = try TLSContext(trust: trust, certFile: spec.certFile, keyFile: spec.keyFile, settings: context.tlsSettings)
        } catch {
            return "\(error)"
        }
        tls = fresh
        credentialReloads += 1
        guard let client else { return nil }
        if let error = client.replaceTLS(fresh) { return "\(error)" }
        // A connection that is up, or coming up with the old identity (the reload landed between
        // the broker's accept and our CONNACK), is renewed once it has delivered what it holds.
        if client.state == .connected || client.state == .connecting { renewing = true }
        return nil
    }
}

extension MonotonicInstant {
    /// A hold without end.
    static let forever = MonotonicInstant(nanoseconds: .max)
}
