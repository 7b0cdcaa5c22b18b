import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

private func json(_ bytes: [UInt8]) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(bytes))
    return try #require(object as? [String: Any])
}

private func header(_ bytes: [UInt8]) -> TelemetryHeader? {
    bytes.withUnsafeBytes { TelemetryPayload.parseHeader($0) }
}

private func header(_ text: String) -> TelemetryHeader? {
    header(Array(text.utf8))
}

@Suite("Payload: JSON telemetry encoding and header parsing")
struct PayloadTests {
    @Test func encodesExactlyTheFieldsWithTheirValues() throws {
        let bytes = TelemetryPayload.encode(
            device: "sensor-0001", seq: 42, timestampMillis: 1_700_000_000_123,
            readings: [(name: "temperature", value: 21.35), (name: "humidity", value: 45)])
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"device":"sensor-0001","seq":42,"ts":1700000000123,"readings":{"temperature":21.35,"humidity":45}}"#
        )
        let object = try json(bytes)
        #expect(Set(object.keys) == ["device", "seq", "ts", "readings"])
        #expect(object["device"] as? String == "sensor-0001")
        #expect((object["seq"] as? NSNumber)?.uint64Value == 42)
        #expect((object["ts"] as? NSNumber)?.int64Value == 1_700_000_000_123)
        let readings = try #require(object["readings"] as? [String: Any])
        #expect(Set(readings.keys) == ["temperature", "humidity"])
        #expect((readings["temperature"] as? NSNumber)?.doubleValue == 21.35)
        #expect((readings["humidity"] as? NSNumber)?.doubleValue == 45)
    }

    @Test func keepsReadingOrderAndWritesNonFiniteAsNull() throws {
        let bytes = TelemetryPayload.encode(
            device: "d", seq: 0, timestampMillis: -5,
            readings: [(name: "z", value: .nan), (name: "a", value: .infinity), (name: "m", value: -.infinity)])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"{"device":"d","seq":0,"ts":-5,"readings":{"z":null,"a":null,"m":null}}"#)
        let readings = try #require(try json(bytes)["readings"] as? [String: Any])
        #expect(readings.values.allSatisfy { $0 is NSNull })
    }

    @Test func emptyReadingsAndExtremeIntegers() throws {
        let bytes = TelemetryPayload.encode(
            device: "d", seq: .max, timestampMillis: .min, readings: [])
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"device":"d","seq":18446744073709551615,"ts":-9223372036854775808,"readings":{}}"#)
        #expect(header(bytes) == TelemetryHeader(device: "d", seq: .max, timestampMillis: .min))
    }

    @Test(arguments: [
        0.1, 1e-05, -1234.5678, Double.leastNonzeroMagnitude, 1.7976931348623157e308, 1e15, 123_456_789_012_345.6, -0.0, 0.30000000000000004,
        2.5e-8, 1e21,
    ])
    func doublesRoundTripThroughTheirText(_ value: Double) throws {
        let bytes = TelemetryPayload.encode(
            device: "d", seq: 1, timestampMillis: 1, readings: [(name: "v", value: value)])
        let text = String(decoding: bytes, as: UTF8.self)
        let start = try #require(text.range(of: #""v":"#)).upperBound
        let end = try #require(text[start...].firstIndex(of: "}"))
        #expect(Double(text[start..<end]) == value)
        let readings = try #require(try json(bytes)["readings"] as? [String: Any])
        // Foundation's parser on Linux can be off by an ulp (0.30000000000000004), so only near.
        let parsed = try #require((readings["v"] as? NSNumber)?.doubleValue)
        #expect(abs(parsed - value) <= abs(value) * 1e-15)
    }

    @Test func randomDoublesRoundTrip() throws {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            let value = Double(bitPattern: rng.next())
            guard value.isFinite else { continue }
            let bytes = TelemetryPayload.encode(device: "d", seq: 1, timestampMillis: 1, readings: [(name: "v", value: value)])
            let text = String(decoding: bytes, as: UTF8.self)
            let number = text.dropFirst(#"{"device":"d","seq":1,"ts":1,"readings":{"v":"#.count).dropLast(2)
            #expect(Double(number) == value, "\(number)")
        }
    }

    @Test func paddingAddsThatManyBytesAndStaysParseable() throws {
        let plain = TelemetryPayload.encode(device: "d", seq: 1, timestampMillis: 2, readings: [(name: "t", value: 1.5)])
        let padded = TelemetryPayload.encode(
            device: "d", seq: 1, timestampMillis: 2, readings: [(name: "t", value: 1.5)], padding: 100)
        let object = try json(padded)
        let pad = try #require(object["pad"] as? String)
        #expect(pad.count == 100 && pad.allSatisfy { $0 == "x" })
        #expect(padded.count == plain.count + 100 + #","pad":"""#.utf8.count)
        #expect(header(padded) == TelemetryHeader(device: "d", seq: 1, timestampMillis: 2))
    }

    @Test func escapesQuotesBackslashesAndControlCharacters() throws {
        let device = "a\"b\\c\nd\u{01}e\u{7F}é"
        let bytes = TelemetryPayload.encode(
            device: device, seq: 1, timestampMillis: 1, readings: [(name: "t\"\t", value: 1)])
        #expect(try json(bytes)["device"] as? String == device)
        let readings = try #require(try json(bytes)["readings"] as? [String: Any])
        #expect(readings.keys.first == "t\"\t")
        #expect(header(bytes)?.device == device)
    }

    @Test func encodingIntoABufferReplacesItsContents() {
        var buffer: [UInt8] = Array(repeating: 0x41, count: 500)
        TelemetryPayload.encode(device: "d", seq: 9, timestampMillis: 9, readings: [(name: "t", value: 2)], into: &buffer)
        #expect(buffer == TelemetryPayload.encode(device: "d", seq: 9, timestampMillis: 9, readings: [(name: "t", value: 2)]))
        #expect(buffer.capacity >= 500)
    }

    @Test func headerRoundTrips() {
        for seq: UInt64 in [0, 1, 9, 10, 1_000_000, .max] {
            let bytes = TelemetryPayload.encode(
                device: "sensor-0007", seq: seq, timestampMillis: 1_732_000_000_000,
                readings: [(name: "seq", value: 3), (name: "ts", value: 4)])
            #expect(header(bytes) == TelemetryHeader(device: "sensor-0007", seq: seq, timestampMillis: 1_732_000_000_000))
        }
    }

    @Test func headerIgnoresOrderWhitespaceAndNestedLookalikes() {
        #expect(
            header(#" { "readings" : {"seq": 5, "device": "x", "ts": [1, {"a": null}]}, "ts" : 7 , "seq":3, "device" : "real" } "#)
                == TelemetryHeader(device: "real", seq: 3, timestampMillis: 7))
        #expect(header(#"{"device":"a\u0041\"","seq":1,"ts":2}"#)?.device == "aA\"")
    }

    @Test(arguments: [
        "", "garbage", "[]", "{}", "null", #""device""#, #"{"device":"d","seq":1}"#,
        #"{"device":"d","seq":-1,"ts":2}"#, #"{"device":"d","seq":1.5,"ts":2}"#, #"{"device":"d","seq":1e3,"ts":2}"#,
        #"{"device":"d","seq":"1","ts":2}"#, #"{"device":7,"seq":1,"ts":2}"#, #"{"device":"d","seq":01,"ts":2}"#,
        #"{"device":"d","seq":18446744073709551616,"ts":2}"#, #"{"device":"d","seq":1,"ts":9223372036854775808}"#,
        #"{"device":"d" "seq":1,"ts":2}"#, #"{"device":"d\q","seq":1,"ts":2}"#, #"{"x":tru"#,
    ])
    func headerRejectsMalformedInput(_ text: String) {
        #expect(header(text) == nil)
    }

    @Test func headerRejectsEveryTruncation() {
        let bytes = TelemetryPayload.encode(
            device: "sensor-0001", seq: 123, timestampMillis: 1_700_000_000_000, readings: [(name: "t", value: 1)])
        // The header is complete once the byte after the ts digits has been seen.
        let complete = Array(#"{"device":"sensor-0001","seq":123,"ts":1700000000000,"#.utf8).count
        for length in 0..<complete {
            #expect(header(Array(bytes.prefix(length))) == nil, "prefix of \(length) bytes")
        }
        #expect(header(Array(bytes.prefix(complete)))?.seq == 123)
    }

    @Test func headerRejectsRandomBytes() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<500 {
            let bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = header(bytes)  // must not crash
        }
        #expect(header([0x7B, 0x22]) == nil)
    }
}
