import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

private func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// MQTT 5 sessions and QoS 2 against a real mosquitto: the session expiry interval sent in
/// CONNECT, a session taken over, exactly once across a broker restart.
@Suite("MQTT 5 sessions and QoS 2 over a real mosquitto", .serialized)
struct MQTT5IntegrationTests {
    @Test("session_expiry: a command published while the device is offline is delivered when it is back")
    func persistentSessionKeepsACommandForAnOfflineDevice() async throws {
        // dev-kept asks for a 300 s session; dev-gone has clean_session: false but no expiry,
        // which at MQTT 5 means its session ends with the connection.
        let fleet = try TestFleet(devices: ["dev-kept", "dev-gone"], interval: 60, protocolVersion: "5",
                                  deviceExtra: { id in id == "dev-kept" ? "clean_session: false\nsession_expiry: 300" : "clean_session: false" })
        defer { fleet.tearDown() }
        #expect(try fleet.load().devices.first { $0.id == "dev-kept" }?.sessionExpiry == 300)
        let subscriber = try fleet.subscriber(["devices/+/replies"])
        defer { subscriber.stop() }
        let first = try fleet.makeFleet()
        await first.start()
        #expect(await fleet.waitForSubscription("dev-kept"))
        #expect(await fleet.waitForSubscription("dev-gone"))
        _ = await first.stop()
        #expect(await waitFor(10) { fleet.broker.log().components(separatedBy: "disconnected").count >= 3 })

        // Both offline: one command each, QoS 1.
        try fleet.publishAsObserver("devices/dev-kept/commands", #"{"command": "ping", "id": 71}"#)
        try fleet.publishAsObserver("devices/dev-gone/commands", #"{"command": "ping", "id": 72}"#)

        let second = try fleet.makeFleet()
        await second.start()
        func reply(_ device: String) -> [String: Any]? {
            subscriber.messages().first { $0.topic == "devices/\(device)/replies" }.flatMap { json($0.payload) }
        }
        #expect(await waitFor(20) { reply("dev-kept") != nil }, "no reply from dev-kept; broker log: \(fleet.broker.log().suffix(1500))")
        #expect((reply("dev-kept")?["id"] as? NSNumber)?.intValue == 71)
        #expect(fleet.broker.log().contains("dev-kept (p5, c0"), "dev-kept did not connect with clean start off at MQTT 5")
        // The session without an expiry was gone: its command never comes (2 s is ample on loopback).
        #expect(await fleet.waitForSubscription("dev-gone"))
        try await Task.sleep(for: .seconds(2))
        #expect(reply("dev-gone") == nil)
        _ = await second.stop()
    }

    @Test("session taken over at mosquitto 2.0.11: the old connection is closed without DISCONNECT, reported and reconnected")
    func sessionTakenOverIsReported() async throws {
        // mosquitto 2.0.11 logs "already connected, closing old connection" and closes it without
        // sending DISCONNECT 0x8E (checked with mosquitto_sub -d as the old client): what the
        // device can report is the closed connection. The words for a DISCONNECT that does come
        // are tested in ReasonCodeTests.
        let fleet = try TestFleet(devices: ["dev-take"], interval: 60, protocolVersion: "5")
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 5, cap: 10)))
        await runner.start()
        #expect(await fleet.waitForSubscription("dev-take"))
        let binary = try #require(findExecutable("mosquitto_sub"))
        let intruder = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile,
            "--cert", "\(fleet.path)/dev-take/cert.pem", "--key", "\(fleet.path)/dev-take/key.pem",
            "-V", "mqttv5", "-i", "dev-take", "-t", "devices/dev-take/commands",
        ], output: "\(fleet.path)/intruder.txt")
        defer { intruder.terminate() }
        var lastError: String?
        let reported = await waitFor(15) {
            lastError = await runner.snapshot().first?.lastError
            return lastError != nil
        }
        #expect(reported)
        #expect(fleet.broker.log().contains("Client dev-take already connected, closing old connection."))
        #expect(!fleet.broker.log().contains("Sending DISCONNECT to dev-take"))
        print("session taken over: device reported \(lastError ?? "nil")")
        _ = await runner.stop()
    }

    @Test("QoS 2 over a broker restart: zero gaps and zero duplicates at a QoS 2 subscriber; acknowledged at PUBCOMP")
    func qos2BrokerRestartExactlyOnce() async throws {
        let ids = (1...3).map { "qos2-\($0)" }
        let fleet = try TestFleet(devices: ids, interval: 0.05, qos: 2, protocolVersion: "5",
                                  deviceExtra: { _ in "clean_session: false\nsession_expiry: 600" }, persistence: true)
        defer { fleet.tearDown() }
        let subscriber = try Observer(fleet, clientID: "observer-qos2", qos: 2)
        defer { subscriber.stop() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })
        fleet.broker.stop()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { !$0.connected && $0.queued + $0.inflight >= 10 })
        try fleet.broker.start()
        try subscriber.resume()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connects >= 2 && $0.queued == 0 && $0.acknowledged >= $0.accepted - 25 })
        let result = await runner.stop()
        #expect(result.totals.dropped == 0, "dropped: \(result.totals.droppedByReason)")
        #expect(result.totals.accepted == result.totals.acknowledged)
        // QoS 2 PUBREC/PUBREL/PUBCOMP went over the wire (libmosquitto reports a QoS 2 message at PUBCOMP).
        #expect(fleet.broker.log().contains("Received PUBREL from qos2-1"))
        func missing() -> [String: [UInt64]] {
            let seen = subscriber.sequences().mapValues(Set.init)
            var gaps: [String: [UInt64]] = [:]
            for device in result.devices where device.lastSeq > 0 {
                let lost = (1...device.lastSeq).filter { !(seen[device.id]?.contains($0) ?? false) }
                if !lost.isEmpty { gaps[device.id] = lost }
            }
            return gaps
        }
        #expect(await waitFor(15) { missing().isEmpty }, "gaps: \(missing().mapValues(\.count))")
        let sequences = subscriber.sequences()
        let duplicates = sequences.values.reduce(0) { $0 + ($1.count - Set($1).count) }
        let published = result.devices.reduce(0) { $0 + Int($1.lastSeq) }
        #expect(duplicates == 0, "duplicates at the QoS 2 subscriber: \(duplicates)")
        print("qos2 restart: \(published) published over a broker restart, \(sequences.values.reduce(0) { $0 + $1.count }) received, duplicates \(duplicates)")
    }
}

