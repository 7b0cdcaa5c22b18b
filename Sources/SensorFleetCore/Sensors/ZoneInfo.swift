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
import Synchronization

/// An IANA time zone (`Europe/Berlin`) read from the system's tz database, for the UTC offset at
/// an instant. FoundationEssentials has no tz database (`TimeZone(identifier: "Europe/Berlin")`
/// is nil there), so a `timezone:` setting is looked up here: the TZif file in
/// `$TZDIR` or `/usr/share/zoneinfo` (RFC 8536), its transition table, and after the table's
/// last transition the POSIX TZ rule in its footer.
///
/// The names accepted are the ones Foundation's `TimeZone(identifier:)` accepted: the zone
/// files (not `posix/`, `right/`, `localtime`, `posixrules` or the tables beside them),
/// `GMT`/`UTC` with an optional offset (`GMT+1`, `UTC-05:30`, `GMT+0530`: east is plus), and
/// ICU's old three-letter names (`PST`, `IST`, …) as the zones they stand for.
struct ZoneInfo: Sendable {
    /// A local time type: offset from UTC and whether it is daylight saving time.
    struct LocalType: Sendable, Equatable {
        var utcOffset: Int
        var isDST: Bool
    }

    /// Transition instants (seconds since 1970, UTC), ascending.
    private let transitions: [Int64]
    /// The local time type from each transition on (an index into `types`).
    private let typeAfter: [Int]
    private let types: [LocalType]
    /// The footer's rule, for instants after the last transition (nil: none, or not understood).
    private let rule: PosixZoneRule?

    /// The zone `identifier`, or nil when there is none by that name (or its file is not a
    /// TZif file). What validates `timezone:` (in place of `TimeZone(identifier:)`, which
    /// knows no zone without ICU).
    /// - Parameters:
    ///   - identifier: `Europe/Berlin`, `UTC`, `GMT+2`, …
    ///   - directory: the tz database; `$TZDIR` or `/usr/share/zoneinfo` unless given.
    init?(identifier: String, directory: String = ZoneInfo.directory) {
        if let offset = Self.gmtOffset(identifier) {
            self.init(fixedOffset: offset)
            return
        }
        let name = Self.icuAliases[identifier] ?? identifier
        guard Self.isZoneName(name), let bytes = Self.readFile(directory + "/" + name) else { return nil }
        self.init(tzif: bytes)
    }

    /// The zone `identifier` from the default tz directory, read once per process: the devices
    /// of a fleet share one copy of its tables (as Foundation's `TimeZone` cache had it).
    static func shared(_ identifier: String) -> ZoneInfo? {
        if let known = cache.withLock({ $0[identifier] }) { return known }
        let zone = ZoneInfo(identifier: identifier)
        cache.withLock { $0[identifier] = zone }
        return zone
    }

    private static let cache = Mutex<[String: ZoneInfo?]>([:])

    /// A zone always `offset` seconds east of UTC.
    init(fixedOffset offset: Int) {
        transitions = []
        typeAfter = []
        types = [LocalType(utcOffset: offset, isDST: false)]
        rule = nil
    }

    /// Parses the contents of a TZif file: the 64-bit data of version 2 and later, with the
    /// footer's rule; the 32-bit data of version 1 (or of a later file whose 64-bit part is
    /// damaged), without. Nil if it is not a TZif file.
    init?(tzif bytes: [UInt8]) {
        var reader = TZifReader(bytes: bytes)
        guard let first = reader.header(), let v1 = reader.block(first, timeSize: 4) else { return nil }
        if first.version >= 2, let second = reader.header(), let v2 = reader.block(second, timeSize: 8) {
            transitions = v2.transitions
            typeAfter = v2.typeAfter
            types = v2.types
            rule = reader.footer().flatMap(PosixZoneRule.init)
        } else {
            transitions = v1.transitions
            typeAfter = v1.typeAfter
            types = v1.types
            rule = nil
        }
    }

    /// The last instant of the transition table; later ones follow the footer's rule.
    var lastTransition: Int64? { transitions.last }

    /// Seconds east of UTC at `unixSeconds` (seconds since 1970, UTC).
    func utcOffset(at unixSeconds: Int64) -> Int {
        localType(at: unixSeconds).utcOffset
    }

