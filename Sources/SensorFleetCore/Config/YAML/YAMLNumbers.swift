// Numbers and booleans from scalars, as Yams' default constructors read them (YAML 1.1):
// underscores ignored, 0b/0o/0x and a leading 0 (octal) for whole numbers, sexagesimal
// `1:30:00`, `.inf` and `.nan`. Only plain scalars are numbers; these read the text whatever tag
// the resolver gave it, so callers check the tag first.

extension Int {
    public static func construct(from scalar: YAML.Node.Scalar) -> Int? { constructInteger(from: scalar) }
}

extension Int64 {
    public static func construct(from scalar: YAML.Node.Scalar) -> Int64? { constructInteger(from: scalar) }
}

extension UInt64 {
    public static func construct(from scalar: YAML.Node.Scalar) -> UInt64? { constructInteger(from: scalar) }
}

extension Double {
    public static func construct(from scalar: YAML.Node.Scalar) -> Double? {
        guard scalar.style == .any || scalar.style == .plain else { return nil }
        switch scalar.string.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default:
            let text = scalar.string.filter { $0 != "_" }
            guard text.contains(":") else { return Double(text) }
            return sexagesimal(text, create: { Double($0) }, times: { $0 * $1 }, plus: { $0 + $1 })
                .map { $0.negative ? -$0.value : $0.value }
        }
    }
}

extension Bool {
    /// true/yes/on and false/no/off in any case; nil for a scalar tagged `str`.
    public static func construct(from scalar: YAML.Node.Scalar) -> Bool? {
        guard scalar.tag != .str else { return nil }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }
}

extension FixedWidthInteger {
    /// Yams' integer constructor: "0" is 0; else an optional sign, then 0x, 0b, 0o or 0 (octal)
    /// and the digits in that radix, or sexagesimal, or decimal. A sign before a radix prefix
    /// keeps a lone "-0" from reading (Yams refused it too). Unlike Yams, a sexagesimal number
    /// too big for the type is nil, not a crash.
    fileprivate static func constructInteger(from scalar: YAML.Node.Scalar) -> Self? {
        guard scalar.style == .any || scalar.style == .plain else { return nil }
        let text = scalar.string.filter { $0 != "_" }
        if text == "0" { return 0 }
        let negative = text.hasPrefix("-")
        guard Self.isSigned || !negative else { return nil }
        let signPrefix = negative ? "-" : ""
        let body = text.dropFirst(negative || text.hasPrefix("+") ? 1 : 0)
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8), ("0", 8)] where body.hasPrefix(prefix) {
            return Self(signPrefix + body.dropFirst(prefix.count), radix: radix)
        }
        guard body.contains(":") else { return Self(text) }
        let parts = sexagesimal(
            text, create: { Self($0, radix: 10) },
            times: { let (product, overflow) = $0.multipliedReportingOverflow(by: $1); return overflow ? nil : product },
            plus: { let (sum, overflow) = $0.addingReportingOverflow($1); return overflow ? nil : sum })
        guard let parts else { return nil }
        guard parts.negative else { return parts.value }
        let (negated, overflow) = Self.zero.subtractingReportingOverflow(parts.value)
        return overflow ? nil : negated
    }
}

/// `[-+]a:b:c` as a·60² + b·60 + c, each part read by `create`; nil when a part does not read
/// (or `times`/`plus` overflow). The sign is returned apart, for the caller to apply.
private func sexagesimal<T: ExpressibleByIntegerLiteral>(
    _ text: String, create: (String) -> T?, times: (T, T) -> T?, plus: (T, T) -> T?
) -> (negative: Bool, value: T)? {
    var digits = Substring(text)
    let negative = digits.hasPrefix("-")
    if negative || digits.hasPrefix("+") { digits = digits.dropFirst() }
    var value: T = 0
    var base: T? = 1
    for part in digits.split(separator: ":", omittingEmptySubsequences: false).reversed() {
        guard let digit = create(String(part)), let place = base,
              let scaled = times(digit, place), let sum = plus(value, scaled) else { return nil }
        value = sum
        base = times(place, 60)
    }
    return (negative, value)
}
