#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The fault action: its kinds and their parameters, the same as a sensor's `faults:` entries
/// (`Config/FaultParser.swift`); `Device.applyScenarioFault` starts it through `Device.startFault`.
public enum ScenarioFaultHook {
    public static let isAvailable = true
    /// Fault kinds and the numeric parameters each takes (the keys of a sensor's `faults:` entry).
    static let parameters: [String: [String]] = [
        "stuck": [], "drift": ["rate"], "offset": ["amount"], "spike": ["factor", "amount"],
        "dropout": [], "noise": ["sigma"], "out_of_range": ["value"],
    ]
}

/// Reads `scenario:` (a list of events) from fleet.yaml or from a `--scenario` file, and checks
/// that what it names (ids, templates, tags, sensors) exists in the fleet.
public enum ScenarioParser {
    static let eventKeys = ["at", "select", "ids", "template", "tag", "action", "duration", "factor", "version",
                            "offset", "sensor", "kind"] + Array(Set(ScenarioFaultHook.parameters.values.joined())).sorted()
    static let actions = ["disconnect", "reboot", "fault", "rate", "ota", "rotate_certificate", "clock_skew"]
    /// An event's `at`, and any duration in it: 0 to 366 days.
    static let atRange = SettingRange(0, 31_622_400, unit: "seconds", example: "60")
    static let durationRange = SettingRange(0.001, 31_622_400, unit: "seconds", example: "30")
    static let factorRange = SettingRange(0.001, 1000, example: "2")
    static let skewRange = SettingRange(-31_622_400, 31_622_400, unit: "seconds", example: "120")
    static let rotateFix = "rotate_certificate re-reads each device's cert.pem and key.pem (renew them first, e.g. with `sensorfleet provision --force`)"

    /// The events of `scenario:` in `root`; nil when the key is absent.
    static func read(_ root: MappingReader) -> [ScenarioEvent]? {
        guard root.has("scenario") else { return nil }
        let fix = "list the events under `scenario:`, each as `- at: 60` with `action:` and a selection (see Devices/README.md)"
        guard let items = root.sequence("scenario", expected: "a list of events", fix: fix) else { return [] }
        var events: [ScenarioEvent] = []
        for (index, item) in items.enumerated() {
            let path = root.field("scenario") + "[\(index)]"
            guard case .mapping(let mapping) = item else {
                root.log.error(root.file, line: item.mark?.line, field: path,
                               "expected an event (`at:`, `action:` …), got \(item.humanDescription)",
                               fix: "write the event as indented `key: value` lines after `- `, e.g. `- at: 60`")
                continue
            }
            if let event = event(MappingReader(mapping, path: path, file: root.file, log: root.log), index: index) {
                events.append(event)
            }
        }
        return events
    }

    private static func event(_ map: MappingReader, index: Int) -> ScenarioEvent? {
        map.rejectUnknownKeys(allowed: eventKeys)
        let at = map.number("at", in: atRange, fix: "set \(map.field("at")) to the seconds after the start, e.g. 60", required: true)
        let selection = self.selection(map)
        let actionFix = "set \(map.field("action")) to one of \(actions.joined(separator: ", "))"
        var name = map.string("action", expected: "one of \(actions.joined(separator: ", "))", fix: actionFix, required: true)
        if let given = name, !actions.contains(given) {
            var problem = "unknown action \"\(SettingText.clipped(given))\"; expected one of \(actions.joined(separator: ", "))"
            var fix = actionFix
            if let guess = Suggestion.closest(to: given, in: actions) {
                problem += "; did you mean `\(guess)`?"
                fix = "set \(map.field("action")) to \(guess)"
            }
            map.problem("action", problem, fix: fix)
            name = nil
        }
        guard let name else { return nil }
        // Keys that belong to another action are refused, so a typo'd plan is not half run.
        let used: [String]
        switch name {
        case "disconnect", "reboot": used = ["duration"]
        case "rate": used = ["factor", "duration"]
        case "ota": used = ["version"]
        case "clock_skew": used = ["offset"]
        case "fault": used = ["sensor", "kind", "duration"] + Array(Set(ScenarioFaultHook.parameters.values.joined()))
        default: used = []
        }
        for key in eventKeys where !["at", "select", "ids", "template", "tag", "action"].contains(key) && !used.contains(key) && map.has(key) {
            map.problem(key, "`\(key)` is not a setting of the `\(name)` action\(used.isEmpty ? ", which takes none" : "; it takes \(used.joined(separator: ", "))")",
                        fix: "remove `\(key)` from this event")
        }
        let duration = { (required: Bool, meaning: String) in
            map.number("duration", in: durationRange, fix: "set \(map.field("duration")) to \(meaning), e.g. 30", required: required)
        }
        let action: ScenarioAction?
        switch name {
        case "disconnect":
            action = duration(true, "the seconds the network stays away").map { .disconnect(seconds: $0) }
        case "reboot":
            let seconds = duration(false, "the seconds the device stays offline while rebooting")
            action = map.has("duration") && seconds == nil ? nil : .reboot(seconds: seconds)
        case "rate":
            let factor = map.number("factor", in: factorRange, fix: "set \(map.field("factor")) to how many times as often readings come, e.g. 2 (or 0.5 for half as often)", required: true)
            let seconds = duration(false, "the seconds before the normal rate returns")
            action = factor.flatMap { f in map.has("duration") && seconds == nil ? nil : .rate(factor: f, seconds: seconds) }
        case "ota":
            let version = map.string("version", expected: "a firmware version such as \"2.0.0\"", fix: "set \(map.field("version")) to the new firmware version in quotes, e.g. \"2.0.0\"", required: true)
            if let version, let problem = FirmwareVersion.problem(with: version) {
                map.problem("version", problem, fix: "set \(map.field("version")) to a version such as \"2.0.0\"")
                action = nil
            } else {
                action = version.map { .ota(version: $0) }
            }
        case "clock_skew":
            action = map.number("offset", in: skewRange, fix: "set \(map.field("offset")) to the seconds the device's clock is off (negative: behind), e.g. 120", required: true)
                .map { .clockSkew(seconds: $0) }
        case "rotate_certificate":
            action = .rotateCertificate
        default:  // fault
            action = fault(map)
        }
        guard let at, let selection, let action else { return nil }
        return ScenarioEvent(at: at, selection: selection, action: action, index: index, line: map.line)
    }

