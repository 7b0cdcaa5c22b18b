#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The few text helpers Foundation used to give us (issue 15: the core imports FoundationEssentials
// only, which has no `String(format:)` and no `trimmingCharacters(in:)`). For replacing and
// finding text, the standard library's `replacing(_:with:)`, `firstRange(of:)` and
// `contains(_:)` do the job.

extension String {
    /// printf-style formatting of numbers (`%d`, `%.3f`, `%5.0f`, `%lld`, `%x` …), through
    /// `vsnprintf`, so the output is exactly what `String(format:)` printed for the same format.
    /// Only C arguments (integers, floating point) — not Swift strings (`%@`).
    public init(cFormat format: String, _ arguments: CVarArg...) {
        self = withVaList(arguments) { list in
            var buffer = [CChar](repeating: 0, count: 64)
            let needed = Int(vsnprintf(&buffer, buffer.count, format, list))
            if needed < buffer.count { return String(cString: buffer) }
            return withVaList(arguments) { again in
                var big = [CChar](repeating: 0, count: needed + 1)
                _ = vsnprintf(&big, big.count, format, again)
                return String(cString: big)
            }
        }
    }
}

extension StringProtocol {
    /// Without the white space (spaces, tabs, line breaks) at both ends — what
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` gave.
    public func trimmingWhitespace() -> String {
        trimming { $0.isWhitespace }
    }

    /// Without spaces and tabs at both ends, line breaks kept — what
    /// `trimmingCharacters(in: .whitespaces)` gave.
    public func trimmingSpaces() -> String {
        trimming { $0.isWhitespace && !$0.isNewline }
    }

    /// Without the characters that match `drop` at both ends.
    public func trimming(where drop: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !drop($0) }),
              let last = lastIndex(where: { !drop($0) }) else { return "" }
        return String(self[first...last])
    }
}
