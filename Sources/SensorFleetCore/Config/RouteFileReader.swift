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

/// A data file a sensor reads at load time (a route, a recording): read whole, bounded in size,
/// and named in messages as the user would write it.
enum DataFile {
    /// Files larger than this are refused (64 MiB).
    static let maximumBytes = 64 << 20

    /// `absolute` relative to the working folder when it lies under it.
    static func display(_ absolute: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        if absolute.hasPrefix(cwd + "/") { return String(absolute.dropFirst(cwd.count + 1)) }
        return absolute
    }

    /// The file's text, or nil with an issue at `field` of `map`.
    static func text(_ path: String, field: String, line: Int?, map: MappingReader, what: String) -> String? {
        let display = display(path)
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            map.log.error(map.file, line: line, field: field, "cannot read the \(what) \(display): \(reason)",
                          fix: "check the path (relative to the device folder) of \(field)")
            return nil
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            map.log.error(map.file, line: line, field: field, "the \(what) \(display) is not a regular file",
                          fix: "point \(field) at a file")
            return nil
        }
        guard Int(info.st_size) <= maximumBytes else {
            map.log.error(map.file, line: line, field: field,
                          "the \(what) \(display) has \(info.st_size) bytes; at most \(maximumBytes) (64 MiB) are read",
                          fix: "shorten the file, e.g. keep every 10th point or row")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            map.log.error(map.file, line: line, field: field, "cannot read the \(what) \(display)",
                          fix: "check that the file can be read by this user")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8)?.replacing("\r\n", with: "\n") else {
            map.log.error(map.file, line: line, field: field, "the \(what) \(display) is not UTF-8 text",
                          fix: "save it as UTF-8")
            return nil
        }
        return text
    }
}

/// Reads a route: a GeoJSON LineString (alone, as a Feature's geometry, or the first in a
/// FeatureCollection; coordinates are [longitude, latitude]) or a GPX file (its track points,
/// else its route points, else its waypoints).
enum RouteFileReader {
    static func read(path: String, field: String, line: Int?, map: MappingReader) -> [GeoPoint]? {
        guard let text = DataFile.text(path, field: field, line: line, map: map, what: "route file") else { return nil }
        let display = DataFile.display(path)
        let trimmed = text.drop { $0.isWhitespace }
        let points: [GeoPoint]?
        if trimmed.hasPrefix("{") {
            points = geoJSON(text, display: display, log: map.log)
        } else if trimmed.hasPrefix("<") {
            points = gpx(text, display: display, log: map.log)
        } else {
            map.log.error(display, field: nil, "neither GeoJSON (a JSON object) nor GPX (XML)",
                          fix: "give \(field) a GeoJSON LineString or a GPX file")
            return nil
        }
        guard let points else { return nil }
        if let problem = problem(with: points) {
            map.log.error(display, field: nil, problem, fix: "give the route at least two different points")
            return nil
        }
        return points
    }

    /// Why these points make no route, or nil.
    static func problem(with points: [GeoPoint]) -> String? {
        if points.count < 2 { return "a route needs at least two points, got \(points.count)" }
        if zip(points, points.dropFirst()).allSatisfy({ GreatCircle.distance($0, $1) == 0 }) {
            return "all points of the route are the same place"
        }
        return nil
    }

    static func problem(latitude: Double, longitude: Double) -> String? {
        if !SettingRange.latitude.contains(latitude) { return "latitude: expected \(SettingRange.latitude.expected), got \(latitude)" }
        if !SettingRange.longitude.contains(longitude) { return "longitude: expected \(SettingRange.longitude.expected), got \(longitude)" }
        return nil
    }

