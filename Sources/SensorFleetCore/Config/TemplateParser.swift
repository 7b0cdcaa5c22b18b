
/// `templates:` in fleet.yaml: one entry stands for `count` devices of one kind.
///
/// ```yaml
/// templates:
///   - id: sensor-{0000}     # {0000}: the number, zero-padded to 4 digits; {0}: unpadded
///     count: 5000
///     start: 1              # first number (default 1)
///     interval: 1           # and qos, topic, clean_session, as in device.yaml
///     sensors:
///       - name: temperature
///         type: gaussian
///         mean: 21
///         stddev: 0.5
///     shared_identity: false  # true: every device uses <pattern with {…} → "shared">/cert.pem
/// ```
/// Each device's certificate and key live in `<id>/cert.pem` and `<id>/key.pem`, made by
/// `sensorfleet provision`.
struct TemplateSpec {
    var pattern: String
    var count: Int
    var start: Int
    var sharedIdentity: Bool
    /// Index in `templates:`, for messages.
    var index: Int

    /// The id of the `n`-th device (0-based).
    func id(_ n: Int) -> String { TemplateSpec.expand(pattern, number: start + n) }

    /// Folder of the shared identity, relative to the fleet folder.
    var sharedFolder: String { TemplateSpec.expandPlaceholder(pattern) { _ in "shared" } }

    static func expand(_ pattern: String, number: Int) -> String {
        expandPlaceholder(pattern) { width in
            let digits = String(number)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
    }

    /// Replaces the one `{0…0}` placeholder with `replacement(width)`.
    static func expandPlaceholder(_ pattern: String, _ replacement: (Int) -> String) -> String {
        guard let open = pattern.firstIndex(of: "{"), let close = pattern[open...].firstIndex(of: "}") else {
            return pattern
        }
        let width = pattern.distance(from: open, to: close) - 1
        return String(pattern[..<open]) + replacement(width) + String(pattern[pattern.index(after: close)...])
    }

    /// Why `pattern` is not a usable id pattern, or nil.
    static func problem(with pattern: String) -> String? {
        let opens = pattern.filter { $0 == "{" }.count, closes = pattern.filter { $0 == "}" }.count
        guard opens == 1, closes == 1, let open = pattern.firstIndex(of: "{"),
              let close = pattern[open...].firstIndex(of: "}")
        else {
            return "the id pattern \"\(SettingText.clipped(pattern))\" needs exactly one placeholder such as {0000} for the device number"
        }
        let inside = pattern[pattern.index(after: open)..<close]
        if inside.isEmpty || inside.contains(where: { $0 != "0" }) {
            return "the placeholder {\(SettingText.clipped(String(inside)))} in \"\(SettingText.clipped(pattern))\" may only hold zeros (their count is the width, e.g. {0000})"
        }
        if let problem = DeviceID.problem(with: expand(pattern, number: 1)) { return problem }
        return nil
    }
}

/// Reads `templates:` and expands it into devices.
struct TemplateParser {
    static let keys = ["id", "count", "start", "interval", "qos", "topic", "clean_session", "session_expiry", "sensors", "shared_identity", "mqtt5", "payload"] + LoginFields.keys
        + BehaviourFields.deviceKeys + [SparkplugFields.sectionKey]
    /// Devices one fleet file may describe through templates.
    static let maximumDevices = Int(SettingRange.devices.upper)

    let location: FleetLocation
    let defaults: DeviceDefaults
    let log: IssueLog

    var file: String { location.display("fleet.yaml") }

