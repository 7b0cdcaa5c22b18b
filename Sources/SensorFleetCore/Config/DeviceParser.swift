
/// One device as read from its `device.yaml`, with what later checks need to point at lines.
struct ParsedDevice {
    var spec: DeviceSpec
    /// `device.yaml` as the user sees it.
    var file: String
    /// Line of `id:`; nil when the id comes from the folder name.
    var idLine: Int?
    var certDisplay: String
    var keyDisplay: String
    /// Lines of `cert:` and `key:`; nil when the defaults apply.
    var certLine: Int?
    var keyLine: Int?
    /// CN of the shared identity of a template with `shared_identity: true`; nil: CN = id.
    var sharedIdentityCN: String? = nil
    /// Made from an entry of fleet.yaml's `templates:` rather than read from a device folder.
    var isFromTemplate = false
}

/// Reads `<fleet>/<folder>/device.yaml`.
struct DeviceParser {
    static let deviceKeys = ["id", "interval", "qos", "topic", "clean_session", "session_expiry", "cert", "key", "sensors", "sysfs_root", "mqtt5", "payload"]
        + LoginFields.keys + BehaviourFields.deviceKeys + [SparkplugFields.sectionKey]

    let location: FleetLocation
    let folder: String
    let defaults: DeviceDefaults
    let log: IssueLog

    var file: String { location.display(folder, "device.yaml") }

    func parse() -> ParsedDevice? {
        guard let map = YAMLFile.readMapping(path: location.absolute(folder, "device.yaml"), displayPath: file,
                                             log: log, whatItHolds: "`sensors:`, `interval:` …")
        else { return nil }
        map.rejectUnknownKeys(allowed: Self.deviceKeys)

        var id = folder
        var idLine: Int?
        if let declared = map.string("id", expected: "a device id such as thermostat-001",
                                     fix: "set id to letters, digits, `.`, `_` or `-`, e.g. thermostat-001") {
            idLine = map.line(of: "id")
            if let problem = DeviceID.problem(with: declared) {
                map.problem("id", problem, fix: "set id to letters, digits, `.`, `_` or `-` (at most 64, starting "
                    + "with a letter or digit), e.g. thermostat-001")
            } else {
                id = declared
            }
        } else if !map.has("id"), let problem = DeviceID.problem(with: folder) {
            log.error(file, field: "id", "the device id comes from the folder name `\(SettingText.clipped(folder))`, but \(problem)",
                      fix: "rename the folder \(location.display(folder)) or set `id:` in \(file) to letters, "
                          + "digits, `.`, `_` or `-`, e.g. thermostat-001")
        }

        let fields = DeviceFields.read(map) { location.resolve($0, in: folder) }
        let login = fields.login.merged(over: defaults.login, id: id, file: file, log: log)
        let topic = (fields.topic ?? defaults.topic).replacing("{id}", with: id)

        let cert = path(map, key: "cert", defaultName: "cert.pem", what: "certificate")
        let key = path(map, key: "key", defaultName: "key.pem", what: "private key")

        let sensors = SensorListParser(file: file, log: log).read(map) { location.resolve($0, in: folder).absolute }
        var sysfsRoot = "/"
        if let root = map.string("sysfs_root", expected: "a folder path",
                                 fix: "set sysfs_root to the folder that holds sys/ and proc/ (default /), or remove it") {
            if root.isEmpty {
                map.problem("sysfs_root", "expected a folder path, got an empty text",
                            fix: "set sysfs_root to the folder that holds sys/ and proc/ (default /), or remove it")
            } else {
                sysfsRoot = location.resolve(root, in: folder).absolute
            }
        }
        var spec = DeviceSpec(
            id: id, directory: location.resolve(folder, in: nil).absolute,
            certFile: cert.absolute, keyFile: key.absolute,
            interval: fields.interval ?? defaults.interval, qos: fields.qos ?? defaults.qos, topic: topic,
            cleanSession: fields.cleanSession ?? defaults.cleanSession, sensors: sensors, sysfsRoot: sysfsRoot,
            sessionExpiry: fields.sessionExpiry ?? defaults.sessionExpiry,
            username: login.username, password: login.password)
        spec.faultLabels = defaults.faultLabels
        spec.faultLabelsTopic = defaults.faultLabelsTopic?.replacing("{id}", with: id)
        spec.telemetryProperties = TelemetryPropertiesFields.checkAlias(
            (fields.mqtt5 ?? TelemetryPropertiesFields()).merged(over: defaults.mqtt5).properties(id: id),
            qos: spec.qos, file: file, log: log)
        if let payload = fields.payload ?? defaults.payload {
            spec.payload = payload.payload(sensors: sensors.map(\.name), id: id,
                                           field: fields.payload != nil ? "payload.template" : "defaults.payload.template", log: log)
        }
        let behaviour = BehaviourFields.readDevice(map)
        spec.firmware = behaviour.firmware ?? spec.firmware
        spec.tags = behaviour.tags ?? []
        spec.battery = behaviour.battery
        if let battery = spec.battery, sensors.contains(where: { $0.name == battery.sensor }) {
            map.problem("battery", "the battery's reading `\(battery.sensor)` has the name of a sensor",
                        fix: "set battery.sensor to another name, e.g. battery_v, or rename the sensor")
        }
        if let sparkplug = fields.sparkplug.merged(over: defaults.sparkplug).settings(
            id: id, explicitQoS: fields.qos, ownTopic: fields.topic != nil, file: file, log: log) {
            spec.sparkplug = sparkplug
            spec.qos = 0
            spec.topic = sparkplug.topic(.ndata)
        }
        return ParsedDevice(spec: spec, file: file, idLine: idLine, certDisplay: cert.display,
                            keyDisplay: key.display, certLine: cert.line, keyLine: key.line)
    }

