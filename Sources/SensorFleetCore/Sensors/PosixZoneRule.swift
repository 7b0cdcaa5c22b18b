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
