import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Load test: sequence counting, templates, payload timestamps, HTML")
struct BenchUnitTests {
    @Test("in-order sequences: no gaps, duplicates or reordering")
    func inOrder() {
        var tracker = SequenceTracker()
        for seq in 1...100 as ClosedRange<UInt64> { tracker.record(seq) }
        #expect(tracker.received == 100)
        #expect(tracker.gaps(lastSent: 100) == 0)
        #expect(tracker.duplicates == 0)
        #expect(tracker.outOfOrder == 0)
    }

    @Test("gaps, duplicates, late arrivals and a missing tail are told apart")
    func injected() {
        var tracker = SequenceTracker()
        for seq: UInt64 in [1, 2, 2, 4, 3, 6, 6, 9] { tracker.record(seq) }
        #expect(tracker.received == 8)
        #expect(tracker.duplicates == 2)          // the second 2 and the second 6
        #expect(tracker.outOfOrder == 1)          // 3 after 4
        #expect(tracker.gaps() == 3)              // 5, 7, 8
        #expect(tracker.gaps(lastSent: 11) == 5)  // and the tail 10, 11
        #expect(tracker.unique == 6)
        tracker.record(5)                          // a gap filled late is out of order, no longer a gap
        #expect(tracker.gaps() == 2)
        #expect(tracker.outOfOrder == 2)
    }

    @Test("nothing received: every message sent is a gap")
    func nothingReceived() {
        #expect(SequenceTracker().gaps(lastSent: 7) == 7)
    }

    @Test("the microsecond timestamp is read back from an encoded payload")
    func microsField() {
        let bytes = TelemetryPayload.encode(
            device: "d-1", seq: 3, timestampMillis: 1_700_000_000_123, readings: [("t", 1.5)],
            timestampMicros: 1_700_000_000_123_456, padding: 40)
        let micros = bytes.withUnsafeBytes { Verifier.microsField($0) }
        #expect(micros == 1_700_000_000_123_456)
        let header = bytes.withUnsafeBytes { TelemetryPayload.parseHeader($0) }
        #expect(header?.seq == 3)
        #expect(header?.timestampMillis == 1_700_000_000_123)
        let plain = TelemetryPayload.encode(device: "d-1", seq: 3, timestampMillis: 1, readings: [("t", 1.5)])
        #expect(plain.withUnsafeBytes { Verifier.microsField($0) } == nil)
        let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        #expect(object?["tus"] as? Int == 1_700_000_000_123_456)
    }

    @Test("id patterns: width from the zeros, start, and bad patterns refused")
    func idPatterns() {
        #expect(TemplateSpec.expand("sensor-{0000}", number: 7) == "sensor-0007")
        #expect(TemplateSpec.expand("sensor-{00}", number: 12345) == "sensor-12345")
        #expect(TemplateSpec.expand("{0}-x", number: 3) == "3-x")
        #expect(TemplateSpec.problem(with: "sensor-{0000}") == nil)
        #expect(TemplateSpec.problem(with: "sensor") != nil)
        #expect(TemplateSpec.problem(with: "sensor-{00}-{00}") != nil)
        #expect(TemplateSpec.problem(with: "sensor-{n}") != nil)
        #expect(TemplateSpec.problem(with: "-{000}") != nil)
    }

    @Test("templates in fleet.yaml expand into devices beside the folder devices")
    func templatesExpand() throws {
        let fleet = try TempFleet()
        defer { fleet.remove() }
        try fleet.write("fleet.yaml", """
            broker:
              host: localhost
              port: 8883
            defaults:
              qos: 0
            templates:
              - id: sensor-{0000}
                count: 1500
                interval: 0.5
                sensors:
                  - name: temperature
                    type: constant
                    value: 21
              - id: meter-{00}
                count: 3
                start: 10
                qos: 1
                shared_identity: true
                sensors:
                  - name: power
                    type: counter
            """)
        try fleet.write("thermostat-001/device.yaml", TempFleet.deviceYAML())
        let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
        #expect(spec.devices.count == 1504)
        let byID = Dictionary(uniqueKeysWithValues: spec.devices.map { ($0.id, $0) })
        let first = try #require(byID["sensor-0001"])
        #expect(byID["sensor-1500"] != nil && byID["sensor-1501"] == nil && byID["sensor-0000"] == nil)
        #expect(first.interval == 0.5 && first.qos == 0)
        #expect(first.certFile == fleet.path("sensor-0001/cert.pem"))
        #expect(first.topic == "devices/sensor-0001/telemetry")
        let meter = try #require(byID["meter-12"])
        #expect(byID["meter-10"] != nil && byID["meter-13"] == nil)
        #expect(meter.qos == 1)
        #expect(meter.certFile == fleet.path("meter-shared/cert.pem"))
        #expect(byID["thermostat-001"] != nil)
    }

    @Test("a bad template names fleet.yaml, the field, what was expected and the fix")
    func badTemplate() throws {
        let fleet = try TempFleet()
        defer { fleet.remove() }
        try fleet.write("fleet.yaml", """
            broker:
              host: localhost
            templates:
              - id: sensor
                count: many
                sensors: []
            """)
        do {
            _ = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            Issue.record("expected a validation error")
        } catch {
            let text = error.issues.map(\.description).joined(separator: "\n")
            #expect(text.contains("fleet.yaml"))
            #expect(text.contains("templates[0].id"))
            #expect(text.contains("templates[0].count"))
            #expect(text.contains("templates[0].sensors"))
        }
    }

    @Test("provision makes a certificate and key per template device, and one shared identity when asked")
    func provisionTemplates() throws {
        let fleet = try TempFleet()
        defer { fleet.remove() }
        try fleet.write("fleet.yaml", """
            broker:
              host: localhost
            templates:
              - id: t-{000}
                count: 40
                sensors:
                  - name: x
                    type: constant
                    value: 1
              - id: s-{0}
                count: 5
                shared_identity: true
                sensors:
                  - name: x
                    type: constant
                    value: 1
            """)
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.root))
        let loaded = try FleetLoader.load(directory: fleet.root)
        #expect(loaded.spec.devices.count == 45)
        #expect(loaded.warnings.contains { $0.description.contains("share ONE certificate") })
        let mode = try FileManager.default.attributesOfItem(atPath: fleet.path("t-040/key.pem"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(!FileManager.default.fileExists(atPath: fleet.path("s-1/cert.pem")))
        // A second run keeps every key.
        let key = try String(contentsOfFile: fleet.path("t-001/key.pem"), encoding: .utf8)
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.root))
        #expect(try String(contentsOfFile: fleet.path("t-001/key.pem"), encoding: .utf8) == key)
    }
}
