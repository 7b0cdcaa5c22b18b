import Foundation
import Histogram
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Shards (--shard I/N, --shard auto) and report merge")
struct ShardTests {
    @Test("for many fleet sizes K and shard counts N the shards are disjoint, cover the fleet in order, and differ by at most one device")
    func shardsPartitionTheFleet() throws {
        var sizes = Array(0...70)
        sizes += [99, 100, 101, 997, 1000, 19_000, 19_001, 1_000_003]
        for k in sizes {
            for n in [1, 2, 3, 4, 5, 6, 7, 8, 10, 16, 33, 64, 100, 1000] {
                var next = 0
                var lengths: [Int] = []
                for i in 0..<n {
                    let range = try Shard(index: i, count: n).range(of: k)
                    #expect(range.lowerBound == next, "K \(k) N \(n) shard \(i) starts at \(range.lowerBound), expected \(next)")
                    next = range.upperBound
                    lengths.append(range.count)
                }
                #expect(next == k, "K \(k) N \(n): the shards end at \(next)")
                #expect((lengths.max() ?? 0) - (lengths.min() ?? 0) <= 1, "K \(k) N \(n): sizes \(Set(lengths))")
            }
        }
    }

    @Test("a device keeps its id, client id, certificate, sensor seeds and first readings whatever the number of shards")
    func identitiesDoNotDependOnTheSplit() throws {
        let fleet = try TestFleet(devices: (1...11).map { String(format: "id-%02d", $0) }, startBroker: false)
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        func fingerprint(_ device: DeviceSpec) -> String {
            let readings = device.sensors.map { sensorSpec -> String in
                var sensor = DeviceSensor(spec: sensorSpec, fleetSeed: spec.seed, deviceID: device.id, sysfsRoot: device.sysfsRoot)
                return (1...3).map { step in (try? sensor.read(elapsed: Double(step)).get()).map { "\($0)" } ?? "x" }.joined(separator: ",")
            }
            let seeds = device.sensors.map { SensorSeed.derive(fleetSeed: spec.seed, deviceID: device.id, sensorName: $0.name) }
            // The client id is the device id (ConnectionSupervisor).
            return "\(device.id) \(device.certFile) \(device.keyFile) \(device.topic) \(seeds) \(readings)"
        }
        let whole = spec.devices.map(fingerprint)
        #expect(Set(whole).count == 11)
        for n in 1...11 {
            var joined: [String] = []
            for i in 0..<n {
                let part = try spec.selecting(try Shard(index: i, count: n))
                #expect(!part.devices.isEmpty)
                joined += part.devices.map(fingerprint)
            }
            #expect(joined == whole, "N \(n)")
        }
        // 11 devices in 12 shards: shard 0 owns ⌊0⌋…⌊11/12⌋, nothing.
        #expect(throws: ShardError.self) { try spec.selecting(try Shard(index: 0, count: 12)) }
    }

    @Test("--shard I/N is parsed and checked; a malformed or out-of-range value says what was expected")
    func explicitShard() throws {
        #expect(try Shard.parse("2/5", environment: [:]) == Shard(index: 2, count: 5))
        #expect(try Shard.parse("0/1", environment: [:]) == .whole)
        for bad in ["5/5", "-1/3", "1/0", "3", "a/b", "1/2/3", ""] {
            #expect(throws: ShardError.self, "\(bad)") { try Shard.parse(bad, environment: [:]) }
        }
        let error = try #require(throws: ShardError.self) { try Shard.parse("3/3", environment: [:]) }
        #expect(error.description.contains("0…2"))
        #expect(throws: ShardError.self) { try Shard.parse("1/3", shards: 3, environment: [:]) }
    }

    @Test("--shard auto takes I from JOB_COMPLETION_INDEX and N from --shards or SENSORFLEET_SHARDS; missing, malformed or out-of-range values name the variable")
    func autoShard() throws {
        #expect(try Shard.parse("auto", shards: 4, environment: ["JOB_COMPLETION_INDEX": "3"]) == Shard(index: 3, count: 4))
        #expect(try Shard.parse("auto", environment: ["JOB_COMPLETION_INDEX": "0", "SENSORFLEET_SHARDS": "2"]) == Shard(index: 0, count: 2))
        // --shards wins over the variable.
        #expect(try Shard.parse("auto", shards: 8, environment: ["JOB_COMPLETION_INDEX": "5", "SENSORFLEET_SHARDS": "2"]) == Shard(index: 5, count: 8))
        func message(_ shards: Int?, _ env: [String: String]) throws -> String {
            try #require(throws: ShardError.self) { try Shard.parse("auto", shards: shards, environment: env) }.description
        }
        #expect(try message(3, [:]).contains("JOB_COMPLETION_INDEX is not set"))
        #expect(try message(nil, ["JOB_COMPLETION_INDEX": "1"]).contains("--shards N or set SENSORFLEET_SHARDS"))
        #expect(try message(3, ["JOB_COMPLETION_INDEX": "3"]).contains("JOB_COMPLETION_INDEX=3 is out of range for 3 shards"))
        #expect(try message(3, ["JOB_COMPLETION_INDEX": "two"]).contains("JOB_COMPLETION_INDEX=\"two\": expected a whole number 0…2"))
        #expect(try message(nil, ["JOB_COMPLETION_INDEX": "0", "SENSORFLEET_SHARDS": "0"]).contains("SENSORFLEET_SHARDS=\"0\""))
        #expect(try message(0, ["JOB_COMPLETION_INDEX": "0"]).contains("must be 1…"))
    }

