
/// The keys of device behaviour: fleet.yaml's `status_format:`, `firmware:` and `shadow:`;
/// device.yaml's (and a template's) `firmware:`, `tags:` and `battery:`.
enum BehaviourFields {
    static let fleetKeys = ["status_format", "firmware", "shadow", "scenario"]
    static let deviceKeys = ["firmware", "tags", "battery"]
    static let firmwareKeys = ["reboot_seconds", "download_seconds", "verify_seconds", "failure_probability"]
    static let shadowKeys = ["preset"]
    static let batteryKeys = ["capacity_mah", "start_percent", "publish_mah", "connect_mah", "idle_mah_per_hour",
                              "sensor", "curve", "recharge"]
    static let rechargeKeys = ["peak_mah_per_hour", "sunrise", "sunset"]

    static let phaseSeconds = SettingRange(0, 3_600, unit: "seconds", example: "5")
    static let probability = SettingRange(0, 1, example: "0.1")
    static let capacity = SettingRange(0.001, 1e9, unit: "mAh", example: "2000")
    static let costRange = SettingRange(0, 1e6, unit: "mAh", example: "0.01")
    static let percent = SettingRange(0, 100, unit: "percent", example: "100")
    static let volts = SettingRange(0, 1000, unit: "volts", example: "3.7")
    static let hour = SettingRange(0, 24, unit: "hours", example: "6")

    static func readFleet(_ root: MappingReader, into spec: inout BehaviourSpec) {
        let formats = BehaviourSpec.StatusFormat.allCases.map(\.rawValue)
        if let format = root.string("status_format", expected: "json or plain",
                                    fix: "set status_format to json (the birth message) or plain (the words online and offline)") {
            if let parsed = BehaviourSpec.StatusFormat(rawValue: format) { spec.statusFormat = parsed } else {
                root.problem("status_format", "expected \(formats.joined(separator: " or ")), got \"\(SettingText.clipped(format))\"",
                             fix: "set status_format to json or plain")
            }
        }
        if let firmware = root.mapping("firmware", fix: "write the firmware settings indented under `firmware:`") {
            firmware.rejectUnknownKeys(allowed: firmwareKeys)
            let s = { (key: String, meaning: String) in
                firmware.number(key, in: phaseSeconds, fix: "set \(firmware.field(key)) to \(meaning), e.g. 5")
            }
            if let v = s("reboot_seconds", "the seconds a device stays offline while it reboots") { spec.firmware.rebootSeconds = v }
            if let v = s("download_seconds", "the seconds an OTA download takes") { spec.firmware.downloadSeconds = v }
            if let v = s("verify_seconds", "the seconds the image check takes") { spec.firmware.verifySeconds = v }
            if let v = firmware.number("failure_probability", in: probability,
                                       fix: "set \(firmware.field("failure_probability")) to the chance that new firmware fails (0 never, 1 always), e.g. 0.1") {
                spec.firmware.failureProbability = v
            }
        }
        if root.has("shadow") {
            let presets = ShadowSpec.Preset.allCases.map(\.rawValue)
            let fix = "write `shadow:` with `preset: generic` (devices/{id}/shadow/…) or `preset: aws` ($aws/things/{id}/shadow/…)"
            if let shadow = root.mapping("shadow", fix: fix) {
                shadow.rejectUnknownKeys(allowed: shadowKeys)
                let preset = shadow.string("preset", expected: presets.joined(separator: " or "), fix: fix) ?? "generic"
                if let parsed = ShadowSpec.Preset(rawValue: preset) { spec.shadow = ShadowSpec(preset: parsed) } else {
                    shadow.problem("preset", "expected \(presets.joined(separator: " or ")), got \"\(SettingText.clipped(preset))\"", fix: fix)
                }
            } else if root.entry("shadow")?.value.isNull == true {
                spec.shadow = ShadowSpec(preset: .generic)
            }
        }
    }

