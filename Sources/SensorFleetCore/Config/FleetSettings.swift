
/// Device settings from `defaults:` in fleet.yaml, applied to every device that does not set them.
struct DeviceDefaults {
    var interval: Double = 5
    var qos: Int = 1
    var topic: String = "devices/{id}/telemetry"
    var cleanSession: Bool = true
    var sessionExpiry: UInt32?
    var login = LoginFields()
    var mqtt5: TelemetryPropertiesFields?
    /// Absolute path of the fault labels file (fleet.yaml's `labels:`).
    var faultLabels: String?
    var payload: PayloadFields?
    /// fleet.yaml's `labels_topic`, `{id}` not yet replaced.
    var faultLabelsTopic: String?
    var sparkplug: SparkplugFields?
}

/// What fleet.yaml says, with defaults for everything it leaves out.
struct FleetSettings {
    static let fleetKeys = ["broker", "seed", "connect_rate", "outbox_limit", "outbox", "defaults", "templates", "labels", "labels_topic", "profile"]
        + BehaviourFields.fleetKeys
    static let brokerKeys = ["host", "port", "ca", "protocol", "keepalive", "tls_min_version", "alpn", "bind",
                             "insecure_skip_hostname_verification", "tls", "allow_plaintext"]
    static let defaultsKeys = ["interval", "qos", "topic", "clean_session", "session_expiry", "mqtt5", "payload"] + LoginFields.keys
        + [SparkplugFields.sectionKey]

    let location: FleetLocation
    var broker: BrokerSpec
    var seed: UInt64 = 1
    var connectRate: Double = 50
    var outbox = OutboxSpec()
    var defaults = DeviceDefaults()
    /// `profile:` (see ``BrokerProfile``).
    var profile: BrokerProfile?
    var behaviour = BehaviourSpec()
    /// `scenario:` as read (checked against the devices once they are known).
    var scenario: [ScenarioEvent]?
    /// Where the CA is named, for messages about the CA file.
    var caDisplay: String
    var caLine: Int?

    var file: String { location.display("fleet.yaml") }

    init(location: FleetLocation) {
        self.location = location
        let ca = location.resolve("ca.pem", in: nil)
        broker = BrokerSpec(caFile: ca.absolute)
        caDisplay = ca.display
    }

    mutating func read(_ root: MappingReader) {
        root.rejectUnknownKeys(allowed: Self.fleetKeys)
        let brokerMap = root.mapping("broker", fix: "write the broker settings indented under `broker:`")
        if let brokerMap { readBroker(brokerMap) }
        profile = ProfileRules.read(root)
        if let profile {
            ProfileRules.applyBroker(profile, to: &self, broker: brokerMap, log: root.log)
            if let topic = ProfileRules.defaultTopic(profile) { defaults.topic = topic }
        }
        if let seed = root.unsigned("seed", expected: "a whole number 0 or greater",
                                    fix: "set seed to a whole number such as 42 (the same seed gives the same readings)") {
            self.seed = seed
        }
        if let rate = root.number("connect_rate", in: .connectRate,
                                  fix: "set connect_rate to how many devices may connect per second, e.g. 50") {
            connectRate = rate
        }
        if let limit = root.integer("outbox_limit", in: .outboxMessages,
                                    fix: "set outbox_limit to how many messages a device may queue, e.g. 1000") {
            outbox.maxMessages = limit
            if let section = root.mapping("outbox", fix: "write the outbox settings indented under `outbox:`"),
               section.entry("max_messages") != nil {
                root.problem("outbox_limit", "`outbox_limit` and `outbox.max_messages` are both set",
                             fix: "remove `outbox_limit` (the older name) and keep `outbox.max_messages`")
            }
        }
        if let section = root.mapping("outbox", fix: "write the outbox settings indented under `outbox:`") {
            OutboxSettings.read(section, into: &outbox)
        }
        defaults.faultLabels = FaultLabelsSetting.read(root, location: location)
        BehaviourFields.readFleet(root, into: &behaviour)
        scenario = ScenarioParser.read(root)
        defaults.faultLabelsTopic = FaultLabelsSetting.readTopic(root)
        if let profile { ProfileRules.checkFleet(profile, self, root: root) }
        if let defaults = root.mapping("defaults", fix: "write device defaults indented under `defaults:`") {
            defaults.rejectUnknownKeys(allowed: Self.defaultsKeys)
            let fields = DeviceFields.read(defaults) { location.resolve($0, in: nil) }
            self.defaults.interval = fields.interval ?? self.defaults.interval
            self.defaults.qos = fields.qos ?? self.defaults.qos
            self.defaults.topic = fields.topic ?? self.defaults.topic
            self.defaults.cleanSession = fields.cleanSession ?? self.defaults.cleanSession
            self.defaults.sessionExpiry = fields.sessionExpiry ?? self.defaults.sessionExpiry
            self.defaults.login = fields.login
            self.defaults.mqtt5 = fields.mqtt5
            self.defaults.payload = fields.payload
            self.defaults.sparkplug = fields.sparkplug
        }
    }

