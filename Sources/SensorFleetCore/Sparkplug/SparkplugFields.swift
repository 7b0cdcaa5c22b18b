/// `payload:` and `sparkplug:` of device.yaml, `defaults:` or a template: which payload format a
/// device publishes, and for `sparkplug_b` its Sparkplug group and edge node id.
struct SparkplugFields {
    /// `payload:` as written; nil: not set here.
    var payload: String?
    var groupID: String?
    var edgeNodeID: String?
    /// `sparkplug:` is present (its keys are only read with `payload: sparkplug_b`).
    var hasSection = false
    /// A value under `sparkplug:` was refused (already logged).
    var invalid = false
    /// Lines of `payload:` and `sparkplug:`, for the messages.
    var payloadLine: Int?
    var sectionLine: Int?

    static let payloadKey = "payload"
    static let sectionKey = "sparkplug"
    static let sectionKeys = ["group_id", "edge_node_id"]
    static let sparkplugFormat = "sparkplug_b"

    static func read(_ map: MappingReader) -> SparkplugFields {
        var fields = SparkplugFields()
        fields.payloadLine = map.line(of: payloadKey)
        fields.sectionLine = map.line(of: sectionKey)
        // The value of `payload:` is read by PayloadFields (the one reader of that key) and set
        // by DeviceFields.read; here only its line, for the messages.
        guard let section = map.mapping(sectionKey, fix: "write the Sparkplug B settings indented under \(map.field(sectionKey)):, "
                                        + "e.g. `group_id: plant-1`") else { return fields }
        fields.hasSection = true
        section.rejectUnknownKeys(allowed: sectionKeys)
        func id(_ key: String, example: String) -> String? {
            let fix = "set \(section.field(key)) to one topic level without `/`, `+` or `#`, e.g. \(example)"
            guard let value = section.string(key, expected: "a Sparkplug id such as \(example)", fix: fix) else { return nil }
            if let problem = SparkplugSettings.problem(with: value.replacing("{id}", with: "x")) {
                section.problem(key, "\"\(SettingText.clipped(value))\" cannot be a Sparkplug id: \(problem)", fix: fix)
                fields.invalid = true
                return nil
            }
            return value
        }
        let group = id("group_id", example: "plant-1")
        let edge = id("edge_node_id", example: "\"{id}\" (the device id, the default)")
        fields.groupID = group
        fields.edgeNodeID = edge
        return fields
    }

    /// These over `defaults` key by key. A `sparkplug:` under `defaults:` may serve the fleet's
    /// Sparkplug devices beside JSON ones; only a device's own `sparkplug:` without
    /// `payload: sparkplug_b` is refused.
    func merged(over defaults: SparkplugFields?) -> SparkplugFields {
        SparkplugFields(
            payload: payload ?? defaults?.payload, groupID: groupID ?? defaults?.groupID,
            edgeNodeID: edgeNodeID ?? defaults?.edgeNodeID, hasSection: hasSection, invalid: invalid || defaults?.invalid == true,
            payloadLine: payloadLine, sectionLine: sectionLine)
    }

    /// The device's Sparkplug settings (`{id}` replaced), nil for another payload format. Logs
    /// what does not fit Sparkplug B: no `group_id`, `sparkplug:` without `payload: sparkplug_b`,
    /// an own `topic:` (Sparkplug names the topics), `qos` other than 0 (Sparkplug B 3.0 sends
    /// NBIRTH and NDATA at QoS 0).
    /// - Parameters:
    ///   - explicitQoS: `qos:` of the device's own entry, nil when not written there (a fleet-wide
    ///     `defaults: qos` is meant for the JSON devices: Sparkplug devices use 0 whatever it says).
    ///   - ownTopic: `topic:` is written in this device's own entry.
    func settings(id: String, explicitQoS: Int?, ownTopic: Bool, file: String, log: IssueLog) -> SparkplugSettings? {
        guard payload == Self.sparkplugFormat else {
            if hasSection {
                log.error(file, line: sectionLine, field: Self.sectionKey,
                          "`sparkplug:` is only used with `payload: sparkplug_b` (this device publishes \(payload ?? "json"))",
                          fix: "add `payload: sparkplug_b`, or remove `sparkplug:`")
            }
            return nil
        }
        if invalid { return nil }  // said where it was read
        var ok = true
        if groupID == nil {
            ok = false
            log.error(file, line: payloadLine ?? sectionLine, field: "sparkplug.group_id", "`payload: sparkplug_b` needs a Sparkplug group: the second level of spBv1.0/{group_id}/…",
                      fix: "add `sparkplug: {group_id: plant-1}` (here or under fleet.yaml's `defaults:`)")
        }
        if let explicitQoS, explicitQoS != 0 {
            ok = false
            log.error(file, line: payloadLine ?? sectionLine, field: "qos", "Sparkplug B publishes NBIRTH and NDATA at QoS 0 (Eclipse Sparkplug 3.0), but qos is \(explicitQoS)",
                      fix: "set `qos: 0` or remove it for this device (a lost NDATA shows as a gap in the Sparkplug seq; the host asks for a rebirth)")
        }
        if ownTopic {
            ok = false
            log.error(file, line: payloadLine ?? sectionLine, field: "topic", "with `payload: sparkplug_b` the topics are Sparkplug's (spBv1.0/{group_id}/NDATA/{edge_node_id} …)",
                      fix: "remove `topic:` from this device; set `sparkplug.group_id` and `sparkplug.edge_node_id` instead")
        }
        guard ok, let groupID else { return nil }
        let edge = (edgeNodeID ?? "{id}").replacing("{id}", with: id)
        if let problem = SparkplugSettings.problem(with: edge) {
            log.error(file, line: payloadLine ?? sectionLine, field: "sparkplug.edge_node_id", "the edge node id \"\(SettingText.clipped(edge))\" cannot be a Sparkplug id: \(problem)",
                      fix: "set `sparkplug.edge_node_id` to one topic level, e.g. \"{id}\"")
            return nil
        }
        return SparkplugSettings(groupID: groupID.replacing("{id}", with: id), edgeNodeID: edge)
    }
}
