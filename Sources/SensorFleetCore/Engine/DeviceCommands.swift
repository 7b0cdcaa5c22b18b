import Foundation

/// What a command can ask a device to do. `Device` implements it on its reactor thread.
protocol CommandTarget: AnyObject {
    /// Takes a reading now and queues it as telemetry; returns its seq and readings.
    func commandReadNow() -> (seq: UInt64, readings: [(name: String, value: Double)])
    /// The interval in force (seconds).
    var commandInterval: Double { get }
    /// Changes the interval from the next reading on.
    func commandSetInterval(_ seconds: Double)
    func commandConfig() -> [String: Any]
    func commandStats() -> DeviceSnapshot
    /// Seconds since the device started.
    var commandUptime: Double { get }
}

/// Commands on `devices/{id}/commands`, replies on `devices/{id}/replies` (or the MQTT 5
/// response topic, with the correlation data echoed).
///
/// Request (JSON object): `{"command": "ping" | "read-now" | "set-interval" | "get-config" |
/// "get-stats", "id": <optional, any JSON value, echoed>, "interval": <seconds, for set-interval>}`.
///
/// Reply: `{"id": …, "command": "…", "ok": true, "result": {…}}` or
/// `{"id": …, "command": "…", "ok": false, "error": "…"}`. A malformed request gets an error
/// reply too; nothing a command says can stop the device.
enum DeviceCommands {
    static let names = ["ping", "read-now", "set-interval", "get-config", "get-stats"]
    static let intervalRange = 0.05...86_400.0

    /// Handles one request; returns the reply's JSON bytes.
    static func handle(_ payload: UnsafeRawBufferPointer, deviceID: String, target: CommandTarget) -> [UInt8] {
        var reply: [String: Any] = [:]
        func fail(_ message: String) -> [UInt8] {
            reply["ok"] = false
            reply["error"] = message
            return encode(reply)
        }
        guard payload.count <= 65_536 else { return fail("request too large (\(payload.count) bytes; at most 65536)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload), options: [.fragmentsAllowed]) else {
            return fail("malformed request: not JSON; expected e.g. {\"command\": \"ping\", \"id\": 1}")
        }
        guard let request = object as? [String: Any] else {
            return fail("malformed request: expected a JSON object such as {\"command\": \"ping\"}")
        }
        if let id = request["id"] { reply["id"] = id }
        guard let command = request["command"] as? String else {
            return fail("malformed request: `command` is missing or not text; expected one of \(names.joined(separator: ", "))")
        }
        reply["command"] = command
        let result: [String: Any]
        switch command {
        case "ping":
            result = ["pong": true, "device": deviceID, "uptime_s": round3(target.commandUptime)]
        case "read-now":
            let reading = target.commandReadNow()
            var values: [String: Any] = [:]
            for entry in reading.readings { values[entry.name] = entry.value }
            result = ["seq": reading.seq, "readings": values]
        case "set-interval":
            guard let number = request["interval"] as? NSNumber,
                  intervalRange.contains(number.doubleValue) else {
                return fail("set-interval needs `interval`: a number of seconds from \(intervalRange.lowerBound) to \(Int(intervalRange.upperBound))")
            }
            let previous = target.commandInterval
            target.commandSetInterval(number.doubleValue)
            result = ["interval": number.doubleValue, "previous": previous]
        case "get-config":
            result = target.commandConfig()
        case "get-stats":
            let s = target.commandStats()
            result = [
                "connected": s.connected, "published": s.published, "acknowledged": s.acknowledged,
                "dropped": s.dropped, "last_seq": s.lastSeq, "queued": s.queued, "inflight": s.inflight,
                "attempts": s.attempts, "connects": s.connects, "errors": s.errors,
                "sensor_errors": s.sensorErrors, "uptime_s": round3(target.commandUptime),
            ]
        default:
            var message = "unknown command \"\(command)\"; expected one of \(names.joined(separator: ", "))"
            if let guess = Suggestion.closest(to: command, in: names) { message += "; did you mean \(guess)?" }
            return fail(message)
        }
        reply["ok"] = true
        reply["result"] = result
        return encode(reply)
    }

    static func encode(_ object: [String: Any]) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return Array(#"{"ok":false,"error":"internal: reply not encodable"}"#.utf8)
        }
        return Array(data)
    }

    private static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}
