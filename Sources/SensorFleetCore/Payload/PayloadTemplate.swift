/// A payload in the user's own words: text with `{{name}}` placeholders (`payload.template` or
/// `payload.template_file` in device.yaml, bench `--payload-template`).
///
/// Placeholders: `{{id}}`, `{{seq}}`, `{{ts_ms}}` (ms since 1970), `{{ts_us}}` (µs), `{{ts_iso}}`
/// (`2026-11-26T04:12:17.123Z`, UTC, ms) and `{{<sensor name>}}` (the reading as in JSON; `null`
/// when the read failed). Spaces inside the braces are allowed. Values go in as they are, without
/// quoting or escaping: ids and sensor names hold only letters, digits, `.`, `_` and `-`.
///
/// The verifier reads seq and the send time back by walking the template over the message: text
/// must match, `{{seq}}` and the times are digits, an id or a reading is a run of letters, digits,
/// `.`, `_`, `+` and `-`. So a template bench can verify has `{{seq}}` and a time, and whatever
/// follows a placeholder up to there cannot be taken for part of it (``verificationProblem``).
public struct PayloadTemplate: Sendable, Equatable {
    public enum Field: Sendable, Equatable {
        case id, seq, tsMillis, tsMicros, tsISO
        case sensor(String)

        init(name: String) {
            switch name {
            case "id": self = .id
            case "seq": self = .seq
            case "ts_ms": self = .tsMillis
            case "ts_us": self = .tsMicros
            case "ts_iso": self = .tsISO
            default: self = .sensor(name)
            }
        }

        var name: String {
            switch self {
            case .id: "id"
            case .seq: "seq"
            case .tsMillis: "ts_ms"
            case .tsMicros: "ts_us"
            case .tsISO: "ts_iso"
            case .sensor(let name): name
            }
        }

        var isTime: Bool { self == .tsMillis || self == .tsMicros || self == .tsISO }

        /// Whether `byte` could be part of this field's value (where the value ends when reading back).
        func mayHold(_ byte: UInt8) -> Bool {
            switch self {
            case .seq, .tsMillis, .tsMicros: return byte >= 0x30 && byte <= 0x39
            case .tsISO: return false  // fixed length
            case .id, .sensor:
                return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "+")
            }
        }
    }

    public enum Segment: Sendable, Equatable {
        case text([UInt8])
        /// A placeholder and the line of the template it is on (1-based).
        case field(Field, line: Int)
    }

    /// A template that cannot be used, with the line of the template text it is on (1-based).
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { message }
    }

    /// The placeholders every template knows, besides the device's sensor names.
    public static let builtInNames = ["id", "seq", "ts_ms", "ts_us", "ts_iso"]

    public let segments: [Segment]

    /// Parses `text`.
    /// - Throws: ``Problem`` for an unclosed `{{`, an empty placeholder or one whose name holds
    ///   other characters than letters, digits, `.`, `_` and `-`.
    public init(parsing text: String) throws(Problem) {
        var segments: [Segment] = []
        var literal: [UInt8] = []
        let bytes = Array(text.utf8)
        var line = 1
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "{"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "{") {
                var j = i + 2
                while j + 1 < bytes.count, !(bytes[j] == UInt8(ascii: "}") && bytes[j + 1] == UInt8(ascii: "}")) {
                    if bytes[j] == 0x0A { break }
                    j += 1
                }
                guard j + 1 < bytes.count, bytes[j] == UInt8(ascii: "}") else {
                    throw Problem(line: line, message: "`{{` opens a placeholder that is not closed with `}}` on the same line")
                }
                let raw = String(decoding: bytes[(i + 2)..<j], as: UTF8.self)
                let name = raw.trimmingSpaces()
                guard !name.isEmpty, name.utf8.allSatisfy({ Field.sensor("").mayHold($0) && $0 != UInt8(ascii: "+") }) else {
                    throw Problem(line: line, message: "`{{\(SettingText.clipped(raw))}}` is not a placeholder: a name of letters, digits, `.`, `_` or `-` goes between the braces")
                }
                if !literal.isEmpty { segments.append(.text(literal)); literal = [] }
                segments.append(.field(Field(name: name), line: line))
                i = j + 2
                continue
            }
            if bytes[i] == 0x0A { line += 1 }
            literal.append(bytes[i])
            i += 1
        }
        if !literal.isEmpty { segments.append(.text(literal)) }
        self.segments = segments
    }

    /// Placeholders that are neither built in nor one of `sensors`, with their lines.
    public func unknownPlaceholders(sensors: [String]) -> [(name: String, line: Int)] {
        segments.compactMap {
            if case .field(.sensor(let name), let line) = $0, !sensors.contains(name) { return (name, line) }
            return nil
        }
    }

    /// The placeholders used, in order.
    public var fields: [Field] {
        segments.compactMap { if case .field(let f, _) = $0 { return f } else { return nil } }
    }

    /// Why seq and the send time cannot be read back from messages of this template, or nil.
    public var verificationProblem: String? {
        let fields = self.fields
        guard fields.contains(.seq) else {
            return "the template has no {{seq}}: the verifier counts messages by it (add e.g. `\"seq\":{{seq}}`)"
        }
        guard fields.contains(where: \.isTime) else {
            return "the template has no send time: add {{ts_ms}}, {{ts_us}} or {{ts_iso}} (latency is measured from it)"
        }
        // Up to the last of seq and the first time, each placeholder's end must be clear.
        var needSeq = true
        var needTime = true
        for (index, segment) in segments.enumerated() {
            guard needSeq || needTime else { break }
            guard case .field(let field, let line) = segment else { continue }
            if field == .seq { needSeq = false }
            if field.isTime { needTime = false }
            if field == .tsISO { continue }  // fixed length
            let next = index + 1 < segments.count ? segments[index + 1] : nil
            switch next {
            case .field(let other, _)?:
                return "{{\(field.name)}} is followed directly by {{\(other.name)}} (line \(line)): the verifier cannot tell where one ends; put text such as `,` between them"
            case .text(let text)?:
                if let first = text.first, field.mayHold(first) {
                    return "{{\(field.name)}} is followed by `\(String(decoding: [first], as: UTF8.self))` (line \(line)), which could be part of its value: the verifier cannot tell where it ends; put a separator such as `,`, `\"` or a space after it"
                }
            case nil:
                break
            }
        }
        return nil
    }

    // MARK: Writing

    func render(device: String, seq: UInt64, timestampMicros: Int64, readings: [(name: String, value: Double)],
                into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        for segment in segments {
            switch segment {
            case .text(let text): buffer.append(contentsOf: text)
            case .field(let field, _):
                switch field {
                case .id: buffer.append(contentsOf: device.utf8)
                case .seq: TelemetryPayload.appendUnsigned(seq, to: &buffer)
                case .tsMillis: TelemetryPayload.appendSigned(PayloadFormat.millis(timestampMicros), to: &buffer)
                case .tsMicros: TelemetryPayload.appendSigned(timestampMicros, to: &buffer)
                case .tsISO: ISOTime.append(micros: timestampMicros, to: &buffer)
                case .sensor(let name):
                    if let reading = readings.first(where: { $0.name == name }) {
                        TelemetryPayload.appendDouble(reading.value, to: &buffer)
                    } else {
                        TelemetryPayload.appendASCII("null", to: &buffer)
                    }
                }
            }
        }
    }

    // MARK: Reading back

    func stamp(of bytes: UnsafeRawBufferPointer) -> TelemetryStamp? {
        var i = 0
        var seq: UInt64?
        var micros: Int64?
        var timeFound = false
        for segment in segments {
            if seq != nil && timeFound { break }
            switch segment {
            case .text(let text):
                guard i + text.count <= bytes.count else { return nil }
                for (k, b) in text.enumerated() where bytes[i + k] != b { return nil }
                i += text.count
            case .field(let field, _):
                switch field {
                case .seq, .tsMillis, .tsMicros:
                    let start = i
                    var value: UInt64 = 0
                    while i < bytes.count, field.mayHold(bytes[i]) {
                        let (m, o1) = value.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(UInt64(bytes[i] - 0x30))
                        if o1 || o2 { return nil }
                        value = a
                        i += 1
                    }
                    guard i > start else { return nil }
                    if field == .seq {
                        seq = value
                    } else if !timeFound {
                        timeFound = true
                        guard value <= UInt64(Int64.max) / 1000 else { return nil }
                        micros = field == .tsMillis ? Int64(value) * 1000 : Int64(value)
                    }
                case .tsISO:
                    guard i + ISOTime.length <= bytes.count,
                          let parsed = ISOTime.parse(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + ISOTime.length)]))
                    else { return nil }
                    i += ISOTime.length
                    if !timeFound { timeFound = true; micros = parsed }
                case .id, .sensor:
                    while i < bytes.count, field.mayHold(bytes[i]) { i += 1 }
                }
            }
        }
        guard let seq, timeFound else { return nil }
        return TelemetryStamp(seq: seq, sentMicros: micros)
    }
}

