/// MQTT protocol version a fleet speaks.
public enum MQTTVersion: String, Sendable, Codable, CaseIterable {
    case v311 = "3.1.1"
    case v5 = "5"
}

/// Where and how the fleet connects. Loaded from `fleet.yaml` (`broker:`).
public struct BrokerSpec: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Absolute path of the CA file that signed the broker's certificate.
    public var caFile: String
    public var protocolVersion: MQTTVersion
    /// MQTT keep-alive in seconds.
    public var keepAlive: Int
    /// Lowest TLS version: "1.2" (default) or "1.3".
    public var tlsMinVersion: String
    /// ALPN protocol, e.g. "x-amzn-mqtt-ca"; nil for none.
    public var alpn: String?
    /// Source address(es) to bind; nil for the kernel's choice.
    public var bindAddress: String?
    /// Only when the user asks for it by this name: skip the broker hostname check (warned loudly).
    public var insecureSkipHostnameVerification: Bool
    /// `tls: false`, only when asked for by name: plain TCP, nothing encrypted, no certificates
    /// (warned loudly at every start).
    public var tls: Bool = true
    /// `allow_plaintext: true`: the agent, which refuses plain TCP otherwise, accepts `tls: false`.
    public var allowPlaintext: Bool = false

    public init(
        host: String = "localhost", port: Int = 8883, caFile: String,
        protocolVersion: MQTTVersion = .v311, keepAlive: Int = 30, tlsMinVersion: String = "1.2",
        alpn: String? = nil, bindAddress: String? = nil, insecureSkipHostnameVerification: Bool = false
    ) {
        self.host = host
        self.port = port
        self.caFile = caFile
        self.protocolVersion = protocolVersion
        self.keepAlive = keepAlive
        self.tlsMinVersion = tlsMinVersion
        self.alpn = alpn
        self.bindAddress = bindAddress
        self.insecureSkipHostnameVerification = insecureSkipHostnameVerification
    }
}

/// One simulated sensor's behaviour. Every random kind draws from a generator seeded by
/// (fleet seed, device id, sensor name), so the same fleet file gives the same readings.
public enum SensorKind: Sendable, Equatable {
    case constant(value: Double)
    case uniform(min: Double, max: Double)
    /// Normal distribution around `mean`; clamped to `min`/`max` when given.
    case gaussian(mean: Double, stddev: Double, min: Double?, max: Double?)
    /// Each reading moves by a uniform step in [-step, step], reflected at the bounds.
    case randomWalk(start: Double, step: Double, min: Double, max: Double)
    /// offset + amplitude·sin(2π·t/period) + gaussian noise (stddev `noise`); t in seconds since start.
    case sine(period: Double, amplitude: Double, offset: Double, noise: Double)
    /// start, start+step, start+2·step, …
    case counter(start: Double, step: Double)
    /// A real sensor of this machine (see ``SystemSource``); a reading outside `min`…`max` is
    /// skipped and counted like a failed read.
    case system(SystemSource, min: Double? = nil, max: Double? = nil)
    /// A position moving along a route (`type: route`): latitude, longitude, speed and heading.
    case route(RouteSpec)
    /// A room heated towards a setpoint (`type: thermal`).
    case thermal(ThermalSpec)
    /// A daily cycle in local time (`type: diurnal`).
    case diurnal(DiurnalSpec)
    /// A column of a recorded file (`type: replay`).
    case replay(ReplaySpec)
}

public struct SensorSpec: Sendable, Equatable {
    public var name: String
    public var unit: String?
    public var kind: SensorKind
    /// Digits after the decimal point in the payload (nil: as computed).
    public var precision: Int?
    /// Faults this sensor suffers (`faults:`), recorded in the fleet's `labels:` file.
    public var faults: [FaultSpec]

    public init(name: String, unit: String? = nil, kind: SensorKind, precision: Int? = nil, faults: [FaultSpec] = []) {
        self.name = name
        self.unit = unit
        self.kind = kind
        self.precision = precision
        self.faults = faults
    }

    /// The keys this sensor writes into a payload's `readings` (a route writes several).
    public var readingNames: [String] {
        if case .route(let route) = kind { return route.readings.map(\.rawValue) }
        return [name]
    }
}

