import Foundation
import Yams

/// Loads a fleet folder (`fleet.yaml` plus one `<id>/device.yaml` per device) into a ``FleetSpec``
/// and checks everything a run needs, collecting every problem instead of stopping at the first.
///
/// The format is documented in `Devices/README.md`.
public enum FleetLoader {
    /// Reads `directory/fleet.yaml` and every subfolder holding a `device.yaml`, applies defaults,
    /// and checks everything, including certificates and keys.
    ///
    /// - Parameters:
    ///   - directory: The fleet folder, absolute or relative to the current directory. Issues name
    ///     files by joining this argument with the file's relative path, as the user typed it.
    ///   - now: The moment certificate validity is checked against.
    /// - Returns: The fleet, with absolute paths and devices sorted by id, and any warnings
    ///   (certificates expiring within 30 days, hostname verification turned off).
    /// - Throws: ``FleetValidationError`` with every problem found.
    ///   - credentialsOf: the devices whose certificates and keys are checked, from the count of
    ///     the fleet's devices (in id order) to their positions; nil: all. A shard checks only its
    ///     own (``Shard/positions(of:firstDevices:)``): its pod made only those with
    ///     `provision --shard`. The spec still lists every device.
    public static func load(directory: String, now: Date = Date(),
                            credentialsOf: ((Int) -> Range<Int>)? = nil) throws(FleetValidationError) -> LoadedFleet {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log)
        if var checked = parsed {
            if let credentialsOf { checked.devices = Array(checked.devices[credentialsOf(checked.devices.count)]) }
            CredentialChecker(log: log, now: now).check(checked)
        }
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return LoadedFleet(spec: parsed.spec, warnings: IssueLog.ordered(log.warnings))
    }

    /// Same YAML parsing and checks as ``load(directory:now:)``, without touching certificate or
    /// key files (for `provision`, which creates them).
    ///
    /// - Parameter directory: The fleet folder, absolute or relative to the current directory.
    /// - Throws: ``FleetValidationError`` with every problem found.
    public static func loadWithoutCredentials(directory: String) throws(FleetValidationError) -> FleetSpec {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log)
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return parsed.spec
    }

    /// For `provision`, which makes the certificates and keys: the same parsing and checks as
    /// ``loadWithoutCredentials(directory:)``, except that a missing fleet folder, a missing
    /// fleet.yaml and a fleet without devices are fine (provision creates them).
    static func parseForProvisioning(directory: String) throws(FleetValidationError) -> ParsedFleet {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log, forProvisioning: true)
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return parsed
    }

    // MARK: - Whole folder

    /// Everything read from the YAML files, with what the credential checks need to point at lines.
    struct ParsedFleet {
        var spec: FleetSpec
        var settings: FleetSettings
        var devices: [ParsedDevice]
        /// fleet.yaml's `templates:`, whose devices are also in `devices`.
        var templates: [TemplateSpec]
    }

    /// - Parameters:
    ///   - onlyDevice: read only this device folder, wherever it is, and no templates (the agent
    ///     runs exactly the device it is given).
    ///   - forProvisioning: a missing folder, a missing fleet.yaml and no devices are no problem.
    static func parse(directory: String, log: IssueLog, onlyDevice: FleetLocation? = nil,
                      forProvisioning: Bool = false) -> ParsedFleet? {
        let location = FleetLocation(argument: directory)
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: location.absolute, isDirectory: &isDirectory)
        if forProvisioning && !exists {
            let settings = FleetSettings(location: location)
            let spec = FleetSpec(directory: location.absolute, broker: settings.broker, seed: settings.seed,
                                 connectRate: settings.connectRate, outbox: settings.outbox, devices: [])
            return ParsedFleet(spec: spec, settings: settings, devices: [], templates: [])
        }
        guard exists, isDirectory.boolValue
        else {
            log.error(location.displayRoot, "the fleet folder does not exist (looked for \(location.absolute))",
                      fix: "pass the folder that holds fleet.yaml and one subfolder per device, e.g. `Devices`")
            return nil
        }

        let fleetFile = location.display("fleet.yaml")
        var settings = FleetSettings(location: location)
        var templateDevices: [ParsedDevice] = []
        var templates: [TemplateSpec] = []
        if FileManager.default.fileExists(atPath: location.absolute("fleet.yaml")) {
            if let root = YAMLFile.readMapping(path: location.absolute("fleet.yaml"), displayPath: fleetFile,
                                               log: log, whatItHolds: "`broker:`, `seed:`, `defaults:` …",
                                               allowEmpty: true) {
                settings.read(root)
                if onlyDevice == nil {
                    (templateDevices, templates) = TemplateParser(location: location, defaults: settings.defaults, log: log).parse(root)
                }
            }
        } else if !forProvisioning {
            log.error(fleetFile, "fleet.yaml is missing from the fleet folder",
                      fix: "create \(fleetFile) with at least `broker:` and its `host:` and `port:` "
                          + "(see Devices/README.md)")
        }

        let devices: [ParsedDevice]
        let folders: [String]
        if let onlyDevice {
            let parent = onlyDevice.parent
            folders = [onlyDevice.name]
            devices = DeviceParser(location: parent, folder: onlyDevice.name, defaults: settings.defaults, log: log)
                .parse().map { [$0] } ?? []
        } else {
            folders = deviceFolders(location, log: log)
            devices = folders.compactMap { folder in
                DeviceParser(location: location, folder: folder, defaults: settings.defaults, log: log).parse()
            } + templateDevices
        }
        if folders.isEmpty && templateDevices.isEmpty && !forProvisioning {
            log.error(location.displayRoot, "the fleet has no devices: no subfolder holds a device.yaml",
                      fix: "create \(location.display("<id>/device.yaml")) for each device, "
                          + "e.g. \(location.display("thermostat-001/device.yaml")) (see Devices/README.md)")
        }
        reportDuplicateIDs(devices, log: log)

        let sorted = devices.sorted { ($0.spec.id, $0.file) < ($1.spec.id, $1.file) }
        let spec = FleetSpec(
            directory: location.absolute, broker: settings.broker, seed: settings.seed,
            connectRate: settings.connectRate, outbox: settings.outbox,
            devices: sorted.map(\.spec))
        return ParsedFleet(spec: spec, settings: settings, devices: sorted, templates: templates)
    }

    /// Subfolders holding a `device.yaml`, by name; hidden entries are skipped, and so are
    /// plain files and folders without a `device.yaml`. Nothing else disappears silently: a
    /// folder that cannot be searched, a broken symbolic link, or a `device.yaml` that is not a
    /// readable file is an error naming it.
    static func deviceFolders(_ location: FleetLocation, log: IssueLog) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: location.absolute)
        } catch {
            log.error(location.displayRoot, "cannot list the fleet folder: \(error.localizedDescription)",
                      fix: "make \(location.displayRoot) readable")
            return []
        }
        return names.sorted().filter { name in
            guard !name.hasPrefix(".") else { return false }
            return EntryCheck.isDeviceFolder(location: location, name: name, log: log)
        }
    }

    /// One issue for each device whose id another device already has. A device that takes its id
    /// from its folder name is the one kept; the others are told to change their `id:`.
    static func reportDuplicateIDs(_ devices: [ParsedDevice], log: IssueLog) {
        let groups = Dictionary(grouping: devices, by: \.spec.id).filter { $0.value.count > 1 }
        for id in groups.keys.sorted() {
            guard let group = groups[id]?.sorted(by: { ($0.idLine != nil ? 1 : 0, $0.file) < ($1.idLine != nil ? 1 : 0, $1.file) }),
                  let first = group.first
            else { continue }
            let how = { (d: ParsedDevice) in d.idLine == nil ? " (from its folder name)" : "" }
            for device in group.dropFirst() {
                log.error(device.file, line: device.idLine, field: "id",
                          "device id `\(id)`\(how(device)) is also the id of \(first.file)\(how(first)); "
                              + "the broker would see two clients with one identity",
                          fix: "give every device its own id: change `id:` in \(device.file) or in \(first.file)")
            }
        }
    }
}

