
/// Applies fleet.yaml's `profile:` (``BrokerProfile``): sets what the user left out, and logs an
/// error for every setting that contradicts the profile, naming the setting and what the service
/// accepts.
enum ProfileRules {
    /// Reads `profile:`; nil when absent or unknown (then an issue is logged).
    static func read(_ root: MappingReader) -> BrokerProfile? {
        let names = BrokerProfile.allCases.map(\.rawValue)
        let fix = "set profile to one of \(names.joined(separator: ", ")), or remove it"
        guard let name = root.string("profile", expected: "one of \(names.joined(separator: ", "))", fix: fix) else { return nil }
        if let profile = BrokerProfile(rawValue: name) { return profile }
        var problem = "unknown profile \"\(SettingText.clipped(name))\"; expected one of \(names.joined(separator: ", "))"
        if let guess = Suggestion.closest(to: name, in: names) ?? names.first(where: { $0.hasPrefix(name.lowercased()) && !name.isEmpty }) { problem += "; did you mean `\(guess)`?" }
        root.problem("profile", problem, fix: fix)
        return nil
    }

    /// The broker settings: defaults the profile sets where fleet.yaml is silent, errors where it
    /// contradicts the profile.
    /// - Parameter broker: fleet.yaml's `broker:` (nil when absent).
    static func applyBroker(_ profile: BrokerProfile, to settings: inout FleetSettings, broker map: MappingReader?, log: IssueLog) {
        let limits = profile.limits
        let file = settings.file
        let said = "profile \(profile.rawValue)"
        func error(_ key: String, _ problem: String, fix: String) {
            log.error(file, line: map?.line(of: key), field: "broker.\(key)", "\(said): \(problem)", fix: fix)
        }
        let has = { (key: String) in map?.has(key) ?? false }
        if !settings.broker.tls {
            error("tls", "\(profile.rawValue) accepts TLS only", fix: "remove broker.tls: false")
        }
        if has("port") {
            if !limits.ports.isEmpty && !limits.ports.contains(settings.broker.port) {
                error("port", "devices connect on port \(limits.ports.map(String.init).joined(separator: " or ")), not \(settings.broker.port)",
                      fix: "set broker.port to \(limits.ports[0]), or remove it")
            }
        } else {
            settings.broker.port = limits.ports.first ?? 8883
        }
        if has("protocol") {
            if !limits.protocols.contains(settings.broker.protocolVersion) {
                error("protocol", "\(profile.rawValue) speaks MQTT \(limits.protocols.map(\.rawValue).joined(separator: " or ")), not \(settings.broker.protocolVersion.rawValue)",
                      fix: "set broker.protocol to \"\(limits.protocols[0].rawValue)\", or remove it")
            }
        } else {
            switch profile {
            case .hivemq, .emqx: settings.broker.protocolVersion = .v5
            case .azureIoTHub, .awsIoTCore: settings.broker.protocolVersion = .v311
            }
        }
        if !limits.keepAlive.contains(settings.broker.keepAlive) {
            error("keepalive", "the keep-alive must be \(limits.keepAlive.lowerBound) to \(limits.keepAlive.upperBound) s, got \(settings.broker.keepAlive)",
                  fix: "set broker.keepalive to a value from \(limits.keepAlive.lowerBound) to \(limits.keepAlive.upperBound), e.g. 60")
        }
        if profile == .awsIoTCore && settings.broker.port == 443 {
            if let alpn = settings.broker.alpn, alpn != BrokerProfile.awsALPN {
                error("alpn", "on port 443 AWS IoT Core takes MQTT with a client certificate only with the ALPN protocol \(BrokerProfile.awsALPN), not \(alpn)",
                      fix: "remove broker.alpn (the profile sets it) or use port 8883")
            } else {
                settings.broker.alpn = BrokerProfile.awsALPN
            }
        }
    }

    /// fleet.yaml's settings that publish on topics of their own: Azure IoT Hub accepts a
    /// device's messages on its events topic only, so `shadow:` (IoT Hub has device twins on
    /// `$iothub/twin/…`, not this shadow) and `labels_topic:` are refused.
    static func checkFleet(_ profile: BrokerProfile, _ settings: FleetSettings, root: MappingReader) {
        guard profile == .azureIoTHub else { return }
        let said = "profile \(profile.rawValue)"
        if settings.behaviour.shadow != nil {
            root.log.error(settings.file, line: root.line(of: "shadow"), field: "shadow",
                           "\(said): IoT Hub takes a device's messages on \(BrokerProfile.azureTopic) only; the shadow's topics (devices/{id}/shadow/…, $aws/things/{id}/shadow/…) would close the connection",
                           fix: "remove shadow: (IoT Hub's device twins are not simulated)")
        }
        if settings.defaults.faultLabelsTopic != nil {
            root.log.error(settings.file, line: root.line(of: "labels_topic"), field: "labels_topic",
                           "\(said): IoT Hub takes a device's messages on \(BrokerProfile.azureTopic) only, so fault labels cannot be published on a topic of their own",
                           fix: "remove labels_topic (keep labels: to write the labels to a file)")
        }
    }

