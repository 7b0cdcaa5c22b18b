import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// Extreme and non-finite values, as a user could type them in YAML (plain scalars).
let extremeYAMLValues = [
    "nan", ".nan", ".NaN", "inf", ".inf", "-.inf", "+.inf", "-0", "0", "-0.0", "1e308", "-1e308", "1e-308",
    "4.9e-324", "1.8e308", "99999999999999999999999", "-99999999999999999999999", "9223372036854775807",
    "-9223372036854775808", "1e-300", "1e300", "0.5", "1", "5", "-1", "60", "65535", "1e15", "-1e15",
]

/// Extreme and non-finite values as typed on a command line.
let extremeFlagValues = [
    "nan", "-nan", "inf", "-inf", "infinity", "-0", "0", "1e308", "-1e308", "1e-308", "4.9e-324", "1e400",
    "99999999999999999999999", "9223372036854775807", "-9223372036854775808", "0.5", "1", "5", "60", "-1",
]

/// One numeric setting of the fleet files: where it is written, its range, and (for settings
/// that do not depend on others) where the loaded value ends up.
struct NumericSetting: CustomStringConvertible, Sendable {
    /// `fleet.yaml` or `dev/device.yaml`.
    var file: String
    /// Dotted field as issues name it.
    var field: String
    var range: SettingRange
    /// The file's text with `value` in place.
    var yaml: @Sendable (String) -> String
    /// The loaded value, for settings checked on their own (nil: related to other settings, such
    /// as a sensor's min and max; only "error or load" is asserted).
    var loaded: (@Sendable (FleetSpec) -> Double?)?

    var description: String { "\(file) \(field)" }
}

private let sensorsBlock = "sensors:\n  - {name: level, type: constant, value: 1}\n"

private func fleetSetting(_ field: String, _ range: SettingRange, _ yaml: @escaping @Sendable (String) -> String,
                          _ loaded: (@Sendable (FleetSpec) -> Double?)? = nil) -> NumericSetting {
    NumericSetting(file: "fleet.yaml", field: field, range: range, yaml: yaml, loaded: loaded)
}

private func deviceSetting(_ field: String, _ range: SettingRange, _ yaml: @escaping @Sendable (String) -> String,
                           _ loaded: (@Sendable (FleetSpec) -> Double?)? = nil) -> NumericSetting {
    NumericSetting(file: "dev/device.yaml", field: field, range: range, yaml: yaml, loaded: loaded)
}

/// A sensor parameter: `type` with `others` and `key: value`.
private func sensorSetting(_ type: String, _ key: String, _ range: SettingRange, others: String) -> NumericSetting {
    deviceSetting("sensors[0].\(key)", range) { value in
        "sensors:\n  - {name: s, type: \(type)\(others.isEmpty ? "" : ", " + others), \(key): \(value)}\n"
    }
}

/// A setting of a fault of a constant sensor: `others` and `key: value`.
private func faultSetting(_ key: String, _ range: SettingRange, others: String) -> NumericSetting {
    deviceSetting("sensors[0].faults[0].\(key)", range) { value in
        "sensors:\n  - {name: s, type: constant, value: 1, faults: [{\(others), \(key): \(value)}]}\n"
    }
}

