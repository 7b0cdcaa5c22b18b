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