    private mutating func readBroker(_ map: MappingReader) {
        map.rejectUnknownKeys(allowed: Self.brokerKeys)
        if let tls = map.bool("tls", fix: "set broker.tls to true (TLS, the default) or false (plain TCP), or remove it") {
            broker.tls = tls
            if !tls {
                map.log.warning(
                    map.file, line: map.line(of: "tls"), field: map.field("tls"),
                    "WARNING: TLS is OFF: every device connects over plain TCP; readings, commands, user names and "
                        + "passwords cross the network in clear, and the broker is not authenticated",
                    fix: "use plain TCP only for a broker without a TLS listener on a network you trust; "
                        + "remove broker.tls to use TLS")
            }
        }
        if let allow = map.bool("allow_plaintext", fix: "set broker.allow_plaintext to true or false, or remove it") {
            broker.allowPlaintext = allow
        }
        if let host = map.string("host", expected: "a host name or IP address",
                                 fix: "set broker.host to the broker's host name, e.g. localhost") {
            if host.isEmpty || host.contains(where: \.isWhitespace) {
                map.problem("host", "expected a host name or IP address, got \"\(SettingText.clipped(host))\"",
                            fix: "set broker.host to the broker's host name, e.g. localhost")
            } else {
                broker.host = host
            }
        }
        if let port = map.integer("port", in: .port, fix: "set broker.port to the broker's TLS port, e.g. 8883") {
            broker.port = port
        }
        if let ca = map.string("ca", expected: "the path of the CA certificate file",
                               fix: "set broker.ca to the CA file, relative to the fleet folder, e.g. ca.pem") {
            if ca.isEmpty {
                map.problem("ca", "expected the path of the CA certificate file, got an empty text",
                            fix: "set broker.ca to the CA file, relative to the fleet folder, e.g. ca.pem")
            } else {
                let resolved = location.resolve(ca, in: nil)
                broker.caFile = resolved.absolute
                caDisplay = resolved.display
                caLine = map.line(of: "ca")
            }
        }
        if let version = map.string("protocol", expected: "\"3.1.1\" or \"5\"",
                                    fix: "set broker.protocol to \"3.1.1\" or \"5\"") {
            if let parsed = MQTTVersion(rawValue: version) {
                broker.protocolVersion = parsed
            } else {
                map.problem("protocol", "expected \"3.1.1\" or \"5\", got \"\(SettingText.clipped(version))\"",
                            fix: "set broker.protocol to \"3.1.1\" (MQTT 3.1.1) or \"5\" (MQTT 5)")
            }
        }
        if let keepAlive = map.integer("keepalive", in: .keepAlive,
                                       fix: "set broker.keepalive to the MQTT keep-alive in seconds, e.g. 30") {
            broker.keepAlive = keepAlive
        }
        if let tls = map.string("tls_min_version", expected: "\"1.2\" or \"1.3\"",
                                fix: "set broker.tls_min_version to \"1.2\" or \"1.3\"") {
            switch tls {
            case "1.2", "1.3": broker.tlsMinVersion = tls
            case "1.0", "1", "1.1", "TLSv1", "TLSv1.0", "TLSv1.1":
                map.problem("tls_min_version",
                            "TLS \(tls) is refused: TLS 1.0 and 1.1 are obsolete and insecure; expected \"1.2\" or \"1.3\"",
                            fix: "set broker.tls_min_version to \"1.2\" (or \"1.3\") and enable TLS 1.2 on the broker")
            default:
                map.problem("tls_min_version", "expected \"1.2\" or \"1.3\", got \"\(SettingText.clipped(tls))\"",
                            fix: "set broker.tls_min_version to \"1.2\" or \"1.3\"")
            }
        }
        if let alpn = map.string("alpn", expected: "an ALPN protocol name such as x-amzn-mqtt-ca",
                                 fix: "set broker.alpn to the protocol name the broker expects, or remove it") {
            if alpn.isEmpty || alpn.utf8.count > 255 {
                map.problem("alpn", "expected an ALPN protocol name of 1 to 255 bytes, got \"\(SettingText.clipped(alpn))\"",
                            fix: "set broker.alpn to the protocol name the broker expects, or remove it")
            } else {
                broker.alpn = alpn
            }
        }
        if let bind = map.string("bind", expected: "a local IP address such as 127.0.0.1",
                                 fix: "set broker.bind to a local address of this machine, or remove it") {
            if bind.isEmpty || bind.contains(where: \.isWhitespace) {
                map.problem("bind", "expected a local IP address such as 127.0.0.1, got \"\(SettingText.clipped(bind))\"",
                            fix: "set broker.bind to a local address of this machine, or remove it")
            } else {
                broker.bindAddress = bind
            }
        }
        if let insecure = map.bool("insecure_skip_hostname_verification",
                                   fix: "set broker.insecure_skip_hostname_verification to true or false, or remove it") {
            broker.insecureSkipHostnameVerification = insecure
            if insecure {
                map.log.warning(
                    map.file, line: map.line(of: "insecure_skip_hostname_verification"),
                    field: map.field("insecure_skip_hostname_verification"),
                    "WARNING: the broker's hostname will NOT be verified: anyone holding a certificate from the CA "
                        + "can impersonate the broker at \(broker.host)",
                    fix: "give the broker a certificate whose name matches broker.host, then remove "
                        + "insecure_skip_hostname_verification")
            }
        }
    }
}