/// Every numeric setting of fleet.yaml (broker, outbox, defaults, templates) and device.yaml
/// (the device and every sensor type's parameters).
let numericSettings: [NumericSetting] = [
    fleetSetting("connect_rate", .connectRate, { "connect_rate: \($0)\n" }, { $0.connectRate }),
    fleetSetting("outbox_limit", .outboxMessages, { "outbox_limit: \($0)\n" }, { Double($0.outbox.maxMessages) }),
    fleetSetting("outbox.max_messages", .outboxMessages, { "outbox:\n  max_messages: \($0)\n" }, { Double($0.outbox.maxMessages) }),
    fleetSetting("outbox.max_bytes", .outboxBytes, { "outbox:\n  max_bytes: \($0)\n" }, { Double($0.outbox.maxBytes) }),
    fleetSetting("outbox.ttl", .ttl, { "outbox:\n  ttl: \($0)\n" }, { $0.outbox.ttl }),
    fleetSetting("outbox.ack_timeout", .ackTimeout, { "outbox:\n  ack_timeout: \($0)\n" }, { $0.outbox.ackTimeout }),
    fleetSetting("outbox.backlog_rate", .messageRate, { "outbox:\n  backlog_rate: \($0)\n" }, { $0.outbox.backlogRate }),
    fleetSetting("broker.port", .port, { "broker:\n  port: \($0)\n" }, { Double($0.broker.port) }),
    fleetSetting("broker.keepalive", .keepAlive, { "broker:\n  keepalive: \($0)\n" }, { Double($0.broker.keepAlive) }),
    fleetSetting("defaults.interval", .interval, { "defaults:\n  interval: \($0)\n" }, { $0.devices.first?.interval }),
    fleetSetting("defaults.qos", .qos, { "defaults:\n  qos: \($0)\n" }, { $0.devices.first.map { Double($0.qos) } }),
    fleetSetting("templates[0].count", .devices,
                 { "templates:\n  - {id: \"t-{0000000}\", count: \($0)}\n" }, nil),
    fleetSetting("templates[0].start", .templateStart,
                 { "templates:\n  - {id: \"t-{0}\", count: 1, start: \($0), sensors: [{name: a, type: constant, value: 1}]}\n" },
                 { spec in spec.devices.first { $0.id.hasPrefix("t-") }.flatMap { Double($0.id.dropFirst(2)) } }),
    fleetSetting("templates[0].interval", .interval,
                 { "templates:\n  - {id: \"t-{0}\", count: 1, interval: \($0), sensors: [{name: a, type: constant, value: 1}]}\n" },
                 { spec in spec.devices.first { $0.id.hasPrefix("t-") }?.interval }),
    fleetSetting("templates[0].qos", .qos,
                 { "templates:\n  - {id: \"t-{0}\", count: 1, qos: \($0), sensors: [{name: a, type: constant, value: 1}]}\n" },
                 { spec in spec.devices.first { $0.id.hasPrefix("t-") }.map { Double($0.qos) } }),
    deviceSetting("interval", .interval, { "interval: \($0)\n" + sensorsBlock }, { $0.devices.first { $0.id == "dev" }?.interval }),
    deviceSetting("qos", .qos, { "qos: \($0)\n" + sensorsBlock }, { $0.devices.first { $0.id == "dev" }.map { Double($0.qos) } }),
    deviceSetting("sensors[0].precision", .precision,
                  { "sensors:\n  - {name: s, type: constant, value: 1, precision: \($0)}\n" },
                  { $0.devices.first?.sensors.first?.precision.map(Double.init) }),
    sensorSetting("constant", "value", .reading, others: ""),
    sensorSetting("uniform", "min", .reading, others: "max: 1e15"),
    sensorSetting("uniform", "max", .reading, others: "min: -1e15"),
    sensorSetting("gaussian", "mean", .reading, others: "stddev: 1"),
    sensorSetting("gaussian", "stddev", .spread, others: "mean: 0"),
    sensorSetting("gaussian", "min", .reading, others: "mean: 0, stddev: 1"),
    sensorSetting("gaussian", "max", .reading, others: "mean: 0, stddev: 1"),
    sensorSetting("random_walk", "start", .reading, others: "step: 1, min: -1e15, max: 1e15"),
    sensorSetting("random_walk", "step", .walkStep, others: "start: 0, min: -1, max: 1"),
    sensorSetting("random_walk", "min", .reading, others: "start: 1e15, step: 1, max: 1e15"),
    sensorSetting("random_walk", "max", .reading, others: "start: -1e15, step: 1, min: -1e15"),
    sensorSetting("sine", "period", .period, others: "amplitude: 1"),
    sensorSetting("sine", "amplitude", .reading, others: "period: 60"),
    sensorSetting("sine", "offset", .reading, others: "period: 60, amplitude: 1"),
    sensorSetting("sine", "noise", .spread, others: "period: 60, amplitude: 1"),
    sensorSetting("counter", "start", .reading, others: ""),
    sensorSetting("counter", "step", .reading, others: ""),
    sensorSetting("file", "scale", .scale, others: "path: /nonexistent"),
    sensorSetting("file", "min", .reading, others: "path: /nonexistent"),
    sensorSetting("file", "max", .reading, others: "path: /nonexistent"),
    sensorSetting("command", "timeout", .commandTimeout, others: "run: echo 1"),
    sensorSetting("command", "scale", .scale, others: "run: echo 1"),
    sensorSetting("thermal_zone", "min", .reading, others: "zone: cpu-thermal"),
    sensorSetting("loadavg", "minutes", SettingRange(1, 15, wholeNumber: true, example: "1"), others: ""),
    sensorSetting("cpufreq", "cpu", .cpu, others: ""),
    sensorSetting("route", "speed", .routeSpeed, others: "points: [[52.5, 13.4], [52.6, 13.5]]"),
    sensorSetting("thermal", "setpoint", .reading, others: ""),
    sensorSetting("thermal", "ambient", .reading, others: "setpoint: 21"),
    sensorSetting("thermal", "hysteresis", .spread, others: "setpoint: 21"),
    sensorSetting("thermal", "tau", .timeConstant, others: "setpoint: 21"),
    sensorSetting("thermal", "heater_power", .spread, others: "setpoint: 21"),
    sensorSetting("thermal", "start", .reading, others: "setpoint: 21"),
    sensorSetting("thermal", "noise", .spread, others: "setpoint: 21"),
    sensorSetting("diurnal", "mean", .reading, others: "amplitude: 1"),
    sensorSetting("diurnal", "amplitude", .reading, others: "mean: 1"),
    sensorSetting("diurnal", "peak_hour", .hourOfDay, others: "mean: 1, amplitude: 1"),
    sensorSetting("diurnal", "noise", .spread, others: "mean: 1, amplitude: 1"),
    sensorSetting("replay", "speed", .replaySpeed, others: "file: /nonexistent.csv"),
    faultSetting("probability", .probability, others: "type: stuck, duration: 1"),
    faultSetting("duration", .faultDuration, others: "type: stuck, probability: 0.1"),
    faultSetting("readings", .faultReadings, others: "type: stuck, probability: 0.1"),
    faultSetting("from", .faultStart, others: "type: stuck, for: 1"),
    faultSetting("for", .faultDuration, others: "type: stuck, from: 1"),
    faultSetting("rate", .reading, others: "type: drift, from: 1, for: 1"),
    faultSetting("amount", .reading, others: "type: offset, from: 1, for: 1"),
    faultSetting("factor", .scale, others: "type: spike, from: 1"),
    faultSetting("sigma", .spread, others: "type: noise, from: 1, for: 1"),
    faultSetting("value", .reading, others: "type: out_of_range, from: 1, for: 1"),
]