    private static func selection(_ map: MappingReader) -> ScenarioSelection? {
        var selection = ScenarioSelection()
        var ok = true
        let selectFix = "set \(map.field("select")) to a share such as 10%, a number of devices such as 5, or all"
        if let entry = map.entry("select") {
            if let count = MappingReader.int(entry.value) {
                if SettingRange.devices.contains(Double(count)) { selection.amount = .count(count) } else {
                    map.problem("select", "expected a number of devices from 1 to 1000000, got \(count)", fix: selectFix); ok = false
                }
            } else if case .scalar(let scalar) = entry.value {
                let text = scalar.string.trimmingSpaces()
                if text == "all" {
                    selection.amount = .all
                } else if text.hasSuffix("%"), let p = Double(text.dropLast().trimmingSpaces()), p.isFinite, p >= 0, p <= 100 {
                    selection.amount = .percent(p == 0 ? 0 : p)
                } else {
                    map.problem("select", "expected a share from 0% to 100%, a number of devices or all, got \"\(SettingText.clipped(text))\"", fix: selectFix); ok = false
                }
            } else {
                map.invalid("select", expected: "a share such as 10%, a number of devices, or all", fix: selectFix); ok = false
            }
        }
        if let entry = map.entry("ids") {
            let idsFix = "list device ids, e.g. [sensor-0001, sensor-0002]"
            var ids: [String] = []
            switch entry.value {
            case .sequence(let items):
                for item in items {
                    guard case .scalar(let scalar) = item, !item.isNull else {
                        map.invalid("ids", expected: "a list of device ids", fix: idsFix); ok = false; break
                    }
                    ids.append(scalar.string)
                }
            case .scalar(let scalar) where !entry.value.isNull: ids = [scalar.string]
            default: map.invalid("ids", expected: "a list of device ids", fix: idsFix); ok = false
            }
            if ids.isEmpty && ok { map.problem("ids", "the list of ids is empty", fix: idsFix); ok = false }
            selection.ids = ids
        }
        selection.template = map.string("template", expected: "a template's id pattern such as sensor-{0000}",
                                        fix: "set \(map.field("template")) to the `id:` of an entry of `templates:`, e.g. sensor-{0000}")
        selection.tag = map.string("tag", expected: "a tag such as basement", fix: "set \(map.field("tag")) to a tag listed in some device's `tags:`")
        return ok ? selection : nil
    }

    private static func fault(_ map: MappingReader) -> ScenarioAction? {
        let kinds = ScenarioFaultHook.parameters.keys.sorted()
        let kindFix = "set \(map.field("kind")) to one of \(kinds.joined(separator: ", "))"
        var kind = map.string("kind", expected: "one of \(kinds.joined(separator: ", "))", fix: kindFix, required: true)
        if let given = kind, ScenarioFaultHook.parameters[given] == nil {
            var problem = "unknown fault kind \"\(SettingText.clipped(given))\"; expected one of \(kinds.joined(separator: ", "))"
            if let guess = Suggestion.closest(to: given, in: kinds) { problem += "; did you mean `\(guess)`?" }
            map.problem("kind", problem, fix: kindFix)
            kind = nil
        }
        let sensor = map.string("sensor", expected: "the name of a sensor of the chosen devices", fix: "set \(map.field("sensor")) to a sensor name, e.g. temperature", required: true)
        let duration = map.number("duration", in: durationRange, fix: "set \(map.field("duration")) to the seconds the fault lasts, e.g. 60")
        guard let kind, let sensor, let allowed = ScenarioFaultHook.parameters[kind] else { return nil }
        var parameters: [String: Double] = [:]
        var ok = !(map.has("duration") && duration == nil)
        for key in Set(ScenarioFaultHook.parameters.values.joined()) where map.has(key) {
            guard allowed.contains(key) else {
                map.problem(key, "`\(key)` is not a parameter of a `\(kind)` fault\(allowed.isEmpty ? ", which takes none" : "; it takes \(allowed.joined(separator: ", "))")",
                            fix: "remove `\(key)` from this event"); ok = false; continue
            }
            if let value = map.number(key, in: .reading, fix: "set \(map.field(key)) to \(SettingRange.reading.expected)") { parameters[key] = value } else { ok = false }
        }
        if kind == "spike", parameters.isEmpty, ok {
            map.problem("kind", "a spike needs `factor` (the reading × factor) or `amount` (the reading + amount)", fix: "add `factor: 3` or `amount: 50` to this event"); ok = false
        }
        if ["drift", "offset", "noise", "out_of_range"].contains(kind), parameters.isEmpty, ok, let needed = allowed.first {
            map.missing(needed, expected: "a number", fix: "add `\(needed):` to this event"); ok = false
        }
        if !ScenarioFaultHook.isAvailable {
            map.problem("action", "the fault action is not available in this build (sensor faults are not part of it yet)",
                        fix: "remove this event, or use a build of SensorFleet with sensor faults")
            ok = false
        }
        return ok ? .fault(ScenarioFault(kind: kind, sensor: sensor, duration: duration, parameters: parameters)) : nil
    }

