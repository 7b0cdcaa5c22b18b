import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// A loop through Berlin Mitte, [latitude, longitude].
private let berlin = [
    GeoPoint(latitude: 52.5163, longitude: 13.3777), GeoPoint(latitude: 52.5170, longitude: 13.3889),
    GeoPoint(latitude: 52.5219, longitude: 13.4132), GeoPoint(latitude: 52.5110, longitude: 13.4040),
    GeoPoint(latitude: 52.5096, longitude: 13.3760),
]

/// Every reading of a route sensor at the given elapsed seconds.
private func drive(_ route: RouteSpec, at times: [Double], precision: Int? = nil) -> [[String: Double]] {
    var sensor = DeviceSensor(spec: SensorSpec(name: "gps", kind: .route(route), precision: precision), fleetSeed: 1,
                              deviceID: "car", sysfsRoot: "/")
    return times.enumerated().map { k, t in
        var readings: [(name: String, value: Double)] = []
        _ = sensor.read(ReadingMoment(elapsed: t, seq: UInt64(k + 1), wallMillis: 0), into: &readings)
        return Dictionary(uniqueKeysWithValues: readings.map { ($0.name, $0.value) })
    }
}

private func point(_ reading: [String: Double]) -> GeoPoint {
    GeoPoint(latitude: reading["latitude"]!, longitude: reading["longitude"]!)
}

@Suite("Physical models and replay: route, thermal, diurnal, replay")
struct SensorModelTests {
    // MARK: route

    @Test("route: reported speed = haversine distance / interval within 1 %, at every reading of 40 minutes, with uneven intervals and corners",
          arguments: [RouteSpec.AtEnd.loop, .reverse, .stop])
    func routeSpeedMatchesTheMovement(_ atEnd: RouteSpec.AtEnd) {
        let route = RouteSpec(points: berlin, speeds: [30, 50, 20, 70], atEnd: atEnd)
        var times: [Double] = []
        var t = 0.37
        for k in 0..<2400 {
            times.append(t)
            t += [1, 0.5, 2, 1.3][k % 4]
        }
        let readings = drive(route, at: times, precision: 7)
        var worst = 0.0
        for k in 1..<readings.count {
            let moved = GreatCircle.distance(point(readings[k - 1]), point(readings[k]))
            let derived = moved / (times[k] - times[k - 1]) * 3.6
            let reported = readings[k]["speed"]!
            if derived < 0.5 {
                #expect(reported < 0.5, "reading \(k): still, yet \(reported) km/h")
                continue
            }
            let error = abs(reported - derived) / derived
            worst = max(worst, error)
            #expect(error < 0.01, "reading \(k): reported \(reported) km/h, moved \(derived) km/h")
        }
        print("route \(atEnd): worst |reported − haversine/interval| / haversine/interval = \(String(format: "%.5f", worst * 100)) % over \(readings.count) readings")
        // On a straight stretch the reported speed is the profile's.
        #expect(abs(readings[3]["speed"]! - 30) < 0.3, "\(readings[3])")
    }

    @Test("route: position interpolated along the great circle; loop comes back to the start, stop stays at the end, reverse returns")
    func routePositions() throws {
        let a = GeoPoint(latitude: 52.5, longitude: 13.0), b = GeoPoint(latitude: 52.6, longitude: 13.3)
        let length = GreatCircle.distance(a, b)
        let speed = 36.0  // 10 m/s
        let total = length / 10
        for atEnd in RouteSpec.AtEnd.allCases {
            let model = RouteModel(spec: RouteSpec(points: [a, b], speeds: [speed], atEnd: atEnd))
            let middle = model.position(at: total / 2).point
            #expect(abs(GreatCircle.distance(a, middle) - length / 2) < 0.01)
            #expect(abs(GreatCircle.distance(middle, b) - length / 2) < 0.01)
            switch atEnd {
            case .loop:
                // Closed by the segment back to the start.
                #expect(GreatCircle.distance(model.position(at: 2 * total).point, a) < 0.01)
                #expect(abs(model.total - 2 * total) < 1e-6)
            case .stop:
                let end = model.position(at: total * 3)
                #expect(GreatCircle.distance(end.point, b) < 0.01 && end.speed == 0)
            case .reverse:
                #expect(GreatCircle.distance(model.position(at: 2 * total).point, a) < 0.01)
                let back = model.position(at: 1.5 * total)
                #expect(abs(GreatCircle.distance(back.point, a) - length / 2) < 0.01)
                #expect(abs(back.bearing - GreatCircle.bearing(b, a)) < 1e-9)
            }
        }
        // Heading: due east along a parallel starts at 90°.
        let east = drive(RouteSpec(points: [GeoPoint(latitude: 0, longitude: 0), GeoPoint(latitude: 0, longitude: 1)], speeds: [100]),
                         at: [0, 1, 2])
        #expect(abs(east[1]["heading"]! - 90) < 1e-6 && abs(east[2]["speed"]! - 100) < 1e-6)
        // Only the readings asked for, in their order.
        let two = drive(RouteSpec(points: berlin, speeds: [40], readings: [.speed, .latitude]), at: [0])
        #expect(Set(two[0].keys) == ["speed", "latitude"])
    }

