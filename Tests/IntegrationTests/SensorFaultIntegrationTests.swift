import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// What the observer received of one device: seq → readings (the first copy of a seq).
private func received(_ subscriber: Subscriber) -> [String: [UInt64: [String: Double]]] {
    var result: [String: [UInt64: [String: Double]]] = [:]
    for message in subscriber.messages() where message.topic.hasSuffix("/telemetry") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any],
              let device = object["device"] as? String, let seq = (object["seq"] as? NSNumber)?.uint64Value,
              let readings = object["readings"] as? [String: NSNumber], result[device]?[seq] == nil
        else { continue }
        result[device, default: [:]][seq] = readings.mapValues(\.doubleValue)
    }
    return result
}

/// Equal up to JSON parsing (Foundation's parser may miss the shortest representation by an ulp).
private func same(_ a: Double?, _ b: Double?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a - b) <= 1e-9 * max(1, abs(b))
}

/// The faulty sensor, as every device of the test has it.
private let level = """
      - name: level
        type: random_walk
        start: 50
        step: 1
        min: 0
        max: 100
        precision: 3
        faults:
          - {type: out_of_range, value: 85, from: 0, readings: 1}
          - {type: stuck, probability: 0.04, readings: 4}
          - {type: dropout, probability: 0.03, readings: 2}
          - {type: spike, factor: 10, probability: 0.03}
          - {type: offset, amount: 1000, from: 1.0, for: 0.5}
    """

@Suite("Sensor faults through the real engine and a real mosquitto", .serialized)
struct SensorFaultIntegrationTests {
    @Test("faults appear in the telemetry exactly where the labels file says and nowhere else; the same seed gives the same faults")
    func faultsAreWhereTheLabelsSay() async throws {
        let ids = ["fault-1", "fault-2", "fault-3"]
        let n: UInt64 = 80
        let fleet = try TestFleet(devices: ids, interval: 0.05, fleetExtra: "labels: labels.jsonl", deviceExtra: { _ in level })
        defer { fleet.tearDown() }
        var logger = Logger(label: "faults")
        logger.logLevel = .warning
        var options = RunOptions()
        options.publishing = PublishSettings(messagesPerDevice: Int(n))

        /// One run: what the observer received, and the labels of `labelsFile`.
        func run(_ labelsFile: String) async throws -> (telemetry: [String: [UInt64: [String: Double]]], labels: [LabelRecord]) {
            var spec = try fleet.load()
            #expect(spec.devices.allSatisfy { $0.faultLabels == fleet.path + "/labels.jsonl" })
            for i in spec.devices.indices { spec.devices[i].faultLabels = fleet.path + "/" + labelsFile }
            let subscriber = try fleet.subscriber(["devices/+/telemetry"])
            defer { subscriber.stop() }
            let runner = try Fleet(spec: spec, options: options, logger: logger)
            await runner.start()
            #expect(await runner.waitUntilAllDevices(timeout: 30) { $0.lastSeq == n && $0.queued == 0 && $0.inflight == 0 })
            #expect(await waitFor(15) { received(subscriber).values.map(\.count).reduce(0, +) == ids.count * Int(n) })
            _ = await runner.stop()
            return (received(subscriber), try LabelRecord.read(fleet.path + "/" + labelsFile))
        }

        let first = try await run("run-1.jsonl")
        let second = try await run("run-2.jsonl")

        // Fault-free twins: the same sensors from the same seed, without faults.
        let spec = try fleet.load()
        var seen: [String: Int] = [:]
        for run in [first, second] {
            let ends = run.labels.filter { $0.event == "end" }
            #expect(run.labels.filter { $0.event == "start" }.count == ends.count, "every start has its end")
            #expect(ends.allSatisfy { !$0.stillOn })
            for id in ids {
                let device = try #require(spec.devices.first { $0.id == id })
                let messages = try #require(run.telemetry[id])
                #expect(messages.count == Int(n), "\(id): \(messages.count) messages")
                var twins = device.sensors.map { sensor in
                    var clean = sensor
                    clean.faults = []
                    return SimulatedSensor(spec: clean, seed: SensorSeed.derive(fleetSeed: spec.seed, deviceID: id, sensorName: sensor.name))
                }
                let expected = (1...n).map { _ in twins.indices.map { twins[$0].read(elapsed: 0) } }
                let mine = ends.filter { $0.device == id && $0.sensor == "level" }
                #expect(!mine.isEmpty)
                func faults(at seq: UInt64) -> [LabelRecord] { mine.filter { $0.startSeq <= seq && seq <= $0.endSeq! } }
                for seq in 1...n {
                    let readings = try #require(messages[seq], "\(id) seq \(seq) missing")
                    // The sensor without faults is its twin at every seq.
                    #expect(same(readings["temperature"], expected[Int(seq) - 1][0]), "\(id) seq \(seq)")
                    let clean = expected[Int(seq) - 1][1]
                    let on = faults(at: seq)
                    guard let only = on.first else {
                        #expect(same(readings["level"], clean), "\(id) seq \(seq): level \(String(describing: readings["level"])) without a label, twin \(clean)")
                        continue
                    }
                    seen[only.fault, default: 0] += 1
                    guard on.count == 1 else { continue }  // overlapping faults: no single signature
                    let value = readings["level"]
                    switch only.fault {
                    case "out_of_range": #expect(same(value, 85))
                    case "dropout": #expect(value == nil, "\(id) seq \(seq)")
                    case "spike": #expect(same(value, SensorFaults.rounded(clean * 10, 3)))
                    case "offset": #expect(same(value, SensorFaults.rounded(clean + 1000, 3)))
                    case "stuck":
                        let before = (1..<only.startSeq).reversed().lazy.compactMap { messages[$0]?["level"] }.first
                            ?? clean
                        #expect(same(value, before), "\(id) seq \(seq)")
                    default: Issue.record("unexpected fault \(only.fault)")
                    }
                }
            }
        }
        for kind in ["out_of_range", "stuck", "dropout", "spike", "offset"] {
            #expect(seen[kind, default: 0] > 0, "no \(kind) in either run: \(seen)")
        }
        // The same seed: the same faults drawn per reading (the window is by the clock, so its
        // first reading may move by one).
        func drawn(_ labels: [LabelRecord]) -> [String] {
            labels.filter { $0.event == "end" && $0.fault != "offset" }
                .map { "\($0.device) \($0.fault) \($0.startSeq)…\($0.endSeq!)" }.sorted()
        }
        #expect(drawn(first.labels) == drawn(second.labels))
        #expect(first.labels.filter { $0.fault == "offset" }.count == 2 * ids.count)
        print("fault labels: \(first.labels.count / 2) faults in run 1, \(second.labels.count / 2) in run 2 over \(ids.count) devices × \(n) readings; readings under one fault checked by kind: \(seen)")
    }

