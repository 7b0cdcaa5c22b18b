
/// A typed, issue-logging view of one YAML mapping.
///
/// Every accessor returns nil both when the key is absent and when its value is invalid; in the
/// second case it has logged an issue naming the file, line, field, what was expected and the fix.
/// Callers then fall back to a default and carry on, so one load reports every problem.
final class MappingReader {
    struct Entry {
        var key: String
        var keyNode: Node
        var value: Node
    }

    /// Dotted path of this mapping, "" at the top level.
    let path: String
    let file: String
    let log: IssueLog
    let line: Int?
    private(set) var entries: [Entry] = []

    init(_ mapping: Node.Mapping, path: String, file: String, log: IssueLog) {
        self.path = path
        self.file = file
        self.log = log
        self.line = mapping.mark?.line
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                log.error(file, line: keyNode.mark?.line, field: path.isEmpty ? nil : path,
                          "a key must be a plain word, got \(keyNode.humanDescription)",
                          fix: "write each key as `name: value`")
                continue
            }
            entries.append(Entry(key: scalar.string, keyNode: keyNode, value: value))
        }
    }

    /// The dotted path of `key` in this mapping, e.g. `broker.port`.
    func field(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func entry(_ key: String) -> Entry? {
        entries.first { $0.key == key }
    }

    func has(_ key: String) -> Bool { entry(key) != nil }

    /// Line of the value of `key`, or of the mapping when the key is absent.
    func line(of key: String) -> Int? {
        guard let entry = entry(key) else { return line }
        return entry.value.mark?.line ?? entry.keyNode.mark?.line
    }

    // MARK: Reporting

    func invalid(_ key: String, expected: String, fix: String) {
        guard let entry = entry(key) else { return }
        log.error(file, line: entry.value.mark?.line ?? entry.keyNode.mark?.line, field: field(key),
                  "expected \(expected), got \(entry.value.humanDescription)", fix: fix)
    }

    func problem(_ key: String, _ problem: String, fix: String) {
        log.error(file, line: line(of: key), field: field(key), problem, fix: fix)
    }

    func missing(_ key: String, expected: String, fix: String) {
        log.error(file, line: line, field: field(key), "`\(key)` is missing; expected \(expected)", fix: fix)
    }

    /// Logs every key not in `allowed`, suggesting the closest allowed key when one is near.
    /// - Parameter describe: builds the problem text for an unknown key when the default
    ///   ("unknown key `x`") is not specific enough.
    func rejectUnknownKeys(allowed: [String], describe: ((String) -> String)? = nil) {
        for entry in entries where !allowed.contains(entry.key) {
            let key = SettingText.clipped(entry.key)
            var problem = describe?(key) ?? "unknown key `\(key)`"
            let fix: String
            if let guess = Suggestion.closest(to: entry.key, in: allowed) {
                problem += "; did you mean `\(guess)`?"
                fix = "rename `\(key)` to `\(guess)`"
            } else {
                fix = "remove `\(key)`; the keys allowed here are "
                    + allowed.map { "`\($0)`" }.joined(separator: ", ")
            }
            log.error(file, line: entry.keyNode.mark?.line, field: field(key), problem, fix: fix)
        }
    }

    // MARK: Typed accessors

    /// A scalar as text. Numbers and booleans are taken as written (`protocol: 5` reads "5").
    func string(_ key: String, expected: String = "text", fix: String, required: Bool = false) -> String? {
        guard let entry = entry(key) else {
            if required { missing(key, expected: expected, fix: fix) }
            return nil
        }
        guard case .scalar(let scalar) = entry.value, !entry.value.isNull else {
            invalid(key, expected: expected, fix: fix)
            return nil
        }
        return scalar.string
    }

    /// A finite number that satisfies `isValid`.
    func number(_ key: String, expected: String, fix: String, required: Bool = false,
                where isValid: (Double) -> Bool = { _ in true }) -> Double? {
        guard let entry = entry(key) else {
            if required { missing(key, expected: expected, fix: fix) }
            return nil
        }
        guard let value = Self.double(entry.value), value.isFinite else {
            invalid(key, expected: expected, fix: quoteFix(entry.value, fix))
            return nil
        }
        guard isValid(value) else {
            invalid(key, expected: expected, fix: fix)
            return nil
        }
        return value
    }

    /// A whole number inside `range`.
    func integer(_ key: String, in range: ClosedRange<Int>, expected: String, fix: String,
                 required: Bool = false) -> Int? {
        guard let entry = entry(key) else {
            if required { missing(key, expected: expected, fix: fix) }
            return nil
        }
        guard let value = Self.int(entry.value) else {
            invalid(key, expected: expected, fix: quoteFix(entry.value, fix))
            return nil
        }
        guard range.contains(value) else {
            invalid(key, expected: expected, fix: fix)
            return nil
        }
        return value
    }

    /// A number inside `range` (finite; whole when the range says so). The problem names the
    /// range; `fix` says what the setting means.
    func number(_ key: String, in range: SettingRange, fix: String, required: Bool = false) -> Double? {
        let value = number(key, expected: range.expected, fix: fix, required: required, where: range.contains)
        return value.map { $0 == 0 ? 0 : $0 }
    }

    /// A whole number inside `range`.
    func integer(_ key: String, in range: SettingRange, fix: String, required: Bool = false) -> Int? {
        precondition(range.wholeNumber, "integer(_:in:) needs a whole-number range")
        return integer(key, in: Int(range.lower)...Int(range.upper), expected: range.expected, fix: fix,
                       required: required)
    }

    /// A non-negative whole number that fits 64 bits.
    func unsigned(_ key: String, expected: String, fix: String) -> UInt64? {
        guard let entry = entry(key) else { return nil }
        guard entry.value.isPlainScalar, entry.value.tag == .int,
              case .scalar(let scalar) = entry.value, let value = UInt64.construct(from: scalar)
        else {
            invalid(key, expected: expected, fix: quoteFix(entry.value, fix))
            return nil
        }
        return value
    }

    /// `true` or `false` (YAML's yes/no/on/off too).
    func bool(_ key: String, fix: String) -> Bool? {
        guard let entry = entry(key) else { return nil }
        guard entry.value.isPlainScalar, entry.value.tag == .bool, let value = entry.value.bool else {
            invalid(key, expected: "true or false", fix: quoteFix(entry.value, fix))
            return nil
        }
        return value
    }

    /// A nested mapping. An empty value (`defaults:` with nothing under it) counts as absent.
    func mapping(_ key: String, fix: String) -> MappingReader? {
        guard let entry = entry(key), !entry.value.isNull else { return nil }
        guard case .mapping(let mapping) = entry.value else {
            invalid(key, expected: "a mapping of indented `key: value` lines", fix: fix)
            return nil
        }
        return MappingReader(mapping, path: field(key), file: file, log: log)
    }

    /// A list.
    func sequence(_ key: String, expected: String, fix: String) -> [Node]? {
        guard let entry = entry(key) else {
            missing(key, expected: expected, fix: fix)
            return nil
        }
        guard case .sequence(let sequence) = entry.value else {
            invalid(key, expected: expected, fix: fix)
            return nil
        }
        return Array(sequence)
    }

    /// When a number was written in quotes, the fix says to drop them.
    private func quoteFix(_ node: Node, _ fix: String) -> String {
        guard case .scalar(let scalar) = node, !node.isPlainScalar,
              Double(scalar.string.trimmingSpaces()) != nil || ["true", "false"].contains(scalar.string)
        else { return fix }
        return "remove the quotes around \(SettingText.clipped(scalar.string)) (quoted values are text); \(fix)"
    }

    static func double(_ node: Node) -> Double? {
        guard node.isPlainScalar, case .scalar(let scalar) = node else { return nil }
        switch node.tag {
        case .int: return Int.construct(from: scalar).map(Double.init) ?? Double.construct(from: scalar)
        case .float: return Double.construct(from: scalar)
        default: return nil
        }
    }

    static func int(_ node: Node) -> Int? {
        guard node.isPlainScalar, node.tag == .int, case .scalar(let scalar) = node else { return nil }
        // Int.construct refuses a signed zero ("-0"), as Yams did; it is 0.
        return Int.construct(from: scalar) ?? Int(scalar.string)
    }
}