    /// Checks what the events name against the fleet: ids that exist, templates that exist, tags
    /// some device carries, and sensors of the chosen devices.
    static func check(_ events: [ScenarioEvent], devices: [DeviceSpec], templates: [String], file: String, log: IssueLog) {
        let known = Set(devices.map(\.id))
        let tags = Set(devices.flatMap(\.tags))
        for event in events {
            let path = "scenario[\(event.index)]"
            if let ids = event.selection.ids {
                for id in ids where !known.contains(id) {
                    var problem = "no device has the id `\(SettingText.clipped(id))`"
                    if let guess = Suggestion.closest(to: id, in: Array(known)) { problem += "; did you mean `\(guess)`?" }
                    log.error(file, line: event.line, field: "\(path).ids", problem, fix: "list only ids of devices of this fleet")
                }
            }
            if let template = event.selection.template, !templates.contains(template) {
                let known = templates.isEmpty ? "the fleet has no templates" : "the templates are \(templates.joined(separator: ", "))"
                log.error(file, line: event.line, field: "\(path).template", "no entry of `templates:` has the id pattern `\(SettingText.clipped(template))`; \(known)",
                          fix: "set template to the `id:` of an entry of `templates:` as written, e.g. sensor-{0000}")
            }
            if let tag = event.selection.tag, !tags.contains(tag) {
                log.error(file, line: event.line, field: "\(path).tag", "no device carries the tag `\(SettingText.clipped(tag))`\(tags.isEmpty ? "" : "; the tags are \(tags.sorted().joined(separator: ", "))")",
                          fix: "add `tags: [\(tag)]` to the devices meant, or use one of their tags")
            }
            if case .fault(let fault) = event.action {
                var everyMatch = event.selection
                everyMatch.amount = .all
                let chosen = everyMatch.choose(from: devices, seed: 0, event: event.index)
                let withSensor = devices.filter { chosen.contains($0.id) && $0.sensors.contains { $0.name == fault.sensor } }
                if !chosen.isEmpty && withSensor.isEmpty {
                    log.error(file, line: event.line, field: "\(path).sensor", "none of the devices chosen has a sensor named `\(SettingText.clipped(fault.sensor))`",
                              fix: "set sensor to the `name:` of a sensor of those devices")
                }
            }
        }
    }

    /// Reads a `--scenario` file (top level `scenario:`) and checks it against `fleet`.
    /// - Parameters:
    ///   - path: the file as the user gave it.
    ///   - fleet: the loaded fleet (its devices, tags and templates).
    public static func load(path: String, fleet: FleetSpec) throws(FleetValidationError) -> ScenarioSpec {
        let log = IssueLog()
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var events: [ScenarioEvent] = []
        if let root = YAMLFile.readMapping(path: absolute, displayPath: path, log: log, whatItHolds: "`scenario:` and its list of events") {
            root.rejectUnknownKeys(allowed: ["scenario"])
            if let read = read(root) {
                events = read
            } else {
                root.missing("scenario", expected: "a list of events", fix: "write the events under `scenario:` (see Devices/README.md)")
            }
            check(events, devices: fleet.devices, templates: fleet.templatePatterns, file: path, log: log)
        }
        guard log.errors.isEmpty else { throw FleetValidationError(issues: IssueLog.ordered(log.errors)) }
        return ScenarioSpec(events: events, file: path)
    }
}

/// A firmware version as devices report it.
enum FirmwareVersion {
    static func problem(with version: String) -> String? {
        if version.isEmpty { return "the version is empty" }
        if version.utf8.count > 64 { return "the version is longer than 64 characters" }
        if version.contains(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0))) }) {
            return "the version \"\(SettingText.clipped(version))\" may only hold letters, digits, `.`, `_`, `-` and `+`"
        }
        return nil
    }
}
