import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Loading whole fleet folders: defaults, overrides, the committed example, folder-level problems.
@Suite struct FleetLoaderTests {
    @Test func minimalFleetLoadsWithEveryDefaultApplied() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "# nothing but defaults\n")
            try fleet.write("ca.pem", ca.certificate.pem)
            for id in ["zeta-1", "alpha-1"] {
                try fleet.write("\(id)/device.yaml", TempFleet.deviceYAML())
                try fleet.writeCredentials(for: id, identity: ca.issue(cn: id))
            }
            let loaded = try FleetLoader.load(directory: fleet.root)
            let spec = loaded.spec
            #expect(loaded.warnings.isEmpty)
            #expect(spec.directory == fleet.root)
            #expect(spec.broker == BrokerSpec(caFile: fleet.path("ca.pem")))
            #expect(spec.broker.host == "localhost")
            #expect(spec.broker.port == 8883)
            #expect(spec.broker.protocolVersion == .v311)
            #expect(spec.broker.keepAlive == 30)
            #expect(spec.broker.tlsMinVersion == "1.2")
            #expect(spec.broker.alpn == nil && spec.broker.bindAddress == nil)
            #expect(!spec.broker.insecureSkipHostnameVerification)
            #expect(spec.seed == 1)
            #expect(spec.connectRate == 50)
            #expect(spec.outboxLimit == 1000)
            #expect(spec.devices.map(\.id) == ["alpha-1", "zeta-1"])  // sorted by id
            let device = try #require(spec.devices.first)
            #expect(device == DeviceSpec(
                id: "alpha-1", directory: fleet.path("alpha-1"), certFile: fleet.path("alpha-1/cert.pem"),
                keyFile: fleet.path("alpha-1/key.pem"), interval: 5, qos: 1, topic: "devices/alpha-1/telemetry",
                cleanSession: true, sensors: [SensorSpec(name: "level", kind: .constant(value: 1))]))
        }
    }

    @Test func fleetDefaultsApplyToDevicesThatDoNotOverrideThem() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                broker:
                  host: mqtt.example.test
                  port: 8884
                  ca: certs/root.pem
                  protocol: 5
                  keepalive: 60
                  tls_min_version: "1.3"
                  alpn: x-amzn-mqtt-ca
                  bind: 127.0.0.2
                seed: 42
                connect_rate: 12.5
                outbox_limit: 7
                defaults:
                  interval: 0.5
                  qos: 0
                  topic: fleet/{id}/data
                  clean_session: false
                """)
            try fleet.write("certs/root.pem", ca.certificate.pem)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("""
                interval: 3
                qos: 1
                topic: special/{id}
                clean_session: true
                """))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.broker == BrokerSpec(
                host: "mqtt.example.test", port: 8884, caFile: fleet.path("certs/root.pem"), protocolVersion: .v5,
                keepAlive: 60, tlsMinVersion: "1.3", alpn: "x-amzn-mqtt-ca", bindAddress: "127.0.0.2"))
            #expect(spec.seed == 42)
            #expect(spec.connectRate == 12.5)
            #expect(spec.outboxLimit == 7)
            let a = try #require(spec.devices.first { $0.id == "a" })
            #expect(a.interval == 0.5 && a.qos == 0 && a.topic == "fleet/a/data" && !a.cleanSession)
            let b = try #require(spec.devices.first { $0.id == "b" })
            #expect(b.interval == 3 && b.qos == 1 && b.topic == "special/b" && b.cleanSession)
        }
    }

    @Test func idCertAndKeyCanBeSetExplicitly() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 3\n")
            try fleet.write("ca.pem", ca.certificate.pem)
            try fleet.write("folder-x/device.yaml", TempFleet.deviceYAML("id: meter-9\ncert: tls/c.pem\nkey: tls/k.pem"))
            let identity = try ca.issue(cn: "meter-9")
            try fleet.write("folder-x/tls/c.pem", identity.certificate.pem)
            try fleet.write("folder-x/tls/k.pem", identity.keyPEM, mode: 0o600)
            let device = try #require(try FleetLoader.load(directory: fleet.root).spec.devices.first)
            #expect(device.id == "meter-9")
            #expect(device.directory == fleet.path("folder-x"))
            #expect(device.certFile == fleet.path("folder-x/tls/c.pem"))
            #expect(device.keyFile == fleet.path("folder-x/tls/k.pem"))
            #expect(device.topic == "devices/meter-9/telemetry")
        }
    }

    @Test func committedExampleFleetParses() throws {
        let devices = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Devices").path
        let spec = try FleetLoader.loadWithoutCredentials(directory: devices)
        #expect(spec.devices.map(\.id) == ["airquality-001", "ds18b20-faulty-001", "gps-tracker-001", "greenhouse-001",
                                            "power-meter-001", "press-line-001", "soil-probe-001", "thermostat-001",
                                            "weather-station-001"])
        let soilProbe = try #require(spec.devices.first { $0.id == "soil-probe-001" })
        #expect(soilProbe.battery?.capacityMAh == 2400 && soilProbe.tags == ["field", "solar"])
        let press = try #require(spec.devices.first { $0.id == "press-line-001" })
        #expect(press.sparkplug == SparkplugSettings(groupID: "plant-1", edgeNodeID: "press-line-001"))
        #expect(press.topic == "spBv1.0/plant-1/NDATA/press-line-001" && press.qos == 0)
        #expect(spec.seed == 42)
        #expect(spec.broker.caFile == devices + "/ca.pem")
        #expect(spec.devices.allSatisfy { $0.faultLabels == devices + "/fault-labels.jsonl" })
        func device(_ id: String) throws -> DeviceSpec { try #require(spec.devices.first { $0.id == id }) }
        let thermostat = try device("thermostat-001")
        #expect(thermostat.interval == 2)
        #expect(thermostat.certFile == devices + "/thermostat-001/cert.pem")
        #expect(thermostat.sensors.first == SensorSpec(
            name: "temperature", unit: "°C",
            kind: .thermal(ThermalSpec(ambient: 12, setpoint: 21.5, hysteresis: 0.6, tau: 1200, heaterPower: 18, start: 17, noise: 0.05)),
            precision: 2))
        #expect(thermostat.sensors.map(\.name) == ["temperature", "humidity", "setpoint"])
        let gps = try device("gps-tracker-001")
        #expect(gps.sensors.first?.precision == 7)
        guard case .route(let route) = gps.sensors.first?.kind else {
            Issue.record("the tracker's position should be a route, got \(String(describing: gps.sensors.first?.kind))")
            return
        }
        #expect(route.points.count == 9 && route.speeds.count == 8 && route.atEnd == .loop)
        #expect(gps.sensors.flatMap(\.readingNames) == ["latitude", "longitude", "speed", "heading", "battery"])
        #expect(gps.sensors.last?.kind == .counter(start: 100, step: -0.01))
        #expect(gps.qos == 0 && gps.topic == "devices/gps-tracker-001/position")
        let air = try device("airquality-001")
        #expect(air.sensors.map(\.name) == ["co2", "pm25", "voc"])
        #expect(air.sensors[1].unit == "µg/m³")
        let meter = try device("power-meter-001")
        guard case .sine(_, _, let offset, _) = meter.sensors[0].kind else {
            Issue.record("voltage should be a sine, got \(meter.sensors[0].kind)")
            return
        }
        #expect(offset == 230)
        #expect(meter.sensors[2].kind == .counter(start: 0, step: 0.0058))
        let probe = try device("ds18b20-faulty-001")
        #expect(probe.sensors[0].faults.map(\.kind.name) == ["out_of_range", "stuck", "dropout", "spike", "drift"])
        #expect(probe.sensors[0].faults[0] == FaultSpec(kind: .outOfRange(value: 85), trigger: .window(from: 0, length: .readings(1))))
        let weather = try device("weather-station-001")
        guard case .replay(let replay) = weather.sensors[2].kind else {
            Issue.record("pressure should be a replay, got \(weather.sensors[2].kind)")
            return
        }
        #expect(replay.column == "pressure_hpa" && replay.times.count == 12 && replay.values[5] == nil && replay.loop)
        #expect(replay.times[6] == 70 * 60)
        let greenhouse = try device("greenhouse-001")
        #expect(greenhouse.sensors[1].kind == .diurnal(DiurnalSpec(mean: 20000, amplitude: 20000, peakHour: 13, timeZone: "Europe/Berlin")))
    }

    @Test func missingFleetYAMLIsReported() throws {
        try withTempFleet { fleet in
            try fleet.write("dev-1/device.yaml", TempFleet.deviceYAML())
            let found = try issue(in: parseIssues(fleet), file: fleet.path("fleet.yaml"), field: nil)
            #expect(found.problem.contains("missing"))
            #expect(found.fix.contains("create"))
        }
    }

    @Test func fleetWithoutDevicesIsReported() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("notes/readme.txt", "not a device")
            let found = try issue(in: parseIssues(fleet), file: fleet.root, field: nil)
            #expect(found.problem.contains("no devices"))
            #expect(found.fix.contains("device.yaml"))
        }
    }

    @Test func missingFleetFolderIsReported() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString)").path
        #expect(throws: FleetValidationError.self) { try FleetLoader.loadWithoutCredentials(directory: path) }
        do {
            _ = try FleetLoader.loadWithoutCredentials(directory: path)
        } catch {
            #expect(error.issues.first?.file == path)
            #expect(error.issues.first?.problem.contains("does not exist") == true)
        }
    }

    @Test func duplicateDeviceIDsNameBothFiles() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("sensor-a/device.yaml", TempFleet.deviceYAML())
            try fleet.write("sensor-b/device.yaml", TempFleet.deviceYAML("id: sensor-a"))
            let found = try issue(in: parseIssues(fleet), file: fleet.path("sensor-b/device.yaml"), field: "id")
            #expect(found.line == 1)
            #expect(found.problem.contains(fleet.path("sensor-a/device.yaml")))
            #expect(found.problem.contains("`sensor-a`"))
            #expect(found.fix.contains("own id"))
        }
    }

    @Test func duplicateIDIsReportedOnTheFileThatDeclaresIt() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("aaa/device.yaml", TempFleet.deviceYAML("id: zzz"))
            try fleet.write("zzz/device.yaml", TempFleet.deviceYAML())
            let issues = parseIssues(fleet)
            #expect(issues.count == 1)
            let found = try issue(in: issues, file: fleet.path("aaa/device.yaml"), field: "id")
            #expect(found.problem.contains(fleet.path("zzz/device.yaml") + " (from its folder name)"))
        }
    }

    @Test func issuesOfAFileAreOrderedByLine() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  port: abc\n  protocl: 5\nseed: x\n")
            try fleet.write("d/device.yaml", TempFleet.deviceYAML())
            let lines = parseIssues(fleet).map(\.line)
            #expect(lines == [2, 3, 4])
        }
    }

    @Test func everyProblemInEveryFileIsCollected() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  port: abc\nseed: -1\n")
            try fleet.write("one/device.yaml", TempFleet.deviceYAML("interval: 0\nqos: 3"))
            try fleet.write("two/device.yaml", "sensors: []\n")
            let issues = parseIssues(fleet)
            #expect(issues.count == 5)
            let found = Set(issues.map { "\($0.file)|\($0.field ?? "-")" })
            #expect(found == [
                fleet.path("fleet.yaml") + "|broker.port", fleet.path("fleet.yaml") + "|seed",
                fleet.path("one/device.yaml") + "|interval", fleet.path("one/device.yaml") + "|qos",
                fleet.path("two/device.yaml") + "|sensors",
            ])
        }
    }

    @Test func issueDescriptionReadsLikeADiagnostic() {
        let issue = FleetIssue(file: "Devices/fleet.yaml", line: 4, field: "broker.port",
                               problem: "expected a whole number from 1 to 65535, got \"abc\"",
                               fix: "set broker.port to the broker's TLS port, e.g. 8883")
        #expect(issue.description
            == "Devices/fleet.yaml:4: broker.port: expected a whole number from 1 to 65535, got \"abc\" — fix: set broker.port to the broker's TLS port, e.g. 8883")
        let bare = FleetIssue(file: "Devices/x/key.pem", problem: "p", fix: "f")
        #expect(bare.description == "Devices/x/key.pem: p — fix: f")
        let error = FleetValidationError(issues: [issue, bare])
        #expect(error.description.split(separator: "\n").count == 2)
    }

    @Test func displayPathsKeepTheDirectoryArgumentAsTyped() {
        let location = FleetLocation(argument: "Devices")
        #expect(location.display("thermostat-001", "device.yaml") == "Devices/thermostat-001/device.yaml")
        #expect(FleetLocation(argument: "Devices/").display("fleet.yaml") == "Devices/fleet.yaml")
        #expect(location.absolute == FileManager.default.currentDirectoryPath + "/Devices")
        #expect(location.resolve("../ca.pem", in: "x").display == "Devices/x/../ca.pem")
        #expect(location.resolve("../ca.pem", in: "x").absolute == FileManager.default.currentDirectoryPath + "/Devices/ca.pem")
    }
}
