import Foundation
import Yams

/// Collects the errors and warnings of one load, across all files.
final class IssueLog {
    var errors: [FleetIssue] = []
    var warnings: [FleetIssue] = []

    func error(_ file: String, line: Int? = nil, field: String? = nil, _ problem: String, fix: String) {
        errors.append(FleetIssue(file: file, line: line, field: field.map { SettingText.clipped($0, limit: 200) },
                                 problem: SettingText.clipped(problem, limit: SettingText.messageLimit),
                                 fix: SettingText.clipped(fix, limit: SettingText.messageLimit)))
    }

    /// `issues` grouped by file (files in the order first met), each file's issues by line;
    /// issues without a line keep their order after those with one.
    static func ordered(_ issues: [FleetIssue]) -> [FleetIssue] {
        var fileRank: [String: Int] = [:]
        for issue in issues where fileRank[issue.file] == nil {
            fileRank[issue.file] = fileRank.count
        }
        return issues.enumerated().sorted { a, b in
            let (fa, fb) = (fileRank[a.element.file] ?? 0, fileRank[b.element.file] ?? 0)
            if fa != fb { return fa < fb }
            let (la, lb) = (a.element.line ?? Int.max, b.element.line ?? Int.max)
            if la != lb { return la < lb }
            return a.offset < b.offset
        }.map(\.element)
    }

    func warning(_ file: String, line: Int? = nil, field: String? = nil, _ problem: String, fix: String) {
        warnings.append(FleetIssue(file: file, line: line, field: field.map { SettingText.clipped($0, limit: 200) },
                                   problem: SettingText.clipped(problem, limit: SettingText.messageLimit),
                                   fix: SettingText.clipped(fix, limit: SettingText.messageLimit)))
    }
}

/// Reads one YAML file into a `Node`, turning every way that can fail into an issue.
enum YAMLFile {
    /// The top-level mapping of the file at `path`, or nil (with an issue logged) when the file
    /// cannot be read, is not YAML, or is not a mapping.
    /// - Parameter allowEmpty: whether a file with no content (or only comments) reads as an empty mapping.
    static func readMapping(path: String, displayPath: String, log: IssueLog, whatItHolds: String,
                            allowEmpty: Bool = false) -> MappingReader? {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            log.error(displayPath, "cannot read the file: \(error.localizedDescription)",
                      fix: "check that \(displayPath) is a readable file")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.error(displayPath, "the file is not UTF-8 text", fix: "save \(displayPath) as UTF-8")
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            log.errors.append(issue(for: error, displayPath: displayPath, text: text))
            return nil
        } catch {
            log.error(displayPath, "the YAML could not be read: \(error)",
                      fix: "correct the YAML syntax of \(displayPath)")
            return nil
        }
        guard let root, !(root.isNull) else {
            if allowEmpty {
                return MappingReader(Node.Mapping([]), path: "", file: displayPath, log: log)
            }
            log.error(displayPath, line: 1, "the file is empty; expected a mapping of keys (\(whatItHolds))",
                      fix: "write \(whatItHolds) as `key: value` lines; see Devices/README.md")
            return nil
        }
        guard case .mapping(let mapping) = root else {
            log.error(displayPath, line: root.mark?.line,
                      "expected a mapping of keys (\(whatItHolds)) at the top level, got \(root.humanDescription)",
                      fix: "write \(whatItHolds) as `key: value` lines at the top level; see Devices/README.md")
            return nil
        }
        return MappingReader(mapping, path: "", file: displayPath, log: log)
    }

    /// Translates a Yams error into an issue with the line (and column) where the parser stopped.
    static func issue(for error: YamlError, displayPath: String, text: String) -> FleetIssue {
        func syntax(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> FleetIssue {
            var detail = "YAML syntax error at line \(mark.line), column \(mark.column): \(problem)"
            if let context {
                detail += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return FleetIssue(
                file: displayPath, line: mark.line, problem: detail,
                fix: "correct the YAML near line \(mark.line), column \(mark.column): check the indentation "
                    + "(spaces, not tabs), a missing `:` after a key, or an unclosed quote or bracket")
        }
        switch error {
        case let .scanner(context, problem, mark, _),
            let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            return syntax(context, problem, mark)
        case let .reader(problem, offset, _, _):
            var line: Int?
            if let offset {
                line = text.prefix(offset).reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
            }
            return FleetIssue(file: displayPath, line: line, problem: "the file cannot be read as YAML: \(problem)",
                              fix: "save \(displayPath) as plain UTF-8 text without control characters")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "`\($0)`" }.joined(separator: ", ")
            return FleetIssue(file: displayPath, line: context.mark.line, field: duplicates.first,
                              problem: "key \(keys) appears more than once in the same mapping",
                              fix: "keep only one \(keys) line in that mapping")
        default:
            return FleetIssue(file: displayPath, problem: "the YAML could not be read: \(error)",
                              fix: "correct the YAML syntax of \(displayPath)")
        }
    }
}

