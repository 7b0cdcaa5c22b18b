import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Sparkplug B payloads as our code makes them, read back with the generated decoder (the
/// integration tests decode what the broker delivers with protoc instead), and the settings.
@Suite struct SparkplugPayloadTests {
    @Test func birthNamesEveryMetricWithItsAliasAndDatatypeAndCarriesSeqZeroAndTheBdSeq() throws {
        let bytes = SparkplugPayload.birth(bdSeq: 7, deviceSeq: 41, sensors: ["temperature", "humidity"],
                                           values: ["temperature": 21.5], timestampMillis: 1_700_000_000_123)
        let payload = try SparkplugBPayload(serializedBytes: bytes)
        #expect(payload.hasSeq && payload.seq == 0)
        #expect(payload.timestamp == 1_700_000_000_123)
        let byName = Dictionary(uniqueKeysWithValues: payload.metrics.map { ($0.name, $0) })
        #expect(payload.metrics.map(\.name) == ["bdSeq", "Node Control/Rebirth", "SensorFleet/seq", "temperature", "humidity"])
        #expect(byName["bdSeq"]?.longValue == 7 && byName["bdSeq"]?.datatype == UInt32(SparkplugBDataType.int64.rawValue))
        #expect(byName["bdSeq"]?.hasAlias == false)
        #expect(byName["Node Control/Rebirth"]?.alias == 1 && byName["Node Control/Rebirth"]?.booleanValue == false)
        #expect(byName["Node Control/Rebirth"]?.datatype == 11)
        #expect(byName["SensorFleet/seq"]?.alias == 2 && byName["SensorFleet/seq"]?.longValue == 41 && byName["SensorFleet/seq"]?.datatype == 8)
        #expect(byName["temperature"]?.alias == 3 && byName["temperature"]?.doubleValue == 21.5 && byName["temperature"]?.datatype == 10)
        // No reading yet: explicitly null, not a made-up 0.
        #expect(byName["humidity"]?.alias == 4 && byName["humidity"]?.isNull == true && byName["humidity"]?.value == nil)
        #expect(payload.metrics.allSatisfy { $0.timestamp == 1_700_000_000_123 })
    }

    @Test func dataCarriesAliasesOnlyAndNoSeqUntilStamped() throws {
        let bytes = SparkplugPayload.data(deviceSeq: 1_000_000_000_000, readings: [(3, 20.25), (5, -1)], timestampMillis: 42)
        let payload = try SparkplugBPayload(serializedBytes: bytes)
        #expect(!payload.hasSeq)
        #expect(payload.metrics.allSatisfy { !$0.hasName })
        #expect(payload.metrics.map(\.alias) == [2, 3, 5])
        #expect(payload.metrics[0].longValue == 1_000_000_000_000)
        #expect(payload.metrics[1].doubleValue == 20.25 && payload.metrics[2].doubleValue == -1)
        for seq: UInt8 in [0, 1, 127, 128, 200, 255] {
            var stamped: [UInt8] = []
            SparkplugPayload.appendSequence(seq, to: bytes, into: &stamped)
            let decoded = try SparkplugBPayload(serializedBytes: stamped)
            #expect(decoded.hasSeq && decoded.seq == UInt64(seq))
            #expect(decoded.metrics == payload.metrics)
        }
    }

    @Test func deathCarriesTheBdSeqAndNoSeq() throws {
        let payload = try SparkplugBPayload(serializedBytes: SparkplugPayload.death(bdSeq: 255, timestampMillis: 5))
        #expect(!payload.hasSeq)
        #expect(payload.metrics.count == 1 && payload.metrics[0].name == "bdSeq" && payload.metrics[0].longValue == 255)
    }

    @Test func theVerifierFindsTheDeviceSeqAndTimestampInAnNDATAButNotInJSONAndViceVersa() throws {
        var stamped: [UInt8] = []
        SparkplugPayload.appendSequence(9, to: SparkplugPayload.data(deviceSeq: 300, readings: [(3, 1)], timestampMillis: 1234),
                                        into: &stamped)
        let header = stamped.withUnsafeBytes { SparkplugPayload.parseHeader($0, topic: "spBv1.0/g/NDATA/edge-7") }
        #expect(header == TelemetryHeader(device: "edge-7", seq: 300, timestampMillis: 1234))
        #expect(stamped.withUnsafeBytes { TelemetryPayload.parseHeader($0) } == nil)
        let json = TelemetryPayload.encode(device: "d", seq: 3, timestampMillis: 4, readings: [("t", 1)])
        #expect(json.withUnsafeBytes { SparkplugPayload.parseHeader($0, topic: "spBv1.0/g/NDATA/d") } == nil)
        // A birth-less NDATA from someone else (no SensorFleet/seq) is not ours.
        let foreign = SparkplugPayload.data(deviceSeq: 1, readings: [], timestampMillis: 1)
        var other = try SparkplugBPayload(serializedBytes: foreign)
        other.metrics[0].alias = 77
        let otherBytes: [UInt8] = try other.serializedBytes()
        #expect(otherBytes.withUnsafeBytes { SparkplugPayload.parseHeader($0, topic: "spBv1.0/g/NDATA/d") } == nil)
    }

    @Test func aRebirthIsAskedForOnlyByNodeControlRebirthTrue() throws {
        #expect(SparkplugPayload.isRebirthRequest(SparkplugPayload.rebirthRequest(timestampMillis: 1)))
        var byAlias = SparkplugBPayload()
        var metric = SparkplugBPayload.Metric()
        metric.alias = 1
        metric.booleanValue = true
        byAlias.metrics = [metric]
        #expect(SparkplugPayload.isRebirthRequest(try byAlias.serializedBytes()))
        var no = try SparkplugBPayload(serializedBytes: SparkplugPayload.rebirthRequest(timestampMillis: 1))
        no.metrics[0].booleanValue = false
        #expect(!SparkplugPayload.isRebirthRequest(try no.serializedBytes()))
        no.metrics[0].name = "Node Control/Reboot"
        no.metrics[0].booleanValue = true
        #expect(!SparkplugPayload.isRebirthRequest(try no.serializedBytes()))
        #expect(!SparkplugPayload.isRebirthRequest(Array("{\"command\":\"ping\"}".utf8)))
    }
}

@Suite struct SparkplugBdSeqTests {
    @Test func bdSeqGoesUpPerConnectWrapsAt255AndSurvivesARestartInTheStateFolder() throws {
        let dir = try TempDir("bdseq")
        defer { dir.remove() }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let first = BirthDeathSequence(stateDirectory: dir.path, deviceID: "n1", logger: logger)
        #expect(first.current == nil)
        #expect([first.next(), first.next(), first.next()] == [0, 1, 2])
        let restarted = BirthDeathSequence(stateDirectory: dir.path, deviceID: "n1", logger: logger)
        #expect(restarted.current == 2)
        #expect(restarted.next() == 3)
        try "255\n".write(toFile: "\(dir.path)/sparkplug/n1.bdseq", atomically: true, encoding: .utf8)
        #expect(BirthDeathSequence(stateDirectory: dir.path, deviceID: "n1", logger: logger).next() == 0)
        // Another node has its own number; without a folder, each run starts at 0.
        #expect(BirthDeathSequence(stateDirectory: dir.path, deviceID: "n2", logger: logger).next() == 0)
        let memory = BirthDeathSequence(stateDirectory: nil, deviceID: "n1", logger: logger)
        #expect(memory.next() == 0 && memory.next() == 1)
        try "banana".write(toFile: "\(dir.path)/sparkplug/n1.bdseq", atomically: true, encoding: .utf8)
        #expect(BirthDeathSequence(stateDirectory: dir.path, deviceID: "n1", logger: logger).next() == 0)
    }
}

@Suite struct SparkplugSettingsTests {
    @Test func sparkplugDevicesGetTheirNDATATopicAndQoS0FromDefaultsOrTheirOwnFile() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b", "c"], fleetYAML: """
                broker:
                  host: localhost
                defaults:
                  qos: 1
                  sparkplug:
                    group_id: plant-1
                """)
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b"))
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b\nsparkplug:\n  edge_node_id: \"line-{id}\"\n  group_id: g2"))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.devices[0].sparkplug == SparkplugSettings(groupID: "plant-1", edgeNodeID: "a"))
            #expect(spec.devices[0].topic == "spBv1.0/plant-1/NDATA/a" && spec.devices[0].qos == 0)
            #expect(spec.devices[1].topic == "spBv1.0/g2/NDATA/line-b")
            #expect(spec.devices[1].sparkplug?.topic(.ncmd) == "spBv1.0/g2/NCMD/line-b")
            // The defaults' `sparkplug:` does not make c a Sparkplug device: without
            // `payload: sparkplug_b` it stays JSON (and keeps the defaults' qos).
            #expect(spec.devices[2].sparkplug == nil && spec.devices[2].topic == "devices/c/telemetry" && spec.devices[2].qos == 1)
        }
    }

    @Test func aTemplateOfSparkplugDevicesGivesEachItsOwnEdgeNode() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"], fleetYAML: """
                broker:
                  host: localhost
                templates:
                  - id: press-{00}
                    count: 3
                    payload: sparkplug_b
                    sparkplug:
                      group_id: plant-2
                      edge_node_id: "node-{id}"
                    sensors:
                      - name: level
                        type: constant
                        value: 1
                """)
            // The template's devices have no certificates yet (provision makes them).
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            let presses = spec.devices.filter { $0.id.hasPrefix("press-") }
            #expect(presses.map(\.topic) == (1...3).map { "spBv1.0/plant-2/NDATA/node-press-0\($0)" })
            #expect(presses.allSatisfy { $0.qos == 0 && $0.sparkplug?.groupID == "plant-2" })
        }
    }

    @Test func whatDoesNotFitSparkplugIsRefusedNamingTheField() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["nogroup", "qos1", "topic", "section", "typo", "slash"])
            try fleet.write("nogroup/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b"))
            try fleet.write("qos1/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b\nqos: 1\nsparkplug: {group_id: g}"))
            try fleet.write("topic/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b\ntopic: a/b\nsparkplug: {group_id: g}"))
            try fleet.write("section/device.yaml", TempFleet.deviceYAML("sparkplug: {group_id: g}"))
            try fleet.write("typo/device.yaml", TempFleet.deviceYAML("payload: sparkplug"))
            try fleet.write("slash/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b\nsparkplug: {group_id: a/b, edge_node_id: x}"))
            let issues = loadIssues(fleet)
            func file(_ id: String) -> String { fleet.root + "/\(id)/device.yaml" }
            #expect(try issue(in: issues, file: file("nogroup"), field: "sparkplug.group_id").fix.contains("group_id"))
            let qos = try issue(in: issues, file: file("qos1"), field: "qos")
            #expect(qos.problem.contains("QoS 0") && qos.fix.contains("qos: 0"))
            #expect(try issue(in: issues, file: file("topic"), field: "topic").fix.contains("remove `topic:`"))
            #expect(try issue(in: issues, file: file("section"), field: "sparkplug").fix.contains("payload: sparkplug_b"))
            let typo = try issue(in: issues, file: file("typo"), field: "payload")
            #expect(typo.problem.contains("did you mean `sparkplug_b`?"), "\(typo.problem)")
            #expect(typo.line == 1)
            #expect(try issue(in: issues, file: file("slash"), field: "sparkplug.group_id").problem.contains("`/`"))
        }
    }
}
