/// How a device writes its telemetry (`payload:` in device.yaml or `defaults:`, bench
/// `--payload-format`). The one place formats are listed and dispatched: encoding
/// (``encode(device:seq:timestampMicros:readings:extras:into:)``) and reading the seq and send time
/// back (``stamp(of:)``, for the verifier). A new format (e.g. `sparkplug_b`) is one more case here,
/// one more name in ``names``, and its own file for the bytes.
public enum PayloadFormat: Sendable, Equatable {
    /// `{"device","seq","ts","readings"}` (``TelemetryPayload``), the default.
    case json
    /// The user's own text with `{{placeholders}}` (``PayloadTemplate``).
    case template(PayloadTemplate)
    /// InfluxDB line protocol (``InfluxLine``).
    case influx(InfluxLine)

    /// The names `payload:` / `format:` and `--payload-format` accept.
    public static let names = ["json", "template", "influx"]

    /// The name as written in device.yaml.
    public var name: String {
        switch self {
        case .json: "json"
        case .template: "template"
        case .influx: "influx"
        }
    }

    /// Encodes one message into `buffer`, replacing its contents.
    /// - Parameters:
    ///   - device: the device id.
    ///   - seq: the device's sequence number.
    ///   - timestampMicros: the send time, microseconds since 1970 (UTC).
    ///   - readings: sensor names and values (a failed read is absent).
    ///   - extras: bench extras: padding (JSON `pad`, influx `pad` string field; a template is
    ///     sized by its text) and µs timestamps in JSON (`tus`).
    ///   - buffer: receives the bytes.
    public func encode(
        device: String, seq: UInt64, timestampMicros: Int64, readings: [(name: String, value: Double)],
        extras: TelemetryFormat = TelemetryFormat(), into buffer: inout [UInt8]
    ) {
        switch self {
        case .json:
            TelemetryPayload.encode(
                device: device, seq: seq, timestampMillis: Self.millis(timestampMicros), readings: readings,
                timestampMicros: extras.microsecondTimestamps ? timestampMicros : nil, padding: extras.padding,
                into: &buffer)
        case .template(let template):
            template.render(device: device, seq: seq, timestampMicros: timestampMicros, readings: readings, into: &buffer)
        case .influx(let line):
            line.encode(device: device, seq: seq, timestampMicros: timestampMicros, readings: readings,
                        padding: extras.padding, into: &buffer)
        }
    }

    /// The seq and send time of a received message of this format; nil when the bytes do not
    /// hold them (counted as an error by the verifier).
    public func stamp(of bytes: UnsafeRawBufferPointer) -> TelemetryStamp? {
        switch self {
        case .json:
            guard let header = TelemetryPayload.parseHeader(bytes) else { return nil }
            let fromMillis = header.timestampMillis.multipliedReportingOverflow(by: 1000)
            let micros = Verifier.microsField(bytes) ?? (fromMillis.overflow ? nil : fromMillis.partialValue)
            return TelemetryStamp(seq: header.seq, sentMicros: micros)
        case .template(let template):
            return template.stamp(of: bytes)
        case .influx:
            return InfluxLine.stamp(of: bytes)
        }
    }

    /// Why the verifier (and so `bench`) cannot find seq and the send time in this format, or nil.
    public var verificationProblem: String? {
        switch self {
        case .json, .influx: nil
        case .template(let template): template.verificationProblem
        }
    }

    static func millis(_ micros: Int64) -> Int64 {
        micros >= 0 ? micros / 1000 : (micros - 999) / 1000
    }
}

/// What the verifier needs from a message: its seq and, when the format carries it, the send
/// time in microseconds since 1970.
public struct TelemetryStamp: Sendable, Equatable {
    public var seq: UInt64
    public var sentMicros: Int64?

    public init(seq: UInt64, sentMicros: Int64?) {
        self.seq = seq
        self.sentMicros = sentMicros
    }
}