    @Test("labels_topic: the device publishes each label record on devices/{id}/faults, the same text as the file's line, while connected")
    func labelsOverMQTT() async throws {
        let sensor = """
              - name: level
                type: counter
                faults:
                  - {type: out_of_range, value: 85, from: 0, readings: 1}
                  - {type: offset, amount: 100, from: 2, for: 0.5}
            """
        let fleet = try TestFleet(devices: ["lab-1"], interval: 0.1,
                                  fleetExtra: "labels: labels.jsonl\nlabels_topic: devices/{id}/faults", deviceExtra: { _ in sensor })
        defer { fleet.tearDown() }
        #expect(try fleet.load().devices.first?.faultLabelsTopic == "devices/lab-1/faults")
        let subscriber = try fleet.subscriber(["devices/+/faults"])
        defer { subscriber.stop() }
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected })
        let connectedBy = Int64(Date().timeIntervalSince1970 * 1000)
        let file = fleet.path + "/labels.jsonl"
        func lines() -> [String] { ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        #expect(await waitFor(20) { lines().count == 4 }, "\(lines())")
        // The records made after the connection was seen must all arrive; earlier ones may not.
        let due = lines().filter { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return ((object?["ts"] ?? object?["end_ts"]) as? NSNumber)?.int64Value ?? 0 > connectedBy
        }
        #expect(await waitFor(10) { Set(due).isSubset(of: Set(subscriber.messages().map(\.payload))) },
                "due \(due), received \(subscriber.messages())")
        let received = subscriber.messages()
        #expect(received.allSatisfy { $0.topic == "devices/lab-1/faults" && lines().contains($0.payload) }, "\(received)")
        #expect(received.contains { $0.payload.contains("\"fault\":\"offset\"") } || due.isEmpty)
        _ = await runner.stop()
        print("labels_topic: \(received.count) of \(lines().count) records published (\(due.count) made after the connection was seen)")
    }
}