    /// The local time type at `unixSeconds`.
    func localType(at unixSeconds: Int64) -> LocalType {
        guard let last = transitions.last else { return rule?.localType(at: unixSeconds) ?? types[0] }
        // Before the first transition: type 0 (RFC 8536 § 3.2).
        if unixSeconds < transitions[0] { return types[0] }
        if unixSeconds >= last {
            if unixSeconds > last, let rule { return rule.localType(at: unixSeconds) }
            return types[typeAfter[typeAfter.count - 1]]
        }
        // The last transition at or before the instant.
        var low = 0, high = transitions.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if transitions[middle] <= unixSeconds { low = middle } else { high = middle - 1 }
        }
        return types[typeAfter[low]]
    }

    // MARK: Names

    /// `$TZDIR`, else `/usr/share/zoneinfo`.
    static var directory: String {
        if let value = getenv("TZDIR"), value.pointee != 0 {
            let dir = String(cString: value)
            return dir.hasSuffix("/") && dir.count > 1 ? String(dir.dropLast()) : dir
        }
        return "/usr/share/zoneinfo"
    }

    /// A name that may be a zone file: relative, no `.` or `..` step, and none of the files
    /// beside the zones that Foundation's `TimeZone` did not take for one.
    static func isZoneName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\0") else { return false }
        let steps = name.split(separator: "/", omittingEmptySubsequences: false)
        guard steps.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return false }
        if steps.count > 1, steps[0] == "posix" || steps[0] == "right" { return false }
        return name != "localtime" && name != "posixrules"
    }

    /// ICU's old three-letter zone names (Java's), which are not files in the tz database, as the
    /// zones ICU took them for (checked against Foundation's `TimeZone`, 1970 to 2039).
    static let icuAliases: [String: String] = [
        "ACT": "Australia/Darwin", "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
        "ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
        "CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago", "CTT": "Asia/Shanghai",
        "EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris", "IET": "America/Indiana/Indianapolis",
        "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia", "NET": "Asia/Yerevan",
        "NST": "Pacific/Auckland", "PLT": "Asia/Karachi", "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
        "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
        "US/Pacific-New": "America/Los_Angeles",
    ]

    /// `GMT`, `UTC`, or either followed by `+`/`-` and H, HH, HHMM, H:MM, HH:MM (or `.` for
    /// `:`), hours up to 18 and minutes up to 59 (18 only with 00): Foundation's fixed-offset
    /// names, east of UTC positive. Seconds east, or nil for any other name.
    static func gmtOffset(_ name: String) -> Int? {
        guard name.hasPrefix("GMT") || name.hasPrefix("UTC") else { return nil }
        let rest = Array(name.utf8.dropFirst(3))
        if rest.isEmpty { return 0 }
        guard rest.count >= 2, rest[0] == UInt8(ascii: "+") || rest[0] == UInt8(ascii: "-") else { return nil }
        let sign = rest[0] == UInt8(ascii: "-") ? -1 : 1
        let body = rest.dropFirst()
        func digits(_ part: ArraySlice<UInt8>) -> Int? {
            guard !part.isEmpty, part.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return part.reduce(0) { $0 * 10 + Int($1 - 48) }
        }
        let hours: Int?, minutes: Int?
        if let separator = body.firstIndex(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) {
            let h = body[body.startIndex..<separator], m = body[(separator + 1)...]
            guard (1...2).contains(h.count), m.count == 2 else { return nil }
            hours = digits(h)
            minutes = digits(m)
        } else {
            switch body.count {
            case 1, 2: hours = digits(body); minutes = 0
            case 4: hours = digits(body.prefix(2)); minutes = digits(body.suffix(2))
            default: return nil
            }
        }
        guard let hours, let minutes, hours <= 18, minutes <= 59, hours < 18 || minutes == 0 else { return nil }
        return sign * (hours * 3600 + minutes * 60)
    }

    /// A small file's bytes (TZif files are a few KiB), or nil.
    private static func readFile(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else { return nil }
        return [UInt8](data)
    }
}

/// Reads a TZif file front to back.
private struct TZifReader {
    struct Header {
        var version: Int
        var isUTCCount, isStdCount, leapCount, timeCount, typeCount, charCount: Int
    }

    /// What a data block says: transitions, the type after each, the types.
    struct Block {
        var transitions: [Int64]
        var typeAfter: [Int]
        var types: [ZoneInfo.LocalType]
    }

    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func header() -> Header? {
        guard position + 44 <= bytes.count, Array(bytes[position..<(position + 4)]) == Array("TZif".utf8) else { return nil }
        let versionByte = bytes[position + 4]
        let version = versionByte == 0 ? 1 : Int(versionByte) - 48
        guard (1...9).contains(version) else { return nil }
        position += 20
        guard let counts = integers(count: 6, size: 4), counts.allSatisfy({ $0 >= 0 && $0 < 1 << 20 }) else { return nil }
        return Header(version: version, isUTCCount: Int(counts[0]), isStdCount: Int(counts[1]), leapCount: Int(counts[2]),
                      timeCount: Int(counts[3]), typeCount: Int(counts[4]), charCount: Int(counts[5]))
    }

