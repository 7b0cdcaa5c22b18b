#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `payload:` of device.yaml, `defaults:` or a template: the format of the telemetry.
///
///     payload: influx                      # json (the default), influx or template
///     payload:
///       format: template
///       template: '{"t":{{temperature}},"n":{{seq}},"at":"{{ts_iso}}"}'   # or template_file: payload.tmpl
///     payload:
///       format: influx
///       measurement: climate
///       tags: { site: north, unit: "{id}" }
///
/// A device's `payload:` replaces the defaults' as a whole. The placeholders of a template are
/// checked against each device's sensors (``payload(sensors:id:log:)``).
struct PayloadFields {
    var format: PayloadFormat
    /// Where the template was written, for issues about its placeholders.
    var templateFile: String?
    var templateLine: Int?
    /// `payload.template` written inline (the YAML line is that of the key).
    var templateInline = false
    /// `payload: sparkplug_b`: the device is a Sparkplug B edge node (Sparkplug/ writes its
    /// payloads; `format` stays json for everything else that asks).
    var isSparkplug = false

    /// Every name `payload:` accepts: the formats of ``PayloadFormat`` and Sparkplug B.
    static let formatNames = PayloadFormat.names + [SparkplugFields.sparkplugFormat]

    static let keys = ["format", "template", "template_file", "measurement", "tags"]

    /// nil when there is no `payload:` (or it is invalid: then an issue is logged).
    /// - Parameter resolve: a path written in this mapping → (absolute, as the user sees it).
    static func read(_ map: MappingReader, resolve: (String) -> (absolute: String, display: String)) -> PayloadFields? {
        guard let entry = map.entry("payload"), !entry.value.isNull else { return nil }
        let names = formatNames.joined(separator: ", ")
        let formatFix = "set \(map.field("payload")) to one of \(names) (see Devices/README.md, “Payload formats”)"
        if case .scalar = entry.value {
            guard let name = map.string("payload", expected: "one of \(names)", fix: formatFix) else { return nil }
            switch name {
            case "json": return PayloadFields(format: .json)
            case "influx": return PayloadFields(format: .influx(InfluxLine()))
            case SparkplugFields.sparkplugFormat: return PayloadFields(format: .json, isSparkplug: true)
            case "template":
                map.problem("payload", "`payload: template` needs the template itself",
                            fix: "write \(map.field("payload")): with `format: template` and `template: '…'` (or `template_file:`) indented under it")
                return nil
            default:
                unknownFormat(name, map, key: "payload", fix: formatFix)
                return nil
            }
        }
        guard let section = map.mapping("payload", fix: formatFix) else { return nil }
        section.rejectUnknownKeys(allowed: keys)
        let sectionFix = "set \(section.field("format")) to one of \(names)"
        guard let name = section.string("format", expected: "one of \(names)", fix: sectionFix, required: true) else { return nil }
        switch name {
        case "json":
            rejectOthers(section, allowed: ["format"], format: name)
            return PayloadFields(format: .json)
        case "influx":
            rejectOthers(section, allowed: ["format", "measurement", "tags"], format: name)
            return readInflux(section).map { PayloadFields(format: .influx($0)) }
        case "template":
            rejectOthers(section, allowed: ["format", "template", "template_file"], format: name)
            return readTemplate(section, resolve: resolve)
        case SparkplugFields.sparkplugFormat:
            rejectOthers(section, allowed: ["format"], format: name)
            return PayloadFields(format: .json, isSparkplug: true)
        default:
            unknownFormat(name, section, key: "format", fix: sectionFix)
            return nil
        }
    }

    private static func unknownFormat(_ name: String, _ map: MappingReader, key: String, fix: String) {
        var problem = "unknown payload format \"\(SettingText.clipped(name))\"; expected one of \(formatNames.joined(separator: ", "))"
        if let guess = Suggestion.closest(to: name, in: formatNames) {
            problem += "; did you mean `\(guess)`?"
        }
        map.problem(key, problem, fix: fix)
    }

    private static func rejectOthers(_ section: MappingReader, allowed: [String], format: String) {
        for entry in section.entries where keys.contains(entry.key) && !allowed.contains(entry.key) {
            section.problem(entry.key, "`\(entry.key)` does not apply to the \(format) format",
                            fix: "remove \(section.field(entry.key)), or set \(section.field("format")) to the format it belongs to")
        }
    }