/// One device: loaded from `<fleet>/<id>/device.yaml` with fleet defaults applied.
public struct DeviceSpec: Sendable, Equatable {
    public var id: String
    /// Absolute path of the device's folder.
    public var directory: String
    public var certFile: String
    public var keyFile: String
    /// Seconds between two readings.
    public var interval: Double
    public var qos: Int
    /// Telemetry topic with `{id}` already replaced.
    public var topic: String
    public var cleanSession: Bool
    /// MQTT 5 session expiry interval in seconds (`session_expiry`), sent in CONNECT when set;
    /// nil: none sent (the session ends with the connection at MQTT 5).
    public var sessionExpiry: UInt32?
    /// MQTT user name (`username`, `{id}` replaced) and password (`password_file` or `password`)
    /// sent in CONNECT; nil: none (the certificate is the identity).
    public var username: String?
    public var password: MQTTPassword?
    /// MQTT 5 properties of every telemetry message (`mqtt5:`); ignored at 3.1.1.
    public var telemetryProperties = TelemetryProperties()
    /// How telemetry is written (`payload:`); JSON by default.
    public var payload: PayloadFormat = .json
    /// `payload: sparkplug_b`: the device is a Sparkplug B edge node (its `topic` is then its
    /// NDATA topic and its `qos` 0); nil: the JSON payload.
    public var sparkplug: SparkplugSettings?
    public var sensors: [SensorSpec]
    /// Root under which real sensors find `sys/…` and `proc/…` (`/` on a real machine).
    public var sysfsRoot: String
    /// Absolute path of the fault labels file (fleet.yaml's `labels:`); nil: none written.
    public var faultLabels: String?
    /// Firmware version the device starts with (`firmware:`; an OTA update changes it).
    public var firmware = "1.0.0"
    /// `tags:`, for a scenario's `tag:` selection.
    public var tags: [String] = []
    /// The `id:` pattern of the template the device comes from; nil for a device folder.
    public var template: String?
    /// `battery:`; nil: mains powered.
    public var battery: BatterySpec?
    /// Topic the device publishes its fault label records on (fleet.yaml's `labels_topic`,
    /// `{id}` replaced); nil: none published.
    public var faultLabelsTopic: String?
    /// Retained status (birth, clean-stop `offline`, battery last gasp) and the will; nil: none
    /// (`profile: azure-iot-hub`: IoT Hub keeps no retained messages and reports connection
    /// state through its own device lifecycle events).
    public var statusTopic: String?
    /// Topic filter the device takes JSON commands from (see `DeviceCommands`).
    public var commandsTopic: String
    /// Topic of the replies to commands (unless an MQTT 5 request names its response topic).
    public var repliesTopic: String
    /// Topic of the OTA progress events.
    public var otaTopic: String

    public init(
        id: String, directory: String, certFile: String, keyFile: String, interval: Double,
        qos: Int = 1, topic: String? = nil, cleanSession: Bool = true, sensors: [SensorSpec],
        sysfsRoot: String = "/", sessionExpiry: UInt32? = nil, username: String? = nil, password: MQTTPassword? = nil
    ) {
        self.sessionExpiry = sessionExpiry
        self.username = username
        self.password = password
        self.id = id
        self.directory = directory
        self.certFile = certFile
        self.keyFile = keyFile
        self.interval = interval
        self.qos = qos
        self.topic = topic ?? "devices/\(id)/telemetry"
        self.cleanSession = cleanSession
        self.sensors = sensors
        self.sysfsRoot = sysfsRoot
        statusTopic = "devices/\(id)/status"
        commandsTopic = "devices/\(id)/commands"
        repliesTopic = "devices/\(id)/replies"
        otaTopic = "devices/\(id)/ota"
    }

    /// Whether `topic` (a message received) is on `commandsTopic`, which may end in `/#`.
    public func isCommand(_ topic: String) -> Bool {
        guard commandsTopic.hasSuffix("/#") else { return topic == commandsTopic }
        let base = commandsTopic.dropLast(2)
        return topic == base || topic.hasPrefix(base + "/")
    }
}

/// MQTT 5 properties on every telemetry message of a device (`mqtt5:` in device.yaml).
public struct TelemetryProperties: Sendable, Equatable {
    public struct UserProperty: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }
    /// Seconds the broker keeps a message for a subscriber that is away (`message_expiry`).
    public var messageExpiry: UInt32?
    /// `content_type`, e.g. application/json.
    public var contentType: String?
    /// `user_properties`, `{id}` replaced, in file order.
    public var userProperties: [UserProperty]
    /// `topic_alias`: after the first message of a connection the topic is sent as alias 1 (QoS 0 only).
    public var topicAlias: Bool

    public init(messageExpiry: UInt32? = nil, contentType: String? = nil, userProperties: [UserProperty] = [], topicAlias: Bool = false) {
        self.messageExpiry = messageExpiry
        self.contentType = contentType
        self.userProperties = userProperties
        self.topicAlias = topicAlias
    }

    /// No property to send.
    public var hasProperties: Bool { messageExpiry != nil || contentType != nil || !userProperties.isEmpty }
}

/// A whole fleet, as `FleetLoader` reads it from a folder.
public struct FleetSpec: Sendable, Equatable {
    /// Absolute path of the fleet folder.
    public var directory: String
    public var broker: BrokerSpec
    public var seed: UInt64
    /// Fleet-wide limit on connection attempts per second (token bucket).
    public var connectRate: Double
    /// Bounds, policy and timers of each device's outbox (`outbox:` in fleet.yaml).
    public var outbox: OutboxSpec
    /// Bound on each device's outbox in messages (`outbox.maxMessages`; fleet.yaml's older `outbox_limit`).
    public var outboxLimit: Int {
        get { outbox.maxMessages }
        set { outbox.maxMessages = newValue }
    }
    public var devices: [DeviceSpec]
    /// `profile:` of fleet.yaml: the service the fleet is set up for (already applied to the
    /// broker and devices; kept for `validate` and `bench`).
    public var profile: BrokerProfile?
    /// Status format, firmware timing and shadow (`status_format:`, `firmware:`, `shadow:`).
    public var behaviour = BehaviourSpec()
    /// `scenario:` (or `run --scenario FILE`); nil: none.
    public var scenario: ScenarioSpec?
    /// The `id:` patterns of `templates:`, as written.
    public var templatePatterns: [String] = []

    public init(
        directory: String, broker: BrokerSpec, seed: UInt64 = 1, connectRate: Double = 50,
        outboxLimit: Int = 1000, outbox: OutboxSpec? = nil, devices: [DeviceSpec], profile: BrokerProfile? = nil
    ) {
        self.profile = profile
        self.directory = directory
        self.broker = broker
        self.seed = seed
        self.connectRate = connectRate
        self.outbox = outbox ?? OutboxSpec(maxMessages: outboxLimit)
        self.devices = devices
    }
}
