#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads one YAML file into a `Node`, turning every way that can fail into an issue.
enum YAMLFile {
    /// The top-level mapping of the file at `path`, or nil (with an issue logged) when the file
    /// cannot be read, is not YAML, or is not a mapping.
    /// - Parameter allowEmpty: whether a file with no content (or only comments) reads as an empty mapping.
    static func readMapping(path: String, displayPath: String, log: IssueLog, whatItHolds: String,
                            allowEmpty: Bool = false) -> MappingReader? {
        guard let data = FileManager.default.contents(atPath: path) else {
            log.error(displayPath, "cannot read the file: \(unreadableReason(path))",
                      fix: "check that \(displayPath) is a readable file")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.error(displayPath, "the file is not UTF-8 text", fix: "save \(displayPath) as UTF-8")
            return nil
        }
        let root: Node?
        do {
            root = try YAML.compose(yaml: text)
        } catch {
            log.errors.append(issue(for: error, displayPath: displayPath, text: text))
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

    /// Why `path` gave no contents: the system's word for it (no such file, permission denied),
    /// or that it is a folder.
    private static func unreadableReason(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return String(cString: strerror(errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR { return "it is a folder" }
        guard access(path, R_OK) == 0 else { return String(cString: strerror(errno)) }
        return "it could not be read"
    }

    /// Translates a YAML error into an issue with the line (and column) where the parser stopped.
    static func issue(for error: YAML.Error, displayPath: String, text: String) -> FleetIssue {
        func syntax(_ context: YAML.Error.Context?, _ problem: String, _ mark: Mark) -> FleetIssue {
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
        case let .scanner(context, problem, mark),
            let .parser(context, problem, mark),
            let .composer(context, problem, mark):
            return syntax(context, problem, mark)
        case let .reader(problem, offset, _):
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
        case .memory:
            return FleetIssue(file: displayPath, problem: "the YAML could not be read: \(error)",
                              fix: "correct the YAML syntax of \(displayPath)")
        }
    }
}

extension Node {
    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return (scalar.style == .plain || scalar.style == .any) && tag == .null
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
        case .scalar(let scalar):
            let text = SettingText.clipped(scalar.string)
            if isNull { return scalar.string.isEmpty ? "nothing (an empty value)" : "`\(text)` (nothing)" }
            if isPlainScalar, [.int, .float, .bool].contains(tag) { return text }
            if isPlainScalar { return "\"\(text)\"" }
            return "the quoted text \"\(text)\""
        }
    }
}