    private func path(_ map: MappingReader, key: String, defaultName: String, what: String)
        -> (absolute: String, display: String, line: Int?)
    {
        let fix = "set \(key) to the \(what) file, relative to the device folder, e.g. \(defaultName)"
        if let value = map.string(key, expected: "the path of the \(what) file", fix: fix) {
            if value.isEmpty {
                map.problem(key, "expected the path of the \(what) file, got an empty text", fix: fix)
            } else {
                let resolved = location.resolve(value, in: folder)
                return (resolved.absolute, resolved.display, map.line(of: key))
            }
        }
        let resolved = location.resolve(defaultName, in: folder)
        return (resolved.absolute, resolved.display, nil)
    }

}

/// Reads one entry of `sensors:`.
enum SensorParser {
    static let commonKeys = ["name", "type", "unit", "precision", "faults"]
    static let types = ["constant", "uniform", "gaussian", "random_walk", "sine", "counter"] + ModelSensorParser.types
        + SystemSensorParser.types
    static let parameters: [String: [String]] = [
        "constant": ["value"],
        "uniform": ["min", "max"],
        "gaussian": ["mean", "stddev", "min", "max"],
        "random_walk": ["start", "step", "min", "max"],
        "sine": ["period", "amplitude", "offset", "noise"],
        "counter": ["start", "step"],
    ].merging(SystemSensorParser.parameters) { a, _ in a }.merging(ModelSensorParser.parameters) { a, _ in a }

    static func parse(_ map: MappingReader, resolvePath: (String) -> String = { $0 }) -> SensorSpec? {
        let nameFix = "set \(map.field("name")) to a name made of letters, digits, `_`, `.` or `-`, e.g. temperature"
        var name = map.string("name", expected: "a sensor name such as temperature", fix: nameFix, required: true)
        if let given = name, given.isEmpty || given.contains(where: { !isNameCharacter($0) }) {
            map.problem("name", "the sensor name \"\(SettingText.clipped(given))\" may only hold letters, digits, `_`, `.` and `-`",
                        fix: nameFix)
            name = nil
        }

        let typeList = types.joined(separator: ", ")
        let typeFix = "set \(map.field("type")) to one of \(typeList)"
        var type = map.string("type", expected: "one of \(typeList)", fix: typeFix, required: true)
        if let given = type, parameters[given] == nil {
            var problem = "unknown sensor type \"\(SettingText.clipped(given))\"; expected one of \(typeList)"
            var fix = typeFix
            if let guess = Suggestion.closest(to: given, in: types) {
                problem += "; did you mean `\(guess)`?"
                fix = "set \(map.field("type")) to \(guess)"
            }
            map.problem("type", problem, fix: fix)
            type = nil
        }

        let unit = map.string("unit", expected: "a unit such as \"°C\"",
                              fix: "set \(map.field("unit")) to the unit in quotes, e.g. \"°C\", or remove it")
        let precision = map.integer("precision", in: .precision,
                                    fix: "set \(map.field("precision")) to the digits after the decimal point, e.g. 2")

        guard let type, let parameterKeys = parameters[type] else {
            map.rejectUnknownKeys(allowed: commonKeys + Array(Set(parameters.values.joined())).sorted())
            return nil
        }
        map.rejectUnknownKeys(allowed: commonKeys + parameterKeys) { key in
            "`\(key)` is not a parameter of a `\(type)` sensor; it takes \(parameterKeys.joined(separator: ", "))"
        }
        let parsedKind = SystemSensorParser.types.contains(type)
            ? SystemSensorParser.kind(type, map, resolvePath: resolvePath)
            : ModelSensorParser.types.contains(type)
                ? ModelSensorParser.kind(type, map, name: name, resolvePath: resolvePath) : kind(type, map)
        let faults = FaultParser.read(map)
        guard let kind = parsedKind, let name, let faults else { return nil }
        return SensorSpec(name: name, unit: unit, kind: kind, precision: precision, faults: faults)
    }

