
/// Reads a sensor's `faults:` list.
///
/// ```yaml
/// faults:
///   - {type: stuck, probability: 0.01, duration: 30}     # or readings: 5
///   - {type: offset, amount: 2.5, from: 60, for: 30}      # a window: seconds after the start
///   - {type: spike, factor: 10, probability: 0.002}       # one reading; or amount: 40
///   - {type: out_of_range, value: 85, from: 0, readings: 1}
/// ```
enum FaultParser {
    static let triggerKeys = ["type", "probability", "duration", "readings", "from", "for"]
    static let parameters: [String: [String]] = [
        "stuck": [], "drift": ["rate"], "offset": ["amount"], "spike": ["factor", "amount"], "dropout": [],
        "noise": ["sigma"], "out_of_range": ["value"],
    ]

    static func read(_ sensor: MappingReader) -> [FaultSpec]? {
        guard sensor.has("faults") else { return [] }
        let fix = "list faults under `faults:`, each as `- {type: stuck, probability: 0.01, duration: 30}` "
            + "or with a window `from: 60, for: 30` (see Devices/README.md)"
        guard let items = sensor.sequence("faults", expected: "a list of faults", fix: fix) else { return nil }
        var faults: [FaultSpec] = []
        var ok = true
        for (index, item) in items.enumerated() {
            let path = sensor.field("faults") + "[\(index)]"
            guard case .mapping(let mapping) = item else {
                sensor.log.error(sensor.file, line: item.mark?.line, field: path,
                                 "expected a fault (`type:` and when it happens), got \(item.humanDescription)", fix: fix)
                ok = false
                continue
            }
            if let fault = parse(MappingReader(mapping, path: path, file: sensor.file, log: sensor.log)) {
                faults.append(fault)
            } else {
                ok = false
            }
        }
        return ok ? faults : nil
    }

