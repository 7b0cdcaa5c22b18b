#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MosquittoKit
import Logging

/// What a device is beyond its readings: its firmware and boots, its battery, and what a
/// scenario does to it. Reactor-confined like the rest of the device.
struct DeviceBehaviourState {
    var firmware: String
    var bootCount = 1
    /// Why the device last started: `power_on`, `reboot`, `ota`, `rollback`, `battery`.
    var resetReason = "power_on"
    /// Added to the payloads' `ts` (`clock_skew`).
    var clockSkewMillis: Int64 = 0
    /// The interval before any `rate` event.
    var baseInterval: Duration = .zero
    var rateTimer: ReactorTimer?
    /// Powered off (rebooting, or an empty battery): no readings, no connection.
    var down = false
    /// The version an OTA update is installing.
    var otaTarget: String?
    var otaAttempts = 0
    var timers: [ReactorTimer] = []
    /// Sent right after the next birth (the outcome of an OTA update).
    var noticeAfterBoot: (topic: String, payload: [UInt8])?
    var shadow = ShadowDocument()
    var battery: BatteryState?
    /// Runs once the broker has acknowledged this message id (or after a bound): a reboot waits
    /// for its "rebooting" (or the command's reply) to be delivered, so it is not sent twice.
    var afterAck: (messageID: Int32, action: @Sendable (isolated Device) -> Void)?
    var rebootAfterReply = false
    var scenarioDisconnects = 0
    var reboots = 0
}

/// A battery's charge as it runs.
struct BatteryState {
    var spec: BatterySpec
    /// mAh left.
    var charge: Double
    var lastDrain: MonotonicInstant
    var empty = false
    /// The message id of the last gasp, whose PUBACK ends the connection.
    var lastGaspMID: Int32?

    var percent: Double { max(0, min(100, charge / spec.capacityMAh * 100)) }
    var volts: Double { spec.volts(atPercent: percent) }

    /// Idle drain (and solar charge) since the last call.
    mutating func advance(to now: MonotonicInstant) {
        let hours = now.seconds(since: lastDrain) / 3600
        lastDrain = now
        guard hours > 0 else { return }
        charge -= spec.idleMAhPerHour * hours
        if let recharge = spec.recharge {
            charge += recharge.rate(atHour: Self.localHourNow()) * hours
        }
        charge = min(charge, spec.capacityMAh)
    }

    /// The machine's local time of day in hours (TZ, else /etc/localtime, as `Calendar.current`
    /// had it), to the whole second: the C library's, since FoundationEssentials knows no zone
    /// but UTC.
    static func localHourNow() -> Double {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return 0 }
        return Double(parts.tm_hour) + Double(parts.tm_min) / 60 + Double(parts.tm_sec) / 3600
    }
}

extension Device {
    static let epsilon = 1e-9

    // MARK: Timers

    /// Runs `body` on this device after `seconds`; the timer is cancelled when the device stops.
    @discardableResult
    func after(_ seconds: Double, _ body: @escaping @Sendable (isolated Device) -> Void) -> ReactorTimer {
        let timer = reactor.schedule(after: .saturating(seconds: seconds)) { [weak self] in
            self?.assumeIsolated { body($0) }
        }
        // Only what may still be pending is kept for `cancelBehaviourTimers` (an OTA sets 7).
        if behaviour.timers.count >= 64 { behaviour.timers.removeFirst(32) }
        behaviour.timers.append(timer)
        return timer
    }

    func cancelBehaviourTimers() {
        for timer in behaviour.timers { timer.cancel() }
        behaviour.timers.removeAll()
        behaviour.rateTimer?.cancel()
    }

    // MARK: Status

    var jsonStatus: Bool { context.behaviour.statusFormat == .json }

    /// The birth: `online`, or with `status_format: json` the firmware, boot count and reset reason.
    var birthPayload: String {
        guard jsonStatus else { return "online" }
        return DeviceBehaviourJSON.string([
            "status": .string("online"), "firmware": .string(behaviour.firmware),
            "boot_count": .integer(Int64(behaviour.bootCount)), "reset_reason": .string(behaviour.resetReason),
        ])
    }

