extension YAML.Tag {
    /// The tag of a plain scalar written without one: Yams' default resolver (YAML 1.1), whose
    /// rules are tried in its order — bool, int, float, merge, null, timestamp, value — and the
    /// first that matches the whole text wins; else `str`. Each rule is Yams' regular expression
    /// written out by hand (ASCII only, as `[0-9]` is); the pattern is quoted above each matcher.
    public static func resolving(plain text: String) -> YAML.Tag {
        let bytes = Array(text.utf8)
        if isBool(text) { return .bool }
        if isInt(bytes) { return .int }
        if isFloat(bytes) { return .float }
        if text == "<<" { return .merge }
        if isNull(text) { return .null }
        if isTimestamp(bytes) { return .timestamp }
        if text == "=" { return .value }
        return .str
    }

    /// `yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF`
    static func isBool(_ text: String) -> Bool {
        ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
         "on", "On", "ON", "off", "Off", "OFF"].contains(text)
    }

    /// `~|null|Null|NULL|` (the empty text too)
    static func isNull(_ text: String) -> Bool {
        ["~", "null", "Null", "NULL", ""].contains(text)
    }

    /// ```
    /// [-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
    /// | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    /// ```
    static func isInt(_ bytes: [UInt8]) -> Bool {
        var scan = Scan(bytes)
        scan.sign()
        let body = scan
        if scan.take("0b"), scan.many(isBinary), scan.atEnd { return true }
        scan = body
        if scan.take("0") {
            _ = scan.take("o")
            if scan.many(isOctal), scan.atEnd { return true }
        }
        scan = body
        if scan.take("0"), scan.atEnd { return true }
        scan = body
        if scan.one(isNonZeroDigit) {
            scan.any(isDigitOrUnderscore)
            if scan.atEnd { return true }
            if scan.sexagesimalGroups(), scan.atEnd { return true }
        }
        scan = body
        return scan.take("0x") && scan.many(isHex) && scan.atEnd
    }

    /// ```
    /// [-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)? | \.[0-9_]+(?:[eE][-+][0-9]+)?
    /// | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
    /// ```
    static func isFloat(_ bytes: [UInt8]) -> Bool {
        var scan = Scan(bytes)
        scan.sign()
        let signed = scan
        // Decimal, with an optional fraction and exponent.
        if scan.one(isDigit) {
            scan.any(isDigitOrUnderscore)
            let whole = scan
            if scan.take(".") { scan.any(isDigitOrUnderscore) }
            if scan.exponent(signRequired: false), scan.atEnd { return true }
            // Sexagesimal, with a fraction.
            scan = whole
            if scan.sexagesimalGroups(), scan.take(".") {
                scan.any(isDigitOrUnderscore)
                if scan.atEnd { return true }
            }
        }
        scan = signed
        if scan.take("."), ["inf", "Inf", "INF"].contains(where: { scan.rest.elementsEqual($0.utf8) }) { return true }
        // The two forms that take no sign.
        guard !signed.consumedSign else { return false }
        scan = Scan(bytes)
        if scan.take("."), scan.many(isDigitOrUnderscore), scan.exponent(signRequired: true), scan.atEnd { return true }
        scan = Scan(bytes)
        return scan.take(".") && ["nan", "NaN", "NAN"].contains(where: { scan.rest.elementsEqual($0.utf8) })
    }

    /// ```
    /// [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    /// | [0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]
    ///   (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
    /// ```
    static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        var scan = Scan(bytes)
        guard scan.digits(4...4), scan.take("-") else { return false }
        let afterYear = scan
        if scan.digits(2...2), scan.take("-"), scan.digits(2...2), scan.atEnd { return true }
        scan = afterYear
        guard scan.digits(1...2), scan.take("-"), scan.digits(1...2) else { return false }
        if !scan.take("T"), !scan.take("t") {
            guard scan.many(isBlank) else { return false }
        }
        guard scan.digits(1...2), scan.take(":"), scan.digits(2...2), scan.take(":"), scan.digits(2...2) else { return false }
        if scan.take(".") { scan.any(isDigit) }
        if scan.atEnd { return true }
        scan.any(isBlank)
        if scan.take("Z") { return scan.atEnd }
        guard scan.one({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }), scan.digits(1...2) else { return false }
        if scan.take(":") { guard scan.digits(2...2) else { return false } }
        return scan.atEnd
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
private func isNonZeroDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") }
private func isDigitOrUnderscore(_ byte: UInt8) -> Bool { isDigit(byte) || byte == UInt8(ascii: "_") }
private func isBinary(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "0") || byte == UInt8(ascii: "1") || byte == UInt8(ascii: "_") }
private func isOctal(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "7")) || byte == UInt8(ascii: "_")
}
private func isHex(_ byte: UInt8) -> Bool {
    isDigitOrUnderscore(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
}
private func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

/// A cursor over the UTF-8 bytes of a scalar. Every class the patterns repeat (`[0-9_]*`) is
/// disjoint from what may follow it (`.`, `:`, `e`), so taking greedily never needs to back up.
private struct Scan {
    let bytes: [UInt8]
    var at = 0
    var consumedSign = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { at == bytes.count }
    var rest: ArraySlice<UInt8> { bytes[at...] }

    /// `[-+]?`
    mutating func sign() {
        if one({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }) { consumedSign = true }
    }

    mutating func take(_ literal: String) -> Bool {
        let literal = Array(literal.utf8)
        guard bytes[at...].starts(with: literal) else { return false }
        at += literal.count
        return true
    }

    /// One byte of the class.
    mutating func one(_ matches: (UInt8) -> Bool) -> Bool {
        guard at < bytes.count, matches(bytes[at]) else { return false }
        at += 1
        return true
    }

    /// `class*`
    mutating func any(_ matches: (UInt8) -> Bool) {
        while one(matches) {}
    }

    /// `class+`
    mutating func many(_ matches: (UInt8) -> Bool) -> Bool {
        guard one(matches) else { return false }
        any(matches)
        return true
    }

    /// `[0-9]{n,m}`, taking as many as it can (the patterns never follow it with a digit).
    mutating func digits(_ count: ClosedRange<Int>) -> Bool {
        var taken = 0
        while taken < count.upperBound, one(isDigit) { taken += 1 }
        return taken >= count.lowerBound && !(at < bytes.count && isDigit(bytes[at]))
    }

    /// `(?::[0-5]?[0-9])+`: after each colon one digit, or two whose first is 0 to 5.
    mutating func sexagesimalGroups() -> Bool {
        var groups = 0
        while take(":") {
            let start = at
            any(isDigit)
            let run = at - start
            guard run == 1 || (run == 2 && bytes[start] <= UInt8(ascii: "5")) else { return false }
            groups += 1
        }
        return groups > 0
    }

    /// `(?:[eE][-+]?[0-9]+)?` (`[-+]` when the sign is required); false when an exponent starts
    /// but is not complete, so the whole text cannot match.
    mutating func exponent(signRequired: Bool) -> Bool {
        guard one({ $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) else { return true }
        let signed = one({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") })
        guard signed || !signRequired else { return false }
        return many(isDigit)
    }
}
