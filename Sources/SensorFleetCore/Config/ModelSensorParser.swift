#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The parameters of the physical models (`route`, `thermal`, `diurnal`) and of `replay`.
enum ModelSensorParser {
    static let types = ["route", "thermal", "diurnal", "replay"]
    static let parameters: [String: [String]] = [
        "route": ["file", "points", "speed", "speeds", "at_end", "readings"],
        "thermal": ["ambient", "setpoint", "hysteresis", "tau", "heater_power", "start", "noise"],
        "diurnal": ["mean", "amplitude", "peak_hour", "noise", "timezone"],
        "replay": ["file", "column", "time_column", "speed", "loop"],
    ]

    /// - Parameters:
    ///   - name: the sensor's name (a replay's default column).
    ///   - resolvePath: a path in the file → absolute (relative to the device folder, or the
    ///     fleet folder for templates).
    static func kind(_ type: String, _ map: MappingReader, name: String?, resolvePath: (String) -> String) -> SensorKind? {
        switch type {
        case "route": return route(map, resolvePath: resolvePath).map { .route($0) }
        case "thermal": return thermal(map).map { .thermal($0) }
        case "diurnal": return diurnal(map).map { .diurnal($0) }
        case "replay": return replay(map, name: name, resolvePath: resolvePath).map { .replay($0) }
        default: return nil
        }
    }

    private static func number(_ map: MappingReader, _ key: String, _ meaning: String, in range: SettingRange,
                               required: Bool = false) -> (value: Double?, ok: Bool) {
        let value = map.number(key, in: range, fix: "set \(map.field(key)) (\(meaning)) to \(range.expected)", required: required)
        return (value, value != nil || (!map.has(key) && !required))
    }

    // MARK: route

    static func route(_ map: MappingReader, resolvePath: (String) -> String) -> RouteSpec? {
        var ok = true
        var points: [GeoPoint]?
        let whereFix = "give \(map.path) `file: routes/city.geojson` (GeoJSON LineString or GPX) or `points: [[52.52, 13.40], [52.53, 13.41]]` ([latitude, longitude])"
        switch (map.has("file"), map.has("points")) {
        case (true, true):
            map.problem("points", "a route comes from `file` or from `points`, not both", fix: whereFix)
            ok = false
        case (false, false):
            map.missing("file", expected: "a route file or `points`", fix: whereFix)
            ok = false
        case (true, false):
            if let file = map.string("file", expected: "the path of a GeoJSON or GPX file", fix: whereFix) {
                points = RouteFileReader.read(path: resolvePath(file), field: map.field("file"), line: map.line(of: "file"), map: map)
            }
            if points == nil { ok = false }
        case (false, true):
            points = inlinePoints(map)
            if points == nil { ok = false }
        }
        var speeds: [Double] = []
        let speedFix = "set \(map.field("speed")) to the speed in km/h, e.g. 40, or `speeds: [30, 50]` per segment"
        if map.has("speed") && map.has("speeds") {
            map.problem("speeds", "a route takes `speed` (constant) or `speeds` (per segment), not both", fix: speedFix)
            ok = false
        } else if map.has("speeds") {
            if let items = map.sequence("speeds", expected: "a list of speeds in km/h, one per segment", fix: speedFix) {
                for (i, item) in items.enumerated() {
                    if let v = MappingReader.double(item), SettingRange.routeSpeed.contains(v) {
                        speeds.append(v)
                    } else {
                        map.log.error(map.file, line: item.mark?.line, field: map.field("speeds") + "[\(i)]",
                                      "expected \(SettingRange.routeSpeed.expected), got \(item.humanDescription)", fix: speedFix)
                        ok = false
                    }
                }
                if items.isEmpty {
                    map.problem("speeds", "no speeds; expected at least one", fix: speedFix)
                    ok = false
                }
            } else {
                ok = false
            }
        } else {
            let speed = number(map, "speed", "the speed in km/h", in: .routeSpeed, required: true)
            if let v = speed.value { speeds = [v] } else { ok = false }
        }
        var atEnd = RouteSpec.AtEnd.loop
        let endNames = RouteSpec.AtEnd.allCases.map(\.rawValue).joined(separator: ", ")
        if let given = map.string("at_end", expected: "one of \(endNames)", fix: "set \(map.field("at_end")) to \(endNames)") {
            if let value = RouteSpec.AtEnd(rawValue: given) {
                atEnd = value
            } else {
                map.problem("at_end", "expected one of \(endNames), got \"\(SettingText.clipped(given))\"",
                            fix: "set \(map.field("at_end")) to loop (round again), stop (stay at the end) or reverse (back and forth)")
                ok = false
            }
        } else if map.has("at_end") {
            ok = false
        }
        var readings = RouteSpec.Reading.allCases
        let readingNames = RouteSpec.Reading.allCases.map(\.rawValue).joined(separator: ", ")
        if map.has("readings") {
            let fix = "set \(map.field("readings")) to a list of \(readingNames), e.g. [latitude, longitude]"
            if let items = map.sequence("readings", expected: "a list of \(readingNames)", fix: fix) {
                readings = []
                for item in items {
                    if case .scalar(let s) = item, let r = RouteSpec.Reading(rawValue: s.string), !readings.contains(r) {
                        readings.append(r)
                    } else {
                        map.log.error(map.file, line: item.mark?.line, field: map.field("readings"),
                                      "expected one of \(readingNames) (each once), got \(item.humanDescription)", fix: fix)
                        ok = false
                    }
                }
                if items.isEmpty {
                    map.problem("readings", "no readings; expected at least one of \(readingNames)", fix: fix)
                    ok = false
                }
            } else {
                ok = false
            }
        }
        if let points, speeds.count > 1 {
            let segments = max(0, points.count - 1)
            if speeds.count != segments {
                map.problem("speeds", "\(speeds.count) speeds for \(segments) segments (\(points.count) points); expected one per segment",
                            fix: "list \(segments) speeds under \(map.field("speeds")), or use `speed:` for one speed throughout")
                ok = false
            }
        }
        guard ok, let points else { return nil }
        return RouteSpec(points: points, speeds: speeds, atEnd: atEnd, readings: readings)
    }

