import MosquittoKit
import Logging

/// Commands (see `DeviceCommands` for the protocol), carried out on the device's reactor.
extension Device {
    var commandsTopic: String { spec.commandsTopic }
    var repliesTopic: String { spec.repliesTopic }

    /// A message on the commands topic: carry it out and reply.
    func didReceive(topic: String, payload: [UInt8], responseTopic: String?, correlationData: [UInt8]?) {
        if let sparkplug, topic == sparkplug.commandTopic { return didReceiveSparkplugCommand(payload) }
        if shadowReceived(topic: topic, payload: payload) {
            pump()
            return
        }
        guard spec.isCommand(topic), let client = supervisor.client else { return }
        commandsReceived += 1
        let reply = handleCommand(payload)
        // A response topic outside this device's own topics would be refused by the ACL.
        let replyTopic = responseTopic.flatMap {
            $0.hasPrefix("devices/\(spec.id)/") && !$0.contains("+") && !$0.contains("#") ? $0 : nil
        } ?? repliesTopic
        let result = reply.withUnsafeBytes { raw in
            client.publish(topic: replyTopic, payload: raw, qos: 1, correlationData: correlationData)
        }
        if case .failure(let error) = result { logger.warning("cannot send the reply on \(replyTopic): \(error)") }
        if behaviour.rebootAfterReply {
            // The reply is delivered first; then the device goes down.
            behaviour.rebootAfterReply = false
            whenAcknowledged(try? result.get()) { $0.reboot(reason: "reboot") }
        }
        pump()
    }

    /// Carries out one request; returns the reply's JSON bytes.
    func handleCommand(_ payload: [UInt8]) -> [UInt8] {
        let name: String, request: DeviceCommands.Request
        switch DeviceCommands.parse(payload) {
        case .failure(let refusal): return DeviceCommands.refusal(refusal)
        case .success(let parsed): (name, request) = parsed
        }
        func reply<R: Encodable>(_ result: R) -> [UInt8] {
            DeviceCommands.encode(DeviceCommands.Reply(id: request.id, command: name, ok: true, result: result))
        }
        let uptime = DeviceCommands.round3(MonotonicInstant.now().seconds(since: startedAt))
        switch name {
        case "ping":
            return reply(DeviceCommands.Ping(device: spec.id, uptime_s: uptime))
        case "read-now":
            produceReading(now: MonotonicInstant.now())
            var values: [String: Double] = [:]
            for entry in readings { values[entry.name] = entry.value }
            return reply(DeviceCommands.ReadNow(seq: seq, readings: values))
        case "set-interval":
            guard let seconds = DeviceCommands.interval(of: request) else {
                return DeviceCommands.refusal(.init(id: request.id, command: name, message: DeviceCommands.intervalError))
            }
            let previous = schedule.interval.seconds
            schedule.setInterval(.saturating(seconds: seconds))
            behaviour.baseInterval = .saturating(seconds: seconds)
            return reply(DeviceCommands.SetInterval(interval: seconds, previous: previous))
        case "get-config":
            return reply(DeviceCommands.Config(
                id: spec.id, interval: schedule.interval.seconds, qos: delivery.qos, topic: spec.topic,
                broker: "\(context.broker.host):\(context.broker.port)",
                protocol: context.broker.protocolVersion.rawValue,
                sensors: spec.sensors.map { .init(name: $0.name, type: $0.kind.typeName, unit: $0.unit) }))
        case "reboot":
            // The reply goes out first; the reboot starts once the broker has it (`didReceive`).
            if behaviour.down { return DeviceCommands.refusal(.init(id: request.id, command: name, message: "the device is rebooting")) }
            let seconds = context.behaviour.firmware.rebootSeconds
            behaviour.rebootAfterReply = true
            return reply(DeviceCommands.Reboot(offline_s: seconds, boot_count: behaviour.bootCount + 1))
        case "ota":
            guard case .string(let version)? = request.version else {
                return DeviceCommands.refusal(.init(id: request.id, command: name, message: "ota needs `version`: the new firmware version as text, e.g. \"2.0.0\""))
            }
            let from = behaviour.firmware
            if let problem = startOTA(to: version) { return DeviceCommands.refusal(.init(id: request.id, command: name, message: problem)) }
            return reply(DeviceCommands.OTA(version: version, from: from, progress_topic: otaTopic))
        default:  // get-stats (the names were checked)
            let s = snapshot()
            return reply(DeviceCommands.Stats(
                connected: s.connected, published: s.accepted, acknowledged: s.acknowledged, dropped: s.dropped,
                last_seq: s.lastSeq, queued: s.queued, inflight: s.inflight, attempts: s.attempts,
                connects: s.connects, errors: s.errors, sensor_errors: s.sensorErrors, uptime_s: uptime,
                firmware: behaviour.firmware, boot_count: behaviour.bootCount, reset_reason: behaviour.resetReason,
                battery_percent: behaviour.battery.map { DeviceCommands.round3($0.percent) }))
        }
    }
}

extension SensorKind {
    /// The name device.yaml uses for this kind of sensor.
    var typeName: String {
        switch self {
        case .constant: "constant"
        case .uniform: "uniform"
        case .gaussian: "gaussian"
        case .randomWalk: "random_walk"
        case .sine: "sine"
        case .counter: "counter"
        case .system(let source, _, _): source.typeName
        case .route: "route"
        case .thermal: "thermal"
        case .diurnal: "diurnal"
        case .replay: "replay"
        }
    }
}
