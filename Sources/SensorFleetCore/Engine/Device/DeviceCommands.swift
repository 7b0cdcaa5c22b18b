#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Commands on `devices/{id}/commands`, replies on `devices/{id}/replies` (or the MQTT 5
/// response topic, with the correlation data echoed); with `profile: azure-iot-hub` from
/// `devices/{id}/messages/devicebound/#` with replies on `devices/{id}/messages/events/`
/// (`DeviceSpec.commandsTopic`, `repliesTopic`).
///
/// Request (JSON object): `{"command": "ping" | "read-now" | "set-interval" | "get-config" |
/// "get-stats" | "reboot" | "ota", "id": <optional, any JSON value, echoed>, "interval": <seconds,
/// for set-interval>, "version": <text, for ota>}`.
///
/// Reply: `{"id": …, "command": "…", "ok": true, "result": {…}}` or
/// `{"id": …, "command": "…", "ok": false, "error": "…"}`. A malformed request gets an error
/// reply too; nothing a command says can stop the device.
enum DeviceCommands {
    static let names = ["ping", "read-now", "set-interval", "get-config", "get-stats", "reboot", "ota"]
    static let intervalRange = 0.05...86_400.0
    static let maxRequestBytes = 65_536

    /// A request as sent: `id` and `interval` stay as the JSON they were, so a wrong type gets
    /// its own error instead of a decoding failure.
    struct Request: Decodable {
        var command: JSONValue?
        var id: JSONValue?
        var interval: JSONValue?
        /// `ota`: the new firmware version.
        var version: JSONValue?
    }

    /// A reply; `result` is one of the result types below.
    struct Reply<Result: Encodable>: Encodable {
        var id: JSONValue?
        var command: String?
        var ok: Bool
        var result: Result?
        var error: String?
    }

    struct Ping: Encodable { var pong = true; var device: String; var uptime_s: Double }
    struct ReadNow: Encodable { var seq: UInt64; var readings: [String: Double] }
    struct SetInterval: Encodable { var interval: Double; var previous: Double }
    struct Config: Encodable {
        struct Sensor: Encodable { var name: String; var type: String; var unit: String? }
        var id: String
        var interval: Double
        var qos: Int
        var topic: String
        var broker: String
        var `protocol`: String
        var sensors: [Sensor]
    }
    struct Stats: Encodable {
        var connected: Bool
        var published: Int
        var acknowledged: Int
        var dropped: Int
        var last_seq: UInt64
        var queued: Int
        var inflight: Int
        var attempts: Int
        var connects: Int
        var errors: Int
        var sensor_errors: Int
        var uptime_s: Double
        var firmware: String
        var boot_count: Int
        var reset_reason: String
        var battery_percent: Double?
    }
    struct Reboot: Encodable { var rebooting = true; var offline_s: Double; var boot_count: Int }
    struct OTA: Encodable { var version: String; var from: String; var progress_topic: String }

    /// A request that cannot be carried out: the error reply's text.
    struct Refusal: Error {
        var id: JSONValue?
        var command: String?
        var message: String
    }

    /// Decodes and checks a request; the command name and the request, or why not.
    static func parse(_ payload: [UInt8]) -> Result<(name: String, request: Request), Refusal> {
        guard payload.count <= maxRequestBytes else {
            return .failure(Refusal(message: "request too large (\(payload.count) bytes; at most \(maxRequestBytes))"))
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) else {
            return .failure(Refusal(message: "malformed request: not JSON; expected e.g. {\"command\": \"ping\", \"id\": 1}"))
        }
        guard case .object = value, let request = try? value.decode(Request.self) else {
            return .failure(Refusal(message: "malformed request: expected a JSON object such as {\"command\": \"ping\"}"))
        }
        guard case .string(let name)? = request.command else {
            return .failure(Refusal(id: request.id, message: "malformed request: `command` is missing or not text; expected one of \(names.joined(separator: ", "))"))
        }
        guard names.contains(name) else {
            var message = "unknown command \"\(name)\"; expected one of \(names.joined(separator: ", "))"
            if let guess = Suggestion.closest(to: name, in: names) { message += "; did you mean \(guess)?" }
            return .failure(Refusal(id: request.id, command: name, message: message))
        }
        return .success((name, request))
    }

    /// The interval a `set-interval` request asks for, or the error.
    static func interval(of request: Request) -> Double? {
        guard let seconds = request.interval?.number, intervalRange.contains(seconds) else { return nil }
        return seconds
    }

    static var intervalError: String {
        "set-interval needs `interval`: a number of seconds from \(intervalRange.lowerBound) to \(Int(intervalRange.upperBound))"
    }

    static func encode<R: Encodable>(_ reply: Reply<R>) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(reply) else {
            return Array(#"{"ok":false,"error":"internal: reply not encodable"}"#.utf8)
        }
        return Array(data)
    }

    static func refusal(_ refusal: Refusal) -> [UInt8] {
        encode(Reply<Ping>(id: refusal.id, command: refusal.command, ok: false, result: nil, error: refusal.message))
    }

    static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

/// Any JSON value, for the parts of a request that are echoed or checked by hand.
enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The value as a number, when it is one.
    var number: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    /// Decodes a `Decodable` from this value (a round trip through JSON).
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: JSONEncoder().encode(self))
    }
}