    private static func inlinePoints(_ map: MappingReader) -> [GeoPoint]? {
        let fix = "write the points as [latitude, longitude] pairs, e.g. `points: [[52.5200, 13.4050], [52.5163, 13.3777]]`"
        guard let items = map.sequence("points", expected: "a list of [latitude, longitude] pairs", fix: fix) else { return nil }
        var points: [GeoPoint] = []
        var ok = true
        for (i, item) in items.enumerated() {
            let field = map.field("points") + "[\(i)]"
            guard case .sequence(let pair) = item, pair.count == 2,
                  let lat = MappingReader.double(pair[0]), let lon = MappingReader.double(pair[1])
            else {
                map.log.error(map.file, line: item.mark?.line, field: field,
                              "expected a [latitude, longitude] pair of numbers, got \(item.humanDescription)", fix: fix)
                ok = false
                continue
            }
            if let problem = RouteFileReader.problem(latitude: lat, longitude: lon) {
                map.log.error(map.file, line: item.mark?.line, field: field, problem, fix: fix)
                ok = false
                continue
            }
            points.append(GeoPoint(latitude: lat, longitude: lon))
        }
        guard ok else { return nil }
        if let problem = RouteFileReader.problem(with: points) {
            map.problem("points", problem, fix: fix)
            return nil
        }
        return points
    }

    // MARK: thermal

    static func thermal(_ map: MappingReader) -> ThermalSpec? {
        let ambient = number(map, "ambient", "the temperature the room cools towards, °C", in: .reading)
        let setpoint = number(map, "setpoint", "the thermostat's target, °C", in: .reading, required: true)
        let hysteresis = number(map, "hysteresis", "the width of the band around the setpoint, °C", in: .spread)
        let tau = number(map, "tau", "the room's time constant in seconds", in: .timeConstant)
        let power = number(map, "heater_power", "how far above ambient the heater alone would bring the room, °C", in: .spread)
        let start = number(map, "start", "the temperature at the start, °C", in: .reading)
        let noise = number(map, "noise", "the stddev of the measurement noise", in: .spread)
        guard ambient.ok, setpoint.ok, hysteresis.ok, tau.ok, power.ok, start.ok, noise.ok, let setpointValue = setpoint.value else {
            return nil
        }
        let defaults = ThermalSpec(setpoint: setpointValue)
        return ThermalSpec(ambient: ambient.value ?? defaults.ambient, setpoint: setpointValue,
                           hysteresis: hysteresis.value ?? defaults.hysteresis, tau: tau.value ?? defaults.tau,
                           heaterPower: power.value ?? defaults.heaterPower, start: start.value, noise: noise.value ?? 0)
    }

