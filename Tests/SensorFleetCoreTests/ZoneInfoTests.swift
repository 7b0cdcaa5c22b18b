import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// A TZif file built by hand: `version` 0 (v1 only) or "2"/"3"…, one 64-bit (or 32-bit for v1)
/// block with `transitions` (instant, type index) over `types` (UTC offset, DST), and `footer`.
private func tzif(version: UInt8, transitions: [(Int64, UInt8)], types: [(Int32, Bool)], footer: String?) -> [UInt8] {
    func be(_ value: Int64, size: Int) -> [UInt8] { (0..<size).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    func block(timeSize: Int) -> [UInt8] {
        let designations = Array("ZZZ\0".utf8)
        var bytes = Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
        for count in [0, 0, 0, transitions.count, types.count, designations.count] { bytes += be(Int64(count), size: 4) }
        for (at, _) in transitions { bytes += be(at, size: timeSize) }
        bytes += transitions.map(\.1)
        for (offset, dst) in types { bytes += be(Int64(offset), size: 4) + [dst ? 1 : 0, 0] }
        return bytes + designations
    }
    var bytes = block(timeSize: 4)
    if version != 0 {
        bytes += block(timeSize: 8)
        if let footer { bytes += Array("\n\(footer)\n".utf8) }
    }
    return bytes
}

@Suite("ZoneInfo: UTC offsets from the tz database (TZif) and POSIX TZ rules, without Foundation's ICU")
struct ZoneInfoTests {
    // Instants (seconds since 1970, UTC).
    static let january2026: Int64 = 1_768_478_400   // 2026-01-15 12:00
    static let july2026: Int64 = 1_784_116_800      // 2026-07-15 12:00

    @Test("Europe/Berlin: +1 h in winter, +2 h in summer, the change at 01:00 UTC on both sides (March and October 2026)")
    func berlin() throws {
        let berlin = try #require(ZoneInfo(identifier: "Europe/Berlin"))
        #expect(berlin.utcOffset(at: Self.january2026) == 3600)
        #expect(berlin.utcOffset(at: Self.july2026) == 7200)
        let spring: Int64 = 1_774_746_000  // 2026-03-29 01:00 UTC, 02:00 CET -> 03:00 CEST
        #expect(berlin.utcOffset(at: spring - 1) == 3600)
        #expect(berlin.utcOffset(at: spring) == 7200)
        #expect(berlin.localType(at: spring).isDST)
        let autumn: Int64 = 1_792_890_000  // 2026-10-25 01:00 UTC, 03:00 CEST -> 02:00 CET
        #expect(berlin.utcOffset(at: autumn - 1) == 7200)
        #expect(berlin.utcOffset(at: autumn) == 3600)
    }

    @Test("America/New_York: -5 h, -4 h in summer, the March and November 2026 changes; Asia/Kolkata +5:30; UTC")
    func otherZones() throws {
        let newYork = try #require(ZoneInfo(identifier: "America/New_York"))
        #expect(newYork.utcOffset(at: Self.january2026) == -18_000)
        #expect(newYork.utcOffset(at: Self.july2026) == -14_400)
        let spring: Int64 = 1_772_953_200  // 2026-03-08 07:00 UTC
        #expect(newYork.utcOffset(at: spring - 1) == -18_000)
        #expect(newYork.utcOffset(at: spring) == -14_400)
        let autumn: Int64 = 1_793_512_800  // 2026-11-01 06:00 UTC
        #expect(newYork.utcOffset(at: autumn - 1) == -14_400)
        #expect(newYork.utcOffset(at: autumn) == -18_000)

        let kolkata = try #require(ZoneInfo(identifier: "Asia/Kolkata"))
        #expect(kolkata.utcOffset(at: Self.january2026) == 19_800)
        #expect(kolkata.utcOffset(at: Self.july2026) == 19_800)

        for name in ["UTC", "Etc/UTC", "GMT"] {
            let utc = try #require(ZoneInfo(identifier: name), "\(name)")
            #expect(utc.utcOffset(at: Self.july2026) == 0)
            #expect(utc.utcOffset(at: -2_000_000_000) == 0)
        }
    }

    @Test("after the file's last transition the footer's rule decides: Berlin and New York in 2040 and 2060, Sydney (south)")
    func footerRule() throws {
        let berlin = try #require(ZoneInfo(identifier: "Europe/Berlin"))
        let spring2040: Int64 = 2_216_250_000   // 2040-03-25 01:00 UTC
        let autumn2040: Int64 = 2_234_998_800   // 2040-10-28 01:00 UTC
        let july2060: Int64 = 2_855_865_600
        let january2060: Int64 = 2_840_140_800
        #expect(try #require(berlin.lastTransition) < january2060)
        #expect(berlin.utcOffset(at: spring2040 - 1) == 3600)
        #expect(berlin.utcOffset(at: spring2040) == 7200)
        #expect(berlin.utcOffset(at: autumn2040 - 1) == 7200)
        #expect(berlin.utcOffset(at: autumn2040) == 3600)
        #expect(berlin.utcOffset(at: july2060) == 7200)
        #expect(berlin.utcOffset(at: january2060) == 3600)

        let newYork = try #require(ZoneInfo(identifier: "America/New_York"))
        #expect(newYork.utcOffset(at: july2060) == -14_400)
        #expect(newYork.utcOffset(at: january2060) == -18_000)

        // Southern hemisphere: daylight time from October to April, across the new year.
        let sydney = try #require(ZoneInfo(identifier: "Australia/Sydney"))
        #expect(sydney.utcOffset(at: july2060) == 36_000)
        #expect(sydney.utcOffset(at: january2060) == 39_600)
        let end2040: Int64 = 2_216_822_400    // 2040-03-31 16:00 UTC
        let start2040: Int64 = 2_233_152_000  // 2040-10-06 16:00 UTC
        #expect(sydney.utcOffset(at: end2040 - 1) == 39_600)
        #expect(sydney.utcOffset(at: end2040) == 36_000)
        #expect(sydney.utcOffset(at: start2040 - 1) == 36_000)
        #expect(sydney.utcOffset(at: start2040) == 39_600)
    }

    @Test("an unknown name is nil, as Foundation's TimeZone(identifier:) was; so are paths out of the database and files that are no zone")
    func unknownNames() {
        for name in ["Mars/Olympus", "", "europe/berlin", "Europe/Berlin/", "Europe//Berlin", "../../etc/passwd",
                     "/usr/share/zoneinfo/UTC", "Europe/../UTC", "posix/Europe/Berlin", "right/UTC", "localtime",
                     "posixrules", "zone.tab", "Europe", "GMT+19", "GMT+18:30", "UTC0", "GMT+", "GMT+1:5", "Z"] {
            #expect(ZoneInfo(identifier: name) == nil, "\(name)")
        }
        // The devices' shared copies: read once, the same answers (an unknown name stays nil).
        for _ in 0..<2 {
            #expect(ZoneInfo.shared("Mars/Olympus") == nil)
            #expect(ZoneInfo.shared("Europe/Berlin")?.utcOffset(at: Self.july2026) == 7200)
        }
    }

    @Test("Foundation's other names: GMT/UTC with an offset (east is plus), ICU's three-letter names")
    func fixedAndOldNames() throws {
        let cases: [(String, Int)] = [("GMT+1", 3600), ("UTC+2", 7200), ("GMT-0530", -19_800), ("UTC+05:30", 19_800),
                                      ("GMT+9.45", 35_100), ("GMT+18", 64_800), ("GMT-00", 0), ("Etc/GMT+1", -3600)]
        for (name, offset) in cases {
            #expect(try #require(ZoneInfo(identifier: name), "\(name)").utcOffset(at: Self.july2026) == offset, "\(name)")
        }
        #expect(try #require(ZoneInfo(identifier: "PST")).utcOffset(at: Self.july2026) == -25_200)
        #expect(try #require(ZoneInfo(identifier: "IST")).utcOffset(at: Self.july2026) == 19_800)
    }

    @Test("a zone from another tz directory; version 1 files (32-bit table, no footer); a footer not understood keeps the last type")
    func handMadeFiles() throws {
        let dir = try TempDir("zoneinfo")
        defer { dir.remove() }
        // Version 2: +1 h until 1000, then +2 h (DST), then the footer: UTC+3 all year.
        let v2 = tzif(version: UInt8(ascii: "2"), transitions: [(1000, 1)], types: [(3600, false), (7200, true)], footer: "<+03>-3")
        try Data(v2).write(to: URL(fileURLWithPath: "\(dir.path)/Test"))
        #expect(ZoneInfo(identifier: "Test") == nil)
        let zone = try #require(ZoneInfo(identifier: "Test", directory: dir.path))
        #expect(zone.utcOffset(at: 999) == 3600)      // before the first transition: type 0
        #expect(zone.utcOffset(at: 1000) == 7200)     // at the last transition: the table
        #expect(zone.utcOffset(at: 1001) == 10_800)   // after it: the footer

        let v1 = try #require(ZoneInfo(tzif: tzif(version: 0, transitions: [(1000, 1)], types: [(3600, false), (7200, true)], footer: nil)))
        #expect(v1.utcOffset(at: -5) == 3600)
        #expect(v1.utcOffset(at: 5000) == 7200)

        let garbled = try #require(ZoneInfo(tzif: tzif(version: UInt8(ascii: "3"), transitions: [(1000, 1)],
                                                      types: [(3600, false), (7200, true)], footer: "not a rule")))
        #expect(garbled.utcOffset(at: 1_000_000) == 7200)

        let noTable = try #require(ZoneInfo(tzif: tzif(version: UInt8(ascii: "2"), transitions: [], types: [(0, false)],
                                                      footer: "EST5EDT,M3.2.0,M11.1.0")))
        #expect(noTable.utcOffset(at: Self.january2026) == -18_000)
        #expect(noTable.utcOffset(at: Self.july2026) == -14_400)

        #expect(ZoneInfo(tzif: Array("not a zone file".utf8)) == nil)
        #expect(ZoneInfo(tzif: Array(v2.prefix(60))) == nil)
    }

    @Test("POSIX TZ rules: names in <>, offsets west of UTC, DST one hour ahead by default, Mm.w.d / Jn / n days, change times")
    func posixRules() throws {
        let india = try #require(PosixZoneRule("<+0530>-5:30"))
        #expect(india.standard.utcOffset == 19_800 && india.daylight == nil)
        let europe = try #require(PosixZoneRule("CET-1CEST,M3.5.0,M10.5.0/3"))
        #expect(europe.standard.utcOffset == 3600 && europe.daylight?.utcOffset == 7200)
        #expect(europe.start == PosixZoneRule.Change(day: .monthWeekDay(month: 3, week: 5, weekday: 0), time: 7200))
        #expect(europe.end == PosixZoneRule.Change(day: .monthWeekDay(month: 10, week: 5, weekday: 0), time: 10_800))
        #expect(europe.localType(at: 1_774_746_000 - 1).utcOffset == 3600)
        #expect(europe.localType(at: 1_774_746_000).utcOffset == 7200)
        // Explicit DST offset, Julian days (1 March in any year is J60), negative and > 24 h times.
        let julian = try #require(PosixZoneRule("AAA+3BBB+1:30,J60/-1,300/26"))
        #expect(julian.standard.utcOffset == -10_800 && julian.daylight?.utcOffset == -5400)
        #expect(julian.start == PosixZoneRule.Change(day: .julian(60), time: -3600))
        #expect(julian.end == PosixZoneRule.Change(day: .zeroBased(300), time: 93_600))
        // DST all year (RFC 8536 § 3.3.1's example).
        let always = try #require(PosixZoneRule("EST5EDT,0/0,J365/25"))
        #expect(always.localType(at: Self.january2026).utcOffset == -14_400)
        #expect(always.localType(at: Self.july2026).utcOffset == -14_400)
        for bad in ["", "C-1", "CET", "CET-1CEST", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "<+05-5", "CET-1 "] {
            #expect(PosixZoneRule(bad) == nil, "\(bad)")
        }
    }

    @Test("calendar arithmetic: days since 1970 and back, leap years, before 1970")
    func civilDays() {
        #expect(PosixZoneRule.days(year: 1970, month: 1, day: 1) == 0)
        #expect(PosixZoneRule.days(year: 2000, month: 3, day: 1) == 11_017)
        #expect(PosixZoneRule.days(year: 1969, month: 12, day: 31) == -1)
        for days: Int64 in [-800_000, -1, 0, 59, 11_016, 20_000, 1_000_000] {
            let date = PosixZoneRule.civil(days: days)
            #expect(PosixZoneRule.days(year: date.year, month: date.month, day: date.day) == days)
        }
    }
}