    @Test("--start-at takes Unix seconds or RFC 3339; the default run id is the start time in UTC")
    func startTime() throws {
        #expect(try StartTime.parse("1764124800").date == Date(timeIntervalSince1970: 1_764_124_800))
        #expect(try StartTime.parse("2025-11-26T02:40:00Z").date == Date(timeIntervalSince1970: 1_764_124_800))
        #expect(try StartTime.parse("2025-11-26T03:40:00.500+01:00").date == Date(timeIntervalSince1970: 1_764_124_800.5))
        #expect(try StartTime.parse("2025-11-26T02:40:00Z").runID == "run-20251126T024000Z")
        #expect(throws: StartTimeError.self) { try StartTime.parse("tomorrow") }
        #expect(throws: StartTimeError.self) { try StartTime.parse("2025-11-26 02:40") }
    }

    // MARK: merge

    /// A report of one shard whose histograms come from real recorders fed `samples` (µs).
    static func report(shard: String, runID: String = "run-1", qos: Int = 1, samples: [UInt64], wallStart: Int64) -> BenchReport {
        let e2e = LatencyRecorder(), puback = LatencyRecorder(), connect = LatencyRecorder()
        for s in samples { e2e.record(micros: s); puback.record(micros: s / 2 + 1) }
        connect.record(micros: 5000)
        let settings = BenchReport.Settings(
            broker: "localhost:8883", devices: samples.count % 7 + 1, connectRate: 100, ratePerDevice: 10, qos: qos, payloadBytes: 100,
            messagesPerDevice: nil, durationS: 3, warmupS: 0, bind: [], verifierConnections: 1, descriptorsPerClient: 1, reactorThreads: 1)
        let series = (1...3).map { t in
            BenchReport.Second(t: Double(t), wallMs: wallStart + Int64(t) * 1000, measured: true, connected: 2, sent: 10 * t, acked: 10 * t,
                               received: 10 * t, errors: 0, overruns: 0, e2eP50Ms: 1, e2eP99Ms: Double(t), e2eMaxMs: Double(t), pubackP99Ms: 1)
        }
        let resources = BenchReport.Resources(rssBeforeKb: 1000, rssConnectedKb: 2000, connectedAtStop: 2, rssPerConnectedDeviceKb: 500,
                                              allConnectedAfterS: 0.5, cpuConnectingS: 0.1, cpuPerConnectMs: 50,
                                              cpuAfterConnectedS: 0.2, secondsAfterConnected: 2.5)
        return BenchReport(
            runId: runID, shard: shard, startedAt: "2026-11-26T02:40:00Z", settings: settings,
            sent: samples.count, acknowledged: samples.count, received: samples.count, gaps: 0, duplicates: 0, outOfOrder: 0,
            dropped: 0, overruns: 1, connectAttempts: 2, connectFailures: 0, errors: 0, connectedAtEnd: 2,
            msgsPerS: Double(samples.count) / 3, receivedPerS: Double(samples.count) / 3, measuredS: 3,
            latencyMs: .init(endToEnd: LatencySummary(e2e.total), puback: LatencySummary(puback.total)),
            connectMs: LatencySummary(connect.total), e2eDistribution: [],
            histograms: .init(endToEnd: HistogramCounts(e2e.total), puback: HistogramCounts(puback.total), connect: HistogramCounts(connect.total)),
            cpuSeconds: 1, verifierCpuSeconds: 0.5, peakRssKb: 3000, resources: resources, timeSeries: series,
            devices: nil, verified: true)
    }

