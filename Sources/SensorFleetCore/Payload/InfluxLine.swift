/// InfluxDB line protocol, one line per message (what Telegraf's `mqtt_consumer` with
/// `data_format = "influx"` ingests):
///
///     telemetry,device=sensor-0001,site=north temperature=21.35,humidity=45,seq=42i 1700000000123456000
///
/// Measurement from `payload.measurement` (default `telemetry`), the tag `device` = the device
/// id, then the user's tags (`payload.tags`, `{id}` replaced) in file order; fields: every
/// reading as a float (a failed or non-finite reading is left out: line protocol has no NaN),
/// then `seq` as an integer (`i`); the timestamp in nanoseconds (µs resolution). Escaping as
/// the line protocol reference says: in the measurement `,` and space; in tag keys, tag values
/// and field keys `,`, `=` and space; in string field values `"` and `\`.
public struct InfluxLine: Sendable, Equatable {
    public struct Tag: Sendable, Equatable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public var measurement: String
    /// Tags after `device`, with `{id}` still in the values (replaced per message's device).
    public var tags: [Tag]

    public static let defaultMeasurement = "telemetry"

    public init(measurement: String = InfluxLine.defaultMeasurement, tags: [Tag] = []) {
        self.measurement = measurement
        self.tags = tags
    }

    func encode(device: String, seq: UInt64, timestampMicros: Int64, readings: [(name: String, value: Double)],
                padding: Int, into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        Self.escape(measurement, into: &buffer, special: [UInt8(ascii: ","), UInt8(ascii: " ")])
        buffer.append(UInt8(ascii: ","))
        TelemetryPayload.appendASCII("device=", to: &buffer)
        Self.escape(device, into: &buffer)
        for tag in tags {
            buffer.append(UInt8(ascii: ","))
            Self.escape(tag.key, into: &buffer)
            buffer.append(UInt8(ascii: "="))
            Self.escape(tag.value.contains("{id}") ? tag.value.replacing("{id}", with: device) : tag.value,
                        into: &buffer)
        }
        buffer.append(UInt8(ascii: " "))
        for reading in readings where reading.value.isFinite {
            Self.escape(reading.name, into: &buffer)
            buffer.append(UInt8(ascii: "="))
            TelemetryPayload.appendDouble(reading.value, to: &buffer)
            buffer.append(UInt8(ascii: ","))
        }
        TelemetryPayload.appendASCII("seq=", to: &buffer)
        TelemetryPayload.appendUnsigned(seq, to: &buffer)
        buffer.append(UInt8(ascii: "i"))
        if padding > 0 {
            TelemetryPayload.appendASCII(",pad=\"", to: &buffer)
            buffer.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: padding))
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: " "))
        let (nanos, overflow) = timestampMicros.multipliedReportingOverflow(by: 1000)
        TelemetryPayload.appendSigned(overflow ? timestampMicros : nanos, to: &buffer)
    }

    /// Measurement, tag keys/values and field keys: a backslash before each special byte.
    static func escape(_ s: String, into buffer: inout [UInt8],
                       special: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: "="), UInt8(ascii: " ")]) {
        for byte in s.utf8 {
            if special.contains(byte) { buffer.append(UInt8(ascii: "\\")) }
            buffer.append(byte)
        }
    }

    /// What a measurement, tag key or tag value may not hold: line breaks end the line, and a
    /// trailing backslash would escape the separator after it.
    /// - Parameters:
    ///   - text: a measurement, tag key or tag value.
    ///   - what: its name in the message ("measurement", "tag key", "tag value").
    public static func problem(with text: String, what: String) -> String? {
        if text.isEmpty { return "the \(what) is empty" }
        if text.contains(where: { $0 == "\n" || $0 == "\r" }) { return "the \(what) contains a line break" }
        if text.hasSuffix("\\") { return "the \(what) ends with a backslash" }
        if text.hasPrefix("_") && what != "tag value" { return "the \(what) starts with `_`, which InfluxDB reserves" }
        return nil
    }

    // MARK: Reading back

    /// `seq` (an integer field `seq=<n>i`) and the timestamp (ns → µs) of one line.
    static func stamp(of bytes: UnsafeRawBufferPointer) -> TelemetryStamp? {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        // Measurement and tags end at the first unescaped space.
        var i = 0
        while i < end, bytes[i] != UInt8(ascii: " ") {
            i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
        }
        guard i < end else { return nil }
        i += 1
        var seq: UInt64?
        // Fields: key=value, comma-separated, up to the space before the timestamp.
        while i < end {
            let keyStart = i
            while i < end, bytes[i] != UInt8(ascii: "=") {
                if bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: ",") { return nil }
                i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
            }
            guard i < end else { return nil }
            let isSeq = i - keyStart == 3 && bytes[keyStart] == UInt8(ascii: "s") && bytes[keyStart + 1] == UInt8(ascii: "e")
                && bytes[keyStart + 2] == UInt8(ascii: "q")
            i += 1
            if i < end, bytes[i] == UInt8(ascii: "\"") {
                i += 1
                while i < end, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                guard i < end else { return nil }
                i += 1
            } else {
                let valueStart = i
                while i < end, bytes[i] != UInt8(ascii: ","), bytes[i] != UInt8(ascii: " ") { i += 1 }
                if isSeq {
                    guard i - valueStart >= 2, bytes[i - 1] == UInt8(ascii: "i") || bytes[i - 1] == UInt8(ascii: "u") else { return nil }
                    var v: UInt64 = 0
                    for k in valueStart..<(i - 1) {
                        guard bytes[k] >= 0x30, bytes[k] <= 0x39 else { return nil }
                        let (m, o1) = v.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(UInt64(bytes[k] - 0x30))
                        if o1 || o2 { return nil }
                        v = a
                    }
                    seq = v
                }
            }
            guard i < end else { break }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            // A space: the timestamp follows.
            i += 1
            var nanos: Int64 = 0
            let digitsStart = i
            while i < end, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                let (m, o1) = nanos.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
                if o1 || o2 { return nil }
                nanos = a
                i += 1
            }
            guard let seq, i == end, i > digitsStart else { return nil }
            return TelemetryStamp(seq: seq, sentMicros: nanos / 1000)
        }
        // No timestamp: the line still counts, without a send time.
        return seq.map { TelemetryStamp(seq: $0, sentMicros: nil) }
    }
}
