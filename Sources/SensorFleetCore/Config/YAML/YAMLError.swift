extension YAML {
    /// Why a text could not be read as YAML: libyaml's reader, scanner and parser errors with its
    /// problem, context and marks, and the composer's own (undefined alias, a second document
    /// where one is expected, a key twice in one mapping) — the cases and texts of Yams' `YamlError`.
    public enum Error: Swift.Error, Sendable, CustomStringConvertible {
        /// libyaml could not allocate memory.
        case memory
        /// The bytes are not YAML text (a control character, bad UTF-8). `offset` counts
        /// characters from the start of the text.
        case reader(problem: String, offset: Int?, value: Int32)
        /// A token could not be scanned (an unclosed quote, a tab where indentation is).
        case scanner(context: Context?, problem: String, mark: Mark)
        /// The tokens do not form a document (a key where a list item belongs).
        case parser(context: Context?, problem: String, mark: Mark)
        /// An alias names no anchor, or a second document came where one was expected.
        case composer(context: Context?, problem: String, mark: Mark)
        /// Keys that appear more than once in one mapping, sorted as Yams sorted them (scalars by
        /// text); the context's mark is where the first of them first appears.
        case duplicatedKeysInMapping(duplicates: [String], context: Context)

        /// What libyaml was reading when it failed (e.g. "while scanning a quoted scalar") and where that began.
        public struct Context: Sendable, CustomStringConvertible {
            public let text: String
            public let mark: Mark

            public var description: String { "\(text) in line \(mark.line), column \(mark.column)" }
        }

        public var description: String {
            func located(_ kind: String, _ context: Context?, _ problem: String, _ mark: Mark) -> String {
                "\(mark): error: \(kind): " + (context.map { "\($0), " } ?? "") + problem
            }
            switch self {
            case .memory: return "Memory error"
            case let .reader(problem, offset, value):
                return "\(problem) at offset: \(offset.map(String.init) ?? "nil"), value: \(value)"
            case let .scanner(context, problem, mark): return located("scanner", context, problem, mark)
            case let .parser(context, problem, mark): return located("parser", context, problem, mark)
            case let .composer(context, problem, mark): return located("composer", context, problem, mark)
            case let .duplicatedKeysInMapping(duplicates, context):
                return "expected all keys to be unique but found the following duplicated key(s): "
                    + duplicates.map { "'\($0)'" }.joined(separator: ", ") + " at \(context.mark)"
            }
        }
    }
}
