/// The JSON telemetry payload, written byte by byte (no `JSONEncoder`, no Foundation
/// formatting): a load test encodes tens of thousands of these per second.
///
/// Shape: `{"device":"<id>","seq":<n>,"ts":<epoch ms>,"readings":{"<name>":<value>,…}}`, with
/// `,"pad":"xxx…"` before the closing brace when padding is asked for.
public enum TelemetryPayload {
    /// Encodes a payload into `buffer`, replacing its contents and keeping its capacity.
    /// - Parameters:
    ///   - device: the device id.
    ///   - seq: the device's sequence number for this message.
    ///   - timestampMillis: milliseconds since 1970 (UTC).
    ///   - readings: sensor names and values, written in this order; non-finite values as `null`.
    ///   - timestampMicros: when given, `,"tus":<epoch µs>` follows `ts` (load tests measure
    ///     end-to-end latency with it; `ts` stays in milliseconds for everyone else).
    ///   - padding: when > 0, adds `,"pad":"xxx…"` with that many `x` so the payload can be sized.
    ///   - buffer: receives the UTF-8 bytes.
    public static func encode(
        device: String, seq: UInt64, timestampMillis: Int64, readings: [(name: String, value: Double)],
        timestampMicros: Int64? = nil, padding: Int = 0, into buffer: inout [UInt8]
    ) {
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(48 + device.utf8.count + readings.count * 28 + max(0, padding))
        appendASCII("{\"device\":", to: &buffer)
        appendString(device, to: &buffer)
        appendASCII(",\"seq\":", to: &buffer)
        appendUnsigned(seq, to: &buffer)
        appendASCII(",\"ts\":", to: &buffer)
        appendSigned(timestampMillis, to: &buffer)
        if let timestampMicros {
            appendASCII(",\"tus\":", to: &buffer)
            appendSigned(timestampMicros, to: &buffer)
        }
        appendASCII(",\"readings\":{", to: &buffer)
        var first = true
        for reading in readings {
            if !first { buffer.append(UInt8(ascii: ",")) }
            first = false
            appendString(reading.name, to: &buffer)
            buffer.append(UInt8(ascii: ":"))
            appendDouble(reading.value, to: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
        if padding > 0 {
            appendASCII(",\"pad\":\"", to: &buffer)
            buffer.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: padding))
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// Encodes a payload into a new array; see ``encode(device:seq:timestampMillis:readings:padding:into:)``.
    public static func encode(
        device: String, seq: UInt64, timestampMillis: Int64, readings: [(name: String, value: Double)],
        timestampMicros: Int64? = nil, padding: Int = 0
    ) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(
            device: device, seq: seq, timestampMillis: timestampMillis, readings: readings,
            timestampMicros: timestampMicros, padding: padding, into: &buffer)
        return buffer
    }

    // MARK: - Writers

    @inline(__always)
    static func appendASCII(_ s: StaticString, to buffer: inout [UInt8]) {
        s.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string with `"`, `\` and control characters escaped.
    static func appendString(_ s: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(byte)
            case 0x0A: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
            case 0x00..<0x20, 0x7F:
                appendASCII("\\u00", to: &buffer)
                buffer.append(hexDigits[Int(byte >> 4)])
                buffer.append(hexDigits[Int(byte & 0x0F)])
            default:
                buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    static func appendUnsigned(_ value: UInt64, to buffer: inout [UInt8]) {
        if value < 10 {
            buffer.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        // 20 digits hold UInt64.max.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var v = value
            var i = 20
            while v > 0 {
                i -= 1
                digits[i] = UInt8(ascii: "0") &+ UInt8(v % 10)
                v /= 10
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i..<20]))
        }
    }

    static func appendSigned(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 {
            buffer.append(UInt8(ascii: "-"))
            appendUnsigned(value.magnitude, to: &buffer)
        } else {
            appendUnsigned(UInt64(value), to: &buffer)
        }
    }

    /// Shortest representation that reads back as the same `Double` (Swift's own algorithm);
    /// integral values of moderate size without a fraction, non-finite values as `null`.
    static func appendDouble(_ value: Double, to buffer: inout [UInt8]) {
        guard value.isFinite else {
            appendASCII("null", to: &buffer)
            return
        }
        if value == value.rounded(.towardZero), value.magnitude < 1e15 {
            // Exact integer: print it as one (also turns -0.0 into 0).
            appendSigned(Int64(value), to: &buffer)
            return
        }
        // `description` is the shortest round-trip form ("21.35", "1e-05", "1.5e+20"), all valid
        // JSON; such short strings live inline in the String, without a heap allocation.
        var text = value.description
        text.withUTF8 { buffer.append(contentsOf: $0) }
    }
}