    static func parse(_ map: MappingReader) -> FaultSpec? {
        let names = FaultSpec.kindNames.joined(separator: ", ")
        let typeFix = "set \(map.field("type")) to one of \(names)"
        var type = map.string("type", expected: "one of \(names)", fix: typeFix, required: true)
        if let given = type, parameters[given] == nil {
            var problem = "unknown fault type \"\(SettingText.clipped(given))\"; expected one of \(names)"
            var fix = typeFix
            if let guess = Suggestion.closest(to: given, in: FaultSpec.kindNames) {
                problem += "; did you mean `\(guess)`?"
                fix = "set \(map.field("type")) to \(guess)"
            }
            map.problem("type", problem, fix: fix)
            type = nil
        }
        guard let type, let own = parameters[type] else {
            map.rejectUnknownKeys(allowed: triggerKeys + Array(Set(parameters.values.joined())).sorted())
            return nil
        }
        map.rejectUnknownKeys(allowed: triggerKeys + own) { key in
            "`\(key)` is not a setting of a `\(type)` fault; it takes \((triggerKeys.dropFirst() + own).joined(separator: ", "))"
        }
        func number(_ key: String, _ meaning: String, in range: SettingRange, required: Bool = false) -> Double? {
            map.number(key, in: range, fix: "set \(map.field(key)) (\(meaning)) to \(range.expected)", required: required)
        }
        var valid = true
        /// A key given with a wrong value has already been reported; it must not read as absent.
        func given(_ key: String, _ value: Double?) -> Bool {
            if map.has(key) && value == nil { valid = false }
            return value != nil
        }

        let kind: FaultSpec.Kind?
        switch type {
        case "stuck": kind = .stuck
        case "dropout": kind = .dropout
        case "drift": kind = number("rate", "how much is added per second", in: .reading, required: true).map { .drift(rate: $0) }
        case "offset": kind = number("amount", "what is added to each reading", in: .reading, required: true).map { .offset(amount: $0) }
        case "noise": kind = number("sigma", "the standard deviation of the added noise", in: .spread, required: true).map { .noise(sigma: $0) }
        case "out_of_range":
            kind = number("value", "what the sensor reports instead, e.g. 85 for a DS18B20", in: .reading, required: true)
                .map { .outOfRange(value: $0) }
        case "spike":
            let factor = number("factor", "the reading is multiplied by it", in: .scale)
            let amount = number("amount", "added to the reading", in: .reading)
            switch (given("factor", factor), given("amount", amount)) {
            case (true, false): kind = .spike(factor: factor, amount: nil)
            case (false, true): kind = .spike(factor: nil, amount: amount)
            case (true, true):
                map.problem("amount", "a spike takes `factor` or `amount`, not both",
                            fix: "remove \(map.field("factor")) or \(map.field("amount"))")
                kind = nil
            case (false, false):
                if !map.has("factor") && !map.has("amount") {
                    map.missing("factor", expected: "`factor` (× the reading) or `amount` (+)",
                                fix: "add `factor: 10` or `amount: 50` to \(map.path)")
                }
                kind = nil
            }
        default: kind = nil
        }

        let probability = number("probability", "the chance per reading that the fault starts", in: .probability)
        let from = number("from", "seconds after the device started", in: .faultStart)
        let duration = number("duration", "seconds the fault lasts", in: .faultDuration)
        let window = number("for", "seconds the fault lasts", in: .faultDuration)
        let readings = map.integer("readings", in: .faultReadings,
                                   fix: "set \(map.field("readings")) to how many readings the fault covers, e.g. 5")
        for (key, value) in [("probability", probability), ("from", from), ("duration", duration), ("for", window)] {
            _ = given(key, value)
        }
        if map.has("readings") && readings == nil { valid = false }
        guard valid else { return nil }

        let isSpike = type == "spike"
        let whenFix = "give \(map.path) either `probability:` (per reading) with `\(isSpike ? "" : "duration:` or `readings:")"
            + "\(isSpike ? "" : "`") or a window `from:`\(isSpike ? "" : " with `for:` or `readings:`")"
        switch (probability, from) {
        case (nil, nil):
            map.missing("probability", expected: "`probability` (per reading) or `from` (seconds after the start)", fix: whenFix)
            return nil
        case (.some, .some):
            map.problem("from", "a fault happens either at random (`probability`) or in a window (`from`), not both", fix: whenFix)
            return nil
        default: break
        }
        if isSpike {
            for key in ["duration", "for", "readings"] where map.has(key) {
                map.problem(key, "a spike is one reading; it takes no `\(key)`", fix: "remove \(map.field(key))")
                return nil
            }
        }
        if probability != nil, map.has("for") {
            map.problem("for", "`for` belongs to a window (`from`); a random fault lasts `duration` seconds or `readings` readings",
                        fix: "rename \(map.field("for")) to duration")
            return nil
        }
        if from != nil, map.has("duration") {
            map.problem("duration", "a window lasts `for` seconds (or `readings` readings)", fix: "rename \(map.field("duration")) to for")
            return nil
        }
        let seconds = duration ?? window
        if seconds != nil && readings != nil {
            map.problem("readings", "the length is given twice (seconds and `readings`)",
                        fix: "keep \(map.field("readings")) or the seconds, not both")
            return nil
        }
        let length: FaultSpec.Length
        if isSpike {
            length = .readings(1)
        } else if let seconds {
            length = .seconds(seconds)
        } else if let readings {
            length = .readings(readings)
        } else {
            map.missing(probability != nil ? "duration" : "for", expected: "how long the fault lasts: seconds, or `readings`",
                        fix: "add `\(probability != nil ? "duration" : "for"): 30` (seconds) or `readings: 5` to \(map.path)")
            return nil
        }
        guard let kind else { return nil }
        if let probability { return FaultSpec(kind: kind, trigger: .random(probability: probability, length: length)) }
        return FaultSpec(kind: kind, trigger: .window(from: from ?? 0, length: length))
    }
}