    @Test("merged counts are the sums, and merged p50/p90/p99/p99.9/max equal those of one histogram of all samples (exact, after a JSON round trip)")
    func mergeIsExact() throws {
        var generator = SystemRandomNumberGenerator()
        var all = LatencyRecorder.emptyHistogram()
        var inputs: [ReportMerge.Input] = []
        for i in 0..<4 {
            // Each shard its own shape: the shards' percentiles differ from the merged ones.
            let samples = (0..<(500 + 300 * i)).map { _ in UInt64.random(in: 100...(2_000 * UInt64(i + 1) * UInt64(i + 1)), using: &generator) }
            for s in samples { _ = all.record(s) }
            let report = Self.report(shard: "\(i)/4", samples: samples, wallStart: 1_764_124_800_000 + Int64(i) * 1000)
            let decoded = try BenchReport.decode(try report.jsonData())
            inputs.append(.init(file: "shard-\(i).json", report: decoded))
        }
        let merged = try ReportMerge.merge(inputs)
        let reports = inputs.map(\.report)
        #expect(merged.sent == reports.reduce(0) { $0 + $1.sent })
        #expect(merged.received == reports.reduce(0) { $0 + $1.received })
        #expect(merged.overruns == 4 && merged.connectAttempts == 8)
        #expect(merged.settings.devices == reports.reduce(0) { $0 + $1.settings.devices })
        let expected = LatencySummary(all)
        #expect(merged.latencyMs.endToEnd == expected)
        #expect(merged.latencyMs.endToEnd.count == UInt64(merged.received))
        #expect(merged.latencyMs.endToEnd.p99 == Double(all.valueAtPercentile(99)) / 1000)
        #expect(merged.latencyMs.endToEnd.p999 == Double(all.valueAtPercentile(99.9)) / 1000)
        #expect(merged.latencyMs.endToEnd.p50 == Double(all.valueAtPercentile(50)) / 1000)
        // Not what averaging the shards' p99 would give.
        let averaged = reports.map(\.latencyMs.endToEnd.p99).reduce(0, +) / 4
        #expect(merged.latencyMs.endToEnd.p99 != averaged)
        // Series on wall time: shards one second apart → 3 + 3 seconds of overlap-shifted samples.
        #expect(merged.timeSeries.count == 6)
        #expect(merged.timeSeries.map(\.sent).reduce(0, +) == reports.flatMap(\.timeSeries).map(\.sent).reduce(0, +))
        #expect(merged.timeSeries[3].sent == 30 + 20 + 10)  // second 4: shard 0's 3rd, shard 1's 2nd, shard 2's 1st
        #expect(merged.shards?.map(\.shard) == ["0/4", "1/4", "2/4", "3/4"])
        #expect(ReportMerge.missingShards(merged).isEmpty)
        // Merging the merged histogram again changes nothing.
        #expect(merged.histograms?.endToEnd == HistogramCounts(all))
    }

    @Test("reports of another run id, other settings, the same shard twice, or without histograms are refused, naming the file")
    func mergeRefusesMismatches() throws {
        let a = Self.report(shard: "0/2", samples: [100, 200], wallStart: 0)
        let otherRun = Self.report(shard: "1/2", runID: "run-2", samples: [100], wallStart: 0)
        let error = try #require(throws: ReportMergeError.self) {
            try ReportMerge.merge([.init(file: "a.json", report: a), .init(file: "b.json", report: otherRun)])
        }
        #expect(error.description.hasPrefix("b.json: run id run-2"))
        #expect(error.description.contains("a.json"))
        let otherQoS = Self.report(shard: "1/2", qos: 0, samples: [100], wallStart: 0)
        let qosError = try #require(throws: ReportMergeError.self) {
            try ReportMerge.merge([.init(file: "a.json", report: a), .init(file: "c.json", report: otherQoS)])
        }
        #expect(qosError.description.hasPrefix("c.json: qos is 0"))
        let twice = try #require(throws: ReportMergeError.self) {
            try ReportMerge.merge([.init(file: "a.json", report: a), .init(file: "a2.json", report: a)])
        }
        #expect(twice.description.contains("a2.json: shard 0/2 is also in a.json"))
        var old = a
        old.histograms = nil
        let oldError = try #require(throws: ReportMergeError.self) { try ReportMerge.merge([.init(file: "old.json", report: old)]) }
        #expect(oldError.description.hasPrefix("old.json: has no latency histograms"))
        let half = try ReportMerge.merge([.init(file: "a.json", report: a)])
        #expect(ReportMerge.missingShards(half) == [1])
    }

    @Test("the HTML charts have round 1-2-5 ticks, a log latency axis, the warm-up shaded and no overlapping percentile labels")
    func chartsReadAtAGlance() throws {
        #expect(BenchHTML.niceTicks(upTo: 11.2) == [0, 2, 4, 6, 8, 10, 12])
        #expect(BenchHTML.niceTicks(upTo: 4.4) == [0, 1, 2, 3, 4, 5])
        #expect(BenchHTML.niceTicks(upTo: 730) == [0, 200, 400, 600, 800])
        #expect(BenchHTML.logTicks(from: 0.1, to: 100) == [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100])
        var report = Self.report(shard: "0/1", samples: (0..<2400).map { UInt64(100 + 37 * $0) }, wallStart: 0)
        report.settings.warmupS = 1
        report.e2eDistribution = [0.0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100].map { [$0, $0 + 1] }
        let page = BenchHTML.render(report)
        #expect(page.contains("class=\"warmup\""))
        #expect(page.contains("id=\"chart-latency\"") && page.contains("data-y-scale=\"log\""))
        // x labels of the distribution chart: none closer than their widths allow.
        let start = try #require(page.range(of: "id=\"chart-distribution\""))
        let end = try #require(page.range(of: "</svg>", range: start.upperBound..<page.endIndex))
        let xs = page[start.lowerBound..<end.lowerBound].components(separatedBy: "class=\"xtick\" x=\"").dropFirst()
            .compactMap { Double($0.prefix { $0 != "\"" }) }
        #expect(xs.count >= 5 && xs.count < 12, "\(xs)")
        #expect(zip(xs, xs.dropFirst()).allSatisfy { $1 - $0 >= 20 }, "\(xs)")
        let yTicks = page.components(separatedBy: "class=\"ytick\"").count - 1
        #expect(yTicks > 0)
        #expect(!page.contains(">4.40<") && !page.contains(">7.80<"))
    }
}