    /// The devices of every template, and the templates themselves (for `provision`); issues
    /// logged for whatever is wrong.
    func parse(_ root: MappingReader) -> (devices: [ParsedDevice], templates: [TemplateSpec]) {
        guard root.has("templates") else { return ([], []) }
        let fix = "list templates under `templates:`, each as `- id: sensor-{0000}` with `count:` and `sensors:`"
        guard let items = root.sequence("templates", expected: "a list of device templates", fix: fix) else { return ([], []) }
        var devices: [ParsedDevice] = []
        var templates: [TemplateSpec] = []
        for (index, item) in items.enumerated() {
            let path = "templates[\(index)]"
            guard case .mapping(let mapping) = item else {
                log.error(file, line: item.mark?.line, field: path,
                          "expected a template (`id:`, `count:`, `sensors:` …), got \(item.humanDescription)", fix: fix)
                continue
            }
            let map = MappingReader(mapping, path: path, file: file, log: log)
            if let (template, made) = parse(map, index: index, already: devices.count) {
                devices += made
                templates.append(template)
            }
        }
        return (devices, templates)
    }

    private func parse(_ map: MappingReader, index: Int, already: Int) -> (TemplateSpec, [ParsedDevice])? {
        map.rejectUnknownKeys(allowed: Self.keys)
        let idFix = "set \(map.field("id")) to an id pattern with the number in braces, e.g. sensor-{0000}"
        var pattern = map.string("id", expected: "an id pattern such as sensor-{0000}", fix: idFix, required: true)
        if let given = pattern, let problem = TemplateSpec.problem(with: given) {
            map.problem("id", problem, fix: idFix)
            pattern = nil
        }
        let count = map.integer("count", in: .devices,
                                fix: "set \(map.field("count")) to how many devices this template stands for, e.g. 1000",
                                required: true)
        let start = map.integer("start", in: .templateStart,
                                fix: "set \(map.field("start")) to the first device number, e.g. 1") ?? 1
        let shared = map.bool("shared_identity", fix: "set \(map.field("shared_identity")) to true or false") ?? false
        let fields = DeviceFields.read(map) { location.resolve($0, in: nil) }
        let sensors = SensorListParser(file: file, log: log).read(map) { location.resolve($0, in: nil).absolute }
        let behaviour = BehaviourFields.readDevice(map)
        guard let pattern, let count else { return nil }
        if already + count > Self.maximumDevices {
            map.problem("count", "the templates add up to more than \(Self.maximumDevices) devices",
                        fix: "lower \(map.field("count"))")
            return nil
        }
        let template = TemplateSpec(pattern: pattern, count: count, start: start, sharedIdentity: shared, index: index)
        if shared {
            map.log.warning(
                file, line: map.line(of: "shared_identity"), field: map.field("shared_identity"),
                "WARNING: all \(count) devices of this template share ONE certificate and key "
                    + "(\(location.display(template.sharedFolder))); the broker cannot tell them apart and a per-device "
                    + "ACL (`pattern write devices/%u/#`) will refuse their telemetry",
                fix: "use shared_identity only against a broker without per-device ACLs; remove it to give each device its own identity")
        }
        let lastID = template.id(count - 1)
        if let problem = DeviceID.problem(with: lastID) {
            map.problem("count", "the last device id would be `\(lastID)`: \(problem)", fix: idFix)
            return nil
        }
        let interval = fields.interval ?? defaults.interval
        let qos = fields.qos ?? defaults.qos
        let topicTemplate = fields.topic ?? defaults.topic
        let cleanSession = fields.cleanSession ?? defaults.cleanSession
        let sessionExpiry = fields.sessionExpiry ?? defaults.sessionExpiry
        let loginTemplate = fields.login.merged(over: defaults.login, id: nil, file: file, log: log)
        let mqtt5 = (fields.mqtt5 ?? TelemetryPropertiesFields()).merged(over: defaults.mqtt5)
        _ = TelemetryPropertiesFields.checkAlias(mqtt5.properties(id: ""), qos: qos, file: file, log: log)
        let payload = (fields.payload ?? defaults.payload)?.payload(
            sensors: sensors.map(\.name), id: template.id(0),
            field: fields.payload != nil ? map.field("payload.template") : "defaults.payload.template", log: log) ?? .json
        let sparkplug = fields.sparkplug.merged(over: defaults.sparkplug)
        // Checked once (with the first id); each device then gets its own edge node id.
        let sparkplugChecked = sparkplug.settings(id: template.id(0), explicitQoS: fields.qos, ownTopic: fields.topic != nil,
                                                  file: file, log: log) != nil
        let sharedFolder = template.sharedFolder
        var devices: [ParsedDevice] = []
        devices.reserveCapacity(count)
        for n in 0..<count {
            let id = template.id(n)
            let login = loginTemplate.replacingID(id)
            let folder = shared ? sharedFolder : id
            let cert = location.resolve("cert.pem", in: folder)
            let key = location.resolve("key.pem", in: folder)
            var spec = DeviceSpec(
                id: id, directory: location.resolve(id, in: nil).absolute, certFile: cert.absolute, keyFile: key.absolute,
                interval: interval, qos: qos, topic: topicTemplate.replacing("{id}", with: id),
                cleanSession: cleanSession, sensors: sensors, sessionExpiry: sessionExpiry,
                username: login.username, password: login.password)
            spec.telemetryProperties = mqtt5.properties(id: id)
            spec.faultLabels = defaults.faultLabels
            spec.payload = payload
            spec.template = pattern
            spec.firmware = behaviour.firmware ?? spec.firmware
            spec.tags = behaviour.tags ?? []
            spec.battery = behaviour.battery
            spec.faultLabelsTopic = defaults.faultLabelsTopic?.replacing("{id}", with: id)
            if qos > 0 { spec.telemetryProperties.topicAlias = false }
            if sparkplugChecked, let settings = sparkplug.settings(id: id, explicitQoS: nil, ownTopic: false, file: file, log: IssueLog()) {
                spec.sparkplug = settings
                spec.qos = 0
                spec.topic = settings.topic(.ndata)
            }
            var device = ParsedDevice(spec: spec, file: file, idLine: map.line(of: "id"), certDisplay: cert.display,
                                      keyDisplay: key.display, certLine: nil, keyLine: nil)
            device.sharedIdentityCN = shared ? sharedFolder : nil
            device.isFromTemplate = true
            devices.append(device)
        }
        return (template, devices)
    }
}

/// `sensors:` of a device or template.
struct SensorListParser {
    let file: String
    let log: IssueLog