    private static func geoJSON(_ text: String, display: String, log: IssueLog) -> [GeoPoint]? {
        let fix = "give a GeoJSON LineString: {\"type\": \"LineString\", \"coordinates\": [[13.405, 52.52], [13.3777, 52.5163]]} ([longitude, latitude])"
        guard let object = ConfigJSON(parsing: text)?.object else {
            log.error(display, field: nil, "not valid JSON", fix: fix)
            return nil
        }
        func lineString(_ node: [String: ConfigJSON]) -> [ConfigJSON]? {
            switch node["type"]?.string {
            case "LineString": return node["coordinates"]?.array
            case "Feature": return node["geometry"]?.object.flatMap(lineString)
            case "FeatureCollection":
                for feature in node["features"]?.array ?? [] {
                    if let f = feature.object, let found = lineString(f) { return found }
                }
                return nil
            default: return nil
            }
        }
        guard let coordinates = lineString(object) else {
            log.error(display, field: "type", "no LineString (a LineString, a Feature with one, or a FeatureCollection holding one)", fix: fix)
            return nil
        }
        var points: [GeoPoint] = []
        for (i, item) in coordinates.enumerated() {
            guard let pair = item.array, pair.count >= 2, let lon = pair[0].number, let lat = pair[1].number
            else {
                log.error(display, field: "coordinates[\(i)]", "expected [longitude, latitude], got \(SettingText.clipped("\(item)"))", fix: fix)
                return nil
            }
            if let problem = problem(latitude: lat, longitude: lon) {
                log.error(display, field: "coordinates[\(i)]", problem + " (GeoJSON puts longitude first)", fix: fix)
                return nil
            }
            points.append(GeoPoint(latitude: lat, longitude: lon))
        }
        return points
    }

    private static func gpx(_ text: String, display: String, log: IssueLog) -> [GeoPoint]? {
        let fix = "give each point as <trkpt lat=\"52.52\" lon=\"13.405\"> (or <rtept>, <wpt>)"
        for tag in ["<trkpt", "<rtept", "<wpt"] {
            var points: [GeoPoint] = []
            var rest = Substring(text)
            var counted = text.startIndex
            var lineSoFar = 1
            while let range = rest.firstRange(of: tag) {
                let after = rest[range.upperBound...]
                guard let next = after.first, next == " " || next == "\t" || next == "\n" || next == "\r" || next == ">" || next == "/" else {
                    rest = after
                    continue
                }
                let end = after.firstIndex(of: ">") ?? after.endIndex
                let attributes = after[..<end]
                lineSoFar += text[counted..<range.lowerBound].reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
                counted = range.lowerBound
                let line = lineSoFar
                guard let latText = attribute("lat", in: attributes), let lonText = attribute("lon", in: attributes),
                      let lat = Double(latText), let lon = Double(lonText)
                else {
                    log.error(display, line: line, field: String(tag.dropFirst()),
                              "expected numeric lat and lon attributes, got \(SettingText.clipped(String(attributes)))", fix: fix)
                    return nil
                }
                if let problem = problem(latitude: lat, longitude: lon) {
                    log.error(display, line: line, field: String(tag.dropFirst()), problem, fix: fix)
                    return nil
                }
                points.append(GeoPoint(latitude: lat, longitude: lon))
                rest = after[end...]
            }
            if !points.isEmpty { return points }
        }
        log.error(display, field: nil, "no <trkpt>, <rtept> or <wpt> points", fix: fix)
        return nil
    }

    /// The value of `name="…"` (or `'…'`) in a tag's attributes.
    private static func attribute(_ name: String, in attributes: Substring) -> String? {
        var rest = attributes
        while let range = rest.firstRange(of: name) {
            let before = range.lowerBound == attributes.startIndex ? " " : attributes[attributes.index(before: range.lowerBound)]
            var tail = rest[range.upperBound...].drop { $0 == " " }
            rest = rest[range.upperBound...]
            guard before.isWhitespace, tail.first == "=" else { continue }
            tail = tail.dropFirst().drop { $0 == " " }
            guard let quote = tail.first, quote == "\"" || quote == "'" else { return nil }
            let value = tail.dropFirst()
            guard let close = value.firstIndex(of: quote) else { return nil }
            return String(value[..<close]).trimmingSpaces()
        }
        return nil
    }
}