    /// `firmware:` (a version), `tags:` and `battery:` of a device or a template.
    static func readDevice(_ map: MappingReader) -> (firmware: String?, tags: [String]?, battery: BatterySpec?) {
        var firmware: String?
        if let version = map.string("firmware", expected: "a firmware version such as \"1.0.0\"",
                                    fix: "set \(map.field("firmware")) to the firmware version in quotes, e.g. \"1.0.0\"") {
            if let problem = FirmwareVersion.problem(with: version) {
                map.problem("firmware", problem, fix: "set \(map.field("firmware")) to a version such as \"1.0.0\"")
            } else {
                firmware = version
            }
        }
        var tags: [String]?
        if let entry = map.entry("tags") {
            let fix = "list the tags as [basement, floor-2]: letters, digits, `_`, `.`, `-`"
            if case .sequence(let items) = entry.value {
                var list: [String] = []
                for item in items {
                    if case .scalar(let s) = item, !item.isNull, !s.string.isEmpty,
                       s.string.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) {
                        list.append(s.string)
                    } else {
                        map.problem("tags", "expected tags made of letters, digits, `_`, `.` or `-`, got \(item.humanDescription)", fix: fix)
                    }
                }
                tags = list
            } else {
                map.invalid("tags", expected: "a list of tags", fix: fix)
            }
        }
        var battery: BatterySpec?
        if let section = map.mapping("battery", fix: "write the battery settings indented under `battery:` (at least `capacity_mah:`)") {
            battery = readBattery(section)
        }
        return (firmware, tags, battery)
    }

    private static func readBattery(_ map: MappingReader) -> BatterySpec? {
        map.rejectUnknownKeys(allowed: batteryKeys)
        let capacity = map.number("capacity_mah", in: capacity, fix: "set \(map.field("capacity_mah")) to the battery's capacity in mAh, e.g. 2000", required: true)
        var ok = true
        func cost(_ key: String, _ meaning: String) -> Double? {
            let v = map.number(key, in: costRange, fix: "set \(map.field(key)) to \(meaning) in mAh, e.g. 0.01")
            if map.has(key) && v == nil { ok = false }
            return v
        }
        let publish = cost("publish_mah", "the charge one publish costs")
        let connect = cost("connect_mah", "the charge one connection costs")
        let idle = cost("idle_mah_per_hour", "the charge drawn per hour at rest")
        let start = map.number("start_percent", in: percent, fix: "set \(map.field("start_percent")) to the charge at power-on, 0 to 100")
        if map.has("start_percent") && start == nil { ok = false }
        let sensor = map.string("sensor", expected: "a reading name such as battery_v", fix: "set \(map.field("sensor")) to the name of the voltage reading, e.g. battery_v")
        if let sensor, sensor.isEmpty || !sensor.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) {
            map.problem("sensor", "the reading name \"\(SettingText.clipped(sensor))\" may only hold letters, digits, `_`, `.` and `-`", fix: "set \(map.field("sensor")) to e.g. battery_v"); ok = false
        }
        var curve: [(percent: Double, volts: Double)]?
        if let entry = map.entry("curve") {
            let fix = "list (percent, volts) points from empty to full, e.g. [[0, 3.0], [50, 3.7], [100, 4.2]]"
            var points: [(percent: Double, volts: Double)] = []
            if case .sequence(let items) = entry.value {
                for item in items {
                    guard case .sequence(let pair) = item, pair.count == 2, let p = MappingReader.double(pair[0]), let v = MappingReader.double(pair[1]),
                          percent.contains(p), volts.contains(v)
                    else {
                        map.problem("curve", "expected a [percent 0–100, volts 0–1000] pair, got \(item.humanDescription)", fix: fix); ok = false; continue
                    }
                    points.append((p, v))
                }
                if ok, points.count < 2 || zip(points, points.dropFirst()).contains(where: { $0.percent >= $1.percent }) {
                    map.problem("curve", "expected at least two points with rising percent", fix: fix); ok = false
                }
                curve = points
            } else {
                map.invalid("curve", expected: "a list of [percent, volts] pairs", fix: fix); ok = false
            }
        }
        var recharge: BatterySpec.Recharge?
        if let section = map.mapping("recharge", fix: "write `recharge:` with `peak_mah_per_hour:`, `sunrise:` and `sunset:`") {
            section.rejectUnknownKeys(allowed: rechargeKeys)
            let peak = section.number("peak_mah_per_hour", in: costRange, fix: "set \(section.field("peak_mah_per_hour")) to the charge per hour at noon in mAh, e.g. 50", required: true)
            let rise = section.number("sunrise", in: hour, fix: "set \(section.field("sunrise")) to the hour charging starts (local time), e.g. 6")
            let set = section.number("sunset", in: hour, fix: "set \(section.field("sunset")) to the hour charging ends (local time), e.g. 18")
            if let peak {
                var r = BatterySpec.Recharge(peakMAhPerHour: peak)
                r.sunrise = rise ?? r.sunrise
                r.sunset = set ?? r.sunset
                if r.sunrise >= r.sunset {
                    section.problem("sunset", "sunset (\(r.sunset)) must come after sunrise (\(r.sunrise))", fix: "make sunset later than sunrise, e.g. 6 and 18"); ok = false
                }
                recharge = r
            } else { ok = false }
        }
        guard ok, let capacity else { return nil }
        var spec = BatterySpec(capacityMAh: capacity)
        spec.publishMAh = publish ?? spec.publishMAh
        spec.connectMAh = connect ?? spec.connectMAh
        spec.idleMAhPerHour = idle ?? spec.idleMAhPerHour
        spec.startPercent = start ?? spec.startPercent
        spec.sensor = sensor ?? spec.sensor
        spec.curve = curve ?? spec.curve
        spec.recharge = recharge
        return spec
    }
}
