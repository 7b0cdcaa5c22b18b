#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MosquittoKit
import Logging

/// A device's shadow document: what the back end wants (`desired`), what the device has
/// (`reported`), and a version that goes up with every change.
struct ShadowDocument {
    var desired: [String: JSONValue] = [:]
    var reported: [String: JSONValue] = [:]
    var version: Int64 = 0

    /// Desired keys whose value the device does not report (yet).
    var delta: [String: JSONValue] {
        desired.filter { reported[$0.key] != $0.value }
    }
}

/// The shadow (`shadow:` in fleet.yaml). With the generic preset the device keeps the document
/// itself, since a plain broker has no shadow service:
///
/// | topic under `devices/{id}/shadow/` | who | payload |
/// |---|---|---|
/// | `update` | back end → device | `{"state": {"desired": {"interval": 2}}}` |
/// | `update/delta` | device | `{"state": {"interval": 2}, "version": 7}` |
/// | `update/accepted` | device | `{"state": {"reported": {"interval": 2}}, "version": 8}` |
/// | `update/rejected` | device | `{"code": 400, "message": "…"}` |
/// | `get` → `get/accepted` | back end → device → | the whole document and its version |
///
/// With the AWS IoT preset the service keeps the document: the device reports on
/// `$aws/things/{id}/shadow/update`, asks `/get` after each connect, and applies what arrives on
/// `/update/delta` and in `/get/accepted`'s `delta`.
extension Device {
    var shadowBase: String? { context.behaviour.shadow?.base(spec.id) }

    /// After CONNACK: subscribe, and (AWS) report the state and ask for the document.
    func shadowConnected(_ client: MQTTClient) {
        guard let shadow = context.behaviour.shadow, let base = shadowBase else { return }
        if behaviour.shadow.reported.isEmpty { behaviour.shadow.reported = currentReported() }
        switch shadow.preset {
        case .generic:
            _ = client.subscribe("\(base)/update", qos: 1)
            _ = client.subscribe("\(base)/get", qos: 1)
        case .aws:
            _ = client.subscribe("\(base)/update/delta", qos: 1)
            _ = client.subscribe("\(base)/update/accepted", qos: 1)
            _ = client.subscribe("\(base)/get/accepted", qos: 1)
            publishJSON("\(base)/update", ["state": .object(["reported": .object(currentReported())])])
            _ = [UInt8]().withUnsafeBytes { client.publish(topic: "\(base)/get", payload: $0, qos: 1) }
        }
    }

    /// What the device can report: interval, firmware and each settable sensor's value.
    func currentReported() -> [String: JSONValue] {
        var state: [String: JSONValue] = [
            "interval": .number(behaviour.baseInterval.seconds), "firmware": .string(behaviour.firmware),
        ]
        for sensor in spec.sensors {
            if case .constant(let value) = sensor.kind { state[sensor.name] = .number(value) }
        }
        return state
    }

    /// A message on one of the shadow topics; false when `topic` is not one.
    func shadowReceived(topic: String, payload: [UInt8]) -> Bool {
        guard let shadow = context.behaviour.shadow, let base = shadowBase, topic.hasPrefix(base + "/") else { return false }
        let suffix = topic.dropFirst(base.count + 1)
        let object: [String: JSONValue]? = {
            guard let value = try? JSONDecoderShared.decode(payload), case .object(let object) = value else { return nil }
            return object
        }()
        switch (shadow.preset, suffix) {
        case (.generic, "update"):
            guard let object, case .object(let state)? = object["state"] else {
                publishJSON("\(base)/update/rejected", ["code": .integer(400), "message": .string("expected {\"state\": {\"desired\": {…}}}")])
                return true
            }
            guard case .object(let desired)? = state["desired"] else { return true }  // a reported-only update: nothing to do
            for (key, value) in desired {
                if value == .null { behaviour.shadow.desired.removeValue(forKey: key) } else { behaviour.shadow.desired[key] = value }
            }
            behaviour.shadow.version += 1
            let delta = behaviour.shadow.delta
            guard !delta.isEmpty else { return true }
            publishJSON("\(base)/update/delta", ["state": .object(delta), "version": .integer(behaviour.shadow.version)])
            let applied = applyDesired(delta)
            reportGeneric(applied)
        case (.generic, "get"):
            let doc = behaviour.shadow
            publishJSON("\(base)/get/accepted", [
                "state": .object(["desired": .object(doc.desired), "reported": .object(doc.reported), "delta": .object(doc.delta)]),
                "version": .integer(doc.version),
            ])
        case (.aws, "update/delta"):
            guard let object, case .object(let state)? = object["state"] else { return true }
            if case .integer(let version)? = object["version"] { behaviour.shadow.version = version }
            reportAWS(applyDesired(state))
        case (.aws, "get/accepted"):
            guard let object, case .object(let state)? = object["state"] else { return true }
            if case .integer(let version)? = object["version"] { behaviour.shadow.version = version }
            if case .object(let delta)? = state["delta"] { reportAWS(applyDesired(delta)) }
        case (.aws, "update/accepted"):
            if let object, case .integer(let version)? = object["version"] { behaviour.shadow.version = version }
        default:
            break
        }
        return true
    }