    private static func readInflux(_ section: MappingReader) -> InfluxLine? {
        var line = InfluxLine()
        var ok = true
        let measurementFix = "set \(section.field("measurement")) to a name such as telemetry (no line breaks, not starting with `_`)"
        if let measurement = section.string("measurement", expected: "a measurement name such as telemetry", fix: measurementFix) {
            if let problem = InfluxLine.problem(with: measurement, what: "measurement") {
                section.problem("measurement", problem, fix: measurementFix)
                ok = false
            } else {
                line.measurement = measurement
            }
        }
        let tagsFix = "write one `key: value` per tag indented under \(section.field("tags")):, e.g. `site: north` ({id} is the device id)"
        if let tags = section.mapping("tags", fix: tagsFix) {
            for entry in tags.entries {
                guard let value = tags.string(entry.key, expected: "a text (quote numbers)", fix: tagsFix) else { ok = false; continue }
                if entry.key == "device" {
                    tags.problem(entry.key, "the tag `device` is always the device id", fix: "rename the tag, or remove it")
                    ok = false
                } else if let problem = InfluxLine.problem(with: entry.key, what: "tag key") ?? InfluxLine.problem(with: value, what: "tag value") {
                    tags.problem(entry.key, problem, fix: tagsFix)
                    ok = false
                } else {
                    line.tags.append(.init(key: entry.key, value: value))
                }
            }
        }
        return ok ? line : nil
    }

    private static func readTemplate(_ section: MappingReader, resolve: (String) -> (absolute: String, display: String)) -> PayloadFields? {
        let fix = "set \(section.field("template")) to the payload text with placeholders such as {{seq}}, "
            + "or \(section.field("template_file")) to a file holding it"
        let inline = section.string("template", expected: "the payload text", fix: fix)
        let path = section.string("template_file", expected: "the path of a file holding the payload text", fix: fix)
        if inline != nil && path != nil {
            section.problem("template_file", "both `template` and `template_file` are set", fix: "keep one of them")
            return nil
        }
        let text: String
        var fields = PayloadFields(format: .json)
        if let inline {
            text = inline
            fields.templateFile = section.file
            fields.templateLine = section.line(of: "template")
            fields.templateInline = true
        } else if let path {
            let resolved = resolve(path)
            guard !path.isEmpty, let data = FileManager.default.contents(atPath: resolved.absolute) else {
                let reason = path.isEmpty ? "the path is empty"
                    : FileManager.default.fileExists(atPath: resolved.absolute) ? "it cannot be read" : "it does not exist"
                section.problem("template_file", "cannot read the template file \(resolved.display): \(reason)",
                                fix: "set \(section.field("template_file")) to a readable file, relative to the folder of \(section.file)")
                return nil
            }
            text = String(decoding: data, as: UTF8.self)
            fields.templateFile = resolved.display
        } else {
            section.missing("template", expected: "the payload text", fix: fix)
            return nil
        }
        if text.isEmpty {
            fields.problem(section.log, field: section.field("template"), line: 1, "the template is empty", fix: fix)
            return nil
        }
        do {
            fields.format = .template(try PayloadTemplate(parsing: text))
        } catch {
            fields.problem(section.log, field: section.field("template"), line: error.line, error.message,
                           fix: "write each placeholder as {{name}} with a name from \(PayloadTemplate.builtInNames.joined(separator: ", ")) or a sensor name")
            return nil
        }
        return fields
    }

    /// An issue at `line` of the template: in the template file, or at the YAML line of
    /// `template:` (naming the template's own line when it has several).
    private func problem(_ log: IssueLog, field: String, line: Int, _ problem: String, fix: String) {
        guard let file = templateFile else { return }
        if templateInline {
            log.error(file, line: templateLine, field: field, line > 1 ? "\(problem) (line \(line) of the template)" : problem, fix: fix)
        } else {
            log.error(file, line: line, field: nil, problem, fix: fix)
        }
    }

    /// The device's format; a template's placeholders are checked against its `sensors`
    /// (an unknown one is an error naming where the template was written and the known names).
    func payload(sensors: [String], id: String, field: String, log: IssueLog) -> PayloadFormat {
        guard case .template(let template) = format else { return format }
        let unknown = template.unknownPlaceholders(sensors: sensors)
        for (name, line) in unknown {
            let known = (PayloadTemplate.builtInNames + sensors).map { "{{\($0)}}" }.joined(separator: ", ")
            let text = "unknown placeholder {{\(name)}} in the payload template of device \(id); known: \(known)"
            let fix = Suggestion.closest(to: name, in: PayloadTemplate.builtInNames + sensors).map { "did you mean {{\($0)}}? " } ?? ""
            let before = log.errors.count
            problem(log, field: field, line: line, text, fix: fix + "use one of the known placeholders, or add a sensor named \(name)")
            // One issue per template line and name when many devices share a template.
            if log.errors.count > before, let added = log.errors.last,
               log.errors.dropLast().contains(where: { $0.file == added.file && $0.line == added.line && $0.problem.hasPrefix("unknown placeholder {{\(name)}}") }) {
                log.errors.removeLast()
            }
        }
        if unknown.isEmpty, let reason = template.verificationProblem, let file = templateFile,
           !log.warnings.contains(where: { $0.file == file && $0.problem.hasPrefix("bench cannot verify") }) {
            log.warning(file, line: templateInline ? templateLine : nil, field: templateInline ? field : nil,
                        "bench cannot verify this payload template: \(reason)",
                        fix: "fine for `run`; for `bench`, add what is missing")
        }
        return unknown.isEmpty ? format : .json
    }
}