// MARK: - Paths

/// The fleet folder as the user named it (for messages) and as an absolute path (for the spec).
struct FleetLocation {
    let argument: String
    let absolute: String

    init(argument: String) {
        self.argument = argument
        let expanded = NSString(string: argument.isEmpty ? "." : argument).expandingTildeInPath
        let base = expanded.hasPrefix("/")
            ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
        absolute = URL(fileURLWithPath: base).standardizedFileURL.path
    }

    /// The folder as the user typed it.
    var displayRoot: String { argument.isEmpty ? "." : argument }

    /// The last component of the folder (a device folder's name).
    var name: String { (absolute as NSString).lastPathComponent }

    /// The folder that holds this one, named as the user would (`fleet` for `fleet/pi-0001`).
    var parent: FleetLocation {
        let typed = (argument as NSString).deletingLastPathComponent
        let typedName = (argument as NSString).lastPathComponent
        if !typed.isEmpty, typedName == name { return FleetLocation(argument: typed) }
        if typed.isEmpty, typedName == name { return FleetLocation(argument: ".") }
        return FleetLocation(argument: (absolute as NSString).deletingLastPathComponent)
    }

    /// `argument/components…`, as the user sees it.
    func display(_ components: String...) -> String {
        Self.join([argument] + components)
    }