extension Node {
    /// The resolved tag (`Tag.name` is internal to Yams).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }

    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return (scalar.style == .plain || scalar.style == .any) && tagName == .null
    }

    var isPlainScalar: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .plain || scalar.style == .any
    }

    /// What the user wrote, for "got …" in messages.
    var humanDescription: String {
        switch self {
        case .mapping: return "a mapping (indented `key: value` lines)"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            let text = SettingText.clipped(scalar.string)
            if isNull { return scalar.string.isEmpty ? "nothing (an empty value)" : "`\(text)` (nothing)" }
            if isPlainScalar, [.int, .float, .bool].contains(tagName) { return text }
            if isPlainScalar { return "\"\(text)\"" }
            return "the quoted text \"\(text)\""
        }
    }
}

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
        guard entry.value.isPlainScalar, entry.value.tagName == .int,
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
        guard entry.value.isPlainScalar, entry.value.tagName == .bool, let value = entry.value.bool else {
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
              Double(scalar.string.trimmingCharacters(in: .whitespaces)) != nil || ["true", "false"].contains(scalar.string)
        else { return fix }
        return "remove the quotes around \(SettingText.clipped(scalar.string)) (quoted values are text); \(fix)"
    }

    static func double(_ node: Node) -> Double? {
        guard node.isPlainScalar, case .scalar(let scalar) = node else { return nil }
        switch node.tagName {
        case .int: return Int.construct(from: scalar).map(Double.init) ?? Double.construct(from: scalar)
        case .float: return Double.construct(from: scalar)
        default: return nil
        }
    }

    static func int(_ node: Node) -> Int? {
        guard node.isPlainScalar, node.tagName == .int, case .scalar(let scalar) = node else { return nil }
        // Yams refuses a signed zero ("-0"); it is 0.
        return Int.construct(from: scalar) ?? Int(scalar.string)
    }
}

/// "Did you mean …?" for misspelt keys and values.
enum Suggestion {
    /// The candidate closest to `word` by edit distance, when it is close enough to be a likely typo.
    /// Words longer than this get no suggestion: no key or value we know is that long, and the
    /// comparison costs length × length.
    static let longestWord = 64

    static func closest(to word: String, in candidates: [String]) -> String? {
        guard word.utf8.count <= longestWord else { return nil }
        let lowered = word.lowercased().replacingOccurrences(of: "-", with: "_")
        var best: (candidate: String, distance: Int)?
        for candidate in candidates where candidate.utf8.count <= longestWord {
            let distance = editDistance(lowered, candidate.lowercased())
            if best.map({ distance < $0.distance }) ?? true {
                best = (candidate, distance)
            }
        }
        guard let best else { return nil }
        let limit = max(1, min(3, lowered.count / 3))
        return best.distance <= limit ? best.candidate : nil
    }

    /// Levenshtein distance, counting a swap of two neighbouring letters as one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}

/// Values echoed in messages: a huge value (a 1 MB string or key) is shown by its start, an
/// ellipsis and its length, never whole.
public enum SettingText {
    /// Characters of a value shown in a message.
    public static let valueLimit = 80
    /// Characters of a whole problem or fix text.
    static let messageLimit = 2_000

    /// `text` when it is at most `limit` characters, else its first `limit` characters, "…" and
    /// the length ("… (1048576 characters)").
    public static func clipped(_ text: String, limit: Int = valueLimit) -> String {
        // utf8.count is O(1) for native strings; only long ones are walked.
        guard text.utf8.count > limit else { return text }
        let count = text.count
        guard count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(count) characters)"
    }
}
