
/// The device keys that may also be set fleet-wide under `defaults:`.
struct DeviceFields {
    var interval: Double?
    var qos: Int?
    var topic: String?
    var cleanSession: Bool?
    var sessionExpiry: UInt32?
    var login = LoginFields()
    var mqtt5: TelemetryPropertiesFields?
    var payload: PayloadFields?
    /// `payload:` and `sparkplug:` (Sparkplug B).
    var sparkplug = SparkplugFields()

    /// - Parameter resolve: a path written in this mapping → (absolute, as the user sees it).
    static func read(_ map: MappingReader, resolve: (String) -> (absolute: String, display: String)) -> DeviceFields {
        var fields = DeviceFields()
        fields.login = LoginFields.read(map, resolve: resolve)
        fields.mqtt5 = TelemetryPropertiesFields.read(map)
        fields.payload = PayloadFields.read(map, resolve: resolve)
        fields.sparkplug = SparkplugFields.read(map)
        // `payload:` is read once, by PayloadFields; Sparkplug needs to know whether it says sparkplug_b.
        fields.sparkplug.payload = fields.payload.map { $0.isSparkplug ? SparkplugFields.sparkplugFormat : $0.format.name }
        let intervalKey = map.field("interval")
        fields.interval = map.number("interval", in: .interval,
                                     fix: "set \(intervalKey) to the seconds between two readings, e.g. 5 (at least 0.001, at most 86400)")
        fields.qos = map.integer("qos", in: .qos,
                                 fix: "set \(map.field("qos")) to 0 (at most once), 1 (at least once) or 2 (exactly once)")
        if let topic = map.string("topic", expected: "an MQTT topic such as devices/{id}/telemetry",
                                  fix: "set \(map.field("topic")) to a topic such as devices/{id}/telemetry") {
            if let problem = TopicRules.problem(with: topic) {
                map.problem("topic", problem,
                            fix: "set \(map.field("topic")) to a topic such as devices/{id}/telemetry")
            } else {
                fields.topic = topic
            }
        }
        fields.cleanSession = map.bool("clean_session", fix: "set \(map.field("clean_session")) to true or false")
        fields.sessionExpiry = map.integer(
            "session_expiry", in: .sessionExpiry,
            fix: "set \(map.field("session_expiry")) to the seconds the broker keeps the session after a disconnect "
                + "(MQTT 5 with clean_session: false), e.g. 3600"
        ).map { UInt32($0) }
        return fields
    }
}

/// What a telemetry topic template may look like.
enum TopicRules {
    /// Why `template` cannot be a publish topic, or nil when it can.
    static func problem(with template: String) -> String? {
        if template.isEmpty { return "the topic is empty" }
        if template.contains("+") || template.contains("#") {
            return "the topic \"\(SettingText.clipped(template))\" contains a wildcard (`+` or `#`), which only subscriptions may use"
        }
        if template.hasPrefix("$") {
            return "the topic \"\(SettingText.clipped(template))\" starts with `$`, which is reserved for the broker's own topics ($SYS)"
        }
        if template.hasPrefix("/") {
            return "the topic \"\(SettingText.clipped(template))\" starts with `/`, which makes an empty first level"
        }
        if template.contains("\u{0}") { return "the topic contains a NUL character" }
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = rest[rest.index(after: open)..<close]
            if name != "id" {
                return "the topic \"\(SettingText.clipped(template))\" has the placeholder `{\(name)}`; only `{id}` is replaced"
            }
            rest = rest[rest.index(after: close)...]
        }
        if template.utf8.count > 60_000 { return "the topic is longer than MQTT allows" }
        return nil
    }
}