/// What YAML makes of a plain scalar, the way the loader reads numbers (nil: not a number).
private func yamlNumber(_ text: String) -> Double? {
    switch text.lowercased() {
    case ".nan": return .nan
    case ".inf", "+.inf": return .infinity
    case "-.inf": return -.infinity
    default: return Double(text)
    }
}

@Suite("Numbers: every setting has a finite range, checked where it enters")
struct NumberRangeTests {
    @Test("every numeric setting of fleet.yaml and device.yaml, fed extreme and non-finite values: a clear error or an in-range value")
    func fleetFilesFuzz() throws {
        for setting in numericSettings {
            for value in extremeYAMLValues {
                try withTempFleet { fleet in
                    let fleetYAML = setting.file == "fleet.yaml" ? setting.yaml(value) : ""
                    try fleet.write("fleet.yaml", "broker:\n  host: localhost\n" + (fleetYAML.hasPrefix("broker:\n") ? String(fleetYAML.dropFirst("broker:\n".count)) : fleetYAML))
                    try fleet.write("dev/device.yaml", setting.file == "fleet.yaml" ? TempFleet.deviceYAML() : setting.yaml(value))
                    let file = fleet.path(setting.file)
                    let number = yamlNumber(value)
                    // A whole-number setting takes whole-number notation only (not 5.0 or 1e3).
                    let notation = !setting.range.wholeNumber || Int(value) != nil
                    let inRange = notation && (number.map(setting.range.contains) ?? false)
                    let result = Result { () throws(FleetValidationError) in try FleetLoader.loadWithoutCredentials(directory: fleet.root) }
                    switch result {
                    case .success(let spec):
                        #expect(inRange, "\(setting) = \(value) was accepted, outside \(setting.range)")
                        if let loaded = setting.loaded, let number {
                            let got = try #require(loaded(spec), "\(setting) = \(value): no value loaded")
                            #expect(got == number && setting.range.contains(got), "\(setting) = \(value): loaded \(got)")
                            #expect(got.sign == .plus || got != 0, "\(setting) = \(value): -0 must read as 0")
                        }
                    case .failure(let error):
                        let mine = error.issues.filter { $0.file == file && $0.field == setting.field }
                        if !inRange {
                            let issue = try #require(mine.first, "\(setting) = \(value): no issue for the field; got \(error.issues)")
                            #expect(issue.line != nil, "\(issue)")
                            #expect(issue.problem.contains("expected"), "\(issue)")
                            #expect(!issue.fix.isEmpty, "\(issue)")
                            if number != nil, !setting.field.hasSuffix("minutes") {
                                // Numbers name the range they missed.
                                #expect(issue.problem.contains(SettingRange.format(setting.range.upper)), "\(issue)")
                            }
                        } else if setting.loaded != nil {
                            Issue.record("\(setting) = \(value) is in range but refused: \(error.issues)")
                        }
                    }
                }
            }
        }
    }

