/// Who sent a telemetry payload, which message it is, and when it was made.
public struct TelemetryHeader: Sendable, Equatable {
    public var device: String
    public var seq: UInt64
    public var timestampMillis: Int64

    public init(device: String, seq: UInt64, timestampMillis: Int64) {
        self.device = device
        self.seq = seq
        self.timestampMillis = timestampMillis
    }
}

extension TelemetryPayload {
    /// Extracts `device`, `seq` and `ts` from a payload without parsing the rest of it.
    ///
    /// It walks the top-level object member by member (so a sensor called `seq` inside
    /// `readings` is not mistaken for the header) and stops as soon as it has all three, which is
    /// at once for payloads made by ``encode(device:seq:timestampMillis:readings:padding:into:)``.
    /// - Parameter bytes: the message payload.
    /// - Returns: the header, or nil when the bytes are not a JSON object holding a string
    ///   `device`, a non-negative integer `seq` and an integer `ts` before any malformed part.
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> TelemetryHeader? {
        var scanner = HeaderScanner(bytes: bytes)
        return scanner.scan()
    }
}

private struct HeaderScanner {
    let bytes: UnsafeRawBufferPointer
    var i = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func scan() -> TelemetryHeader? {
        var device: String?
        var seq: UInt64?
        var ts: Int64?
        skipSpace()
        guard take(UInt8(ascii: "{")) else { return nil }
        skipSpace()
        if take(UInt8(ascii: "}")) { return nil }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { return nil }
            let key = keyTag()
            skipSpace()
            guard take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            switch key {
            case .device:
                guard peek() == UInt8(ascii: "\""), let s = string() else { return nil }
                device = s
            case .seq:
                guard let n = unsigned() else { return nil }
                seq = n
            case .ts:
                guard let n = signed() else { return nil }
                ts = n
            case .other:
                guard skipValue(depth: 0) else { return nil }
            case .invalid:
                return nil
            }
            if let device, let seq, let ts {
                return TelemetryHeader(device: device, seq: seq, timestampMillis: ts)
            }
            skipSpace()
            if take(UInt8(ascii: ",")) { continue }
            return nil  // "}" before all three, or garbage
        }
    }

    // MARK: Bytes

    @inline(__always) func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    @inline(__always) mutating func take(_ b: UInt8) -> Bool {
        if i < bytes.count && bytes[i] == b {
            i += 1
            return true
        }
        return false
    }

    mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    // MARK: Keys

    enum Key { case device, seq, ts, other, invalid }

    /// Reads a member name, recognising the three header keys without building a String.
    mutating func keyTag() -> Key {
        let start = i + 1
        guard skipString() else { return .invalid }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<(i - 1)])
        if raw.elementsEqual("device".utf8) { return .device }
        if raw.elementsEqual("seq".utf8) { return .seq }
        if raw.elementsEqual("ts".utf8) { return .ts }
        return .other
    }

    // MARK: Values

    /// Skips a string starting at `"`; true when it is closed.
    mutating func skipString() -> Bool {
        guard take(UInt8(ascii: "\"")) else { return false }
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\"") { return true }
            if b == UInt8(ascii: "\\") {
                guard i < bytes.count else { return false }
                i += 1
            } else if b < 0x20 {
                return false
            }
        }
        return false
    }

    /// Decodes a JSON string starting at `"`.
    mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            i += 1
        }
        i = start
        var out: [UInt8] = []
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            switch b {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    var scalarValue = UInt32(unit)
                    if (0xD800..<0xDC00).contains(unit) {
                        guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(),
                            (0xDC00..<0xE000).contains(low)
                        else { return nil }
                        scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { return nil }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    return nil
                }
            default:
                if b < 0x20 { return nil }
                out.append(b)
            }
        }
        return nil
    }

    mutating func hex4() -> UInt16? {
        guard i + 4 <= bytes.count else { return nil }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            i += 1
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt16(d)
        }
        return v
    }

    /// A non-negative JSON integer (no fraction, no exponent) that fits in UInt64.
    mutating func unsigned() -> UInt64? {
        let start = i
        var v: UInt64 = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(bytes[i] - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        let digits = i - start
        guard digits > 0 else { return nil }
        if digits > 1 && bytes[start] == UInt8(ascii: "0") { return nil }  // leading zero
        if let next = peek(), next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            return nil  // not an integer
        }
        guard i < bytes.count else { return nil }  // truncated: a number can't end the payload
        return v
    }

    mutating func signed() -> Int64? {
        let negative = take(UInt8(ascii: "-"))
        guard let magnitude = unsigned() else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// Skips one JSON value of any kind; false when it is malformed or truncated.
    mutating func skipValue(depth: Int) -> Bool {
        guard depth < 64, let b = peek() else { return false }
        switch b {
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let isObject = b == UInt8(ascii: "{")
            i += 1
            skipSpace()
            if take(close) { return true }
            while true {
                skipSpace()
                if isObject {
                    guard skipString() else { return false }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return false }
                    skipSpace()
                }
                guard skipValue(depth: depth + 1) else { return false }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                return take(close)
            }
        default:
            // Number or literal: a run of the characters they are made of.
            let start = i
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"),
                    UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"),
                    UInt8(ascii: "a")...UInt8(ascii: "z"):
                    i += 1
                default:
                    return i > start
                }
            }
            return false  // truncated
        }
    }
}
