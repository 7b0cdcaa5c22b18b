/// `profile:` in fleet.yaml: the conventions and limits of a service or broker product, so a
/// fleet meant for it is set up its way and refused by `validate` where it would be refused there.
///
/// Sources (checked 2026-11): AWS IoT Core — developer guide “MQTT”, “AWS IoT differences from
/// MQTT specifications” and the service quotas (“message broker and protocol limits”); Azure IoT
/// Hub — “Communicate with an IoT hub using the MQTT protocol”; HiveMQ — “MQTT-specific
/// configuration” defaults (max packet size 268435460, max keep-alive 65535, max QoS 2); EMQX 5 —
/// “MQTT configuration” defaults (max_packet_size 1MB, max_topic_levels 128, max_qos_allowed 2).
public enum BrokerProfile: String, Sendable, CaseIterable {
    case awsIoTCore = "aws-iot-core"
    case azureIoTHub = "azure-iot-hub"
    case hivemq
    case emqx

    /// What the service accepts.
    public struct Limits: Sendable, Equatable {
        /// Largest PUBLISH payload in bytes.
        public var maxPayload: Int
        /// Longest topic in bytes.
        public var maxTopicBytes: Int
        /// Most `/` in a topic (nil: no limit of its own).
        public var maxTopicSlashes: Int?
        public var keepAlive: ClosedRange<Int>
        public var maxQoS: Int
        public var protocols: [MQTTVersion]
        /// Ports a device may connect to, the default first; empty: any (8883 by default).
        public var ports: [Int]
    }

    public var limits: Limits {
        switch self {
        case .awsIoTCore:
            Limits(maxPayload: 128 * 1024, maxTopicBytes: 256, maxTopicSlashes: 7, keepAlive: 30...1200, maxQoS: 1,
                   protocols: [.v311, .v5], ports: [8883, 443])
        case .azureIoTHub:
            Limits(maxPayload: 256 * 1024, maxTopicBytes: 65_535, maxTopicSlashes: nil, keepAlive: 1...1177, maxQoS: 1,
                   protocols: [.v311], ports: [8883])
        case .hivemq:
            Limits(maxPayload: 268_435_460 - 64, maxTopicBytes: 65_535, maxTopicSlashes: nil, keepAlive: 1...65_535, maxQoS: 2,
                   protocols: [.v311, .v5], ports: [])
        case .emqx:
            Limits(maxPayload: 1_048_576 - 64, maxTopicBytes: 65_535, maxTopicSlashes: 127, keepAlive: 1...65_535, maxQoS: 2,
                   protocols: [.v311, .v5], ports: [])
        }
    }

    /// Azure IoT Hub's MQTT API version in the user name.
    public static let azureAPIVersion = "2021-04-12"
    /// AWS IoT Core's ALPN protocol for MQTT with a client certificate on port 443.
    public static let awsALPN = "x-amzn-mqtt-ca"
    /// Azure IoT Hub's device-to-cloud topic.
    public static let azureTopic = "devices/{id}/messages/events/"

    /// What the profile sets and checks, one line each, for `validate`.
    public var explanation: [String] {
        let l = limits
        var lines: [String]
        switch self {
        case .awsIoTCore:
            lines = [
                "port 8883 by default; on port 443 the TLS ALPN protocol \(Self.awsALPN) (set for you)",
                "client id = device id = the thing name (at most 128 bytes)",
                "QoS 0 or 1 (AWS IoT Core has no QoS 2); keep-alive 30 to 1200 s",
                "topics at most 256 bytes and 7 slashes; payloads at most 128 KB",
            ]
        case .azureIoTHub:
            lines = [
                "port 8883, MQTT 3.1.1 (IoT Hub speaks no other MQTT over TLS without WebSockets)",
                "user name {hub}/{id}/?api-version=\(Self.azureAPIVersion) with {hub} = broker.host; client id = device id; X.509 authentication",
                "telemetry topic \(Self.azureTopic); command replies and OTA progress there too",
                "commands from devices/{id}/messages/devicebound/# (cloud-to-device); no retained status and no will (IoT Hub reports connections in its lifecycle events)",
                "refused: shadow:, labels_topic:, payload: sparkplug_b (IoT Hub takes no other topic)",
                "QoS 0 or 1; keep-alive at most 1177 s; payloads at most 256 KB",
            ]
        case .hivemq:
            lines = [
                "port 8883 by default, MQTT 5 by default",
                "HiveMQ's defaults: QoS up to 2, keep-alive up to 65535 s, packets up to 256 MB",
            ]
        case .emqx:
            lines = [
                "port 8883 by default, MQTT 5 by default",
                "EMQX's defaults: QoS up to 2, packets up to 1 MB (max_packet_size), topics up to 128 levels",
            ]
        }
        var refused: [String] = MQTTVersion.allCases.filter { !l.protocols.contains($0) }.map { "protocol \($0.rawValue)" }
        if !l.ports.isEmpty { refused.append("ports other than \(l.ports.map(String.init).joined(separator: " or "))") }
        if l.maxQoS < 2 { refused.append("QoS above \(l.maxQoS)") }
        refused.append("keep-alive outside \(l.keepAlive.lowerBound)–\(l.keepAlive.upperBound) s")
        lines.append("refused by validate: " + refused.joined(separator: ", "))
        return lines
    }
}