    private func reportGeneric(_ applied: [String: JSONValue]) {
        guard !applied.isEmpty, let base = shadowBase else { return }
        for (key, value) in applied { behaviour.shadow.reported[key] = value }
        behaviour.shadow.version += 1
        publishJSON("\(base)/update/accepted", ["state": .object(["reported": .object(applied)]), "version": .integer(behaviour.shadow.version)])
    }

    private func reportAWS(_ applied: [String: JSONValue]) {
        guard !applied.isEmpty, let base = shadowBase else { return }
        for (key, value) in applied { behaviour.shadow.reported[key] = value }
        publishJSON("\(base)/update", ["state": .object(["reported": .object(applied)])])
    }

    /// After an OTA update: the new firmware is reported.
    func shadowFirmwareChanged() {
        guard let shadow = context.behaviour.shadow else { return }
        let applied: [String: JSONValue] = ["firmware": .string(behaviour.firmware)]
        switch shadow.preset {
        case .generic: reportGeneric(applied)
        case .aws: reportAWS(applied)
        }
    }

    /// Applies what can be applied: `interval` (seconds, 0.05–86400), `firmware` (starts an
    /// OTA update; reported once it has booted), and the value of a `constant` sensor (its
    /// setpoint). Returns what is now in force; the rest stays in the delta.
    func applyDesired(_ delta: [String: JSONValue]) -> [String: JSONValue] {
        var applied: [String: JSONValue] = [:]
        for (key, value) in delta {
            switch key {
            case "interval":
                guard let seconds = value.number, DeviceCommands.intervalRange.contains(seconds) else { continue }
                behaviour.baseInterval = .saturating(seconds: seconds)
                if !behaviour.down { schedule.setInterval(behaviour.baseInterval) }
                applied[key] = .number(seconds)
            case "firmware":
                guard case .string(let version) = value, version != behaviour.firmware else { continue }
                if let problem = startOTA(to: version) { logger.info("shadow: firmware \(version) not started: \(problem)") }
            default:
                // A setpoint: the value of a `constant` sensor by its name, and the target of a
                // `thermal` room (by the key `setpoint` or the room sensor's own name).
                guard let number = value.number, number.isFinite, abs(number) <= SettingRange.reading.upper else { continue }
                var used = false
                if let index = spec.sensors.firstIndex(where: { $0.name == key }), case .constant = spec.sensors[index].kind,
                   let at = sensors.firstIndex(where: { $0.name == key }) {
                    var sensorSpec = spec.sensors[index]
                    sensorSpec.kind = .constant(value: number)
                    sensors[at] = DeviceSensor(spec: sensorSpec, fleetSeed: context.seed, deviceID: spec.id, sysfsRoot: spec.sysfsRoot)
                    used = true
                }
                for i in sensors.indices where key == "setpoint" || sensors[i].name == key {
                    if sensors[i].setSetpoint(number) { used = true }
                }
                if used { applied[key] = .number(number) }
            }
        }
        return applied
    }
}

/// A JSON decoder for incoming shadow documents.
enum JSONDecoderShared {
    static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
