#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MosquittoKit
import Synchronization
import Glibc

/// Subscribes to what a fleet publishes, with its own connections (the observer identity) on its
/// own reactor thread, and counts per device: received, gaps, duplicates, out of order, and the
/// end-to-end latency from the payload's timestamp.
public final class Verifier: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var caFile: String
        public var certFile: String
        public var keyFile: String
        public var tls: TLSSettings
        public var connections: Int
        public var bindAddress: String?
        /// The observer's MQTT username (its certificate's CN with `use_identity_as_username`),
        /// for the ACL line a refusal suggests.
        public var observerName: String

        public init(host: String, port: Int, caFile: String, certFile: String, keyFile: String, tls: TLSSettings,
                    connections: Int, bindAddress: String? = nil, observerName: String = Provisioner.observerID) {
            self.observerName = observerName
            self.host = host
            self.port = port
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.tls = tls
            self.connections = connections
            self.bindAddress = bindAddress
        }
    }

    public let latency = LatencyRecorder()
    /// Messages received (all, including duplicates and unparseable ones).
    public let received = Atomic<Int>(0)
    public let connected = Atomic<Int>(0)
    /// Messages received again (the live count; the report's comes from the trackers).
    public let duplicates = Atomic<Int>(0)
    public let errors = Atomic<Int>(0)
    private let reactor: Reactor
    private let state: ReactorBound<VerifierState>

    /// - Parameters:
    ///   - settings: broker and observer identity.
    ///   - topics: device id → telemetry topic, for every device to verify.
    ///   - formats: each device's payload format, in the order of `topics` (seq and the send time
    ///     are read with ``PayloadFormat/stamp(of:)``); empty: all JSON.
    public init(settings: Settings, topics: [(id: String, topic: String)], formats: [PayloadFormat] = [], logger: Logger) throws {
        reactor = try Reactor(name: "verifier")
        let trust = try TrustStore(caFile: settings.caFile)
        let tls = try TLSContext(trust: trust, certFile: settings.certFile, keyFile: settings.keyFile, settings: settings.tls)
        // Made before the reactor's thread runs; from then on used only there (checked).
        state = ReactorBound(VerifierState(settings: settings, tls: tls, topics: topics, formats: formats, logger: logger), handingTo: reactor)
    }

    /// Connects every verifier connection and subscribes; returns when all subscriptions are in
    /// force (the broker granted them in its SUBACK: it sends that after the subscription is in
    /// place, so nothing published afterwards is missed). Throws at once when the broker refuses
    /// a subscription (SUBACK 0x80 or above: its ACL) or the connection fails for good, and after
    /// `timeout` seconds otherwise. Needs no write permission: a read-only monitoring account
    /// is enough.
    public func start(timeout: Double) async throws {
        reactor.start()
        let state = self.state
        let reactor = self.reactor
        await reactor.submit { [self] in state.value.start(reactor: reactor, owner: self) }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let (ready, failure, fatal) = await reactor.submit {
                (state.value.readyCount == state.value.connections.count, state.value.lastFailure, state.value.fatalFailure)
            }
            if ready { return }
            if let fatal { throw FleetStartError(description: fatal) }
            if let failure, Date().addingTimeInterval(timeout / 2) > deadline {
                throw FleetStartError(description: "the verifier could not subscribe: \(failure)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let failure = await reactor.submit { state.value.lastFailure }
        throw FleetStartError(description: "the verifier's subscriptions were not in force after \(Int(timeout)) s\(failure.map { ": \($0)" } ?? "")")
    }

    /// Per-device counts now.
    public func counts() async -> [String: SequenceTracker] {
        let state = self.state
        return await reactor.submit { state.value.trackerByID() }
    }

    /// CPU seconds the verifier's thread has used.
    public func threadCPUSeconds() async -> Double {
        await reactor.submit {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
    }

    /// Disconnects and ends the reactor.
    public func stop() async {
        let state = self.state
        await reactor.submit { state.value.stop() }
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if await reactor.submit({ state.value.allClosed }) { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        await reactor.submit { state.value.destroy() }
        reactor.stop()
        let reactor = self.reactor
        await Task.detached { reactor.join() }.value
    }
}

/// The verifier's state, confined to its reactor thread.
final class VerifierState {
    let settings: Verifier.Settings
    let tls: TLSContext
    let logger: Logger
    var trackers: [SequenceTracker]
    let ids: [String]
    /// Each device's payload format, by index; JSON for all when empty.
    let formats: [PayloadFormat]
    var indexByTopic: [String: Int] = [:]
    var connections: [VerifierConnection] = []
    var readyCount = 0
    var lastFailure: String?
    /// A failure retrying will not fix (a refused subscription, an unusable source address, a
    /// permanent connect failure): `start` throws it at once.
    var fatalFailure: String?

    init(settings: Verifier.Settings, tls: TLSContext, topics: [(id: String, topic: String)], formats: [PayloadFormat],
         logger: Logger) {
        self.settings = settings
        self.formats = formats.count == topics.count ? formats : []
        self.tls = tls
        self.logger = logger
        ids = topics.map(\.id)
        trackers = Array(repeating: SequenceTracker(), count: topics.count)
        for (i, entry) in topics.enumerated() { indexByTopic[entry.topic] = i }
    }

    func start(reactor: Reactor, owner: Verifier) {
        let count = max(1, min(settings.connections, ids.count))
        var shards = Array(repeating: [String](), count: count)
        for (topic, index) in indexByTopic.sorted(by: { $0.value < $1.value }) { shards[index % count].append(topic) }
        for i in 0..<count {
            let connection = VerifierConnection(index: i, topics: shards[i], state: self, owner: owner, reactor: reactor)
            connections.append(connection)
            connection.connect()
        }
    }

    func trackerByID() -> [String: SequenceTracker] {
        var result: [String: SequenceTracker] = [:]
        for (i, id) in ids.enumerated() { result[id] = trackers[i] }
        return result
    }

    /// The broker refused subscriptions (SUBACK): say which, and the ACL lines that would allow them.
    func refused(_ topics: [(topic: String, code: Int)]) {
        guard fatalFailure == nil, let first = topics.first else { return }
        let code = first.code == 0x80 ? "0x80 (failure)" : "0x\(String(first.code, radix: 16)) (\(MQTTReasonCode.describe(first.code)))"
        fatalFailure = "the broker refused the verifier's subscription to \(first.topic)"
            + (topics.count > 1 ? " (and \(topics.count - 1) more on this connection)" : "")
            + " with SUBACK \(code): the observer identity `\(settings.observerName)` may not read the devices' topics. "
            + Verifier.aclAdvice(observer: settings.observerName, topics: topics.map(\.topic))
    }

    func stop() { for connection in connections { connection.close() } }
    var allClosed: Bool { connections.allSatisfy(\.closed) }
    func destroy() { for connection in connections { connection.client?.destroy(); connection.client = nil } }
}

/// One verifier connection: subscribes to its share of the device topics and is ready when the
/// broker has granted every one in its SUBACKs. It publishes nothing (a read-only observer
/// account is enough).
final class VerifierConnection: MQTTClientDelegate {
    let index: Int
    let topics: [String]
    unowned let state: VerifierState
    unowned let owner: Verifier
    let reactor: Reactor
    var client: MQTTClient?
    var ready = false
    var closing = false
    var closed = false
    /// SUBSCRIBE message id → its topics, until the SUBACK.
    var pendingSubacks: [Int32: [String]] = [:]
    var clientID: String { "sensorfleet-verifier-\(getpid())-\(index)" }

    init(index: Int, topics: [String], state: VerifierState, owner: Verifier, reactor: Reactor) {
        self.index = index
        self.topics = topics
        self.state = state
        self.owner = owner
        self.reactor = reactor
    }

    func connect() {
        do throws(MosquittoError) {
            if client == nil {
                let options = MQTTClientOptions(
                    clientID: clientID, host: state.settings.host, port: state.settings.port, keepAlive: 30,
                    cleanSession: true, bindAddress: state.settings.bindAddress, tls: state.tls, connectTimeout: 10,
                    maxInflight: 20)
                client = try MQTTClient(reactor: reactor, options: options)
                client?.delegate = self
            }
            closed = false
            client?.connect()
        } catch {
            state.lastFailure = error.description
            if error.isPermanent { state.fatalFailure = "the verifier cannot connect: \(error.description)" }
            owner.errors.add(1, ordering: .relaxed)
            _ = reactor.schedule(after: .seconds(1)) { [weak self] in self?.connect() }
        }
    }

    func close() {
        closing = true
        if let client, client.isConnected { client.disconnect() } else { client?.abort(); closed = true }
    }

    func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool) {
        owner.connected.add(1, ordering: .relaxed)
        // QoS 0 subscriptions: mosquitto sends them at once, outside the 20-message in-flight
        // window and the max_queued_messages bound that would drop a burst on its way to a
        // single subscriber; a connection that breaks shows up as gaps, not hidden.
        pendingSubacks = [:]
        // One SUBSCRIBE per topic: each SUBACK then names the topics it refuses.
        for topic in topics {
            switch client.subscribeForAck(topic, qos: 0) {
            case .success(let mid): pendingSubacks[mid] = [topic]
            case .failure(let error): state.lastFailure = "cannot subscribe to \(topic): \(error.description)"
            }
        }
        if topics.isEmpty { markReady() }
    }

    func client(_ client: MQTTClient, didSubscribe messageID: Int32, grantedQoS: [Int]) {
        guard let topics = pendingSubacks.removeValue(forKey: messageID) else { return }
        let refused = zip(topics, grantedQoS + Array(repeating: 0x80, count: max(0, topics.count - grantedQoS.count)))
            .filter { $0.1 >= 0x80 }
        if !refused.isEmpty {
            state.refused(refused.map { ($0.0, $0.1) })
            return
        }
        if pendingSubacks.isEmpty { markReady() }
    }

    private func markReady() {
        if !ready { ready = true; state.readyCount += 1 }
    }

    func clientDidClose(_ client: MQTTClient, error: MosquittoError?) {
        closed = true
        if ready { state.readyCount -= 1; ready = false }
        if client.connectStartedAt != .zero, state.lastFailure == nil || error != nil {
            if let error { state.lastFailure = error.description }
        }
        if let error, !ready, error.isPermanent || state.settings.bindAddress.map({ error.description.contains("--bind") && error.description.contains($0) }) == true {
            state.fatalFailure = "the verifier cannot connect: \(error.description)"
        }
        if closing { return }
        owner.errors.add(1, ordering: .relaxed)
        state.logger.warning("verifier connection \(index) closed: \(error?.description ?? "by the broker"); reconnecting")
        _ = reactor.schedule(after: .seconds(1)) { [weak self] in self?.connect() }
    }

    func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int) {}

    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer) {
        owner.received.add(1, ordering: .relaxed)
        // A Sparkplug B NDATA (`SensorFleet/seq` and the payload's timestamp), or the device's format.
        guard let index = state.indexByTopic[topic],
              let stamp = Verifier.stamp(of: payload, topic: topic,
                                     format: state.formats.isEmpty ? PayloadFormat.json : state.formats[index])
        else {
            owner.errors.add(1, ordering: .relaxed)
            return
        }
        let duplicatesBefore = state.trackers[index].duplicates
        state.trackers[index].record(stamp.seq)
        if state.trackers[index].duplicates != duplicatesBefore { owner.duplicates.add(1, ordering: .relaxed) }
        // Payloads come from the network: a hostile timestamp must not trap the arithmetic.
        let nowMicros = WallClock.micros()
        let sentMicros = stamp.sentMicros ?? nowMicros
        let elapsed = nowMicros.subtractingReportingOverflow(sentMicros)
        owner.latency.record(micros: elapsed.overflow ? 0 : UInt64(max(0, elapsed.partialValue)))
    }
}