    private static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "." || c == "-")
    }

    /// The parameters of a sensor of `type`; nil (with issues logged) when any is missing or wrong.
    private static func kind(_ type: String, _ map: MappingReader) -> SensorKind? {
        func number(_ key: String, _ meaning: String, required: Bool = true, in range: SettingRange = .reading) -> Double? {
            map.number(key, in: range, fix: "set \(map.field(key)) (\(meaning)) to \(range.expected)", required: required)
        }
        /// Logs `problem` at `key` unless `holds`; returns `holds`.
        func check(_ holds: Bool, _ key: String, _ problem: String, fix: String) -> Bool {
            if !holds { map.problem(key, problem, fix: fix) }
            return holds
        }

        switch type {
        case "constant":
            guard let value = number("value", "the reading") else { return nil }
            return .constant(value: value)

        case "uniform":
            let min = number("min", "the lowest reading"), max = number("max", "the highest reading")
            guard let min, let max else { return nil }
            guard check(min < max, "min", "min (\(format(min))) must be less than max (\(format(max)))",
                        fix: "make \(map.field("min")) smaller than \(map.field("max")), e.g. swap them")
            else { return nil }
            return .uniform(min: min, max: max)

        case "gaussian":
            let mean = number("mean", "the average reading")
            let stddev = number("stddev", "the spread", in: .spread)
            let min = number("min", "the lowest reading after clamping", required: false)
            let max = number("max", "the highest reading after clamping", required: false)
            guard let mean, let stddev, map.has("min") == (min != nil), map.has("max") == (max != nil) else {
                return nil
            }
            if let min, let max {
                guard check(min < max, "min", "min (\(format(min))) must be less than max (\(format(max)))",
                            fix: "make \(map.field("min")) smaller than \(map.field("max")), or remove both")
                else { return nil }
            }
            return .gaussian(mean: mean, stddev: stddev, min: min, max: max)

        case "random_walk":
            let start = number("start", "the first reading")
            let step = number("step", "the largest move between readings", in: .walkStep)
            let min = number("min", "the lowest reading"), max = number("max", "the highest reading")
            guard let start, let step, let min, let max else { return nil }
            guard check(min < max, "min", "min (\(format(min))) must be less than max (\(format(max)))",
                        fix: "make \(map.field("min")) smaller than \(map.field("max")), e.g. swap them")
            else { return nil }
            guard check(min <= start && start <= max, "start",
                        "start (\(format(start))) must lie between min (\(format(min))) and max (\(format(max)))",
                        fix: "set \(map.field("start")) to a value from \(format(min)) to \(format(max))")
            else { return nil }
            return .randomWalk(start: start, step: step, min: min, max: max)

        case "sine":
            let period = number("period", "seconds per full wave", in: .period)
            let amplitude = number("amplitude", "the height of the wave above offset")
            let offset = number("offset", "the middle of the wave", required: false)
            let noise = number("noise", "the stddev of added noise", required: false, in: .spread)
            guard let period, let amplitude, map.has("offset") == (offset != nil), map.has("noise") == (noise != nil)
            else { return nil }
            return .sine(period: period, amplitude: amplitude, offset: offset ?? 0, noise: noise ?? 0)

        case "counter":
            let start = number("start", "the first reading", required: false)
            let step = number("step", "the change per reading", required: false)
            guard map.has("start") == (start != nil), map.has("step") == (step != nil) else { return nil }
            return .counter(start: start ?? 0, step: step ?? 1)

        default:
            return nil
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