    // MARK: diurnal

    /// Whether `identifier` names a time zone the diurnal model can use: exactly the zones
    /// `ZoneInfo` reads from the system's tz database (FoundationEssentials' `TimeZone` knows no
    /// IANA names), so what validation accepts is what runs.
    static func knownTimeZone(_ identifier: String) -> Bool {
        ZoneInfo(identifier: identifier) != nil
    }

    static func diurnal(_ map: MappingReader) -> DiurnalSpec? {
        let mean = number(map, "mean", "the daily average", in: .reading, required: true)
        let amplitude = number(map, "amplitude", "how far the peak lies above the mean", in: .reading, required: true)
        let peak = number(map, "peak_hour", "the local hour of the maximum, e.g. 15 for 3 pm", in: .hourOfDay)
        let noise = number(map, "noise", "the stddev of added noise", in: .spread)
        var zone: String?
        var zoneOK = true
        let zoneFix = "set \(map.field("timezone")) to an IANA time zone such as Europe/Berlin or UTC, or remove it (the machine's local time)"
        if let given = map.string("timezone", expected: "an IANA time zone such as Europe/Berlin", fix: zoneFix) {
            if Self.knownTimeZone(given) {
                zone = given
            } else {
                map.problem("timezone", "unknown time zone \"\(SettingText.clipped(given))\"", fix: zoneFix)
                zoneOK = false
            }
        } else if map.has("timezone") {
            zoneOK = false
        }
        guard mean.ok, amplitude.ok, peak.ok, noise.ok, zoneOK, let m = mean.value, let a = amplitude.value else { return nil }
        return DiurnalSpec(mean: m, amplitude: a, peakHour: (peak.value ?? 15).truncatingRemainder(dividingBy: 24),
                           noise: noise.value ?? 0, timeZone: zone)
    }

    // MARK: replay

    static func replay(_ map: MappingReader, name: String?, resolvePath: (String) -> String) -> ReplaySpec? {
        let fileFix = "set \(map.field("file")) to a CSV (with a header row) or JSONL file, relative to the device folder, e.g. recorded.csv"
        let file = map.string("file", expected: "the path of a CSV or JSONL file", fix: fileFix, required: true)
        let column = map.string("column", expected: "a column name",
                                fix: "set \(map.field("column")) to the file's column for this sensor (default: the sensor's name)")
        let timeColumn = map.string("time_column", expected: "a column name",
                                    fix: "set \(map.field("time_column")) to the file's time column (default: time)")
        let speed = number(map, "speed", "how many times faster than recorded", in: .replaySpeed)
        let loop = map.bool("loop", fix: "set \(map.field("loop")) to true (start again after the last row) or false")
        guard let file, !file.isEmpty, speed.ok, !map.has("loop") || loop != nil,
              !map.has("column") || column != nil, !map.has("time_column") || timeColumn != nil,
              let columnName = column ?? name
        else {
            if file?.isEmpty == true { map.problem("file", "expected the path of a CSV or JSONL file, got an empty text", fix: fileFix) }
            return nil
        }
        guard let table = ReplayFileReader.read(path: resolvePath(file), timeColumn: timeColumn ?? "time", column: columnName,
                                                field: map.field("file"), map: map)
        else { return nil }
        if (loop ?? false) && table.times.count < 2 {
            map.problem("loop", "a replay with one row cannot loop", fix: "add rows to the file or remove \(map.field("loop"))")
            return nil
        }
        return ReplaySpec(file: resolvePath(file), column: columnName, times: table.times, values: table.values,
                          speed: speed.value ?? 1, loop: loop ?? false)
    }
}
