/// A JSON document (RFC 8259) read as `JSONSerialization` read it for the route and replay
/// files, without Foundation (issue 15): numbers keep how they print (`190` for an integer
/// literal, `1.0` for a fraction), true and false count as the numbers 1 and 0 (NSNumber did),
/// a trailing comma is allowed, and `description` prints values the way the messages printed
/// Foundation's.
enum ConfigJSON: CustomStringConvertible {
    case null
    case bool(Bool)
    /// The value and how `NSNumber` printed it.
    case number(Double, text: String)
    case string(String)
    case array([ConfigJSON])
    case object([String: ConfigJSON])

    /// The top-level object or array of `text` (JSONSerialization refused any other value at the
    /// top), or nil when `text` is not valid JSON.
    init?(parsing text: String) {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skip(bytes: [0xEF, 0xBB, 0xBF])
        parser.skipWhitespace()
        guard let value = parser.value(), parser.atEndAfterWhitespace else { return nil }
        switch value {
        case .object, .array: self = value
        default: return nil
        }
    }

    var object: [String: ConfigJSON]? {
        if case .object(let object) = self { return object }
        return nil
    }

    var array: [ConfigJSON]? {
        if case .array(let array) = self { return array }
        return nil
    }

    var string: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A number, or 1 and 0 for true and false (as `NSNumber.doubleValue` gave them).
    var number: Double? {
        switch self {
        case .number(let value, _): return value
        case .bool(let value): return value ? 1 : 0
        default: return nil
        }
    }

    var description: String {
        switch self {
        case .null: return "<null>"
        case .bool(let value): return value ? "1" : "0"
        case .number(_, let text): return text
        case .string(let string): return string
        case .array(let items): return "[" + items.map(\.element).joined(separator: ", ") + "]"
        case .object(let members):
            guard !members.isEmpty else { return "[:]" }
            return "[" + members.map { "\(String(reflecting: $0.key)): \($0.value.element)" }.joined(separator: ", ") + "]"
        }
    }

    /// How a value prints inside an array or object: strings quoted.
    private var element: String {
        if case .string(let string) = self { return String(reflecting: string) }
        return description
    }
}

/// Recursive descent over the UTF-8 bytes; nil at the first thing that is not JSON.
private struct Parser {
    let bytes: [UInt8]
    var at = 0

    var atEndAfterWhitespace: Bool {
        mutating get {
            skipWhitespace()
            return at == bytes.count
        }
    }

    mutating func skip(bytes prefix: [UInt8]) {
        if bytes[at...].starts(with: prefix) { at += prefix.count }
    }

    mutating func skipWhitespace() {
        while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
    }

    private mutating func take(_ literal: String) -> Bool {
        let literal = Array(literal.utf8)
        guard bytes[at...].starts(with: literal) else { return false }
        at += literal.count
        return true
    }

    mutating func value() -> ConfigJSON? {
        guard at < bytes.count else { return nil }
        switch bytes[at] {
        case UInt8(ascii: "{"): return object()
        case UInt8(ascii: "["): return array()
        case UInt8(ascii: "\""): return string().map(ConfigJSON.string)
        case UInt8(ascii: "t"): return take("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return take("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return take("null") ? .null : nil
        default: return number()
        }
    }

    private mutating func object() -> ConfigJSON? {
        at += 1
        var members: [String: ConfigJSON] = [:]
        skipWhitespace()
        if take("}") { return .object(members) }
        while true {
            skipWhitespace()
            // A trailing comma is allowed, as JSONSerialization allowed it.
            if !members.isEmpty, take("}") { return .object(members) }
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard take(":") else { return nil }
            skipWhitespace()
            guard let value = value() else { return nil }
            members[key] = value
            skipWhitespace()
            if take("}") { return .object(members) }
            guard take(",") else { return nil }
        }
    }

    private mutating func array() -> ConfigJSON? {
        at += 1
        var items: [ConfigJSON] = []
        skipWhitespace()
        if take("]") { return .array(items) }
        while true {
            skipWhitespace()
            if !items.isEmpty, take("]") { return .array(items) }
            guard let item = value() else { return nil }
            items.append(item)
            skipWhitespace()
            if take("]") { return .array(items) }
            guard take(",") else { return nil }
        }
    }

    /// After the opening quote: the text up to the closing one, escapes undone.
    private mutating func string() -> String? {
        at += 1
        var scalars = String.UnicodeScalarView()
        var run = at
        func flush(_ end: Int) {
            scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars)
        }
        while at < bytes.count {
            let byte = bytes[at]
            if byte == UInt8(ascii: "\"") {
                flush(at)
                at += 1
                return String(scalars)
            }
            if byte < 0x20 { return nil }
            guard byte == UInt8(ascii: "\\") else {
                at += 1
                continue
            }
            flush(at)
            at += 1
            guard at < bytes.count else { return nil }
            let escape = bytes[at]
            at += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                guard let unit = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(unit) {
                    // A high surrogate must be followed by an escaped low one.
                    guard take("\\u"), let low = hex4(), (0xDC00..<0xE000).contains(low),
                          let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) else { return nil }
                    scalars.append(scalar)
                } else {
                    guard let scalar = Unicode.Scalar(unit) else { return nil }
                    scalars.append(scalar)
                }
            default: return nil
            }
            run = at
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard at + 4 <= bytes.count, let unit = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
            return nil
        }
        at += 4
        return unit
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, printed as NSNumber printed it: an
    /// integer literal as the integer (Int64 or UInt64 when it fits), else as the Double.
    private mutating func number() -> ConfigJSON? {
        let start = at
        func digits() -> Int {
            let from = at
            while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
            return at - from
        }
        _ = take("-")
        let integerStart = at
        guard digits() > 0 else { return nil }
        if bytes[integerStart] == UInt8(ascii: "0"), at - integerStart > 1 { return nil }
        var integral = true
        if take(".") {
            integral = false
            guard digits() > 0 else { return nil }
        }
        if take("e") || take("E") {
            integral = false
            if !take("+") { _ = take("-") }
            guard digits() > 0 else { return nil }
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        guard let value = Double(text) else { return nil }
        if integral, let int = Int64(text) { return .number(value, text: "\(int)") }
        if integral, let unsigned = UInt64(text) { return .number(value, text: "\(unsigned)") }
        // A bigger integer printed as written (Foundation kept it as a Decimal).
        return .number(value, text: integral ? text : "\(value)")
    }
}
