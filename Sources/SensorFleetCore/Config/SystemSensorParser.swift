
/// Reads the parameters of a real sensor (`thermal_zone`, `hwmon`, … `command`) in device.yaml.
/// Every real sensor also takes optional `min` and `max`: a reading outside them is skipped
/// and counted.
enum SystemSensorParser {
    static let types = ["thermal_zone", "hwmon", "iio", "w1_ds18b20", "loadavg", "meminfo", "cpufreq",
                        "rpi_undervoltage", "file", "command"]
    static let parameters: [String: [String]] = [
        "thermal_zone": ["zone", "min", "max"],
        "hwmon": ["chip", "channel", "min", "max"],
        "iio": ["device", "channel", "min", "max"],
        "w1_ds18b20": ["id", "min", "max"],
        "loadavg": ["minutes", "min", "max"],
        "meminfo": ["field", "min", "max"],
        "cpufreq": ["cpu", "min", "max"],
        "rpi_undervoltage": [],
        "file": ["path", "scale", "min", "max"],
        "command": ["run", "json_field", "timeout", "scale", "min", "max"],
    ]

    static func kind(_ type: String, _ map: MappingReader, resolvePath: (String) -> String) -> SensorKind? {
        func text(_ key: String, _ expected: String, example: String, required: Bool = true) -> String? {
            let fix = "set \(map.field(key)) to \(expected), e.g. \(example)"
            let value = map.string(key, expected: expected, fix: fix, required: required)
            if let value, value.isEmpty || value.contains("/") && key != "path" {
                map.problem(key, "expected \(expected), got \"\(SettingText.clipped(value))\"", fix: fix)
                return nil
            }
            return value
        }
        let minimum = map.number("min", in: .reading, fix: "set \(map.field("min")) to the lowest plausible reading, or remove it")
        let maximum = map.number("max", in: .reading, fix: "set \(map.field("max")) to the highest plausible reading, or remove it")
        if let minimum, let maximum, minimum >= maximum {
            map.problem("min", "min (\(SensorParser.format(minimum))) must be less than max (\(SensorParser.format(maximum)))",
                        fix: "make \(map.field("min")) smaller than \(map.field("max"))")
            return nil
        }
        if map.has("min") && minimum == nil || map.has("max") && maximum == nil { return nil }
        func done(_ source: SystemSource?) -> SensorKind? {
            source.map { .system($0, min: minimum, max: maximum) }
        }

        switch type {
        case "thermal_zone":
            return done(text("zone", "the zone's type as in /sys/class/thermal/thermal_zone*/type", example: "cpu-thermal")
                .map { .thermalZone(type: $0) })
        case "hwmon":
            let chip = text("chip", "the chip's name as in /sys/class/hwmon/*/name", example: "cpu_thermal")
            let channel = text("channel", "a channel label (a *_label file's text) or input such as temp1", example: "temp1")
            guard let chip, let channel else { return nil }
            return done(.hwmon(chip: chip, channel: channel))
        case "iio":
            let device = text("device", "the IIO device's name as in /sys/bus/iio/devices/iio:device*/name", example: "bme280")
            let channel = text("channel", "an IIO channel such as temp, humidityrelative or pressure", example: "pressure")
            guard let device, let channel else { return nil }
            return done(.iio(device: device, channel: channel))
        case "w1_ds18b20":
            let id = text("id", "the sensor's 1-Wire id", example: "28-0316a2793bff", required: false)
            if let id, !id.hasPrefix("28-") {
                map.problem("id", "a DS18B20's 1-Wire id starts with `28-`, got \"\(SettingText.clipped(id))\"",
                            fix: "set \(map.field("id")) to a folder name from /sys/bus/w1/devices, e.g. 28-0316a2793bff, or remove it to take the first found")
                return nil
            }
            if map.has("id") && id == nil { return nil }
            return done(.w1DS18B20(id: id))
        case "loadavg":
            let fix = "set \(map.field("minutes")) to 1, 5 or 15"
            let minutes = map.integer("minutes", in: 1...15, expected: "1, 5 or 15", fix: fix)
            if let minutes, ![1, 5, 15].contains(minutes) {
                map.problem("minutes", "expected 1, 5 or 15, got \(minutes)", fix: fix)
                return nil
            }
            if map.has("minutes") && minutes == nil { return nil }
            return done(.loadavg(minutes: minutes ?? 1))
        case "meminfo":
            return done(text("field", "a field of /proc/meminfo", example: "MemAvailable").map { .meminfo(field: $0) })
        case "cpufreq":
            let cpu = map.integer("cpu", in: .cpu, fix: "set \(map.field("cpu")) to a CPU number, e.g. 0")
            if map.has("cpu") && cpu == nil { return nil }
            return done(.cpufreq(cpu: cpu ?? 0))
        case "rpi_undervoltage":
            return done(.rpiUndervoltage)
        case "file":
            let path = text("path", "the path of a file holding one number", example: "/run/sensors/level")
            let scale = map.number("scale", in: .scale, fix: "set \(map.field("scale")) to the factor applied to the number, e.g. 0.001")
            guard let path, map.has("scale") == (scale != nil) else { return nil }
            return done(.file(path: resolvePath(path), scale: scale ?? 1))
        case "command":
            let fix = "set \(map.field("run")) to a command line (run by /bin/sh -c) or a list [program, arg, …], e.g. \"vcgencmd measure_temp\""
            var arguments: [String]?
            if let entry = map.entry("run") {
                switch entry.value {
                case .scalar(let scalar) where !scalar.string.isEmpty:
                    arguments = ["/bin/sh", "-c", scalar.string]
                case .sequence(let items):
                    let strings = items.compactMap { node -> String? in
                        if case .scalar(let scalar) = node { return scalar.string }
                        return nil
                    }
                    if strings.count == items.count, !strings.isEmpty, !strings[0].isEmpty { arguments = strings }
                    else { map.invalid("run", expected: "a command line or a list of words", fix: fix) }
                default:
                    map.invalid("run", expected: "a command line or a list of words", fix: fix)
                }
            } else {
                map.missing("run", expected: "a command line or a list of words", fix: fix)
            }
            let field = text("json_field", "a dotted path to a number in the command's JSON output", example: "sensors.temp", required: false)
            let timeout = map.number("timeout", in: .commandTimeout,
                                     fix: "set \(map.field("timeout")) to how long the command may run, e.g. 2")
            let scale = map.number("scale", in: .scale, fix: "set \(map.field("scale")) to the factor applied to the number, e.g. 0.001")
            guard let arguments, map.has("json_field") == (field != nil), map.has("timeout") == (timeout != nil),
                  map.has("scale") == (scale != nil) else { return nil }
            return done(.command(arguments: arguments, jsonField: field, timeout: timeout ?? 2, scale: scale ?? 1))
        default:
            return nil
        }
    }
}
