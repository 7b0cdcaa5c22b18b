import Crypto
import Foundation
import Logging
import Synchronization
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

private func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

private final class Lines: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

@Suite("Fleet scenarios over a real mosquitto", .serialized)
struct ScenarioIntegrationTests {
    @Test("a scenario drops 30 % of 50 devices without DISCONNECT: their wills and only theirs, none back before the duration, all back after, nothing lost")
    func disconnectThirtyPercent() async throws {
        let ids = (1...50).map { String(format: "node-%02d", $0) }
        let fleet = try TestFleet(devices: ids, interval: 0.5, fleetExtra: """
            scenario:
              - at: 2
                select: 30%
                action: disconnect
                duration: 4
            """)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/status", "devices/+/telemetry"])
        let spec = try fleet.load()
        let plan = try #require(spec.scenario)
        let runner = try fleet.makeFleet()
        let output = Lines()
        let scenario = ScenarioService(fleet: runner, scenario: plan, logger: Logger(label: "scenario"), write: { output.append($0) })
        await runner.start()
        #expect(await waitFor(20) { statusMessages(subscriber.messages()).filter { $0.value.contains { $0["status"] as? String == "online" } }.count == 50 })
        try await scenario.runEvents()

        let record = try #require(scenario.records.first)
        let chosen = Set(record.devices)
        #expect(chosen.count == 15)
        #expect(record.refused == nil)
        #expect(output.lines.withLock { $0 }.first?.contains("disconnect for 4 s → 15 devices") == true)

        // The observer: a will (reason connection_lost) from exactly the chosen devices.
        func willSenders() -> Set<String> {
            Set(statusMessages(subscriber.messages()).filter { $0.value.contains { $0["reason"] as? String == "connection_lost" } }.keys)
        }
        #expect(await waitFor(15) { willSenders() == chosen }, "wills from \(willSenders().sorted()), chosen \(chosen.sorted())")
        // All back: a second birth from each of them.
        func backAgain() -> Set<String> {
            Set(statusMessages(subscriber.messages()).filter { $0.value.filter { $0["status"] as? String == "online" }.count >= 2 }.keys)
        }
        #expect(await waitFor(20) { backAgain() == chosen }, "back: \(backAgain().sorted())")

        // The broker: exactly those closed their connection without DISCONNECT, and each
        // reconnected no sooner than the duration after (its log has whole seconds).
        let log = fleet.broker.log().split(separator: "\n")
        func times(_ text: String) -> [Int] { log.filter { $0.contains(text) }.compactMap { Int($0.prefix { $0.isNumber }) } }
        let lostIDs = Set(log.filter { $0.contains("closed its connection") }.compactMap { line -> String? in
            guard let r = line.range(of: "Client ") else { return nil }
            return line[r.upperBound...].split(separator: " ").first.map(String.init)
        })
        #expect(lostIDs == chosen, "the broker saw \(lostIDs.sorted()) close")
        for id in chosen {
            let connected = times(" as \(id) (")
            #expect(connected.count == 2, "\(id) connected \(connected.count) times")
            if let back = connected.last, let gone = times("Client \(id) closed its connection").first {
                #expect(back - gone >= 3, "\(id) back after \(back - gone) s")
            }
        }

        let summary = await runner.stop()
        #expect(summary.totals.dropped == 0)
        #expect(summary.totals.acknowledged == summary.totals.accepted)
        // Nothing lost: every seq from 1 to the last, for every device, at the observer.
        #expect(await waitFor(10) {
            let seen = subscriber.sequences()
            return summary.devices.allSatisfy { d in Set(seen[d.id] ?? []) == Set(1...max(1, d.lastSeq)) && d.lastSeq > 0 }
        })
        for device in summary.devices where chosen.contains(device.id) { #expect(device.connects == 2) }
        for device in summary.devices where !chosen.contains(device.id) { #expect(device.connects == 1) }
    }

    @Test("bench with a scenario: half the devices reboot mid-run, the report lists them, and the verifier still counts every message once")
    func benchWithReboots() async throws {
        let fleet = try TestFleet(devices: (1...10).map { String(format: "r-%02d", $0) }, fleetExtra: """
            firmware:
              reboot_seconds: 1
            scenario:
              - {at: 1, select: 50%, action: reboot}
            """)
        defer { fleet.tearDown() }
        let output = Lines()
        var options = BenchOptions()
        options.ratePerDevice = 10
        options.duration = 4
        options.connectRate = 200
        let spec = try fleet.load()
        options.scenario = spec.scenario
        options.onScenarioLine = { output.append($0) }
        var logger = Logger(label: "bench-scenario")
        logger.logLevel = .error
        let report = try await BenchRunner.run(fleet: spec, options: options, logger: logger)
        let record = try #require(report.scenario?.first)
        #expect(record.action == "reboot" && record.devices.count == 5)
        #expect(output.lines.withLock { $0 }.first?.contains("reboot → 5 devices") == true)
        #expect(report.connectAttempts == 15, "10 first connects and 5 after the reboots")
        #expect(report.gaps == 0 && report.duplicates == 0 && report.dropped == 0)
        #expect(report.received == report.sent && report.verified)
        let data = try report.jsonData()
        #expect(try BenchReport.decode(data).scenario?.first?.devices == record.devices)
    }

    @Test("run --scenario --state-dir: the event line and report, clock_skew and rate on their devices, boot counts kept across runs")
    func runCommandWithScenarioAndStateDir() async throws {
        let fleet = try TestFleet(devices: ["sk-a", "sk-b"], interval: 0.5, fleetExtra: "firmware:\n  reboot_seconds: 0.5")
        defer { fleet.tearDown() }
        try """
            scenario:
              - {at: 1, ids: [sk-a], action: clock_skew, offset: -3600}
              - {at: 1, ids: [sk-b], action: rate, factor: 5}
              - {at: 1.5, ids: [sk-a], action: reboot}
            """.write(toFile: "\(fleet.path)/plan.yaml", atomically: true, encoding: .utf8)
        let subscriber = try fleet.subscriber(["devices/+/status", "devices/+/telemetry"])
        let state = "\(fleet.path)/state", report = "\(fleet.path)/report.json"
        func run(_ extra: [String]) async throws -> String {
            let (process, output) = try launchSensorfleet(["run", fleet.path, "--duration", "4", "--state-dir", state, "--report", report] + extra, in: fleet.path)
            defer { process.signal(SIGKILL) }
            #expect(process.wait(timeout: 30) == 0)
            return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        }
        let text = try await run(["--scenario", "\(fleet.path)/plan.yaml"])
        #expect(text.contains("scenario: 3 events from"), "\(text)")
        #expect(text.contains("scenario: t=1 s clock_skew -3600 s → 1 device (ids sk-a): sk-a"), "\(text)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        let events = try #require(json["scenario"] as? [[String: Any]])
        #expect(events.compactMap { $0["action"] as? String } == ["clock_skew", "rate", "reboot"])
        #expect(events.first?["devices"] as? [String] == ["sk-a"])

        // clock_skew: sk-a's timestamps after the event are an hour behind the observer's clock.
        let telemetry = subscriber.messages().filter { $0.topic == "devices/sk-a/telemetry" }
            .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) as? [String: Any] }
        let behind = telemetry.compactMap { ($0["ts"] as? NSNumber)?.int64Value }.filter { Date().timeIntervalSince1970 * 1000 - Double($0) > 3_500_000 }
        #expect(!behind.isEmpty && behind.count < telemetry.count, "some, not all, readings are skewed")
        // rate ×5: sk-b sent clearly more than sk-a over the same run.
        let seqs = subscriber.sequences()
        #expect((seqs["sk-b"]?.count ?? 0) > 2 * (seqs["sk-a"]?.count ?? 0), "\(seqs.mapValues(\.count))")

        // Boot counts: sk-a booted twice in the first run; the second run is one more power-on.
        _ = try await run([])
        func births() -> [String: [Int]] {
            statusMessages(subscriber.messages()).mapValues { $0.filter { $0["status"] as? String == "online" }.compactMap { $0["boot_count"] as? Int } }
        }
        #expect(await waitFor(10) { births()["sk-a"]?.count == 3 })
        #expect(births()["sk-a"] == [1, 2, 3], "\(births())")
        #expect(births()["sk-b"] == [1, 2], "\(births())")
    }

    @Test("a scenario's fault event: out_of_range on two chosen devices, exactly inside the seqs its runtime labels give, nowhere else")
    func faultEventMatchesItsLabels() async throws {
        let ids = ["f-1", "f-2", "f-3", "f-4"]
        let fleet = try TestFleet(devices: ids, interval: 0.2, fleetExtra: """
            labels: labels.jsonl
            scenario:
              - {at: 1, ids: [f-1, f-2], action: fault, kind: out_of_range, sensor: temperature, value: 85, duration: 1}
            """)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/telemetry"])
        let spec = try fleet.load()
        let plan = try #require(spec.scenario)
        let runner = try fleet.makeFleet()
        let scenario = ScenarioService(fleet: runner, scenario: plan, logger: Logger(label: "scenario"), write: { _ in })
        await runner.start()
        try await scenario.runEvents()
        #expect(scenario.records.first?.devices.sorted() == ["f-1", "f-2"])
        // The fault lasts 1 s from the device's next reading: wait for both end records.
        func labels() -> [[String: Any]] {
            ((try? String(contentsOfFile: "\(fleet.path)/labels.jsonl", encoding: .utf8)) ?? "")
                .split(separator: "\n").compactMap { json(String($0)) }
        }
        #expect(await waitFor(10) { labels().filter { $0["end_seq"] != nil }.count == 2 }, "\(labels())")
        let summary = await runner.stop()
        #expect(summary.totals.acknowledged == summary.totals.accepted)

        let starts = labels().filter { $0["end_seq"] == nil }
        #expect(starts.count == 2 && starts.allSatisfy { $0["source"] as? String == "runtime" && $0["fault"] as? String == "out_of_range" },
                "\(starts)")
        var window: [String: ClosedRange<Int>] = [:]
        for record in labels() where record["end_seq"] != nil {
            #expect(record["fault"] as? String == "out_of_range")
            let device = try #require(record["device"] as? String)
            let start = try #require(record["start_seq"] as? Int), end = try #require(record["end_seq"] as? Int)
            window[device] = start...end
        }
        #expect(Set(window.keys) == ["f-1", "f-2"])
        // 85 is outside the random walk's 10…30: a reading of 85 can only be the fault.
        #expect(await waitFor(10) {
            summary.devices.allSatisfy { d in Set(subscriber.sequences()[d.id] ?? []).count == Int(d.lastSeq) }
        })
        var faulty: [String: Set<Int>] = [:]
        for message in subscriber.messages() {
            guard let body = json(message.payload), let device = body["device"] as? String, let seq = body["seq"] as? Int,
                  let readings = body["readings"] as? [String: Any], let value = readings["temperature"] as? Double else { continue }
            if value == 85 { faulty[device, default: []].insert(seq) }
        }
        for id in ids {
            let expected = window[id].map { Set($0) } ?? []
            #expect(faulty[id, default: []] == expected, "\(id): 85 at \(faulty[id, default: []].sorted()), labels \(expected.sorted())")
        }
        #expect((window["f-1"]?.count ?? 0) >= 3, "a 1 s fault at 5 readings a second spans several readings")
    }

    @Test("rotate_certificate: the chosen device renews its connection once with the new certificate (the broker's username is its CN), the others keep theirs, nothing lost")
    func rotateCertificateReconnectsWithTheNewOne() async throws {
        let ids = ["rot-a", "rot-b", "rot-c"]
        // The renewed certificate has CN rot-b-renewed: with use_identity_as_username the broker
        // logs that CN as the connection's username, so the log tells which certificate a
        // connection presented. The ACL lets that username act as rot-b.
        let renewedCN = "rot-b-renewed"
        let fleet = try TestFleet(devices: ids, interval: 0.2, fleetExtra: """
            scenario:
              - {at: 1, ids: [rot-b], action: rotate_certificate}
            """, brokerSettings: { settings, _ in
                let acl = try String(contentsOfFile: settings.aclFile, encoding: .utf8)
                try (acl + "\nuser \(renewedCN)\ntopic readwrite devices/rot-b/#\n")
                    .write(toFile: settings.aclFile, atomically: true, encoding: .utf8)
            })
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/status", "devices/+/telemetry"])
        let spec = try fleet.load()
        let plan = try #require(spec.scenario)
        let runner = try fleet.makeFleet()
        let output = Lines()
        let scenario = ScenarioService(fleet: runner, scenario: plan, logger: Logger(label: "scenario"), write: { output.append($0) })
        await runner.start()
        #expect(await waitFor(20) { statusMessages(subscriber.messages()).filter { $0.value.contains { $0["status"] as? String == "online" } }.count == 3 })

        // Before the event: a newly issued certificate and key from the fleet CA in rot-b's folder.
        let authority = FleetAuthority(certificate: try FleetPKI.loadCertificate("\(fleet.path)/ca.pem"),
                                       key: try FleetPKI.loadKey("\(fleet.path)/ca.key"))
        let key = P256.Signing.PrivateKey()
        let renewed = try FleetPKI.makeDevice(id: renewedCN, key: key, authority: authority, now: Date(), validityDays: 30)
        let old = try FleetPKI.loadCertificate("\(fleet.path)/rot-b/cert.pem")
        #expect(renewed.serialNumber != old.serialNumber)
        try AtomicFile.write(FleetPKI.pem(renewed), to: "\(fleet.path)/rot-b/cert.pem", mode: 0o644)
        try AtomicFile.write(FleetPKI.pem(key), to: "\(fleet.path)/rot-b/key.pem", mode: 0o600)

        try await scenario.runEvents()
        let record = try #require(scenario.records.first)
        #expect(record.action == "rotate_certificate" && record.devices == ["rot-b"])
        #expect(record.refused == nil)
        #expect(output.lines.withLock { $0 }.first?.contains("rotate_certificate → 1 device (ids rot-b): rot-b") == true, "\(output.lines.withLock { $0 })")

        // The broker: rot-b connected a second time, presenting the renewed certificate.
        func connections(_ id: String) -> [String] {
            fleet.broker.log().split(separator: "\n").filter { $0.contains("New client connected") && $0.contains(" as \(id) (") }.map(String.init)
        }
        #expect(await waitFor(15) { connections("rot-b").count == 2 }, "\(connections("rot-b"))")
        let rotB = connections("rot-b")
        #expect(rotB.first?.contains("u'rot-b')") == true, "\(rotB)")
        #expect(rotB.last?.contains("u'\(renewedCN)')") == true, "\(rotB)")
        // Readings keep flowing over the new connection (the ACL grants them to the new username only
        // through the added entry): wait for a few more.
        let before = subscriber.sequences()["rot-b"]?.max() ?? 0
        #expect(await waitFor(10) { (subscriber.sequences()["rot-b"]?.max() ?? 0) >= before + 3 })

        let summary = await runner.stop()
        #expect(summary.totals.dropped == 0)
        #expect(summary.totals.acknowledged == summary.totals.accepted)
        #expect(await waitFor(10) {
            let seen = subscriber.sequences()
            return summary.devices.allSatisfy { d in d.lastSeq > 0 && Set(seen[d.id] ?? []) == Set(1...max(1, d.lastSeq)) }
        }, "\(summary.devices.map { ($0.id, $0.lastSeq) }) seen \(subscriber.sequences().mapValues { $0.count })")
        for device in summary.devices { #expect(device.connects == (device.id == "rot-b" ? 2 : 1), "\(device.id) connected \(device.connects) times") }
        // The renewal is not a connection failure: no error counted, none reported.
        for device in summary.devices { #expect(device.errors == 0 && device.lastError == nil, "\(device.id): \(device.errors) errors, last \(device.lastError ?? "-")") }
        for id in ["rot-a", "rot-c"] { #expect(connections(id).count == 1, "\(connections(id))") }
        // A renewal is our own clean DISCONNECT: no will (connection_lost) from anyone.
        #expect(!statusMessages(subscriber.messages()).values.contains { $0.contains { $0["reason"] as? String == "connection_lost" } })
    }
}