    @Test("route files: a GeoJSON FeatureCollection, a GPX track and inline points give the same route; bad points are named with file and line")
    func routeFiles() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("routes/r.geojson", """
                {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                 "geometry": {"type": "LineString", "coordinates": [[13.3777, 52.5163], [13.3889, 52.5170, 34.0], [13.4132, 52.5219]]}}]}
                """)
            try fleet.write("routes/r.gpx", """
                <?xml version="1.0" encoding="UTF-8"?>\r
                <gpx version="1.1" creator="test"><trk><trkseg>\r
                  <trkpt lat="52.5163" lon="13.3777"><ele>34</ele></trkpt>\r
                  <trkpt lon='13.3889' lat='52.5170'/>\r
                  <trkpt  lat="52.5219"  lon="13.4132"></trkpt>\r
                </trkseg></trk></gpx>\r
                """)
            try fleet.write("a/device.yaml", "sensors:\n  - {name: p, type: route, file: ../routes/r.geojson, speed: 40}\n")
            try fleet.write("b/device.yaml", "sensors:\n  - {name: p, type: route, file: ../routes/r.gpx, speed: 40, at_end: stop}\n")
            try fleet.write("c/device.yaml", "sensors:\n  - {name: p, type: route, points: [[52.5163, 13.3777], [52.5170, 13.3889], [52.5219, 13.4132]], speed: 40}\n")
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            let routes = spec.devices.map { device -> [GeoPoint] in
                if case .route(let r) = device.sensors[0].kind { return r.points }
                return []
            }
            #expect(routes.count == 3 && routes[0].count == 3 && routes[0] == routes[1] && routes[1] == routes[2])

