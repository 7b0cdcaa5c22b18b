import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Azure IoT Hub and AWS IoT Core cannot be reached from the test machine: their constraints are
/// enforced by a mosquitto configured the same way (max_qos, max_keepalive, max_packet_size), and
/// AWS's ALPN by an `openssl s_server` that prints what the client offered.
@Suite("Profiles against brokers enforcing the same limits", .serialized)
struct BrokerProfileIntegrationTests {
    @Test("azure-iot-hub: through a mosquitto with IoT Hub's limits, devices publish only on devices/{id}/messages/events/ (every seq, nothing retained) and take a C2D command")
    func azureProfileThroughAnEnforcingMosquitto() async throws {
        let fleet = try TestFleet(devices: ["az-1", "az-2"], interval: 0.05, brokerSettings: { settings, _ in
            // IoT Hub's limits: QoS 1 at most, keep-alive at most 1177 s, 256 KB messages.
            settings.extra = ["max_qos 1", "max_keepalive 1177", "max_packet_size 262400"]
        })
        defer { fleet.tearDown() }
        // fleet.yaml as a user would write it for IoT Hub: no port, no topic, no user name.
        try """
        profile: azure-iot-hub
        broker:
          host: localhost
          ca: ca.pem
          keepalive: 60
        seed: 7
        """.write(toFile: "\(fleet.path)/fleet.yaml", atomically: true, encoding: .utf8)
        let spec = try fleet.load()
        #expect(spec.broker.port == 8883 && spec.broker.protocolVersion == .v311)
        #expect(spec.devices.allSatisfy { $0.topic == "devices/\($0.id)/messages/events/" && $0.qos == 1 })
        // Everything: `#` and the `$aws/…` shadow topics a device may write (`#` leaves out `$` topics).
        let subscriber = try fleet.subscriber(["#", "$aws/#"])
        defer { subscriber.stop() }
        var logger = Logger(label: "azure-profile")
        logger.logLevel = .error
        var options = RunOptions()
        options.publishing.messagesPerDevice = 40
        let runner = try Fleet(spec: spec.overridingBroker(host: nil, port: fleet.broker.port), options: options, logger: logger)
        await runner.start()
        // A cloud-to-device message as IoT Hub names it (its property bag in the topic) is a command;
        // the reply is a device-to-cloud event.
        let c2d = "devices/az-1/messages/devicebound/%24.to=%2Fdevices%2Faz-1%2Fmessages%2FdeviceBound&%24.mid=m-1"
        #expect(await fleet.waitForSubscription("az-1"))
        try fleet.publishAsObserver(c2d, #"{"command": "get-stats", "id": 77}"#)
        func reply() -> [String: Any]? {
            subscriber.messages().lazy.filter { $0.topic == "devices/az-1/messages/events/" }
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
                .first { $0["command"] as? String == "get-stats" }
        }
        #expect(await waitFor(20) { reply() != nil && subscriber.messages().filter { $0.topic.hasSuffix("/messages/events/") }.count >= 81 })
        _ = await runner.stop()
        let stats = try #require(reply())
        #expect((stats["id"] as? NSNumber)?.intValue == 77 && stats["ok"] as? Bool == true)
        #expect(((stats["result"] as? [String: Any])?["published"] as? NSNumber)?.intValue ?? 0 > 0, "\(stats)")
        // Nothing but events (and the test's own C2D message): no status, no replies topic, no will.
        let elsewhere = subscriber.messages().filter { !$0.topic.hasSuffix("/messages/events/") && $0.topic != c2d }
        #expect(elsewhere.isEmpty, "\(elsewhere)")
        // Nothing retained: a new subscriber gets retained messages before a marker published after it subscribed.
        let late = try fleet.subscriber(["#", "$aws/#"])
        defer { late.stop() }
        let marker = "devices/az-2/messages/devicebound/marker"
        try fleet.publishAsObserver(marker, "marker")
        #expect(await waitFor(10) { late.messages().contains { $0.topic == marker } })
        #expect(late.messages().map(\.topic) == [marker])
        var seqs: [String: [UInt64]] = [:]
        for message in subscriber.messages() where message.topic.hasSuffix("/messages/events/") {
            let id = message.topic.split(separator: "/")[1]
            let object = try JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any]
            if let seq = (object?["seq"] as? NSNumber)?.uint64Value { seqs[String(id), default: []].append(seq) }
        }
        #expect(seqs["az-1"] == Array(1...40) && seqs["az-2"] == Array(1...40), "\(seqs.mapValues(\.count))")
        // The broker really enforces QoS 1: bench at QoS 2 is refused by the profile before connecting.
        let (bench, output) = try launchSensorfleet(["bench", fleet.path, "--broker", "localhost:\(fleet.broker.port)", "--qos", "2", "--messages", "1"], in: fleet.path)
        #expect(bench.wait(timeout: 30) != 0)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("azure-iot-hub takes QoS 0 to 1"), "\(text)")
    }

    @Test("aws-iot-core on port 443: the TLS ClientHello offers ALPN x-amzn-mqtt-ca (seen by openssl s_server)")
    func awsProfileOffersALPN() async throws {
        let fleet = try TestFleet(devices: ["thing-1"], startBroker: false)
        defer { fleet.tearDown() }
        try """
        profile: aws-iot-core
        broker:
          host: localhost
          port: 443
          ca: ca.pem
        seed: 7
        """.write(toFile: "\(fleet.path)/fleet.yaml", atomically: true, encoding: .utf8)
        let spec = try fleet.load()
        #expect(spec.broker.alpn == "x-amzn-mqtt-ca")
        let openssl = try #require(findExecutable("openssl"))
        let port = freePort()
        let output = "\(fleet.path)/s_server.txt"
        // s_server ends at the end of its standard input: give it one that stays open.
        let server = try ChildProcess("/bin/bash", ["-c",
            "exec \(openssl) s_server -accept 127.0.0.1:\(port) -cert '\(fleet.path)/broker/server.pem' "
                + "-key '\(fleet.path)/broker/server.key' -alpn x-amzn-mqtt-ca < <(sleep 30)",
        ], output: output)
        defer { server.terminate() }
        #expect(await waitFor(10) { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("ACCEPT") })
        var logger = Logger(label: "aws-profile")
        logger.logLevel = .critical
        let runner = try Fleet(spec: spec.overridingBroker(host: nil, port: port), options: RunOptions(), logger: logger)
        await runner.start()
        let offered = await waitFor(15) {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("ALPN protocols advertised by the client: x-amzn-mqtt-ca")
        }
        _ = await runner.stop()
        #expect(offered, "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
    }
}
