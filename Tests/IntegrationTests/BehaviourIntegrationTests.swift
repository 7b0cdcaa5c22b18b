import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

private func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

private func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

/// Messages on `topic`, decoded.
private func on(_ subscriber: Subscriber, _ topic: String) -> [[String: Any]] {
    subscriber.messages().filter { $0.topic == topic }.compactMap { json($0.payload) }
}

/// Broker log times (whole seconds) of lines containing `text`.
private func logTimes(_ fleet: TestFleet, _ text: String) -> [Int] {
    fleet.broker.log().split(separator: "\n").filter { $0.contains(text) }.compactMap { Int($0.prefix { $0.isNumber }) }
}

@Suite("Device behaviour over a real mosquitto: shadow, reboot, OTA, battery", .serialized)
struct BehaviourIntegrationTests {
    @Test("shadow (generic topics): desired → delta → reported with version + 1, and get, at MQTT 3.1.1 and 5",
          arguments: ["3.1.1", "5"])
    func genericShadow(protocolVersion: String) async throws {
        let id = "shadow-\(protocolVersion == "5" ? "5" : "3")"
        let fleet = try TestFleet(devices: [id], interval: 60, protocolVersion: protocolVersion,
                                  fleetExtra: "shadow:\n  preset: generic")
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/\(id)/shadow/#", "devices/\(id)/telemetry"])
        let runner = try fleet.makeFleet()
        await runner.start()
        // Three subscriptions: commands, shadow/update, shadow/get.
        #expect(await waitFor(20) { fleet.broker.log().components(separatedBy: "Received SUBSCRIBE from \(id)").count - 1 >= 3 })

        try fleet.publishAsObserver("devices/\(id)/shadow/update", #"{"state": {"desired": {"interval": 0.25, "colour": "red"}}}"#)
        #expect(await waitFor(10) { !on(subscriber, "devices/\(id)/shadow/update/accepted").isEmpty })
        let delta = try #require(on(subscriber, "devices/\(id)/shadow/update/delta").first)
        let deltaState = try #require(delta["state"] as? [String: Any])
        #expect(number(deltaState["interval"]) == 0.25)
        #expect(deltaState["colour"] as? String == "red")
        let deltaVersion = try #require((delta["version"] as? NSNumber)?.intValue)
        let accepted = try #require(on(subscriber, "devices/\(id)/shadow/update/accepted").first)
        #expect((accepted["version"] as? NSNumber)?.intValue == deltaVersion + 1)
        let reported = try #require((accepted["state"] as? [String: Any])?["reported"] as? [String: Any])
        #expect(number(reported["interval"]) == 0.25)
        #expect(reported["colour"] == nil, "a key the device cannot apply is not reported")
        // Applied: readings now every 0.25 s instead of every 60 s.
        #expect(await waitFor(10) { (subscriber.sequences()[id]?.count ?? 0) >= 5 })

        try fleet.publishAsObserver("devices/\(id)/shadow/get", "{}")
        #expect(await waitFor(10) { !on(subscriber, "devices/\(id)/shadow/get/accepted").isEmpty })
        let document = try #require(on(subscriber, "devices/\(id)/shadow/get/accepted").first)
        #expect((document["version"] as? NSNumber)?.intValue == deltaVersion + 1)
        let state = try #require(document["state"] as? [String: Any])
        #expect(number((state["reported"] as? [String: Any])?["interval"]) == 0.25)
        #expect((state["delta"] as? [String: Any])?.keys.sorted() == ["colour"])

        try fleet.publishAsObserver("devices/\(id)/shadow/update", "not json")
        #expect(await waitFor(10) { !on(subscriber, "devices/\(id)/shadow/update/rejected").isEmpty })
        let summary = await runner.stop()
        #expect(summary.totals.dropped == 0)
    }

    @Test("shadow: a desired setpoint is applied to the readings, a desired firmware runs an OTA and is reported after the new birth")
    func shadowSetpointAndFirmware() async throws {
        let id = "thermo-1"
        let fleet = try TestFleet(devices: [id], interval: 0.3, fleetExtra: """
            shadow:
              preset: generic
            firmware:
              reboot_seconds: 1
              download_seconds: 0.4
              verify_seconds: 0.1
            """)
        defer { fleet.tearDown() }
        try """
            interval: 0.3
            sensors:
              - {name: setpoint, type: constant, value: 21}
            """.write(toFile: "\(fleet.path)/\(id)/device.yaml", atomically: true, encoding: .utf8)
        let subscriber = try fleet.subscriber(["devices/\(id)/#"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await waitFor(20) { fleet.broker.log().components(separatedBy: "Received SUBSCRIBE from \(id)").count - 1 >= 3 })
        // A reading with the old setpoint first, so that the change shows in the readings.
        #expect(await waitFor(10) { subscriber.messages().contains { $0.topic.hasSuffix("/telemetry") } })
        try fleet.publishAsObserver("devices/\(id)/shadow/update", #"{"state": {"desired": {"setpoint": 23.5, "firmware": "3.0.0"}}}"#)
        let acceptedTopic = "devices/\(id)/shadow/update/accepted"
        #expect(await waitFor(20) { on(subscriber, acceptedTopic).count >= 2 })
        let delta = try #require(on(subscriber, "devices/\(id)/shadow/update/delta").first)
        let version = try #require((delta["version"] as? NSNumber)?.intValue)
        let accepted = on(subscriber, acceptedTopic)
        let first = try #require((accepted[0]["state"] as? [String: Any])?["reported"] as? [String: Any])
        #expect(number(first["setpoint"]) == 23.5 && first["firmware"] == nil, "the firmware is reported once it runs")
        #expect((accepted[0]["version"] as? NSNumber)?.intValue == version + 1)
        let second = try #require((accepted[1]["state"] as? [String: Any])?["reported"] as? [String: Any])
        #expect(second["firmware"] as? String == "3.0.0")
        #expect((accepted[1]["version"] as? NSNumber)?.intValue == version + 2)
        // The readings carry the new setpoint; the birth the new firmware.
        let readings = subscriber.messages().filter { $0.topic.hasSuffix("/telemetry") }
            .compactMap { number((json($0.payload)?["readings"] as? [String: Any])?["setpoint"]) }
        #expect(readings.first == 21 && readings.last == 23.5)
        #expect(await waitFor(10) { (statusMessages(subscriber.messages())[id] ?? []).last { $0["status"] as? String == "online" }?["firmware"] as? String == "3.0.0" })
        let summary = await runner.stop()
        #expect(summary.totals.dropped == 0)
    }

    @Test("shadow: a desired `setpoint` moves a thermal room's target (and the constant setpoint sensor): the room heats towards it")
    func shadowSetpointDrivesTheThermalRoom() async throws {
        let id = "room-1"
        let fleet = try TestFleet(devices: [id], interval: 0.2, fleetExtra: "shadow:\n  preset: generic")
        defer { fleet.tearDown() }
        // tau 1 s and a strong heater: the room reaches a new target within about a second.
        try """
            interval: 0.2
            sensors:
              - {name: temperature, type: thermal, ambient: 10, setpoint: 20, hysteresis: 0.2, tau: 1, heater_power: 50, start: 20}
              - {name: setpoint, type: constant, value: 20}
            """.write(toFile: "\(fleet.path)/\(id)/device.yaml", atomically: true, encoding: .utf8)
        let subscriber = try fleet.subscriber(["devices/\(id)/#"])
        let runner = try fleet.makeFleet()
        await runner.start()
        func temperatures() -> [Double] {
            subscriber.messages().filter { $0.topic.hasSuffix("/telemetry") }
                .compactMap { number((json($0.payload)?["readings"] as? [String: Any])?["temperature"]) }
        }
        #expect(await waitFor(20) { fleet.broker.log().components(separatedBy: "Received SUBSCRIBE from \(id)").count - 1 >= 3 })
        #expect(await waitFor(10) { temperatures().count >= 3 })
        #expect(temperatures().allSatisfy { $0 < 20.5 }, "held at 20 before: \(temperatures())")
        try fleet.publishAsObserver("devices/\(id)/shadow/update", #"{"state": {"desired": {"setpoint": 40}}}"#)
        #expect(await waitFor(10) { !on(subscriber, "devices/\(id)/shadow/update/accepted").isEmpty })
        let reported = try #require((on(subscriber, "devices/\(id)/shadow/update/accepted").first?["state"] as? [String: Any])?["reported"] as? [String: Any])
        #expect(number(reported["setpoint"]) == 40)
        #expect(await waitFor(10) { (temperatures().last ?? 0) > 39 }, "the room heats to the new target: \(temperatures().suffix(8))")
        let setpoints = subscriber.messages().filter { $0.topic.hasSuffix("/telemetry") }
            .compactMap { number((json($0.payload)?["readings"] as? [String: Any])?["setpoint"]) }
        #expect(setpoints.first == 20 && setpoints.last == 40)
        _ = await runner.stop()
    }

    @Test("shadow (AWS IoT preset): reports on connect, asks get, applies /update/delta and reports it on /update")
    func awsShadow() async throws {
        let id = "thing-1"
        let fleet = try TestFleet(devices: [id], interval: 60, fleetExtra: "shadow:\n  preset: aws")
        defer { fleet.tearDown() }
        let base = "$aws/things/\(id)/shadow"
        let subscriber = try fleet.subscriber(["\(base)/#", "devices/\(id)/telemetry"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await waitFor(20) { fleet.broker.log().components(separatedBy: "Received SUBSCRIBE from \(id)").count - 1 >= 4 })
        #expect(await waitFor(10) { subscriber.messages().contains { $0.topic == "\(base)/get" } })
        let first = try #require(on(subscriber, "\(base)/update").first)
        let initial = try #require((first["state"] as? [String: Any])?["reported"] as? [String: Any])
        #expect(number(initial["interval"]) == 60)
        #expect(initial["firmware"] as? String == "1.0.0")

        try fleet.publishAsObserver("\(base)/update/delta", #"{"state": {"interval": 0.5}, "version": 12}"#)
        #expect(await waitFor(10) { on(subscriber, "\(base)/update").count >= 2 })
        let update = try #require(on(subscriber, "\(base)/update").last)
        #expect(number(((update["state"] as? [String: Any])?["reported"] as? [String: Any])?["interval"]) == 0.5)
        #expect(await waitFor(10) { (subscriber.sequences()[id]?.count ?? 0) >= 3 })
        _ = await runner.stop()
    }

    @Test("reboot command and OTA: will, offline for the window, births with boot count and the new version, seq without gaps")
    func rebootAndOTA() async throws {
        let id = "ota-1"
        let fleet = try TestFleet(devices: [id], interval: 0.2, fleetExtra: """
            firmware:
              reboot_seconds: 2
              download_seconds: 1
              verify_seconds: 0.2
            """)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/\(id)/#"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await fleet.waitForSubscription(id))
        func births() -> [[String: Any]] { (statusMessages(subscriber.messages())[id] ?? []).filter { $0["status"] as? String == "online" } }
        #expect(await waitFor(10) { births().count == 1 })
        #expect(births().first?["boot_count"] as? Int == 1)
        #expect(births().first?["reset_reason"] as? String == "power_on")

        try fleet.publishAsObserver("devices/\(id)/commands", #"{"command": "reboot", "id": 1}"#)
        #expect(await waitFor(15) { births().count == 2 })
        #expect(births().last?["boot_count"] as? Int == 2)
        #expect(births().last?["reset_reason"] as? String == "reboot")
        #expect((statusMessages(subscriber.messages())[id] ?? []).contains { $0["reason"] as? String == "connection_lost" })

        try fleet.publishAsObserver("devices/\(id)/commands", #"{"command": "ota", "id": 2, "version": "2.0.0"}"#)
        #expect(await waitFor(20) { births().count == 3 })
        let birth = try #require(births().last)
        #expect(birth["firmware"] as? String == "2.0.0")
        #expect(birth["boot_count"] as? Int == 3)
        #expect(birth["reset_reason"] as? String == "ota")
        #expect(await waitFor(10) { on(subscriber, "devices/\(id)/ota").last?["state"] as? String == "done" })
        let progress = on(subscriber, "devices/\(id)/ota")
        #expect(progress.compactMap { $0["state"] as? String } == ["downloading", "downloading", "downloading", "downloading", "downloading", "verifying", "rebooting", "done"])
        #expect(progress.compactMap { ($0["percent"] as? NSNumber)?.intValue } == [0, 25, 50, 75, 100])

        // Offline for the window: two closes without DISCONNECT, each followed by a connect no
        // sooner than 2 s later (the log's whole seconds: at least 1).
        let closes = logTimes(fleet, "Client \(id) closed its connection")
        let connects = logTimes(fleet, " as \(id) (")
        #expect(closes.count == 2 && connects.count == 3)
        for (close, back) in zip(closes, connects.dropFirst()) { #expect(back - close >= 1, "back after \(back - close) s") }

        let summary = await runner.stop()
        let last = try #require(summary.devices.first?.lastSeq)
        #expect(summary.totals.dropped == 0)
        #expect(await waitFor(10) { Set(subscriber.sequences()[id] ?? []) == Set(1...last) })
        #expect(subscriber.sequences()[id]?.count == Int(last), "each seq once")
    }

    @Test("OTA that fails its first boot: rolled back to the old version, boot count + 2, reset reason rollback")
    func otaRollback() async throws {
        let id = "ota-2"
        let fleet = try TestFleet(devices: [id], interval: 0.5, fleetExtra: """
            firmware:
              reboot_seconds: 1
              download_seconds: 0.4
              verify_seconds: 0.1
              failure_probability: 1
            """)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/\(id)/#"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await fleet.waitForSubscription(id))
        try fleet.publishAsObserver("devices/\(id)/commands", #"{"command": "ota", "id": 1, "version": "9.9.9"}"#)
        func births() -> [[String: Any]] { (statusMessages(subscriber.messages())[id] ?? []).filter { $0["status"] as? String == "online" } }
        #expect(await waitFor(20) { births().count == 2 })
        #expect(births().last?["firmware"] as? String == "1.0.0")
        #expect(births().last?["boot_count"] as? Int == 3)
        #expect(births().last?["reset_reason"] as? String == "rollback")
        #expect(await waitFor(10) { on(subscriber, "devices/\(id)/ota").last?["state"] as? String == "rolled_back" })
        _ = await runner.stop()
    }

    @Test("battery: silent after the computed number of publishes, a last gasp, then the will at the broker")
    func batteryRunsOut() async throws {
        let id = "cell-1"
        let fleet = try TestFleet(devices: [id], interval: 0.1, deviceExtra: { _ in """
            battery:
              capacity_mah: 1
              publish_mah: 0.1
              connect_mah: 0.25
              idle_mah_per_hour: 0
            """ })
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        let battery = try #require(spec.devices.first?.battery)
        let expected = battery.publishesUntilEmpty(interval: 0.1)
        #expect(expected == 7)
        let subscriber = try fleet.subscriber(["devices/\(id)/#"])
        let runner = try fleet.makeFleet()
        await runner.start()
        func statuses() -> [[String: Any]] { statusMessages(subscriber.messages())[id] ?? [] }
        #expect(await waitFor(15) { statuses().contains { $0["reason"] as? String == "connection_lost" } })
        let words = statuses().compactMap { $0["status"] as? String }
        #expect(words == ["online", "battery_empty", "offline"], "\(words)")
        #expect(await waitFor(5) { subscriber.sequences()[id]?.count == expected })
        // Silent: no reconnect and no reading while the fleet goes on.
        let snapshot = await runner.snapshot()
        #expect(snapshot.first?.lastSeq == UInt64(expected))
        #expect(snapshot.first?.connected == false)
        let volts = subscriber.messages().filter { $0.topic.hasSuffix("/telemetry") }
            .compactMap { number((json($0.payload)?["readings"] as? [String: Any])?["battery_v"]) }
        #expect(volts.count == expected && volts == volts.sorted(by: >), "voltage falls: \(volts)")
        let summary = await runner.stop()
        #expect(summary.devices.first?.connects == 1)
        #expect(summary.devices.first?.lastSeq == UInt64(expected))
        #expect(logTimes(fleet, " as \(id) (").count == 1)
    }
}
