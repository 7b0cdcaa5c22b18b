#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Histogram

/// `sensorfleet report merge`: the bench reports of one run's shards as one report. Counts are
/// summed; latency histograms are added bucket by bucket (``HistogramCounts``), and the merged
/// percentiles are read from the sum — never averaged; the per-second series are aligned by wall
/// time (each second's `wall_ms`).
public enum ReportMerge {
    /// One report and the file it came from (named in errors and in the per-shard rows).
    public struct Input: Sendable {
        public var file: String
        public var report: BenchReport
        public init(file: String, report: BenchReport) {
            self.file = file
            self.report = report
        }
    }

    /// Reads a bench JSON report.
    /// - Throws: ``ReportMergeError`` naming the file when it cannot be read or decoded.
    public static func load(_ file: String) throws(ReportMergeError) -> Input {
        let data: Data
        do { data = try PlainFile.read(file) } catch {
            throw ReportMergeError("\(file): cannot read it (\(error.reason))")
        }
        do { return Input(file: file, report: try BenchReport.decode(data)) } catch {
            throw ReportMergeError("\(file): not a bench JSON report (`sensorfleet bench --report`): \(error)")
        }
    }

    /// The settings that must agree for reports to be merged, by name.
    static func comparable(_ s: BenchReport.Settings) -> [(String, String)] {
        [("qos", "\(s.qos)"), ("rate per device", "\(s.ratePerDevice)"), ("payload bytes", "\(s.payloadBytes)"),
         ("messages per device", s.messagesPerDevice.map { "\($0)" } ?? "none"), ("duration s", "\(s.durationS)"),
         ("warm-up s", "\(s.warmupS)"), ("connect rate", "\(s.connectRate)"), ("broker", s.broker)]
    }