    /// What a clean stop leaves on the status topic.
    var offlinePayload: String {
        jsonStatus ? DeviceBehaviourJSON.string(["status": .string("offline"), "reason": .string("shutdown")]) : "offline"
    }

    /// Publishes a JSON event (QoS 1) on `topic`; false when there is no client.
    @discardableResult
    func publishJSON(_ topic: String, _ object: [String: JSONValue], retain: Bool = false) -> Int32? {
        guard let client = supervisor.client else { return nil }
        let bytes = DeviceBehaviourJSON.bytes(object)
        let result = bytes.withUnsafeBytes { client.publish(topic: topic, payload: $0, qos: 1, retain: retain) }
        switch result {
        case .success(let mid): return mid
        case .failure(let error):
            // Not connected: libmosquitto keeps a QoS 1 message and sends it after the reconnect.
            logger.debug("\(topic): \(error)")
            return nil
        }
    }

    // MARK: Boot and reboot

    /// Counts the power-on of this run (`BootCounts` keeps it across runs with --state-dir).
    func powerOn(bootCount: Int) {
        behaviour.bootCount = bootCount
        behaviour.baseInterval = schedule.interval
        if let spec = spec.battery {
            let battery = BatteryState(spec: spec, charge: spec.capacityMAh * spec.startPercent / 100, lastDrain: MonotonicInstant.now())
            behaviour.battery = battery
        }
    }

    /// The device goes down: no readings, the socket dropped without DISCONNECT (the broker
    /// sends the will), and after `offline` seconds it boots again — boot count + 1, readings
    /// resume, seq goes on, and the next connection's birth tells the new boot.
    /// - Parameters:
    ///   - reason: the reset reason the birth will carry.
    ///   - offline: seconds down; nil: `firmware.reboot_seconds`.
    ///   - beforeBoot: runs at the end of the window, before the device starts again (OTA: the new firmware).
    /// - Returns: why not, when the device is already down.
    @discardableResult
    func reboot(reason: String, offline: Double? = nil, beforeBoot: (@Sendable (isolated Device) -> Bool)? = nil) -> String? {
        guard !behaviour.down else { return "the device is rebooting or without power" }
        behaviour.down = true
        behaviour.reboots += 1
        schedule.stop()
        behaviour.rateTimer?.cancel()
        let seconds = offline ?? context.behaviour.firmware.rebootSeconds
        let until = MonotonicInstant.now().advanced(by: .saturating(seconds: seconds))
        supervisor.dropConnection(until: until)
        logger.info("rebooting", metadata: ["reason": "\(reason)", "offline_s": "\(seconds)"])
        after(seconds) { device in
            if let beforeBoot, !beforeBoot(device) { return }
            device.boot(reason: reason)
        }
        return nil
    }

    /// Starts again after a reboot: readings at the base interval, the connection when the hold ends.
    func boot(reason: String) {
        behaviour.down = false
        behaviour.bootCount = context.bootCounts.boot(spec.id)
        behaviour.resetReason = reason
        schedule.setInterval(behaviour.baseInterval)  // not producing: only sets it
        schedule.start(now: MonotonicInstant.now(), offset: .zero)
        supervisor.resume()
    }

    // MARK: OTA

    var otaTopic: String { spec.otaTopic }