            try fleet.write("routes/r.gpx", "<gpx>\n<trk>\n<trkpt lat=\"52.5\" lon=\"13.4\"/>\n<trkpt lat=\"95\" lon=\"13.4\"/>\n</trk></gpx>\n")
            try fleet.write("routes/r.geojson", "{\"type\": \"LineString\", \"coordinates\": [[13.4, 52.5], [52.5, 190]]}")
            try fleet.write("c/device.yaml", "sensors:\n  - {name: p, type: route, points: [[52.5, 13.4], [52.5]], speeds: [40, 50]}\n")
            let issues = parseIssues(fleet)
            let gpx = try issue(in: issues, file: fleet.path("routes/r.gpx"), field: "trkpt")
            #expect(gpx.line == 4 && gpx.problem.contains("latitude") && gpx.problem.contains("95"), "\(gpx)")
            let json = try issue(in: issues, file: fleet.path("routes/r.geojson"), field: "coordinates[1]")
            #expect(json.problem.contains("longitude first"), "\(json)")
            let inline = try issue(in: issues, file: fleet.path("c/device.yaml"), field: "sensors[0].points[1]")
            #expect(inline.line == 2 && inline.fix.contains("[latitude, longitude]"), "\(inline)")
        }
    }

    @Test("route settings: file and points together, speeds that do not match the segments, an unknown at_end, a reading taken twice")
    func routeSettingErrors() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("dev/device.yaml", """
                sensors:
                  - {name: a, type: route, file: x.geojson, points: [[1, 2], [3, 4]], speed: 40}
                  - {name: b, type: route, points: [[1, 2], [3, 4], [5, 6]], speeds: [40]}
                  - {name: c, type: route, points: [[1, 2], [3, 4]], speeds: [40, 50, 60]}
                  - {name: d, type: route, points: [[1, 2], [3, 4]], speed: 40, at_end: bounce}
                  - {name: e, type: route, points: [[1, 2], [3, 4]], speed: 0}
                  - {name: speed, type: constant, value: 1}
                  - {name: f, type: route, points: [[1, 2], [3, 4]], speed: 40, readings: [speed]}
                """)
            let issues = parseIssues(fleet)
            let file = fleet.path("dev/device.yaml")
            #expect(try issue(in: issues, file: file, field: "sensors[0].points").problem.contains("not both"))
            #expect(try issue(in: issues, file: file, field: "sensors[2].speeds").problem.contains("3 speeds for 1 segments"))
            #expect(try issue(in: issues, file: file, field: "sensors[3].at_end").fix.contains("reverse"))
            #expect(try issue(in: issues, file: file, field: "sensors[4].speed").problem.contains("0.001 to 100000"))
            // b's default readings include speed.
            #expect(try issue(in: issues, file: file, field: "sensors[5].name").problem.contains("`speed` is already used by sensors[1]"))
            #expect(try issue(in: issues, file: file, field: "sensors[6].readings").problem.contains("already given by sensors[1]"))
            // One speed throughout is fine for any number of segments.
            #expect(!issues.contains { $0.field == "sensors[1].speeds" })
        }
    }

    // MARK: thermal

    @Test("thermal: from cold the room heats up, then stays in the hysteresis band; heater switching follows the thresholds; deterministic")
    func thermalFollowsTheSetpoint() {
        let spec = ThermalSpec(ambient: 10, setpoint: 21, hysteresis: 1, tau: 600, heaterPower: 20, start: 12)
        let model = ThermalModel(spec: spec, seed: 1)
        var temperatures: [Double] = []
        var switches = 0
        var heating = model.heating
        for s in stride(from: 0.0, through: 4 * 3600, by: 5) {
            temperatures.append(model.read(elapsed: s))
            if model.heating != heating { switches += 1; heating = model.heating }
        }
        // Exact solution while heating from 12 towards 30 with tau 600: 12 + 18 (1 − e^(−t/600)).
        let at60 = temperatures[12]
        #expect(abs(at60 - (30 - 18 * exp(-60.0 / 600))) < 1e-9, "\(at60)")
        let settled = temperatures.suffix(from: temperatures.count / 2)
        #expect(settled.allSatisfy { $0 >= 20.5 - 1e-9 && $0 <= 21.5 + 1e-9 }, "\(settled.min()!)…\(settled.max()!)")
        #expect(settled.max()! > 21.3 && settled.min()! < 20.7)
        #expect(switches > 10)
        // Too weak a heater: the room settles at ambient + power, below the setpoint.
        let weak = ThermalModel(spec: ThermalSpec(ambient: 0, setpoint: 21, hysteresis: 1, tau: 100, heaterPower: 15, start: 0), seed: 1)
        #expect(abs(weak.read(elapsed: 10_000) - 15) < 1e-6)
        // No hysteresis: held at the setpoint, without switching for ever inside one reading.
        let exact = ThermalModel(spec: ThermalSpec(ambient: 10, setpoint: 21, hysteresis: 0, tau: 600, heaterPower: 20, start: 15), seed: 1)
        let clock = ContinuousClock()
        var held: [Double] = []
        let took = clock.measure { held = (1...100).map { exact.read(elapsed: Double($0) * 864) } }
        #expect(held.suffix(50).allSatisfy { abs($0 - 21) < 1e-9 }, "\(held.suffix(3))")
        #expect(took < .seconds(1), "\(took)")
        // A new setpoint is followed.
        model.setSetpoint(25)
        #expect(abs(model.read(elapsed: 4 * 3600 + 7200) - 25) < 0.6)
        // Noise is seeded.
        func noisy(_ seed: UInt64) -> [Double] {
            let m = ThermalModel(spec: ThermalSpec(setpoint: 21, noise: 0.1), seed: seed)
            return (0..<50).map { m.read(elapsed: Double($0)) }
        }
        #expect(noisy(3) == noisy(3) && noisy(3) != noisy(4))
    }

    // MARK: diurnal

    @Test("diurnal: the peak at peak_hour local time, the low 12 hours later, in the zone given")
    func diurnalCycle() {
        // 2024-06-01 00:00:00 UTC
        let midnight: Int64 = 1_717_200_000_000
        let utc = DiurnalModel(spec: DiurnalSpec(mean: 20, amplitude: 5, peakHour: 14, timeZone: "UTC"), seed: 1)
        #expect(abs(utc.read(wallMillis: midnight + 14 * 3_600_000) - 25) < 1e-9)
        #expect(abs(utc.read(wallMillis: midnight + 2 * 3_600_000) - 15) < 1e-9)
        #expect(abs(utc.read(wallMillis: midnight + 8 * 3_600_000) - 20) < 1e-9)
        // Berlin is UTC+2 in June: the 14:00 local peak is at 12:00 UTC.
        let berlin = DiurnalModel(spec: DiurnalSpec(mean: 20, amplitude: 5, peakHour: 14, timeZone: "Europe/Berlin"), seed: 1)
        #expect(abs(berlin.read(wallMillis: midnight + 12 * 3_600_000) - 25) < 1e-9)
        // …and UTC+1 in January.
        let january: Int64 = 1_704_067_200_000  // 2024-01-01 00:00 UTC
        #expect(abs(berlin.read(wallMillis: january + 13 * 3_600_000) - 25) < 1e-9)
        // Without a zone: the machine's local time (localtime_r); the offset is the C library's.
        let local = DiurnalModel(spec: DiurnalSpec(mean: 20, amplitude: 5, peakHour: 0), seed: 1)
        var t = time_t(midnight / 1000)
        var parts = tm()
        localtime_r(&t, &parts)
        #expect(abs(local.localHour(wallMillis: midnight) - Double((Int(parts.tm_gmtoff) + 86_400) % 86_400) / 3600) < 1e-9)
    }

    @Test("diurnal settings: an unknown time zone, a peak hour out of range")
    func diurnalSettingErrors() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("dev/device.yaml", """
                sensors:
                  - {name: a, type: diurnal, mean: 1, amplitude: 1, timezone: Mars/Olympus}
                  - {name: b, type: diurnal, mean: 1, amplitude: 1, peak_hour: 25}
                """)
            let issues = parseIssues(fleet)
            let file = fleet.path("dev/device.yaml")
            #expect(try issue(in: issues, file: file, field: "sensors[0].timezone").fix.contains("Europe/Berlin"))
            #expect(try issue(in: issues, file: file, field: "sensors[1].peak_hour").problem.contains("0 to 24"))
        }
    }

    // MARK: replay

    @Test("replay: the file's values at the recorded relative times, gaps kept; speed 10; loop; an empty cell is a missing reading")
    func replayTimes() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("dev/rec.csv", """
                # a comment
                time, temp ,"hum, %"
                2024-05-01T12:00:00Z,20.5,40
                2024-05-01T12:00:01.5Z,21,41

                2024-05-01T14:00:04+02:00,22,
                2024-05-01 12:00:10.000Z,23,43
                """)
            try fleet.write("dev/rec.jsonl", """
                {"t": 100, "temp": 20.5}
                {"t": 101.5, "temp": 21}
                {"t": 104, "temp": 22}
                {"t": 110, "temp": null}
                """)
            try fleet.write("dev/device.yaml", """
                sensors:
                  - {name: temp, type: replay, file: rec.csv}
                  - {name: hum, type: replay, file: rec.csv, column: "hum, %", speed: 10}
                  - {name: looped, type: replay, file: rec.csv, column: temp, loop: true}
                  - {name: lines, type: replay, file: rec.jsonl, column: temp, time_column: t}
                """)
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            /// Each sensor read alone at the given elapsed seconds (nil: no reading).
            func series(_ index: Int, _ times: [Double]) -> [Double?] {
                var sensor = DeviceSensor(spec: spec.devices[0].sensors[index], fleetSeed: 1, deviceID: "dev", sysfsRoot: "/")
                return times.map { t in
                    var readings: [(name: String, value: Double)] = []
                    _ = sensor.read(ReadingMoment(elapsed: t, seq: 1, wallMillis: 0), into: &readings)
                    return readings.first?.value
                }
            }
            // Rows at 0, 1.5, 4 (12:00:04 UTC written as 14:00:04+02:00) and 10 s.
            #expect(series(0, [0, 1.49, 1.5, 3.99, 4, 9.99, 10, 500]) == [20.5, 20.5, 21, 21, 22, 22, 23, 23])
            #expect(series(1, [0, 0.14, 0.15, 0.39, 0.4, 0.99, 1.0]) == [40, 40, 41, 41, nil, nil, 43])
            // Looping: one round is the recording plus its last gap (10 + 6 s).
            #expect(series(2, [15.9, 16, 17.5, 26, 32]) == [23, 20.5, 21, 23, 20.5])
            #expect(series(3, [0, 1.5, 4, 10]) == [20.5, 21, 22, nil])
        }
    }

    @Test("replay: a malformed row is named with the file, its line and the column; a missing column gets a suggestion")
    func replayErrors() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("dev/rec.csv", "time,temp\n0,20\n3,20\n1,abc\n2\n1.5,21\nsoon,22\n")
            try fleet.write("dev/rec.jsonl", "{\"time\": 0, \"temp\": 1}\n{\"time\": 1, \"temp\": \"hot\"}\nnot json\n")
            try fleet.write("dev/device.yaml", """
                sensors:
                  - {name: temp, type: replay, file: rec.csv}
                  - {name: b, type: replay, file: rec.jsonl, column: temp}
                  - {name: c, type: replay, file: rec.csv, column: tmp}
                  - {name: d, type: replay, file: missing.csv}
                  - {name: e, type: replay, file: rec.csv, column: temp, speed: 0}
                """)
            let issues = parseIssues(fleet)
            let csv = fleet.path("dev/rec.csv")
            let bad = try issue(in: issues, file: csv, field: "column temp")
            #expect(bad.line == 4 && bad.problem.contains("\"abc\"") && bad.fix.contains("line 4"), "\(bad)")
            #expect(issues.contains { $0.file == csv && $0.line == 5 && $0.problem.contains("1 cells, the header has 2") })
            #expect(issues.contains { $0.file == csv && $0.line == 6 && $0.problem.contains("backwards") })
            #expect(issues.contains { $0.file == csv && $0.line == 7 && $0.field == "column time" && $0.problem.contains("ISO 8601") })
            let jsonl = fleet.path("dev/rec.jsonl")
            #expect(issues.contains { $0.file == jsonl && $0.line == 2 && $0.field == "column temp" })
            #expect(issues.contains { $0.file == jsonl && $0.line == 3 && $0.problem.contains("not a JSON object") })
            #expect(issues.contains { $0.file == csv && $0.field == "column tmp" && $0.problem.contains("did you mean `temp`") })
            #expect(try issue(in: issues, file: fleet.path("dev/device.yaml"), field: "sensors[3].file").problem.contains("missing.csv"))
            #expect(try issue(in: issues, file: fleet.path("dev/device.yaml"), field: "sensors[4].speed").problem.contains("0.001"))
        }
    }

    @Test("ISO 8601 times: zones, fractions, a space for T; seconds as numbers")
    func isoTimes() {
        #expect(ReplayFileReader.parseTime("1970-01-01T00:00:00Z") == 0)
        #expect(ReplayFileReader.parseTime("2024-05-01T12:00:00Z") == 1_714_564_800)
        #expect(ReplayFileReader.parseTime("2024-05-01T14:00:00.250+02:00") == 1_714_564_800.25)
        #expect(ReplayFileReader.parseTime("2024-05-01 07:30-0430") == 1_714_564_800)
        #expect(ReplayFileReader.parseTime("2024-05-01T12:00") == 1_714_564_800)
        #expect(ReplayFileReader.parseTime("1714564800.5") == 1_714_564_800.5)
        for bad in ["2024-13-01T00:00:00Z", "2024-05-01", "2024-05-01T12:00:00Q", "yesterday", "2024-05-01T12:00:00."] {
            #expect(ReplayFileReader.parseTime(bad) == nil, "\(bad)")
        }
    }
}
