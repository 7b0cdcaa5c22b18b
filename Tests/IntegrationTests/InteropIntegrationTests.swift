import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// amqtt (a Python broker, MQTT 3.1.1 only) from the venv Scripts/test makes, over TLS with the
/// fleet's CA: it asks for client certificates and checks any it is given against the CA
/// (`ssl.CERT_OPTIONAL`), so the devices' certificates are verified.
private final class AmqttBroker {
    let port: Int
    let process: ChildProcess
    let logPath: String

    init(fleet: TestFleet) async throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let binary = "\(repo)/.build/amqtt-venv/bin/amqtt"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: run Scripts/test (it installs amqtt into .build/amqtt-venv)")
        }
        port = freePort()
        let config = "\(fleet.path)/amqtt.yaml"
        try """
        listeners:
          default:
            type: tcp
            bind: 127.0.0.1:\(port)
            ssl: true
            cafile: \(fleet.caFile)
            certfile: \(fleet.path)/broker/server.pem
            keyfile: \(fleet.path)/broker/server.key
        plugins:
          amqtt.plugins.authentication.AnonymousAuthPlugin:
            allow_anonymous: true
        """.write(toFile: config, atomically: true, encoding: .utf8)
        logPath = "\(fleet.path)/amqtt.log"
        process = try ChildProcess(binary, ["-c", config], output: logPath)
        let port = self.port
        guard await waitFor(30, { isListening(port) }) else {
            process.terminate()
            throw TestFailure("amqtt did not listen on \(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
    }

    func stop() { process.terminate() }
}

private func quiet() -> Logger {
    var logger = Logger(label: "interop")
    logger.logLevel = .critical
    return logger
}

@Suite("Interoperability: a broker that is not mosquitto (amqtt)", .serialized)
struct InteropIntegrationTests {
    @Test("5 devices over TLS with their certificates, QoS 1 and QoS 2, 40 messages each: bench's verifier sees every seq once")
    func everySeqArrivesThroughAmqtt() async throws {
        let fleet = try TestFleet(devices: (1...5).map { "am-\($0)" }, startBroker: false)
        defer { fleet.tearDown() }
        let broker = try await AmqttBroker(fleet: fleet)
        defer { broker.stop() }
        for qos in [1, 2] {
            var options = BenchOptions()
            options.messagesPerDevice = 40
            options.ratePerDevice = 50
            options.qos = qos
            options.duration = 30
            let report = try await BenchRunner.run(
                fleet: try fleet.load().overridingBroker(host: nil, port: broker.port), options: options, logger: quiet())
            #expect(report.sent == 200 && report.acknowledged == 200, "QoS \(qos): sent \(report.sent), acknowledged \(report.acknowledged)")
            #expect(report.received == 200 && report.gaps == 0 && report.duplicates == 0, "QoS \(qos): received \(report.received)")
            #expect(report.verified, "QoS \(qos)")
        }
    }

    @Test("MQTT 5 against amqtt (3.1.1 only): the device's error says the broker may not speak MQTT 5 and how to fix it")
    func mqtt5RefusalIsExplained() async throws {
        let fleet = try TestFleet(devices: ["am5-1"], protocolVersion: "5", startBroker: false)
        defer { fleet.tearDown() }
        let broker = try await AmqttBroker(fleet: fleet)
        defer { broker.stop() }
        var options = RunOptions()
        options.connectTimeout = 2
        let runner = try fleet.makeFleet(options, broker: (nil, broker.port), logLevel: .critical)
        await runner.start()
        var lastError = ""
        let explained = await waitFor(15) {
            lastError = await runner.snapshot().first?.lastError ?? ""
            return lastError.contains("may not support MQTT 5")
        }
        _ = await runner.stop()
        #expect(explained, "\(lastError)")
        #expect(lastError.contains("broker.protocol: \"3.1.1\""), "\(lastError)")
    }

    @Test("amqtt checks the devices' certificates: one from another CA is refused in the TLS handshake, the fleet's own connects")
    func foreignCertificateIsRefused() async throws {
        let fleet = try TestFleet(devices: ["am-good", "am-bad"], startBroker: false)
        defer { fleet.tearDown() }
        let broker = try await AmqttBroker(fleet: fleet)
        defer { broker.stop() }
        // Loaded first (the loader itself refuses a certificate the fleet's CA did not sign), then swapped.
        let spec = try fleet.load().overridingBroker(host: nil, port: broker.port)
        let foreign = try TestCA.make(name: "Someone Else's CA").issue(cn: "am-bad")
        try foreign.certificate.serializeAsPEM().pemString.write(toFile: "\(fleet.path)/am-bad/cert.pem", atomically: true, encoding: .utf8)
        try foreign.keyPEM.write(toFile: "\(fleet.path)/am-bad/key.pem", atomically: true, encoding: .utf8)
        let runner = try Fleet(spec: spec, options: RunOptions(), logger: quiet())
        await runner.start()
        var devices: [DeviceSnapshot] = []
        let settled = await waitFor(20) {
            devices = await runner.snapshot()
            return devices.contains { $0.id == "am-good" && $0.acknowledged >= 3 } && devices.contains { $0.id == "am-bad" && $0.attempts >= 2 }
        }
        _ = await runner.stop()
        #expect(settled, "\(devices.map { "\($0.id): connects \($0.connects), attempts \($0.attempts), \($0.lastError ?? "")" })")
        let bad = try #require(devices.first { $0.id == "am-bad" })
        #expect(bad.connects == 0 && bad.acknowledged == 0, "\(bad.lastError ?? "")")
    }
}