@Suite("QoS 1 against QoS 2 when acknowledgements are lost", .serialized)
struct QoS2DuplicateTests {
    @Test("acknowledgements lost (proxy stalls broker → device): QoS 1 re-sends arrive twice, QoS 2 re-sends do not; no gaps")
    func lostAcknowledgementsDuplicateAtQoS1Only() async throws {
        let fleet = try TestFleet(
            devices: ["dup-q1", "dup-q2"], interval: 0.05, qos: 2, protocolVersion: "5",
            fleetExtra: "outbox:\n  ack_timeout: 2\n",
            deviceExtra: { _ in "clean_session: false\nsession_expiry: 600" })
        defer { fleet.tearDown() }
        let q1File = "\(fleet.path)/dup-q1/device.yaml"
        try String(contentsOfFile: q1File, encoding: .utf8).replacingOccurrences(of: "qos: 2", with: "qos: 1")
            .write(toFile: q1File, atomically: true, encoding: .utf8)
        let subscriber = try fleet.subscriber(["devices/+/telemetry"], qos: 2)
        defer { subscriber.stop() }
        let proxy = try TCPProxy(target: fleet.broker.port)
        defer { proxy.close() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)), broker: (nil, proxy.port))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })
        proxy.stallReplies()
        // The PUBACK watchdog (2 s) aborts; libmosquitto re-sends what it holds on the new connection.
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connects >= 2 && $0.connected })
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.acknowledged >= 60 && $0.inflight < 20 })
        let result = await runner.stop()
        #expect(result.totals.dropped == 0, "\(result.totals.droppedByReason)")
        #expect(result.totals.accepted == result.totals.acknowledged)
        func seen(_ id: String) -> [UInt64] { subscriber.sequences()[id] ?? [] }
        let complete = await waitFor(15) {
            result.devices.allSatisfy { d in Set(seen(d.id)).isSuperset(of: 1...d.lastSeq) }
        }
        #expect(complete, "gaps at the subscriber")
        let q1 = seen("dup-q1"), q2 = seen("dup-q2")
        let q1Duplicates = q1.count - Set(q1).count, q2Duplicates = q2.count - Set(q2).count
        #expect(q1Duplicates > 0, "QoS 1: the re-sent messages the broker had already taken should arrive twice")
        #expect(q2Duplicates == 0, "QoS 2: duplicates \(q2Duplicates)")
        print("lost acknowledgements: QoS 1 \(q1.count) received, \(q1Duplicates) duplicates; QoS 2 \(q2.count) received, \(q2Duplicates) duplicates")
    }

    @Test("bench --qos 2: 20 devices × 100 messages, acknowledged at PUBCOMP, the verifier sees every message once")
    func benchAtQoS2() async throws {
        let fleet = try TestFleet(devices: (1...20).map { String(format: "q2b-%02d", $0) })
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.messagesPerDevice = 100
        options.ratePerDevice = 0
        options.qos = 2
        options.duration = 60
        options.connectRate = 200
        var logger = Logger(label: "bench-qos2")
        logger.logLevel = .error
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: logger)
        #expect(report.settings.qos == 2)
        #expect(report.sent == 2000 && report.acknowledged == report.sent)
        #expect(report.received == report.sent && report.gaps == 0 && report.duplicates == 0)
        #expect(report.verified)
        #expect(fleet.broker.log().contains("Received PUBREL from q2b-01"))
    }
}