    /// The data block after `header`, with transition times of `timeSize` bytes (4 in the
    /// version 1 block, 8 in the later one); reads past the leap seconds and indicators.
    mutating func block(_ header: Header, timeSize: Int) -> Block? {
        guard header.typeCount > 0,
              let times = integers(count: header.timeCount, size: timeSize),
              let indices = bytes(count: header.timeCount).map(Array.init),
              let typeBytes = bytes(count: header.typeCount * 6).map(Array.init),
              indices.allSatisfy({ Int($0) < header.typeCount }),
              skip(header.charCount + header.leapCount * (timeSize + 4) + header.isStdCount + header.isUTCCount)
        else { return nil }
        let types = (0..<header.typeCount).map { i in
            let b = typeBytes[(i * 6)..<(i * 6 + 6)].map(UInt32.init)
            let offset = Int32(bitPattern: b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3])
            return ZoneInfo.LocalType(utcOffset: Int(offset), isDST: b[4] != 0)
        }
        return Block(transitions: times, typeAfter: indices.map(Int.init), types: types)
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, position + count <= bytes.count else { return false }
        position += count
        return true
    }

    mutating func bytes(count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, position + count <= bytes.count else { return nil }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    /// `count` big-endian two's-complement integers of `size` bytes (4 or 8).
    mutating func integers(count: Int, size: Int) -> [Int64]? {
        guard let raw = bytes(count: count * size) else { return nil }
        var values: [Int64] = []
        values.reserveCapacity(count)
        var index = raw.startIndex
        for _ in 0..<count {
            var value: UInt64 = 0
            for _ in 0..<size {
                value = value << 8 | UInt64(raw[index])
                index += 1
            }
            values.append(size == 4 ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value))
        }
        return values
    }

    /// The footer: a POSIX TZ string between two newlines (empty: none).
    mutating func footer() -> String? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\n") else { return nil }
        guard let end = bytes[(position + 1)...].firstIndex(of: UInt8(ascii: "\n")), end > position + 1 else { return nil }
        return String(decoding: bytes[(position + 1)..<end], as: UTF8.self)
    }
}

/// A POSIX TZ rule, as in a TZif footer: `STDoffset[DST[offset][,start[/time],end[/time]]]`,
/// e.g. `CET-1CEST,M3.5.0,M10.5.0/3` or `<+0530>-5:30`. The offset is west of UTC (the
/// opposite sign of ours); DST without an offset is one hour ahead of standard time; the
/// change times default to 02:00 and may be negative or up to 167 hours (RFC 8536 § 3.3.1).
struct PosixZoneRule: Sendable, Equatable {
    /// A day of the year a change happens on.
    enum Day: Sendable, Equatable {
        /// `Mm.w.d`: day `d` (0 Sunday) of week `w` (5: the last) of month `m`.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
        /// `Jn`: day n, 1 to 365, February 29 never counted.
        case julian(Int)
        /// `n`: day n, 0 to 365, February 29 counted.
        case zeroBased(Int)
    }
    struct Change: Sendable, Equatable {
        var day: Day
        /// Seconds after local midnight (in the time in force before the change).
        var time: Int
    }

    var standard: ZoneInfo.LocalType
    var daylight: ZoneInfo.LocalType?
    var start: Change?
    var end: Change?

    /// Parses `text`; nil unless the whole of it is understood (DST needs its change rule).
    init?(_ text: String) {
        var scanner = RuleScanner(Array(text.utf8))
        guard scanner.name(), let stdWest = scanner.offset() else { return nil }
        standard = ZoneInfo.LocalType(utcOffset: -stdWest, isDST: false)
        if scanner.atEnd {
            daylight = nil
            return
        }
        guard scanner.name() else { return nil }
        let dstWest = scanner.peekIsOffsetStart ? scanner.offset() : stdWest - 3600
        guard let dstWest else { return nil }
        daylight = ZoneInfo.LocalType(utcOffset: -dstWest, isDST: true)
        guard scanner.consume(","), let start = scanner.change(), scanner.consume(","), let end = scanner.change(),
              scanner.atEnd else { return nil }
        self.start = start
        self.end = end
    }

    /// The local time type at `unixSeconds`.
    func localType(at unixSeconds: Int64) -> ZoneInfo.LocalType {
        guard let daylight, let start, let end else { return standard }
        // The changes of the year the instant falls in (in UTC, as glibc reckons it): the start
        // is given in standard time, the end in daylight saving time.
        let year = Self.civil(days: Self.floorDivide(unixSeconds, 86_400)).year
        let startAt = Self.instant(of: start, year: year) - Int64(standard.utcOffset)
        let endAt = Self.instant(of: end, year: year) - Int64(daylight.utcOffset)
        let inDaylight = startAt < endAt
            ? unixSeconds >= startAt && unixSeconds < endAt
            : !(unixSeconds >= endAt && unixSeconds < startAt)  // southern hemisphere
        return inDaylight ? daylight : standard
    }

