import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// Reads `sensor` `count` times, reading k at elapsed k/10 s with seq k+1; the value of the
/// sensor's (first) reading, nil when it is missing.
func readSeries(_ sensor: inout DeviceSensor, count: Int, from start: Int = 0, tenthsPerReading: Int = 1) -> [Double?] {
    (start..<(start + count)).map { k in
        var readings: [(name: String, value: Double)] = []
        let moment = ReadingMoment(elapsed: Double(k * tenthsPerReading) / 10, seq: UInt64(k + 1), wallMillis: 1_700_000_000_000 + Int64(k) * 100)
        _ = sensor.read(moment, into: &readings)
        return readings.first { $0.name == sensor.name }?.value
    }
}

private func makeSensor(_ kind: SensorKind = .counter(start: 0, step: 1), faults: [FaultSpec], labels: FaultLabelWriter? = nil,
                        fleetSeed: UInt64 = 1, device: String = "dev", precision: Int? = nil) -> DeviceSensor {
    DeviceSensor(spec: SensorSpec(name: "s", kind: kind, precision: precision, faults: faults), fleetSeed: fleetSeed,
                 deviceID: device, sysfsRoot: "/", labels: labels)
}

private func labelWriter(_ dir: TempFleet, _ name: String = "labels.jsonl", limit: Int = FaultLabelWriter.maximumBytes) throws -> FaultLabelWriter {
    try FaultLabelWriter.open(path: dir.path(name), limit: limit).get()
}

@Suite("Sensor faults: each kind, random and windowed, labelled exactly, the same for the same seed")
struct SensorFaultTests {
    /// A window from 1.0 s for 0.5 s covers readings 10…14 (seq 11…15) of a counter 0, 1, 2, …
    static let window = FaultSpec.Trigger.window(from: 1.0, length: .seconds(0.5))