    @Test("the issue's cases: a tiny connect_rate and a huge interval are refused with file, line, field, range and fix")
    func quotedCases() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\nconnect_rate: 1e-300\ndefaults:\n  interval: 1e300\n")
            try fleet.write("dev/device.yaml", TempFleet.deviceYAML("interval: 1e12"))
            let issues = parseIssues(fleet)
            let rate = try issue(in: issues, file: fleet.path("fleet.yaml"), field: "connect_rate")
            #expect(rate.line == 3)
            #expect(rate.description.contains("expected a number of attempts per second from 0.01 to 1000000, got 1e-300"), "\(rate)")
            let interval = try issue(in: issues, file: fleet.path("fleet.yaml"), field: "defaults.interval")
            #expect(interval.description.contains("from 0.001 to 86400 (1 day), got 1e300"), "\(interval)")
            let device = try issue(in: issues, file: fleet.path("dev/device.yaml"), field: "interval")
            #expect(device.line == 1)
        }
    }

    @Test("every command's numeric options, fed extreme values in-process: an error naming the option and its range, or the value")
    func optionTablesFuzz() throws {
        for table in OptionRanges.all {
            for (flag, range) in table.options {
                for text in extremeFlagValues {
                    // As swift-argument-parser reads a Double option.
                    guard let value = Double(text) else { continue }
                    do {
                        let checked = try table.check(flag, value)
                        #expect(range.contains(value), "\(table.command) \(flag) \(text) was accepted")
                        #expect(checked == value)
                        #expect(checked != 0 || checked?.sign == .plus, "-0 must come back as 0")
                    } catch {
                        #expect(!range.contains(value), "\(table.command) \(flag) \(text) refused: \(error)")
                        #expect(error.setting == flag)
                        #expect(error.description.contains(flag) && error.description.contains("expected"), "\(error)")
                        #expect(error.description.contains("fix: give \(flag) \(range.wholeNumber ? "a whole" : "a finite") number from"), "\(error)")
                    }
                }
            }
        }
        // Text options (bench --rate) take `max` or a number in range.
        #expect(throws: Never.self) { try OptionRanges.bench.check("--rate", text: "max", allowed: ["max"]) }
        for bad in ["nan", "inf", "-1", "0", "fast", String(repeating: "9", count: 400)] {
            #expect(throws: SettingError.self) { try OptionRanges.bench.check("--rate", text: bad, allowed: ["max"]) }
        }
    }

    @Test("$WATCHDOG_USEC: whole microseconds from systemd; nan, inf, negative, huge or fractional values are ignored, never scheduled")
    func watchdogEnvironment() {
        for bad in ["nan", "inf", "-inf", "-5", "0", "1e30", "99999999999999999999999", "1.5", "999", "86400000001", ""] {
            #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": bad]).watchdogInterval == nil, "\(bad)")
        }
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "400000"]).watchdogInterval == 0.2)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "86400000000"]).watchdogInterval == 43_200)
    }

    @Test("the ranges are finite, ordered, and say what they are")
    func rangesAreSane() {
        for table in OptionRanges.all {
            for (_, range) in table.options {
                #expect(range.lower.isFinite && range.upper.isFinite && range.lower <= range.upper)
                #expect(!range.contains(.nan) && !range.contains(.infinity) && !range.contains(-.infinity))
                #expect(range.expected.contains("from"))
            }
        }
        #expect(SettingRange.interval.expected == "a number of seconds from 0.001 to 86400 (1 day)")
        #expect(SettingRange.connectRate.problem(with: .nan) == "expected a number of attempts per second from 0.01 to 1000000, got nan (not a number)")
    }
}
