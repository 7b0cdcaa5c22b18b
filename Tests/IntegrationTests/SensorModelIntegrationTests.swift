import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Routes and replays through the real engine and a real mosquitto", .serialized)
struct SensorModelIntegrationTests {
    @Test("at the subscriber: the route's speed = haversine distance between consecutive positions / their ts difference (within 1 %); the replay's values are the file's at the recorded relative times")
    func routeAndReplayAtTheSubscriber() async throws {
        let n: UInt64 = 16
        let interval = 0.5
        // The recording lies outside the fleet (given by its absolute path): TestFleet provisions,
        // and so loads, the fleet as it makes it.
        let recording = try TempDir("recording")
        defer { recording.remove() }
        // Rows far apart compared with the interval, with an uneven gap.
        let rows: [(time: Double, value: Double)] = [(0, 1), (1.2, 2), (2.4, 3), (4.9, 4), (6.1, 5)]
        try ("time,level\n" + rows.map { "\($0.time),\($0.value)" }.joined(separator: "\n") + "\n")
            .write(toFile: recording.path + "/rec.csv", atomically: true, encoding: .utf8)
        let extra = """
              - name: gps
                type: route
                points: [[52.5163, 13.3777], [52.5170, 13.3889], [52.5219, 13.4132]]
                speed: 50
                precision: 7
              - {name: level, type: replay, file: \(recording.path)/rec.csv, column: level}
            """
        let fleet = try TestFleet(devices: ["tracker-1"], interval: interval, deviceExtra: { _ in extra })
        defer { fleet.tearDown() }
        var logger = Logger(label: "models")
        logger.logLevel = .warning
        var options = RunOptions()
        options.publishing = PublishSettings(messagesPerDevice: Int(n))
        let subscriber = try fleet.subscriber(["devices/+/telemetry"])
        defer { subscriber.stop() }
        let runner = try Fleet(spec: try fleet.load(), options: options, logger: logger)
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 30) { $0.lastSeq == n && $0.queued == 0 && $0.inflight == 0 })
        func messages() -> [(seq: UInt64, ts: Int64, readings: [String: Double])] {
            var bySeq: [UInt64: (seq: UInt64, ts: Int64, readings: [String: Double])] = [:]
            for message in subscriber.messages() {
                guard let object = try? JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any],
                      let seq = (object["seq"] as? NSNumber)?.uint64Value, let ts = (object["ts"] as? NSNumber)?.int64Value,
                      let readings = object["readings"] as? [String: NSNumber]
                else { continue }
                bySeq[seq] = (seq, ts, readings.mapValues(\.doubleValue))
            }
            return bySeq.values.sorted { $0.seq < $1.seq }
        }
        #expect(await waitFor(15) { messages().count == Int(n) })
        _ = await runner.stop()
        let received = messages()
        try #require(received.count == Int(n))

        var worst = 0.0
        for (a, b) in zip(received, received.dropFirst()) {
            let moved = GreatCircle.distance(GeoPoint(latitude: a.readings["latitude"]!, longitude: a.readings["longitude"]!),
                                             GeoPoint(latitude: b.readings["latitude"]!, longitude: b.readings["longitude"]!))
            let derived = moved / (Double(b.ts - a.ts) / 1000) * 3.6
            let reported = try #require(b.readings["speed"])
            let error = abs(reported - derived) / derived
            worst = max(worst, error)
            #expect(error < 0.01, "seq \(b.seq): reported \(reported) km/h, moved \(derived) km/h in \(b.ts - a.ts) ms")
            #expect(abs(reported - 50) < 0.5, "seq \(b.seq): \(reported) km/h on a straight segment at 50")
        }
        // The first reading comes at a random point of the first interval: the recorded time of a
        // message lies between its time since the first message and that plus one interval
        // (and a little timer slack).
        func row(at t: Double) -> Double { rows.last { $0.time <= t }!.value }
        for message in received {
            let since = Double(message.ts - received[0].ts) / 1000
            let allowed = Set([row(at: since), row(at: since + interval + 0.05)])
            #expect(allowed.contains(message.readings["level"] ?? -1),
                    "seq \(message.seq) at +\(since) s: level \(String(describing: message.readings["level"])), expected one of \(allowed)")
        }
        #expect(Set(received.map { $0.readings["level"] ?? -1 }) == Set(rows.map(\.value)), "every row was played")
        print(String(format: "route at the subscriber: worst |speed − haversine/Δts| = %.3f %% over %d messages", worst * 100, received.count - 1))
    }
}