    @Test("every kind in a window: exactly readings 10…14 change, as the kind says; the labels say seq 11…15",
          arguments: [
              FaultSpec.Kind.stuck, .drift(rate: 2), .offset(amount: 100), .spike(factor: 10, amount: nil),
              .spike(factor: nil, amount: -40), .dropout, .noise(sigma: 1), .outOfRange(value: 85),
          ])
    func windowedKind(_ kind: FaultSpec.Kind) throws {
        try withTempFleet { dir in
            let labels = try labelWriter(dir)
            var sensor = makeSensor(faults: [FaultSpec(kind: kind, trigger: Self.window)], labels: labels)
            let values = readSeries(&sensor, count: 30)
            let isSpike = if case .spike = kind { true } else { false }
            let covered = isSpike ? 10...10 : 10...14
            for (k, value) in values.enumerated() {
                let base = Double(k)
                guard covered.contains(k) else {
                    #expect(value == base, "reading \(k) outside the fault: \(String(describing: value))")
                    continue
                }
                switch kind {
                case .stuck: #expect(value == 9)
                case .drift(let rate): #expect(value == base + rate * (Double(k) / 10 - 1.0))
                case .offset(let amount): #expect(value == base + amount)
                case .spike(let factor, let amount): #expect(value == (factor.map { base * $0 } ?? base + amount!))
                case .dropout: #expect(value == nil)
                case .noise: #expect(value != nil && value != base)
                case .outOfRange(let v): #expect(value == v)
                }
            }
            let records = try LabelRecord.read(dir.path("labels.jsonl"))
            #expect(records.count == 2, "\(records)")
            #expect(records.first == LabelRecord(event: "start", device: "dev", sensor: "s", fault: kind.name, number: 1,
                                                 startSeq: 11, endSeq: nil, source: "faults[0]", stillOn: false))
            #expect(records.last?.event == "end" && records.last?.startSeq == 11)
            #expect(records.last?.endSeq == UInt64(covered.upperBound + 1))
        }
    }

    @Test("random faults: the same seed gives the same values and labels; outside the labelled seqs the readings equal a fault-free twin's")
    func randomFaultsAreDeterministicAndLabelled() throws {
        let faults = [
            FaultSpec(kind: .stuck, trigger: .random(probability: 0.02, length: .readings(3))),
            FaultSpec(kind: .dropout, trigger: .random(probability: 0.02, length: .readings(2))),
            FaultSpec(kind: .spike(factor: 3, amount: nil), trigger: .random(probability: 0.01, length: .readings(1))),
            FaultSpec(kind: .offset(amount: 5), trigger: .random(probability: 0.01, length: .seconds(0.35))),
        ]
        let kind = SensorKind.randomWalk(start: 50, step: 1, min: 0, max: 100)
        try withTempFleet { dir in
            func run(_ name: String, seed: UInt64) throws -> (values: [Double?], labels: [LabelRecord]) {
                var values: [Double?] = []
                do {
                    let writer = try labelWriter(dir, name)
                    var sensor = makeSensor(kind, faults: faults, labels: writer, fleetSeed: seed, precision: 2)
                    values = readSeries(&sensor, count: 2000)
                }
                return (values, try LabelRecord.read(dir.path(name)))
            }
            let a = try run("a.jsonl", seed: 9), b = try run("b.jsonl", seed: 9), c = try run("c.jsonl", seed: 10)
            #expect(a.values == b.values)
            #expect(a.labels == b.labels)
            #expect(a.labels != c.labels)
            var twin = makeSensor(kind, faults: [], fleetSeed: 9, precision: 2)
            let clean = readSeries(&twin, count: 2000)
            let ends = a.labels.filter { $0.event == "end" }
            #expect(ends.count == a.labels.count / 2 && ends.count > 40, "\(ends.count) faults")
            var covered = Set<UInt64>()
            for end in ends { covered.formUnion(end.startSeq...(end.endSeq ?? end.startSeq)) }
            var differing = 0
            for (k, value) in a.values.enumerated() where value != clean[k] {
                differing += 1
                #expect(covered.contains(UInt64(k + 1)), "reading \(k) differs from the twin without a label")
            }
            #expect(differing > 0)
            // Where one fault alone is on, its signature.
            for end in ends {
                let seqs = end.startSeq...(end.endSeq ?? end.startSeq)
                let others = ends.filter { $0 != end && $0.startSeq <= seqs.upperBound && ($0.endSeq ?? 0) >= seqs.lowerBound }
                guard others.isEmpty else { continue }
                for seq in seqs {
                    let k = Int(seq) - 1
                    switch end.fault {
                    case "dropout": #expect(a.values[k] == nil)
                    case "spike": #expect(a.values[k] == SensorFaults.rounded(clean[k]! * 3, 2))
                    case "offset": #expect(a.values[k] == SensorFaults.rounded(clean[k]! + 5, 2))
                    case "stuck":
                        let before = a.values[..<(Int(end.startSeq) - 1)].last { $0 != nil } ?? clean[Int(end.startSeq) - 1]
                        #expect(a.values[k] == before)
                    default: Issue.record("unexpected fault \(end.fault)")
                    }
                }
                switch end.fault {
                case "stuck": #expect(seqs.count == 3)
                case "dropout": #expect(seqs.count == 2)
                case "spike": #expect(seqs.count == 1)
                default: #expect(seqs.count == 4)  // 0.35 s at 0.1 s per reading
                }
            }
        }
    }

    @Test("a fault started at run time (the scenario's `fault` action) is applied from the next reading and labelled `runtime`")
    func runtimeFault() throws {
        try withTempFleet { dir in
            var values: [Double?] = []
            do {
                var sensor = makeSensor(faults: [], labels: try labelWriter(dir))
                values = readSeries(&sensor, count: 5)
                sensor.startFault(.offset(amount: 7), length: .seconds(0.3))
                values += readSeries(&sensor, count: 5, from: 5)
                sensor.startFault(.dropout, length: .seconds(100))  // still on when the sensor goes away
                values += readSeries(&sensor, count: 2, from: 10)
            }
            #expect(values == [0, 1, 2, 3, 4, 12, 13, 14, 8, 9, nil, nil])
            let records = try LabelRecord.read(dir.path("labels.jsonl"))
            #expect(records.map(\.event) == ["start", "end", "start", "end"])
            #expect(records[0].source == "runtime" && records[0].startSeq == 6 && records[1].endSeq == 8)
            #expect(records[3].fault == "dropout" && records[3].stillOn && records[3].endSeq == 12)
        }
    }

    @Test("the labels file is bounded: past its limit records are counted, not written, and every written line is whole")
    func labelsAreBounded() throws {
        try withTempFleet { dir in
            let writer = try labelWriter(dir, limit: 1000)
            var sensor = makeSensor(faults: [FaultSpec(kind: .spike(factor: 2, amount: nil), trigger: .random(probability: 1, length: .readings(1)))],
                                    labels: writer)
            _ = readSeries(&sensor, count: 50)
            let text = try String(contentsOfFile: dir.path("labels.jsonl"), encoding: .utf8)
            #expect(text.utf8.count <= 1000)
            #expect(writer.dropped > 0)
            #expect(try LabelRecord.read(dir.path("labels.jsonl")).count == text.split(separator: "\n").count)
        }
    }

    @Test("devices on several threads share one labels file: 8 threads × 300 faults, every line whole, none lost")
    func labelsFromSeveralThreads() throws {
        try withTempFleet { dir in
            let path = dir.path("labels.jsonl")
            DispatchQueue.concurrentPerform(iterations: 8) { t in
                let writer = try! FaultLabelWriter.open(path: path).get()
                var sensor = DeviceSensor(
                    spec: SensorSpec(name: "s", kind: .counter(start: 0, step: 1),
                                     faults: [FaultSpec(kind: .spike(factor: 2, amount: nil), trigger: .random(probability: 1, length: .readings(1)))]),
                    fleetSeed: 1, deviceID: "dev-\(t)", sysfsRoot: "/", labels: writer)
                _ = readSeries(&sensor, count: 300)
            }
            let records = try LabelRecord.read(path)
            #expect(records.count == 8 * 300 * 2)
            #expect(Set(records.map(\.device)).count == 8)
        }
    }

    @Test("fault settings: every malformed entry gets file, line, field, what was expected and the fix")
    func faultSettingErrors() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\nlabels: nowhere/labels.jsonl\n")
            try fleet.write("dev/device.yaml", """
                sensors:
                  - name: t
                    type: constant
                    value: 1
                    faults:
                      - {type: stuk, probability: 0.1, duration: 5}
                      - {type: stuck}
                      - {type: stuck, probability: 0.1}
                      - {type: spike, factor: 2, probability: 0.1, duration: 3}
                      - {type: spike, probability: 0.1}
                      - {type: offset, amount: 1, probability: 0.1, from: 3, duration: 1}
                      - {type: drift, rate: 1, from: 5, duration: 3}
                      - {type: stuck, probability: 1.5, duration: 3}
                      - {type: noise, sigma: 1, probability: 0.1, duration: 1, readings: 3}
                      - {type: out_of_range, probability: 0.1, duration: 1}
                      - {type: stuck, probability: 0.1, duration: 1, amount: 3}
                      - {type: dropout, from: 1, for: .inf}
                """)
            let issues = parseIssues(fleet)
            let file = fleet.path("dev/device.yaml")
            func at(_ n: Int, _ key: String) throws -> FleetIssue {
                let found = try issue(in: issues, file: file, field: "sensors[0].faults[\(n)].\(key)")
                #expect(found.line == 6 + n, "\(found)")
                #expect(!found.fix.isEmpty)
                return found
            }
            #expect(try at(0, "type").problem.contains("did you mean `stuck`"))
            #expect(try at(1, "probability").problem.contains("`probability` (per reading) or `from`"))
            #expect(try at(2, "duration").fix.contains("readings: 5"))
            #expect(try at(3, "duration").problem.contains("a spike is one reading"))
            #expect(try at(4, "factor").problem.contains("`factor` (× the reading) or `amount`"))
            #expect(try at(5, "from").problem.contains("not both"))
            #expect(try at(6, "duration").fix.contains("rename"))
            #expect(try at(7, "probability").problem.contains("from 0 to 1"))
            #expect(try at(8, "readings").problem.contains("given twice"))
            #expect(try at(9, "value").problem.contains("missing"))
            #expect(try at(10, "amount").problem.contains("not a setting of a `stuck` fault"))
            #expect(try at(11, "for").problem.contains("got .inf"))
            let labels = try issue(in: issues, file: fleet.path("fleet.yaml"), field: "labels")
            #expect(labels.line == 3 && labels.problem.contains("does not exist"), "\(labels)")
        }
    }
}