    /// Merges the reports of one run.
    /// - Throws: ``ReportMergeError`` naming the file that does not fit: no histograms (a report
    ///   older than version 2), an already merged report, another run id, other settings, another
    ///   shard count, or a shard given twice.
    public static func merge(_ inputs: [Input]) throws(ReportMergeError) -> BenchReport {
        guard let first = inputs.first else { throw ReportMergeError("no reports to merge") }
        let base = first.report
        var shardsSeen: [String: String] = [:]
        for input in inputs {
            let r = input.report
            guard r.histograms != nil, r.timeSeries.allSatisfy({ $0.wallMs != nil }) else {
                throw ReportMergeError("\(input.file): has no latency histograms or wall-clock series (report version \(r.version), written before version 2): run the bench again with this version")
            }
            guard r.shards == nil else {
                throw ReportMergeError("\(input.file): is already a merged report; merge the shards' own reports")
            }
            if r.runId != base.runId {
                throw ReportMergeError("\(input.file): run id \(r.runId ?? "none") is not \(first.file)'s \(base.runId ?? "none"): these are reports of different runs (give every shard the same --start-at or --run-id)")
            }
            for ((name, value), (_, expected)) in zip(comparable(r.settings), comparable(base.settings)) where value != expected {
                throw ReportMergeError("\(input.file): \(name) is \(value), but \(expected) in \(first.file): reports of other settings cannot be merged")
            }
            let shard = r.shard ?? "0/1"
            if shard.split(separator: "/").last != (base.shard ?? "0/1").split(separator: "/").last {
                throw ReportMergeError("\(input.file): shard \(shard) is of another split than \(first.file)'s \(base.shard ?? "0/1")")
            }
            if let other = shardsSeen[shard] {
                throw ReportMergeError("\(input.file): shard \(shard) is also in \(other); give each shard's report once")
            }
            shardsSeen[shard] = input.file
        }
        let reports = inputs.map(\.report)
        func sum(_ key: (BenchReport) -> Int) -> Int { reports.reduce(0) { $0 + key($1) } }
        func sumD(_ key: (BenchReport) -> Double) -> Double { reports.reduce(0) { $0 + key($1) } }
        func r3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
        func add(_ key: (BenchReport.Histograms) -> HistogramCounts) -> Histogram<UInt64> {
            var total = LatencyRecorder.emptyHistogram()
            for r in reports { total.add(key(r.histograms!).histogram) }
            return total
        }
        let e2e = add(\.endToEnd), puback = add(\.puback), connect = add(\.connect)

        var settings = base.settings
        settings.devices = sum(\.settings.devices)
        settings.verifierConnections = sum(\.settings.verifierConnections)
        settings.reactorThreads = sum(\.settings.reactorThreads)
        settings.bind = Array(Set(reports.flatMap(\.settings.bind))).sorted()

        // Per-second series on wall time: second k of the merge holds every shard's second
        // that ended in the same wall-clock second.
        var buckets: [Int64: [BenchReport.Second]] = [:]
        for r in reports { for s in r.timeSeries { buckets[(s.wallMs! + 500) / 1000, default: []].append(s) } }
        let starts = reports.compactMap { r in r.timeSeries.first.map { $0.wallMs! - Int64($0.t * 1000) } }
        let origin = starts.min() ?? 0
        let series = buckets.keys.sorted().map { key -> BenchReport.Second in
            let s = buckets[key]!
            return BenchReport.Second(
                t: r3(Double(key * 1000 - origin) / 1000), wallMs: key * 1000, measured: s.allSatisfy(\.measured),
                connected: s.reduce(0) { $0 + $1.connected }, sent: s.reduce(0) { $0 + $1.sent },
                acked: s.reduce(0) { $0 + $1.acked }, received: s.reduce(0) { $0 + $1.received },
                errors: s.reduce(0) { $0 + $1.errors }, overruns: s.reduce(0) { $0 + $1.overruns },
                // One second's percentiles cannot be added: the worst shard's.
                e2eP50Ms: s.map(\.e2eP50Ms).max() ?? 0, e2eP99Ms: s.map(\.e2eP99Ms).max() ?? 0,
                e2eMaxMs: s.map(\.e2eMaxMs).max() ?? 0, pubackP99Ms: s.map(\.pubackP99Ms).max() ?? 0)
        }

        var distribution: [[Double]] = []
        if e2e.totalCount > 0 {
            for p in [0.0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100] {
                distribution.append([p, Double(e2e.valueAtPercentile(p)) / 1000])
            }
        }
        let resources = reports.map(\.resources)
        let connectedAtStop = resources.reduce(0) { $0 + $1.connectedAtStop }
        let rssBefore = resources.reduce(0) { $0 + $1.rssBeforeKb }, rssConnected = resources.reduce(0) { $0 + $1.rssConnectedKb }
        func all<T>(_ values: [T?]) -> [T]? { values.contains { $0 == nil } ? nil : values.compactMap { $0 } }
        let cpuConnecting = all(resources.map(\.cpuConnectingS)).map { $0.reduce(0, +) }
        let deviceRows = all(reports.map(\.devices)).map { $0.flatMap { $0 }.sorted { $0.id < $1.id } }
        let rows = inputs.map { input in
            let r = input.report
            return ShardRow(file: input.file, shard: r.shard ?? "0/1", devices: r.settings.devices, startedAt: r.startedAt,
                            startLateS: r.startLateS, sent: r.sent, received: r.received, gaps: r.gaps,
                            duplicates: r.duplicates, dropped: r.dropped, msgsPerS: r.msgsPerS,
                            e2eP99Ms: r.latencyMs.endToEnd.p99, verified: r.verified)
        }.sorted { ($0.shardIndex, $0.file) < ($1.shardIndex, $1.file) }
        let verifierCPU = all(reports.map(\.verifierCpuSeconds)).map { r3($0.reduce(0, +)) }
        return BenchReport(
            runId: base.runId, shard: nil, startLateS: reports.compactMap(\.startLateS).max(), shards: rows,
            startedAt: reports.map(\.startedAt).min() ?? base.startedAt, settings: settings,
            sent: sum(\.sent), acknowledged: sum(\.acknowledged), received: sum(\.received), gaps: sum(\.gaps),
            duplicates: sum(\.duplicates), outOfOrder: sum(\.outOfOrder), dropped: sum(\.dropped), overruns: sum(\.overruns),
            connectAttempts: sum(\.connectAttempts), connectFailures: sum(\.connectFailures), errors: sum(\.errors),
            connectedAtEnd: sum(\.connectedAtEnd),
            msgsPerS: (sumD(\.msgsPerS) * 10).rounded() / 10, receivedPerS: (sumD(\.receivedPerS) * 10).rounded() / 10,
            measuredS: reports.map(\.measuredS).max() ?? 0,
            latencyMs: .init(endToEnd: LatencySummary(e2e), puback: LatencySummary(puback)),
            connectMs: LatencySummary(connect), e2eDistribution: distribution,
            histograms: .init(endToEnd: HistogramCounts(e2e), puback: HistogramCounts(puback), connect: HistogramCounts(connect)),
            cpuSeconds: r3(sumD(\.cpuSeconds)), verifierCpuSeconds: verifierCPU,
            peakRssKb: sum(\.peakRssKb),
            resources: BenchReport.Resources(
                rssBeforeKb: rssBefore, rssConnectedKb: rssConnected, connectedAtStop: connectedAtStop,
                rssPerConnectedDeviceKb: connectedAtStop > 0 ? (Double(rssConnected - rssBefore) / Double(connectedAtStop) * 10).rounded() / 10 : 0,
                allConnectedAfterS: all(resources.map(\.allConnectedAfterS))?.max(),
                cpuConnectingS: cpuConnecting.map(r3),
                cpuPerConnectMs: cpuConnecting.map { ($0 / Double(max(1, settings.devices)) * 1e6).rounded() / 1000 },
                cpuAfterConnectedS: all(resources.map(\.cpuAfterConnectedS)).map { r3($0.reduce(0, +)) },
                secondsAfterConnected: all(resources.map(\.secondsAfterConnected))?.min()),
            timeSeries: series, devices: deviceRows,
            verified: reports.allSatisfy(\.verified))
    }

    /// The shard indices of an `N`-way split that are not among `report.shards` (empty: complete).
    public static func missingShards(_ report: BenchReport) -> [Int] {
        guard let rows = report.shards, let count = rows.first?.shardCount else { return [] }
        let present = Set(rows.map(\.shardIndex))
        return (0..<count).filter { !present.contains($0) }
    }
}

/// One shard's line in a merged report (`shards`).
public struct ShardRow: Sendable, Codable, Equatable {
    public var file: String
    /// "I/N".
    public var shard: String
    public var devices: Int
    public var startedAt: String
    public var startLateS: Double?
    public var sent: Int
    public var received: Int
    public var gaps: Int
    public var duplicates: Int
    public var dropped: Int
    public var msgsPerS: Double
    public var e2eP99Ms: Double
    public var verified: Bool

    var shardIndex: Int { Int(shard.split(separator: "/").first ?? "") ?? 0 }
    var shardCount: Int { Int(shard.split(separator: "/").last ?? "") ?? 1 }
}

/// Reports that cannot be merged, naming the file and why.
public struct ReportMergeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