    /// - Parameter resolvePath: turns a path in a `file` or `command` sensor into an absolute
    ///   one (relative to the device's folder).
    func read(_ map: MappingReader, resolvePath: (String) -> String = { $0 }) -> [SensorSpec] {
        let fix = "list the sensors under `sensors:`, each as `- name: …` with `type:` and its parameters "
            + "(see Devices/README.md)"
        guard let items = map.sequence("sensors", expected: "a list of sensors", fix: fix) else { return [] }
        if items.isEmpty {
            map.problem("sensors", "no sensors; expected at least one", fix: fix)
            return []
        }
        var sensors: [SensorSpec] = []
        var firstIndexByName: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = map.field("sensors") + "[\(index)]"
            guard case .mapping(let mapping) = item else {
                log.error(file, line: item.mark?.line, field: path,
                          "expected a sensor (`name:`, `type:` and its parameters), got \(item.humanDescription)",
                          fix: "write the sensor as indented `key: value` lines after `- `, e.g. `- name: temperature`")
                continue
            }
            let sensorMap = MappingReader(mapping, path: path, file: file, log: log)
            guard let sensor = SensorParser.parse(sensorMap, resolvePath: resolvePath) else { continue }
            // A route writes several readings; every key of the payload must be unique.
            if let (taken, first) = sensor.readingNames.lazy.compactMap({ n in firstIndexByName[n].map { (n, $0) } }).first {
                if sensor.readingNames == [sensor.name] {
                    sensorMap.problem("name", "the sensor name `\(taken)` is already used by sensors[\(first)]",
                                      fix: "give every sensor its own name")
                } else {
                    sensorMap.problem("readings", "the reading `\(taken)` is already given by sensors[\(first)]",
                                      fix: "rename the other sensor, or leave `\(taken)` out of this route's `readings:`")
                }
                continue
            }
            for n in Set(sensor.readingNames + [sensor.name]) { firstIndexByName[n] = index }
            sensors.append(sensor)
        }
        return sensors
    }
}