    /// Starts an update to `version`: downloading (percent by quarters), verifying, rebooting,
    /// the offline window, then a birth with the new version — or, with the chance
    /// `firmware.failure_probability`, a failed first boot and a rollback to the old version.
    /// - Returns: why not.
    func startOTA(to version: String) -> String? {
        if behaviour.down { return "the device is rebooting" }
        if let target = behaviour.otaTarget { return "an update to \(target) is already in progress" }
        if version == behaviour.firmware { return "the device already runs \(version)" }
        if let problem = FirmwareVersion.problem(with: version) { return problem }
        behaviour.otaTarget = version
        behaviour.otaAttempts += 1
        let settings = context.behaviour.firmware
        let from = behaviour.firmware
        var rng = Xoshiro256StarStar(seed: SensorSeed.derive(fleetSeed: context.seed, deviceID: spec.id, sensorName: "ota-\(behaviour.otaAttempts)"))
        let fails = Double(rng.next() >> 11) / Double(1 << 53) < settings.failureProbability
        @Sendable func progress(_ state: String, _ extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
            ["state": .string(state), "version": .string(version), "from": .string(from)].merging(extra) { a, _ in a }
        }
        publishJSON(otaTopic, progress("downloading", ["percent": .integer(0)]))
        for quarter in 1...4 {
            after(settings.downloadSeconds * Double(quarter) / 4) { device in
                device.publishJSON(device.otaTopic, progress("downloading", ["percent": .integer(Int64(quarter * 25))]))
            }
        }
        after(settings.downloadSeconds) { device in device.publishJSON(device.otaTopic, progress("verifying")) }
        after(settings.downloadSeconds + settings.verifySeconds) { device in
            let mid = device.publishJSON(device.otaTopic, progress("rebooting"))
            device.whenAcknowledged(mid) { device in device.reboot(reason: "ota") { device in
                if fails {
                    // The new image boots, fails its health check, and the bootloader goes back.
                    _ = device.context.bootCounts.boot(device.spec.id)
                    device.behaviour.down = false
                    device.behaviour.otaTarget = nil
                    device.behaviour.noticeAfterBoot = (device.otaTopic, DeviceBehaviourJSON.bytes(
                        progress("rolled_back", ["error": .string("the new firmware failed its first boot"), "running": .string(from)])))
                    device.reboot(reason: "rollback")
                    return false
                }
                device.behaviour.firmware = version
                device.behaviour.otaTarget = nil
                device.behaviour.noticeAfterBoot = (device.otaTopic, DeviceBehaviourJSON.bytes(progress("done", ["running": .string(version)])))
                device.shadowFirmwareChanged()
                return true
            } }
        }
        return nil
    }

    /// Runs `action` once the broker has acknowledged `messageID` (at most 2 s later; at once
    /// when there is no message or no connection).
    func whenAcknowledged(_ messageID: Int32?, _ action: @escaping @Sendable (isolated Device) -> Void) {
        guard let messageID, isConnected else { action(self); return }
        behaviour.afterAck = (messageID, action)
        after(2) { device in
            guard let pending = device.behaviour.afterAck, pending.messageID == messageID else { return }
            device.behaviour.afterAck = nil
            pending.action(device)
        }
    }

    func acknowledged(_ messageID: Int32) {
        guard let pending = behaviour.afterAck, pending.messageID == messageID else { return }
        behaviour.afterAck = nil
        pending.action(self)
    }

    // MARK: Scenario actions

    /// Carries out one scenario action; returns why not (the device is then listed as refused).
    func perform(_ action: ScenarioAction) -> String? {
        switch action {
        case .disconnect(let seconds):
            if behaviour.down { return "the device is rebooting or without power" }
            behaviour.scenarioDisconnects += 1
            supervisor.dropConnection(until: MonotonicInstant.now().advanced(by: .saturating(seconds: seconds)))
            return nil
        case .reboot(let seconds):
            return reboot(reason: "reboot", offline: seconds)
        case .rate(let factor, let seconds):
            if behaviour.down { return "the device is rebooting or without power" }
            behaviour.rateTimer?.cancel()
            schedule.setInterval(.saturating(seconds: behaviour.baseInterval.seconds / factor))
            if let seconds {
                behaviour.rateTimer = after(seconds) { device in
                    guard !device.behaviour.down else { return }
                    device.schedule.setInterval(device.behaviour.baseInterval)
                }
            }
            return nil
        case .ota(let version):
            return startOTA(to: version)
        case .rotateCertificate:
            return reloadCredentials()
        case .clockSkew(let seconds):
            behaviour.clockSkewMillis = Int64((seconds * 1000).rounded())
            return nil
        case .fault(let fault):
            return applyScenarioFault(fault)
        }
    }