/// `2026-11-26T04:12:17.123Z`: UTC, milliseconds, always 24 bytes (years 0000–9999).
enum ISOTime {
    static let length = 24

    static func append(micros: Int64, to buffer: inout [UInt8]) {
        let millis = PayloadFormat.millis(micros)
        var seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let ms = Int(millis - seconds * 1000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        seconds -= days * 86_400
        let (y, m, d) = civil(days: days)
        func two(_ v: Int) { buffer.append(0x30 + UInt8(v / 10 % 10)); buffer.append(0x30 + UInt8(v % 10)) }
        let year = min(max(y, 0), 9999)
        two(year / 100); two(year % 100)
        buffer.append(UInt8(ascii: "-")); two(m)
        buffer.append(UInt8(ascii: "-")); two(d)
        buffer.append(UInt8(ascii: "T")); two(Int(seconds / 3600))
        buffer.append(UInt8(ascii: ":")); two(Int(seconds / 60 % 60))
        buffer.append(UInt8(ascii: ":")); two(Int(seconds % 60))
        buffer.append(UInt8(ascii: ".")); buffer.append(0x30 + UInt8(ms / 100)); two(ms % 100)
        buffer.append(UInt8(ascii: "Z"))
    }

    /// Microseconds since 1970 of a 24-byte time as written by ``append(micros:to:)``.
    static func parse(_ b: UnsafeRawBufferPointer) -> Int64? {
        guard b.count == length, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "."), b[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for k in from..<(from + count) {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                v = v * 10 + Int(b[k] - 0x30)
            }
            return v
        }
        guard let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), let h = number(11, 2),
              let mi = number(14, 2), let s = number(17, 2), let ms = number(20, 3),
              (1...12).contains(m), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        let days = Int64(daysFromCivil(y, m, d))
        return ((days * 86_400 + Int64(h * 3600 + mi * 60 + s)) * 1000 + Int64(ms)) * 1000
    }

    /// Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(days: Int64) -> (Int, Int, Int) {
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