    func absolute(_ components: String...) -> String {
        Self.join([absolute] + components)
    }

    /// A path written in a YAML file, relative to `folder` (inside the fleet folder) unless absolute.
    func resolve(_ value: String, in folder: String?) -> (absolute: String, display: String) {
        if value.hasPrefix("/") || value.hasPrefix("~") {
            let path = URL(fileURLWithPath: NSString(string: value).expandingTildeInPath).standardizedFileURL.path
            return (path, path)
        }
        let parts = [folder, value].compactMap { $0 }
        let absolutePath = URL(fileURLWithPath: Self.join([absolute] + parts)).standardizedFileURL.path
        return (absolutePath, Self.join([argument] + parts))
    }

    static func join(_ parts: [String]) -> String {
        var result = ""
        for part in parts where !part.isEmpty {
            if result.isEmpty || result.hasSuffix("/") {
                result += part
            } else {
                result += "/" + part
            }
        }
        return result
    }
}

// MARK: - fleet.yaml

/// Device settings from `defaults:` in fleet.yaml, applied to every device that does not set them.
struct DeviceDefaults {
    var interval: Double = 5
    var qos: Int = 1
    var topic: String = "devices/{id}/telemetry"
    var cleanSession: Bool = true
    var sessionExpiry: UInt32?
    var login = LoginFields()
    var mqtt5: TelemetryPropertiesFields?
}

/// What fleet.yaml says, with defaults for everything it leaves out.
struct FleetSettings {
    static let fleetKeys = ["broker", "seed", "connect_rate", "outbox_limit", "outbox", "defaults", "templates"]
    static let brokerKeys = ["host", "port", "ca", "protocol", "keepalive", "tls_min_version", "alpn", "bind",
                             "insecure_skip_hostname_verification", "tls", "allow_plaintext"]
    static let defaultsKeys = ["interval", "qos", "topic", "clean_session", "session_expiry", "mqtt5"] + LoginFields.keys

    let location: FleetLocation
    var broker: BrokerSpec
    var seed: UInt64 = 1
    var connectRate: Double = 50
    var outbox = OutboxSpec()
    var defaults = DeviceDefaults()
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
        if let broker = root.mapping("broker", fix: "write the broker settings indented under `broker:`") {
            readBroker(broker)
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

/// The device keys that may also be set fleet-wide under `defaults:`.
struct DeviceFields {
    var interval: Double?
    var qos: Int?
    var topic: String?
    var cleanSession: Bool?
    var sessionExpiry: UInt32?
    var login = LoginFields()
    var mqtt5: TelemetryPropertiesFields?

    /// - Parameter resolve: a path written in this mapping → (absolute, as the user sees it).
    static func read(_ map: MappingReader, resolve: (String) -> (absolute: String, display: String)) -> DeviceFields {
        var fields = DeviceFields()
        fields.login = LoginFields.read(map, resolve: resolve)
        fields.mqtt5 = TelemetryPropertiesFields.read(map)
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
