import Foundation
import Logging
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Fleet against a real mosquitto over mutual TLS", .serialized)
struct FleetIntegrationTests {
    @Test("every device's telemetry arrives at an independent subscriber with seq 1…N, no gaps", arguments: [1, 0])
    func telemetryArrivesWithoutGaps(qos: Int) async throws {
        let ids = (1...5).map { "dev-\($0)" }
        let fleet = try TestFleet(devices: ids, interval: 0.05, qos: qos)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber()
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 20 })
        let summary = await runner.stop()
        #expect(summary.totals.connected == ids.count)
        #expect(summary.devices.allSatisfy { $0.connected })
        #expect(summary.totals.dropped == 0)
        #expect(summary.totals.accepted == summary.totals.acknowledged)
        #expect(summary.failedDevices.isEmpty)
        let expected = Dictionary(uniqueKeysWithValues: summary.devices.map { ($0.id, Array(1...$0.lastSeq)) })
        let arrived = await waitFor(10) { subscriber.sequences() == expected }
        #expect(arrived, "subscriber saw \(subscriber.sequences().mapValues { "\($0.count) (last \($0.last ?? 0))" }), fleet published \(expected.mapValues(\.count))")
        // Payload shape, as an independent client decodes it.
        let message = try #require(subscriber.messages().first { $0.topic == "devices/dev-1/telemetry" })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["device", "seq", "ts", "readings"])
        #expect(object["device"] as? String == "dev-1")
        let readings = try #require(object["readings"] as? [String: Any])
        let temperature = try #require(readings["temperature"] as? Double)
        #expect((10...30).contains(temperature))
        let ts = try #require((object["ts"] as? NSNumber)?.int64Value)
        #expect(abs(ts - Int64(Date().timeIntervalSince1970 * 1000)) < 60_000)
    }

    @Test("retained online while running; the offline will when the fleet process is killed")
    func onlineStatusAndWillOnKill() async throws {
        let ids = ["dev-a", "dev-b"]
        let fleet = try TestFleet(devices: ids, interval: 0.5)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/status"])
        let (process, output) = try launchSensorfleet(["run", fleet.path, "--status-interval", "1"], in: fleet.path)
        defer { process.signal(SIGKILL) }
        func statuses() -> [String: String] {
            var last: [String: String] = [:]
            for m in subscriber.messages() { last[m.topic] = statusWord(m.payload) }
            return last
        }
        let online = await waitFor(20) { ids.allSatisfy { statuses()["devices/\($0)/status"] == "online" } }
        #expect(online, "statuses: \(statuses()); fleet output: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        process.signal(SIGKILL)
        process.wait()
        let offline = await waitFor(20) { ids.allSatisfy { statuses()["devices/\($0)/status"] == "offline" } }
        #expect(offline, "statuses after kill -9: \(statuses())")
        // Retained: a subscriber that arrives later sees it too.
        let late = try fleet.subscriber(["devices/+/status"])
        #expect(await waitFor(10) { late.messages().filter { statusWord($0.payload) == "offline" }.count == ids.count })
    }

    @Test("a device whose certificate is revoked is reported clearly and backs off while the others run")
    func revokedDeviceBacksOff() async throws {
        let ids = ["dev-ok-1", "dev-ok-2", "dev-revoked"]
        let fleet = try TestFleet(devices: ids, interval: 0.1, revoke: ["dev-revoked"])
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet()
        await runner.start()
        // The broker's alert can be lost to a TCP reset on the first try (it closes with our
        // CONNECT unread), which reads as a plain lost connection and is retried soon; the
        // alert itself is then permanent.
        let settled = await runner.waitUntilAllDevices(timeout: 20) { $0.id == "dev-revoked" ? $0.failing : $0.acknowledged >= 10 }
        #expect(settled)
        let attemptsWhenFailing = try #require(await runner.snapshot().first { $0.id == "dev-revoked" }).attempts
        #expect(attemptsWhenFailing <= 2)
        // Two more seconds: a hot loop would show up as more attempts.
        try await Task.sleep(for: .seconds(2))
        let snapshot = await runner.snapshot()
        let summary = await runner.stop()
        let revoked = try #require(snapshot.first { $0.id == "dev-revoked" })
        #expect(revoked.connects == 0)
        #expect(revoked.attempts == attemptsWhenFailing, "backs off to the cap (≥ 60 s) after a failure that will not fix itself")
        #expect(revoked.failing)
        #expect(revoked.lastError?.contains("revoked") == true, "error: \(revoked.lastError ?? "nil")")
        #expect(summary.failedDevices == ["dev-revoked"])
        for id in ["dev-ok-1", "dev-ok-2"] {
            let device = try #require(summary.devices.first { $0.id == id })
            #expect(device.acknowledged >= 10 && device.errors == 0)
        }
    }

    @Test("the ACL stops a device from publishing into another device's topic (MQTT 5: refusal counted)")
    func aclConfinesDevices() async throws {
        let fleet = try TestFleet(
            devices: ["dev-a", "dev-b"], interval: 0.05, protocolVersion: "5",
            deviceExtra: { $0 == "dev-a" ? "topic: devices/dev-b/telemetry" : "" }
        )
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/dev-b/telemetry"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.accepted >= 10 && $0.inflight == 0 && $0.queued == 0 })
        let summary = await runner.stop()
        let intruder = try #require(summary.devices.first { $0.id == "dev-a" })
        let victim = try #require(summary.devices.first { $0.id == "dev-b" })
        #expect(await waitFor(10) { (subscriber.sequences()["dev-b"]?.count ?? 0) >= Int(victim.acknowledged) })
        #expect(subscriber.sequences()["dev-a"] == nil, "dev-a's messages reached devices/dev-b/telemetry")
        #expect(intruder.acknowledged == 0)
        #expect(intruder.dropped == intruder.accepted)
        #expect(intruder.lastError?.contains("not authorised") == true, "error: \(intruder.lastError ?? "nil")")
    }

    @Test("an untrusted broker is a permanent failure: reported once, backed off to the cap")
    func untrustedBroker() async throws {
        let fleet = try TestFleet(devices: ["dev-1"])
        defer { fleet.tearDown() }
        let other = try TempDir("other-ca")
        defer { other.remove() }
        _ = try Provisioner.provision(ProvisionOptions(directory: other.path))
        // The fleet trusts another CA than the one that signed the broker.
        let yaml = try String(contentsOfFile: "\(fleet.path)/fleet.yaml", encoding: .utf8)
        try yaml.replacingOccurrences(of: "ca: ca.pem", with: "ca: \(other.path)/ca.pem")
            .write(toFile: "\(fleet.path)/fleet.yaml", atomically: true, encoding: .utf8)
        var spec = try FleetLoader.loadWithoutCredentials(directory: fleet.path)
        spec.broker.caFile = "\(other.path)/ca.pem"
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let runner = try Fleet(spec: spec, logger: logger)
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { $0.errors >= 1 })
        try await Task.sleep(for: .seconds(1))
        let summary = await runner.stop()
        let device = try #require(summary.devices.first)
        #expect(device.attempts == 1)
        #expect(device.failing)
        #expect(device.lastError?.contains("broker certificate rejected") == true, "error: \(device.lastError ?? "nil")")
    }

    @Test("devices reconnect after the broker restarts")
    func reconnectAfterBrokerRestart() async throws {
        let ids = (1...4).map { "dev-\($0)" }
        let fleet = try TestFleet(devices: ids, interval: 0.1)
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.2, cap: 1)))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected && $0.acknowledged >= 3 })
        fleet.broker.stop()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { !$0.connected })
        try fleet.broker.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected && $0.connects >= 2 })
        let summary = await runner.stop()
        // Everything accepted was acknowledged or counted as dropped.
        #expect(summary.totals.accepted == summary.totals.acknowledged + summary.totals.dropped)
    }

    @Test("run validates first: an invalid fleet exits 1 with a clear error and nothing connects")
    func runValidatesFirst() async throws {
        let fleet = try TestFleet(devices: ["dev-1"])
        defer { fleet.tearDown() }
        chmod("\(fleet.path)/dev-1/key.pem", 0o644)
        let (process, output) = try launchSensorfleet(["run", fleet.path, "--duration", "2"], in: fleet.path)
        let status = process.wait()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(status == 1)
        #expect(text.contains("chmod 600"), "output: \(text)")
        #expect(text.contains("dev-1/key.pem"))
        #expect(!text.contains("Fatal error"))
        #expect(!fleet.broker.log().contains("New client connected"))
    }
}