    /// Seconds from 1970-01-01 00:00 to the change's local date and time in `year`.
    private static func instant(of change: Change, year: Int64) -> Int64 {
        let yearStart = days(year: year, month: 1, day: 1)
        let day: Int64
        switch change.day {
        case .zeroBased(let n):
            day = yearStart + Int64(n)
        case .julian(let n):
            day = yearStart + Int64(n - 1) + (isLeap(year) && n >= 60 ? 1 : 0)
        case .monthWeekDay(let month, let week, let weekday):
            let first = days(year: year, month: Int64(month), day: 1)
            // 1970-01-01 was a Thursday (4).
            let firstWeekday = Int(((first + 4) % 7 + 7) % 7)
            var dayOfMonth = 1 + (weekday - firstWeekday + 7) % 7 + (week - 1) * 7
            let length = monthLength(year: year, month: month)
            while dayOfMonth > length { dayOfMonth -= 7 }
            day = first + Int64(dayOfMonth - 1)
        }
        return day * 86_400 + Int64(change.time)
    }

    private static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func monthLength(year: Int64, month: Int) -> Int {
        [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count since 1970-01-01 (civil_from_days).
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// The pieces of a POSIX TZ string.
private struct RuleScanner {
    let text: [UInt8]
    var position = 0

    init(_ text: [UInt8]) { self.text = text }

    var atEnd: Bool { position == text.count }
    private var current: UInt8? { position < text.count ? text[position] : nil }
    var peekIsOffsetStart: Bool {
        guard let c = current else { return false }
        return c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || isDigit(c)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    mutating func consume(_ character: Unicode.Scalar) -> Bool {
        guard current == UInt8(ascii: character) else { return false }
        position += 1
        return true
    }

    /// A zone abbreviation: three or more letters, or anything in `<…>` (`<+0530>`).
    mutating func name() -> Bool {
        if consume("<") {
            let start = position
            while let c = current, c != UInt8(ascii: ">") { position += 1 }
            guard position - start >= 3, consume(">") else { return false }
            return true
        }
        let start = position
        while let c = current, (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") { position += 1 }
        return position - start >= 3
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167).
    mutating func offset() -> Int? {
        var sign = 1
        if consume("-") { sign = -1 } else { _ = consume("+") }
        guard let seconds = clock(maxHours: 167) else { return nil }
        return sign * seconds
    }

    /// `hh[:mm[:ss]]` in seconds.
    private mutating func clock(maxHours: Int) -> Int? {
        guard let hours = number(maxDigits: 3), hours <= maxHours else { return nil }
        var seconds = hours * 3600
        if consume(":") {
            guard let minutes = number(maxDigits: 2), minutes <= 59 else { return nil }
            seconds += minutes * 60
            if consume(":") {
                guard let secs = number(maxDigits: 2), secs <= 59 else { return nil }
                seconds += secs
            }
        }
        return seconds
    }

    private mutating func number(maxDigits: Int) -> Int? {
        let start = position
        var value = 0
        while let c = current, isDigit(c), position - start < maxDigits {
            value = value * 10 + Int(c - 48)
            position += 1
        }
        return position > start ? value : nil
    }

    /// `Mm.w.d`, `Jn` or `n`, then an optional `/time` (default 02:00, may be negative).
    mutating func change() -> PosixZoneRule.Change? {
        let day: PosixZoneRule.Day
        if consume("M") {
            guard let month = number(maxDigits: 2), (1...12).contains(month), consume("."),
                  let week = number(maxDigits: 1), (1...5).contains(week), consume("."),
                  let weekday = number(maxDigits: 1), weekday <= 6 else { return nil }
            day = .monthWeekDay(month: month, week: week, weekday: weekday)
        } else if consume("J") {
            guard let n = number(maxDigits: 3), (1...365).contains(n) else { return nil }
            day = .julian(n)
        } else {
            guard let n = number(maxDigits: 3), n <= 365 else { return nil }
            day = .zeroBased(n)
        }
        var time = 7200
        if consume("/") {
            var sign = 1
            if consume("-") { sign = -1 } else { _ = consume("+") }
            guard let seconds = clock(maxHours: 167) else { return nil }
            time = sign * seconds
        }
        return PosixZoneRule.Change(day: day, time: time)
    }
}
