/// `mqtt5:` of device.yaml, `defaults:` or a template: MQTT 5 properties on every telemetry
/// message (message expiry, content type, user properties) and the topic alias.
struct TelemetryPropertiesFields {
    var messageExpiry: UInt32?
    var contentType: String?
    var userProperties: [TelemetryProperties.UserProperty]?
    var topicAlias: Bool?

    static let keys = ["message_expiry", "content_type", "user_properties", "topic_alias"]

    /// nil when there is no `mqtt5:` (or it is invalid: then an issue is logged).
    static func read(_ map: MappingReader) -> TelemetryPropertiesFields? {
        guard let section = map.mapping("mqtt5", fix: "write the MQTT 5 telemetry properties indented under \(map.field("mqtt5")):, "
                                            + "e.g. `message_expiry: 60`") else { return nil }
        section.rejectUnknownKeys(allowed: keys)
        var fields = TelemetryPropertiesFields()
        fields.messageExpiry = section.integer(
            "message_expiry", in: .messageExpiry,
            fix: "set \(section.field("message_expiry")) to the seconds the broker may keep a reading for a subscriber that is away, e.g. 60"
        ).map { UInt32($0) }
        let typeFix = "set \(section.field("content_type")) to a MIME type such as application/json"
        if let type = section.string("content_type", expected: "a MIME type such as application/json", fix: typeFix) {
            if type.isEmpty || type.utf8.count > 65_535 || type.contains("\u{0}") {
                section.problem("content_type", "expected a MIME type such as application/json, got \"\(SettingText.clipped(type))\"", fix: typeFix)
            } else {
                fields.contentType = type
            }
        }
        let propertiesFix = "write one `name: value` per user property indented under \(section.field("user_properties")):, "
            + "e.g. `site: \"{id}\"` ({id} is the device id)"
        if let properties = section.mapping("user_properties", fix: propertiesFix) {
            var list: [TelemetryProperties.UserProperty] = []
            for entry in properties.entries {
                guard let value = properties.string(entry.key, expected: "a text (quote numbers)", fix: propertiesFix) else { continue }
                if entry.key.isEmpty || entry.key.contains("\u{0}") || value.contains("\u{0}")
                    || entry.key.utf8.count > 65_535 || value.utf8.count > 65_535 {
                    properties.problem(entry.key, "a user property's name and value are texts of at most 65,535 bytes without NUL", fix: propertiesFix)
                    continue
                }
                list.append(.init(name: entry.key, value: value))
            }
            fields.userProperties = list
        }
        fields.topicAlias = section.bool("topic_alias", fix: "set \(section.field("topic_alias")) to true or false")
        return fields
    }

    /// These over `defaults` key by key.
    func merged(over defaults: TelemetryPropertiesFields?) -> TelemetryPropertiesFields {
        TelemetryPropertiesFields(
            messageExpiry: messageExpiry ?? defaults?.messageExpiry, contentType: contentType ?? defaults?.contentType,
            userProperties: userProperties ?? defaults?.userProperties, topicAlias: topicAlias ?? defaults?.topicAlias)
    }

    /// The device's properties, `{id}` replaced in the user properties' values.
    func properties(id: String) -> TelemetryProperties {
        TelemetryProperties(
            messageExpiry: messageExpiry, contentType: contentType,
            userProperties: (userProperties ?? []).map { .init(name: $0.name, value: $0.value.replacing("{id}", with: id)) },
            topicAlias: topicAlias ?? false)
    }

    /// A topic alias at QoS 1/2 is refused: libmosquitto 2.0.11 re-sends an unacknowledged
    /// message as it first wrote it, with the alias only, which the broker does not know on the
    /// new connection.
    static func checkAlias(_ properties: TelemetryProperties, qos: Int, file: String, log: IssueLog) -> TelemetryProperties {
        guard properties.topicAlias, qos > 0 else { return properties }
        log.error(file, field: "mqtt5.topic_alias",
                  "a topic alias is only used at qos 0: at qos \(qos) libmosquitto re-sends an unacknowledged message after "
                      + "a reconnect with the alias only, which the broker does not know on the new connection",
                  fix: "set `qos: 0` for this device, or remove mqtt5.topic_alias")
        var fixed = properties
        fixed.topicAlias = false
        return fixed
    }
}
