import Logging
import MosquittoKit

/// One device: an actor whose executor is its reactor, so its state is confined to the thread
/// that owns its MQTT client — checked by the compiler for the code inside it, and at run time
/// (`assumeIsolated`) where the reactor calls in (the client's callbacks). No hop per message.
///
/// It wires four parts, each with one job: `ReadingSchedule` (when), the sensors and the payload
/// (what), `Delivery` (outbox, in-flight, PUBACKs: the session side) and `ConnectionSupervisor`
/// (backoff, gate, rate limit, identity). It is the client's delegate, routes commands
/// (`Device+Commands.swift`) and builds the snapshot.
actor Device: MQTTClientDelegate {
    nonisolated let spec: DeviceSpec
    nonisolated let reactor: Reactor
    nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }

    let context: FleetContext
    let logger: Logger
    let schedule: ReadingSchedule
    let delivery: Delivery
    let supervisor: ConnectionSupervisor
    /// Internal (not private) for `Device+Faults.swift`.
    var sensors: [DeviceSensor]
    /// Publishes fault label records (`labels_topic`); nil without one.
    let faultLabelPublisher: FaultLabelPublisher?
    /// `payload: sparkplug_b`: the edge node's births, deaths and seq (Sparkplug/); nil: JSON.
    let sparkplug: SparkplugNode?
    private let format: TelemetryFormat
    private var payloadBuffer: [UInt8] = []
    private(set) var readings: [(name: String, value: Double)] = []
    private var reportedSensorErrors: Set<String> = []
    private(set) var seq: UInt64 = 0
    private(set) var sensorErrors = 0
    var commandsReceived = 0
    private(set) var startedAt = MonotonicInstant.zero
    /// Firmware, boots, battery, shadow, scenario effects (`Device+Behaviour.swift`).
    var behaviour: DeviceBehaviourState

    init(spec: DeviceSpec, context: FleetContext, reactor: Reactor) {
        self.spec = spec
        self.reactor = reactor
        self.context = context
        var logger = context.logger
        logger[metadataKey: "device"] = "\(spec.id)"
        self.logger = logger
        var labels: FaultLabelWriter?
        if let path = spec.faultLabels {
            switch FaultLabelWriter.open(path: path) {
            case .success(let writer): labels = writer
            case .failure(let error): logger.error("no fault labels: \(error)")
            }
        }
        behaviour = DeviceBehaviourState(firmware: spec.firmware)
        let publisher = spec.faultLabelsTopic.map { _ in FaultLabelPublisher() }
        faultLabelPublisher = publisher
        sensors = spec.sensors.map {
            DeviceSensor(spec: $0, fleetSeed: context.seed, deviceID: spec.id, sysfsRoot: spec.sysfsRoot, labels: labels,
                         publisher: publisher)
        }
        readings.reserveCapacity(spec.sensors.count)
        let publishing = context.publishing
        format = publishing.format
        let interval: Duration
        switch publishing.pace {
        case .deviceInterval, .asFastAsAcknowledged: interval = .saturating(seconds: spec.interval)
        case .every(let every): interval = every
        }
        schedule = ReadingSchedule(
            interval: interval, unpaced: publishing.pace == .asFastAsAcknowledged,
            limit: publishing.messagesPerDevice.map { UInt64(max(0, $0)) } ?? .max,
            reactor: reactor, counters: context.counters)
        sparkplug = spec.sparkplug.map { SparkplugNode(settings: $0, deviceID: spec.id, sensors: spec.sensors, logger: logger) }
        delivery = Delivery(
            deviceID: spec.id, topic: spec.topic, qos: sparkplug == nil ? publishing.qos ?? spec.qos : 0, outbox: context.outbox,
            window: context.maxInflight,
            ackTimeout: .saturating(seconds: context.outbox.ackTimeout ?? Double(context.broker.keepAlive)),
            reactor: reactor, counters: context.counters, logger: logger)
        supervisor = ConnectionSupervisor(spec: spec, context: context, reactor: reactor, logger: logger)
        if context.broker.protocolVersion == .v5 {
            let wanted = spec.telemetryProperties
            if wanted.hasProperties {
                do throws(MosquittoError) {
                    delivery.properties = try MQTTPublishProperties(
                        messageExpiry: wanted.messageExpiry, contentType: wanted.contentType,
                        userProperties: wanted.userProperties.map { (name: $0.name, value: $0.value) })
                } catch {
                    logger.warning("MQTT 5 telemetry properties left out: \(error)")
                }
            }
            delivery.topicAlias = wanted.topicAlias
        }
    }

    /// Takes over what an earlier run left: the seq goes on from its last one, and its
    /// unacknowledged messages become the backlog. Before `start()`.
    func restore(_ state: DurableOutbox.Restored) {
        seq = state.lastSeq
        delivery.restore(state.backlog, now: MonotonicInstant.now())
    }

    // MARK: Life cycle

    /// Starts readings (the first at a random point of the first interval, so a fleet does not
    /// publish in lock-step) and the first connection attempt.
    /// - Parameter durable: the reactor's writer into the durable outbox, shared by the devices
    ///   of this reactor (so one transaction per turn carries them all).
    func start(durable: ReactorBound<DurableOutboxWriter>?, bootCount: Int = 1) {
        delivery.durable = durable?.value
        if let sparkplug {
            sparkplug.useStateDirectory(durable?.value.store.stateDirectory?.path, deviceID: spec.id)
            delivery.stamp = sparkplug
            supervisor.nextWill = { sparkplug.nextWill() }
        }
        powerOn(bootCount: bootCount)
        schedule.produce = { [unowned self] now in self.produceReading(now: now) }
        schedule.afterTick = { [unowned self] now in
            self.delivery.expire(now: now)
            self.pump()
        }
        delivery.readingOnDemand = { [unowned self] in
            guard self.schedule.wantsReadingOnDemand else { return false }
            self.produceReading(now: MonotonicInstant.now())
            return true
        }
        supervisor.delegate = self
        faultLabelPublisher?.send = { [unowned self] record in self.publishLabel(record) }
        supervisor.batchWrites = schedule.isFast
        startedAt = MonotonicInstant.now()
        var rng = SystemRandomNumberGenerator()
        let offset = Duration.nanoseconds(Int64.random(in: 0..<Int64(clamping: max(1, schedule.interval.saturatingNanoseconds)), using: &rng))
        schedule.start(now: startedAt, offset: offset)
        supervisor.start()
    }

    /// Stops readings; what is queued keeps going out, and a device that is offline keeps
    /// reconnecting (with its backoff) until `disconnect()`, so a stop can drain its outbox.
    func stopProducing() {
        schedule.stop()
        cancelBehaviourTimers()
        // A simulated outage (scenario, reboot) ends with the run, so what is queued can drain;
        // an empty battery stays empty.
        if behaviour.battery?.empty != true { supervisor.resume() }
    }

    var isConnected: Bool { supervisor.isConnected }
    var isClosed: Bool { supervisor.isClosed }
    /// Nothing left to send, or nothing will get it out (a failure that does not fix itself).
    var isSettled: Bool {
        delivery.pending == 0 || (!isConnected && (supervisor.isFailing || behaviour.battery?.empty == true))
    }

    /// Publishes the retained `offline` status, or a Sparkplug node's NDEATH (a clean DISCONNECT
    /// suppresses the will), and disconnects.
    func disconnect() {
        schedule.stop()
        cancelBehaviourTimers()
        supervisor.stop {
            if sparkplug != nil { publishSparkplugDeath() } else { publishStatus(offlinePayload) }
        }
    }

    /// Counts what never reached the broker (kept on disk, or dropped) and frees the client.
    func finish() {
        delivery.transport = nil
        delivery.finish()
        supervisor.finish()
    }

    func snapshot() -> DeviceSnapshot {
        DeviceSnapshot(
            id: spec.id, connected: isConnected, accepted: delivery.accepted, acknowledged: delivery.acknowledged,
            dropped: delivery.dropped, lastSeq: seq, queued: delivery.queued, inflight: delivery.inflightCount,
            attempts: supervisor.attempts, connects: supervisor.connects, errors: supervisor.errors,
            lastError: supervisor.lastErrorText, failing: supervisor.isFailing, sensorErrors: sensorErrors,
            droppedByReason: Dictionary(uniqueKeysWithValues: delivery.dropCounts.map { ($0.key.rawValue, $0.value) })
        )
    }

    // MARK: Readings

    /// Reads every sensor, makes the payload and hands it to delivery.
    func produceReading(now: MonotonicInstant) {
        guard batteryAllowsReading(now: now) else { return }
        let elapsed = now.seconds(since: startedAt)
        readings.removeAll(keepingCapacity: true)
        // One clock read per reading: the payload's time and the fault labels' time are the same.
        let wallMicros = WallClock.micros()
        let moment = ReadingMoment(elapsed: elapsed, seq: seq + 1, wallMillis: wallMicros / 1000)
        for i in sensors.indices {
            if let error = sensors[i].read(moment, into: &readings) { sensorFailed(sensors[i].name, error) }
        }
        if let battery = behaviour.battery { readings.append((battery.spec.sensor, battery.volts)) }
        seq += 1
        schedule.noteReading()
        // A scenario's clock_skew shifts what the payload says, not the labels' ground truth.
        let skewMicros = behaviour.clockSkewMillis * 1000
        if let sparkplug {
            payloadBuffer = sparkplug.dataPayload(deviceSeq: seq, readings: readings,
                                                  timestampMillis: PayloadFormat.millis(wallMicros + skewMicros))
        } else {
            (format.payload ?? spec.payload).encode(
                device: spec.id, seq: seq, timestampMicros: wallMicros + skewMicros, readings: readings, extras: format,
                into: &payloadBuffer)
        }
        delivery.enqueue(Outbox.Entry(seq: seq, payload: payloadBuffer, enqueuedAt: now))
    }

    /// A failed read is skipped: the message goes out without that reading. Each distinct
    /// failure is logged once, then only counted.
    private func sensorFailed(_ name: String, _ error: SensorReadError) {
        sensorErrors += 1
        if reportedSensorErrors.count < 100, reportedSensorErrors.insert("\(name): \(error)").inserted {
            logger.warning("sensor \(name): reading skipped: \(error)")
        }
    }

    /// Hands what is queued to the connection; during a certificate renewal nothing more goes
    /// out, and the connection is closed once the broker has acknowledged everything.
    func pump() {
        guard let client = supervisor.client, client.isConnected else { return }
        delivery.isHeld = supervisor.renewing
        if supervisor.renewing {
            if delivery.inflightCount == 0 {
                if sparkplug != nil { publishSparkplugDeath() }  // DISCONNECT drops the will
                client.disconnect()
            }
            return
        }
        delivery.pump()
    }

    func publishStatus(_ status: String) {
        guard let client = supervisor.client, let topic = spec.statusTopic else { return }
        _ = Array(status.utf8).withUnsafeBytes { raw in
            client.publish(topic: topic, payload: raw, qos: 1, retain: true)
        }
    }

    /// Re-reads the certificate and key; see `ConnectionSupervisor.reloadCredentials`.
    func reloadCredentials() -> String? {
        let error = supervisor.reloadCredentials()
        if error == nil { pump() }
        return error
    }

    // MARK: The client's delegate (called by the reactor, on this actor's executor)

    nonisolated func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool) {
        assumeIsolated { $0.didConnect(sessionPresent: sessionPresent) }
    }

    nonisolated func clientDidClose(_ client: MQTTClient, error: MosquittoError?) {
        assumeIsolated { $0.didClose(error: error) }
    }

    nonisolated func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int) {
        assumeIsolated { $0.didCompletePublish(messageID: messageID, reasonCode: reasonCode) }
    }

    nonisolated func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer) {
        let bytes = Array(payload)
        assumeIsolated { $0.didReceive(topic: topic, payload: bytes, responseTopic: nil, correlationData: nil) }
    }

    nonisolated func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer,
                            responseTopic: String?, correlationData: [UInt8]?) {
        let bytes = Array(payload)
        assumeIsolated { $0.didReceive(topic: topic, payload: bytes, responseTopic: responseTopic, correlationData: correlationData) }
    }

    private func didConnect(sessionPresent: Bool) {
        guard let client = supervisor.client else { return }
        supervisor.connected(client)
        delivery.transport = client
        logger.debug("connected", metadata: ["session_present": "\(sessionPresent)"])
        let connack = client.connack
        if let keepAlive = connack.serverKeepAlive, keepAlive != client.options.keepAlive {
            logger.info("the broker set the keep-alive", metadata: ["server_keep_alive": "\(keepAlive)", "ours": "\(client.options.keepAlive)"])
        }
        if let assigned = connack.assignedClientID {
            logger.info("the broker assigned a client id", metadata: ["assigned_client_id": "\(assigned)"])
        }
        if let granted = connack.sessionExpiry, granted != client.options.sessionExpiry {
            logger.info("the broker set the session expiry", metadata: ["session_expiry": "\(granted)"])
        }
        batteryConnected()
        if let sparkplug {
            // NCMD first: a rebirth asked for right after the birth is not missed.
            client.subscribe(sparkplug.commandTopic, qos: 1)
            publishSparkplugBirth()
        } else {
            publishStatus(birthPayload)
        }
        client.subscribe(commandsTopic, qos: 1)
        shadowConnected(client)
        if let notice = behaviour.noticeAfterBoot {
            behaviour.noticeAfterBoot = nil
            _ = notice.payload.withUnsafeBytes { client.publish(topic: notice.topic, payload: $0, qos: 1) }
        }
        delivery.brokerReceiveMaximum = connack.receiveMaximum
        delivery.connectionUp()
        pump()
    }

    private func didClose(error: MosquittoError?) {
        delivery.connectionDown()
        supervisor.closed(error: error)
    }

    private func didCompletePublish(messageID: Int32, reasonCode: Int) {
        if let refusal = delivery.didComplete(messageID: messageID, reasonCode: reasonCode) {
            supervisor.note(error: refusal, prefix: "")
        }
        batteryPublishCompleted(messageID)
        pump()
    }
}