    /// Starts a scenario's `fault` on this device's sensor through the sensor-fault machinery
    /// (`Device.startFault`): from the next reading, labelled `"source":"runtime"` in the labels
    /// file. Without a `duration` it lasts until the run ends.
    func applyScenarioFault(_ fault: ScenarioFault) -> String? {
        let p = fault.parameters
        let kind: FaultSpec.Kind
        switch fault.kind {
        case "stuck": kind = .stuck
        case "drift": kind = .drift(rate: p["rate"] ?? 0)
        case "offset": kind = .offset(amount: p["amount"] ?? 0)
        case "spike": kind = .spike(factor: p["factor"], amount: p["factor"] == nil ? p["amount"] : nil)
        case "dropout": kind = .dropout
        case "noise": kind = .noise(sigma: p["sigma"] ?? 0)
        case "out_of_range": kind = .outOfRange(value: p["value"] ?? 0)
        default: return "unknown fault kind \(fault.kind)"
        }
        let started = startFault(kind, sensor: fault.sensor, duration: fault.duration ?? Self.untilTheRunEnds)
        return started.isEmpty ? "no sensor named \(fault.sensor)" : nil
    }

    /// A fault without a `duration`: longer than any run (a year).
    static let untilTheRunEnds: Double = 366 * 86_400

    // MARK: Battery

    /// Before a reading: idle drain since the last one, then the cost of this publish. Returns
    /// false when the charge cannot pay for it: the device sends its last gasp and goes silent.
    func batteryAllowsReading(now: MonotonicInstant) -> Bool {
        guard var battery = behaviour.battery else { return true }
        defer { behaviour.battery = battery }
        guard !battery.empty else { return false }
        battery.advance(to: now)
        if battery.charge + Self.epsilon < battery.spec.publishMAh {
            battery.charge = max(0, battery.charge)
            behaviour.battery = battery
            lastGasp()
            battery = behaviour.battery!
            return false
        }
        battery.charge -= battery.spec.publishMAh
        return true
    }

    func batteryConnected() {
        guard behaviour.battery != nil else { return }
        behaviour.battery!.charge -= behaviour.battery!.spec.connectMAh
    }

    /// At empty: a last-gasp status (retained), then, once the broker has it, the socket is
    /// dropped without DISCONNECT so the broker sends the will; no readings, no reconnects.
    func lastGasp() {
        guard var battery = behaviour.battery, !battery.empty else { return }
        battery.empty = true
        behaviour.down = true
        schedule.stop()
        let status: [String: JSONValue] = ["status": .string("battery_empty"), battery.spec.sensor: .number(battery.volts),
                                           "firmware": .string(behaviour.firmware)]
        battery.lastGaspMID = isConnected ? spec.statusTopic.flatMap { publishJSON($0, status, retain: true) } : nil
        behaviour.battery = battery
        logger.info("battery empty: last gasp, then silence")
        if battery.lastGaspMID == nil { goSilent() } else {
            // The PUBACK ends the connection (`batteryPublishCompleted`); this is the bound.
            after(5) { $0.goSilent() }
        }
        if battery.spec.recharge != nil { checkRecharge() }
    }

    func batteryPublishCompleted(_ messageID: Int32) {
        acknowledged(messageID)
        if let mid = behaviour.battery?.lastGaspMID, mid == messageID { goSilent() }
    }

    private func goSilent() {
        behaviour.battery?.lastGaspMID = nil
        supervisor.dropConnection(until: .forever)
    }

    /// An empty battery with solar charging wakes up at 5 % charge (reset reason `battery`).
    private func checkRecharge() {
        after(10) { device in
            guard var battery = device.behaviour.battery, battery.empty else { return }
            battery.advance(to: MonotonicInstant.now())
            battery.charge = max(0, battery.charge)
            if battery.percent >= 5 {
                battery.empty = false
                device.behaviour.battery = battery
                device.boot(reason: "battery")
            } else {
                device.behaviour.battery = battery
                device.checkRecharge()
            }
        }
    }
}

/// Small JSON documents for status, OTA and shadow messages: keys sorted, slashes unescaped.
enum DeviceBehaviourJSON {
    static func bytes(_ object: [String: JSONValue]) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(JSONValue.object(object))).map(Array.init) ?? Array("{}".utf8)
    }

    static func string(_ object: [String: JSONValue]) -> String {
        String(decoding: bytes(object), as: UTF8.self)
    }
}