extension Verifier {
    /// The seq and send time of a received message: Sparkplug B on `spBv1.0/` topics, else the
    /// device's payload format.
    static func stamp(of payload: UnsafeRawBufferPointer, topic: String, format: PayloadFormat) -> TelemetryStamp? {
        guard topic.hasPrefix("spBv1.0/") else { return format.stamp(of: payload) }
        guard let header = SparkplugPayload.parseHeader(payload, topic: topic) else { return nil }
        let micros = header.timestampMillis.multipliedReportingOverflow(by: 1000)
        return TelemetryStamp(seq: header.seq, sentMicros: micros.overflow ? nil : micros.partialValue)
    }

    /// The ACL lines that let `observer` read `topics` (one `topic read ROOT/#` per first level),
    /// and what to do then.
    static func aclAdvice(observer: String, topics: [String]) -> String {
        let roots = Set(topics.map { $0.split(separator: "/").first.map(String.init) ?? $0 }).sorted()
        let lines = roots.map { "topic read \($0)/#" }.joined(separator: "\n    ")
        return "Allow it in the broker's ACL (mosquitto acl_file):\n    user \(observer)\n    \(lines)\n"
            + "then reload the broker; or pass --no-verify to measure publishing only"
    }

    /// The `"tus":<µs>` field a load test adds after `ts`; nil when absent.
    static func microsField(_ payload: UnsafeRawBufferPointer) -> Int64? {
        let key: [UInt8] = Array(",\"tus\":".utf8)
        let count = payload.count
        guard count > key.count else { return nil }
        var i = 0
        // The field sits in the header, within the first 200 bytes.
        let limit = min(count - key.count, 200)
        outer: while i <= limit {
            for j in 0..<key.count where payload[i + j] != key[j] {
                i += 1
                continue outer
            }
            var j = i + key.count
            var value: Int64 = 0
            var digits = 0
            while j < count, payload[j] >= 48, payload[j] <= 57, digits < 18 {
                value = value * 10 + Int64(payload[j] - 48)
                j += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        return nil
    }
}