@Suite("provision --shard")
struct ShardProvisionTests {
    @Test("provision --shard I/N makes only its shard's device keys and certificates, keeps the fleet CA, and the shards together make the whole fleet")
    func provisionOnlyTheShard() throws {
        let dir = try TempDir("shard-provision")
        defer { dir.remove() }
        _ = try Provisioner.provision(ProvisionOptions(directory: dir.path))
        let sensors = "sensors:\n  - {name: level, type: constant, value: 1}\n"
        for id in ["a-1", "a-2"] {
            try FileManager.default.createDirectory(atPath: "\(dir.path)/\(id)", withIntermediateDirectories: true)
            try sensors.write(toFile: "\(dir.path)/\(id)/device.yaml", atomically: true, encoding: .utf8)
        }
        let fleetYAML = try String(contentsOfFile: "\(dir.path)/fleet.yaml", encoding: .utf8)
        try (fleetYAML + "\ntemplates:\n  - id: bulk-{000}\n    count: 10\n    sensors:\n      - {name: level, type: constant, value: 1}\n")
            .write(toFile: "\(dir.path)/fleet.yaml", atomically: true, encoding: .utf8)
        let ca = try String(contentsOfFile: "\(dir.path)/ca.pem", encoding: .utf8)
        let ids = ["a-1", "a-2"] + (1...10).map { String(format: "bulk-%03d", $0) }
        func hasKey(_ id: String) -> Bool { FileManager.default.fileExists(atPath: "\(dir.path)/\(id)/key.pem") }

        var options = ProvisionOptions(directory: dir.path)
        options.shard = try Shard(index: 1, count: 3)
        _ = try Provisioner.provision(options)
        #expect(ids.filter(hasKey) == ["bulk-003", "bulk-004", "bulk-005", "bulk-006"])
        #expect(try String(contentsOfFile: "\(dir.path)/ca.pem", encoding: .utf8) == ca)
        // The shard can run on what it made: only its own credentials are checked.
        #expect(throws: FleetValidationError.self) { try FleetLoader.load(directory: dir.path) }
        let shard = options.shard
        let loaded = try FleetLoader.load(directory: dir.path, credentialsOf: { shard.positions(of: $0, firstDevices: nil) })
        #expect(try loaded.spec.selecting(shard).devices.map(\.id) == ["bulk-003", "bulk-004", "bulk-005", "bulk-006"])
        // --devices 6 --shard 1/3: the first 6, then split → positions 2…3.
        #expect(shard.positions(of: 12, firstDevices: 6) == 2..<4)

        for i in [0, 2] {
            options.shard = try Shard(index: i, count: 3)
            _ = try Provisioner.provision(options)
        }
        #expect(ids.allSatisfy(hasKey))
        #expect(try FleetLoader.load(directory: dir.path).spec.devices.map(\.id) == ids)

        options.newDevices = 1
        #expect(throws: ProvisionError.self) { try Provisioner.provision(options) }
    }
}