    /// Azure IoT Hub's cloud-to-device topic filter.
    static let azureCommandsTopic = "devices/{id}/messages/devicebound/#"

    /// The telemetry topic a profile gives devices that set none.
    static func defaultTopic(_ profile: BrokerProfile) -> String? {
        profile == .azureIoTHub ? BrokerProfile.azureTopic : nil
    }

    /// Each device against the profile: QoS, topic, user name, the size of a payload.
    static func checkDevices(_ profile: BrokerProfile, broker: BrokerSpec, devices: inout [ParsedDevice], log: IssueLog) {
        let limits = profile.limits
        let said = "profile \(profile.rawValue)"
        // A template's devices share one file: one issue per file and field.
        let log = DedupingLog(log: log)
        for i in devices.indices {
            let file = devices[i].file
            log.key = devices[i].isFromTemplate ? file : nil
            var spec = devices[i].spec
            if spec.qos > limits.maxQoS {
                log.error(file, field: "qos", "\(said): QoS \(spec.qos) is not accepted (\(profile.rawValue) takes QoS 0 to \(limits.maxQoS)); the broker would close the connection",
                          fix: "set qos to \(limits.maxQoS) (in this file or under defaults: in fleet.yaml)")
            }
            let topicBytes = spec.topic.utf8.count
            let slashes = spec.topic.utf8.filter { $0 == UInt8(ascii: "/") }.count
            if topicBytes > limits.maxTopicBytes {
                log.error(file, field: "topic", "\(said): the topic \(SettingText.clipped(spec.topic)) has \(topicBytes) bytes; at most \(limits.maxTopicBytes)",
                          fix: "shorten topic")
            }
            if let maxSlashes = limits.maxTopicSlashes, slashes > maxSlashes {
                log.error(file, field: "topic", "\(said): the topic \(SettingText.clipped(spec.topic)) has \(slashes) slashes; at most \(maxSlashes)",
                          fix: "use a topic with fewer levels, e.g. devices/{id}/telemetry")
            }
            if profile == .azureIoTHub {
                let topic = BrokerProfile.azureTopic.replacing("{id}", with: spec.id)
                // No retained status and no will; commands from cloud-to-device messages, replies
                // and OTA progress as device-to-cloud events.
                spec.statusTopic = nil
                spec.commandsTopic = azureCommandsTopic.replacing("{id}", with: spec.id)
                spec.repliesTopic = topic
                spec.otaTopic = topic
                if spec.sparkplug != nil {
                    log.error(file, field: "payload", "\(said): Sparkplug B publishes on spBv1.0/… topics; IoT Hub takes device-to-cloud messages on \(topic) only",
                              fix: "remove payload: sparkplug_b and sparkplug: (in this file or under defaults: in fleet.yaml), or drop the profile")
                } else if spec.topic != topic {
                    log.error(file, field: "topic", "\(said): IoT Hub takes device-to-cloud messages on \(topic) only, not \(SettingText.clipped(spec.topic))",
                              fix: "remove topic (the profile sets it)")
                }
                let username = "\(broker.host)/\(spec.id)/?api-version=\(BrokerProfile.azureAPIVersion)"
                if let given = spec.username, given != username {
                    log.error(file, field: "username", "\(said): IoT Hub expects the user name \(username), not \(SettingText.clipped(given))",
                              fix: "remove username (the profile sets it)")
                } else {
                    spec.username = username
                }
            }
            var sample: [UInt8] = []
            spec.payload.encode(device: spec.id, seq: 9_999_999_999, timestampMicros: 4_102_444_800_000_000,
                                readings: spec.sensors.map { ($0.name, -123_456.789_012) }, into: &sample)
            if sample.count > limits.maxPayload {
                log.error(file, field: "payload", "\(said): a payload of this device is about \(sample.count) bytes; \(profile.rawValue) takes at most \(limits.maxPayload)",
                          fix: "shorten the payload template or use fewer sensors")
            }
            devices[i].spec = spec
        }
    }
}

/// Logs each (file, field) once for a template's devices (`key` set), every issue otherwise.
private final class DedupingLog {
    let log: IssueLog
    var key: String?
    private var seen: Set<String> = []

    init(log: IssueLog) { self.log = log }

    func error(_ file: String, field: String, _ problem: String, fix: String) {
        if key != nil, !seen.insert("\(file)|\(field)").inserted { return }
        log.error(file, field: field, problem, fix: fix)
    }
}
