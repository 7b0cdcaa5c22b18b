import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// The broker's own count of bytes received ($SYS/broker/bytes/received, updated every second
/// with `sys_interval 1`), read by the observer with `mosquitto_sub -C 1`.
private func brokerBytesReceived(_ fleet: TestFleet) throws -> Int {
    let binary = try #require(findExecutable("mosquitto_sub"))
    let output = "\(fleet.path)/sys-\(UUID().uuidString.prefix(6)).txt"
    let process = try ChildProcess(binary, [
        "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
        "--key", fleet.observerKey, "-C", "1", "-W", "10", "-t", "$SYS/broker/bytes/received",
    ], output: output)
    _ = process.wait()
    let text = try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    return try #require(Int(text), "not a number: \(text)")
}

@Suite("MQTT 5 telemetry properties and topic aliases over a real mosquitto", .serialized)
struct TelemetryPropertiesIntegrationTests {
    @Test("message expiry, content type and {id}-templated user properties reach a MQTT 5 subscriber")
    func propertiesArrive() async throws {
        let fleet = try TestFleet(
            devices: ["prop-1"], interval: 0.2, protocolVersion: "5",
            deviceExtra: { _ in "mqtt5:\n  message_expiry: 60\n  content_type: application/json\n  user_properties:\n    site: \"{id}-site\"\n    line: \"4\"" })
        defer { fleet.tearDown() }
        let binary = try #require(findExecutable("mosquitto_sub"))
        let output = "\(fleet.path)/props.txt"
        let sub = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
            "--key", fleet.observerKey, "-V", "mqttv5", "-q", "1", "-i", "observer-props", "-t", "devices/prop-1/telemetry",
            "-F", "%t|%C|%E|%P",
        ], output: output)
        defer { sub.terminate() }
        #expect(await fleet.waitForSubscription("observer-props"))
        let runner = try fleet.makeFleet()
        await runner.start()
        func lines() -> [String] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(await waitFor(20) { !lines().isEmpty })
        let line = try #require(lines().first)
        let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        #expect(parts.count == 4, "\(line)")
        #expect(parts[1] == "application/json")
        // %E: the expiry left when the broker forwarded it (60 or just under).
        #expect((Int(parts[2]) ?? 0) > 50, "\(line)")
        #expect(parts[3].contains("site:prop-1-site") && parts[3].contains("line:4"), "\(line)")
        _ = await runner.stop()
    }

    @Test("topic alias at QoS 0: bytes per message at the broker ($SYS/broker/bytes/received), with and without")
    func topicAliasSavesTheTopicPerMessage() async throws {
        let n = 2000
        let fleet = try TestFleet(
            devices: ["alias-a", "alias-b"], interval: 1, qos: 0, protocolVersion: "5",
            deviceExtra: { id in id == "alias-b" ? "mqtt5:\n  topic_alias: true" : "" },
            brokerSettings: { settings, _ in settings.extra.append("sys_interval 1") })
        defer { fleet.tearDown() }
        var logger = Logger(label: "alias")
        logger.logLevel = .error
        var options = RunOptions()
        options.publishing = PublishSettings(pace: .asFastAsAcknowledged, qos: 0, messagesPerDevice: n)
        var deltas: [String: Int] = [:]
        for id in ["alias-a", "alias-b"] {
            var spec = try fleet.load()
            spec.devices = spec.devices.filter { $0.id == id }
            try await Task.sleep(for: .seconds(2))
            let before = try brokerBytesReceived(fleet)
            let runner = try Fleet(spec: spec, options: options, logger: logger)
            await runner.start()
            #expect(await runner.waitUntilAllDevices(timeout: 30) { $0.lastSeq == UInt64(n) && $0.queued == 0 && $0.inflight == 0 })
            _ = await runner.stop()
            try await Task.sleep(for: .seconds(2))
            deltas[id] = try brokerBytesReceived(fleet) - before
        }
        let without = Double(deltas["alias-a"]!) / Double(n), with = Double(deltas["alias-b"]!) / Double(n)
        print(String(format: "topic alias: %d messages each; broker received %.1f bytes/message without, %.1f with (saved %.1f; topic devices/alias-a/telemetry is 25 bytes)", n, without, with, without - with))
        // The topic (25 bytes + its 2-byte length) is replaced by a 3-byte property after the first message.
        #expect(without - with > 15 && without - with < 30)
    }
}
