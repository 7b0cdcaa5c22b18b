import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

private func encode(_ format: PayloadFormat, seq: UInt64 = 42, micros: Int64 = 1_700_000_000_123_456,
                    readings: [(name: String, value: Double)] = [("temperature", 21.5), ("humidity", 45)],
                    extras: TelemetryFormat = TelemetryFormat()) -> [UInt8] {
    var buffer: [UInt8] = []
    format.encode(device: "dev-1", seq: seq, timestampMicros: micros, readings: readings, extras: extras, into: &buffer)
    return buffer
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func stamp(_ format: PayloadFormat, _ bytes: [UInt8]) -> TelemetryStamp? {
    bytes.withUnsafeBytes { format.stamp(of: $0) }
}

@Suite("Payload formats: template and InfluxDB line protocol, written and read back")
struct PayloadFormatTests {
    @Test func templateFillsEveryPlaceholderAndTheVerifierReadsSeqAndTimeBack() throws {
        let template = try PayloadTemplate(parsing: #"{"id":"{{id}}","n":{{ seq }},"at":{{ts_ms}},"iso":"{{ts_iso}}","t":{{temperature}},"p":{{pressure}}}"#)
        let format = PayloadFormat.template(template)
        let bytes = encode(format)
        #expect(text(bytes) == #"{"id":"dev-1","n":42,"at":1700000000123,"iso":"2023-11-14T22:13:20.123Z","t":21.5,"p":null}"#)
        // Valid JSON for a back end that expects it.
        #expect((try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])?["n"] as? Int == 42)
        #expect(stamp(format, bytes) == TelemetryStamp(seq: 42, sentMicros: 1_700_000_000_123_000))
        #expect(template.unknownPlaceholders(sensors: ["temperature"]).map(\.name) == ["pressure"])
        #expect(template.verificationProblem == nil)
        // Another message of another seq reads back as itself; a foreign text does not match.
        #expect(stamp(format, encode(format, seq: 7, micros: 5_000))?.seq == 7)
        #expect(stamp(format, Array(#"{"id":"dev-1","x":1}"#.utf8)) == nil)
    }

    @Test func isoTimeAndMicrosecondsReadBackExactly() throws {
        let format = PayloadFormat.template(try PayloadTemplate(parsing: "{{ts_iso}} {{seq}} {{ts_us}}"))
        for micros: Int64 in [0, 951_782_400_000_000, 1_700_000_000_999_999, 4_102_444_800_000_000] {
            let bytes = encode(format, seq: 3, micros: micros)
            // The ISO time comes first: that is the one read back (ms resolution).
            #expect(stamp(format, bytes) == TelemetryStamp(seq: 3, sentMicros: micros / 1000 * 1000), "\(text(bytes))")
        }
        #expect(text(encode(format, micros: 951_782_400_000_000)).hasPrefix("2000-02-29T00:00:00.000Z"))
    }

    @Test func templateSyntaxAndVerifiabilityProblemsNameTheLine() throws {
        #expect(throws: PayloadTemplate.Problem.self) { try PayloadTemplate(parsing: "a\n{{seq") }
        do {
            _ = try PayloadTemplate(parsing: "ok\nstill ok\n{{ bad name }}")
            Issue.record("a name with a space was accepted")
        } catch {
            #expect(error.line == 3)
        }
        #expect(try PayloadTemplate(parsing: "{{ts_ms}}").verificationProblem?.contains("{{seq}}") == true)
        #expect(try PayloadTemplate(parsing: "{{seq}}").verificationProblem?.contains("time") == true)
        #expect(try PayloadTemplate(parsing: "{{seq}}1,{{ts_ms}}").verificationProblem?.contains("`1`") == true)
        #expect(try PayloadTemplate(parsing: "{{seq}}{{ts_ms}}").verificationProblem?.contains("directly") == true)
        // After seq and the time, anything goes: the verifier stops reading there.
        #expect(try PayloadTemplate(parsing: "{{seq}};{{ts_ms}};{{temperature}}C").verificationProblem == nil)
    }

    @Test func influxLineHasTagsFieldsSeqAndNanoseconds() throws {
        let format = PayloadFormat.influx(InfluxLine(measurement: "climate data", tags: [.init(key: "site", value: "north,1"), .init(key: "who", value: "{id}")]))
        let bytes = encode(format, readings: [("temperature", 21.5), ("bad", .nan), ("humidity", 45)])
        #expect(text(bytes) == #"climate\ data,device=dev-1,site=north\,1,who=dev-1 temperature=21.5,humidity=45,seq=42i 1700000000123456000"#)
        #expect(stamp(format, bytes) == TelemetryStamp(seq: 42, sentMicros: 1_700_000_000_123_456))
        let padded = encode(format, extras: TelemetryFormat(padding: 10))
        #expect(text(padded).contains(#",seq=42i,pad="xxxxxxxxxx" "#))
        #expect(stamp(format, padded)?.seq == 42)
        // Lines written by someone else: escaped spaces, a string field holding a space and `seq=`.
        let other = #"m\ 1,device=a\ b note="x seq=9 y",seq=5i,v=1 1700000000000000000"#
        #expect(stamp(format, Array(other.utf8)) == TelemetryStamp(seq: 5, sentMicros: 1_700_000_000_000_000))
        #expect(stamp(format, Array("m seq=5 1".utf8)) == nil)  // a float seq is not ours
        #expect(stamp(format, Array("garbage".utf8)) == nil)
    }

    @Test func jsonStaysTheDefaultAndReadsBackWithMicroseconds() throws {
        let bytes = encode(.json, extras: TelemetryFormat(microsecondTimestamps: true))
        #expect(text(bytes).hasPrefix(#"{"device":"dev-1","seq":42,"ts":1700000000123,"tus":1700000000123456,"#))
        #expect(stamp(.json, bytes) == TelemetryStamp(seq: 42, sentMicros: 1_700_000_000_123_456))
        #expect(stamp(.json, encode(.json)) == TelemetryStamp(seq: 42, sentMicros: 1_700_000_000_123_000))
    }

    // MARK: device.yaml

    @Test func payloadKeysLoadFromDefaultsDevicesAndTemplateFiles() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b", "c"], fleetYAML: """
                broker:
                  host: localhost
                defaults:
                  payload:
                    format: influx
                    measurement: plant
                    tags:
                      line: "4"
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("payload:\n  format: template\n  template_file: body.tmpl"))
            try fleet.write("b/body.tmpl", "level={{level}} seq={{seq}} at={{ts_ms}}\n")
            try fleet.write("c/device.yaml", TempFleet.deviceYAML("payload: json"))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.devices[0].payload == .influx(InfluxLine(measurement: "plant", tags: [.init(key: "line", value: "4")])))
            let b = try PayloadTemplate(parsing: "level={{level}} seq={{seq}} at={{ts_ms}}\n")
            #expect(spec.devices[1].payload == .template(b))
            #expect(spec.devices[2].payload == .json)
        }
    }

    @Test func unknownPlaceholderIsAnErrorNamingTheFileLineAndTheKnownNames() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"])
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("payload:\n  format: template\n  template: '{\"l\":{{levle}},\"s\":{{seq}},\"t\":{{ts_ms}}}'"))
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("payload:\n  format: template\n  template_file: t.txt"))
            try fleet.write("b/t.txt", "first line {{seq}} {{ts_ms}}\nsecond {{temprature}}\n")
            let issues = loadIssues(fleet)
            let inline = try issue(in: issues, file: fleet.root + "/a/device.yaml", field: "payload.template")
            #expect(inline.line == 3, "\(inline)")
            #expect(inline.problem.contains("{{levle}}") && inline.problem.contains("{{level}}") && inline.problem.contains("{{seq}}"))
            #expect(inline.fix.contains("did you mean {{level}}"))
            let fromFile = try issue(in: issues, file: fleet.root + "/b/t.txt", field: nil)
            #expect(fromFile.line == 2 && fromFile.problem.contains("{{temprature}}"), "\(fromFile)")
        }
    }

    @Test func badFormatsTagsAndMixedKeysAreRefused() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b", "c"])
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("payload: infux"))
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("payload:\n  format: influx\n  template: x\n  tags:\n    device: me"))
            try fleet.write("c/device.yaml", TempFleet.deviceYAML("payload:\n  format: template\n  template: 'x {{seq'"))
            let issues = loadIssues(fleet)
            let a = try issue(in: issues, file: fleet.root + "/a/device.yaml", field: "payload")
            #expect(a.problem.contains("did you mean `influx`"))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "payload.template").problem.contains("influx"))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "payload.tags.device").problem.contains("device id"))
            #expect(try issue(in: issues, file: fleet.root + "/c/device.yaml", field: "payload.template").problem.contains("not closed"))
        }
    }
}
