import ArgumentParser
import SensorFleetCore

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with bench reports.",
        subcommands: [Merge.self]
    )

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the bench JSON reports of one run's shards: counts summed, latency histograms added exactly, series aligned by wall time.",
            discussion: "Reports of another run id or other settings (QoS, rate, payload size, duration…) are refused. Schema: docs/bench.md."
        )

        @Argument(help: "The shards' JSON reports (`sensorfleet bench --shard I/N --report FILE`).")
        var reports: [String]

        @Option(help: "Write the merged JSON report here.")
        var report: String?

        @Option(help: "Write the merged HTML report here (with one row per shard).")
        var html: String?

        func validate() throws {
            if reports.isEmpty { throw ValidationError("give the JSON reports to merge") }
        }

        func run() throws {
            let merged: BenchReport
            do {
                merged = try ReportMerge.merge(reports.map(ReportMerge.load))
            } catch {
                printError("report merge: \(error)")
                throw ExitCode(1)
            }
            let r = merged, e2e = r.latencyMs.endToEnd
            print("""
            merged \(reports.count) report\(reports.count == 1 ? "" : "s") of run \(r.runId ?? "–"): \(r.settings.devices) devices
              sent \(r.sent)  acknowledged \(r.acknowledged)  received \(r.received)  gaps \(r.gaps)  duplicates \(r.duplicates)  dropped \(r.dropped)
              \(r.msgsPerS) msg/s sent, \(r.receivedPerS) msg/s received
              end-to-end ms  p50 \(e2e.p50)  p90 \(e2e.p90)  p99 \(e2e.p99)  p99.9 \(e2e.p999)  max \(e2e.max)
              \(r.verified ? "VERIFIED: every shard's messages arrived exactly once" : "NOT VERIFIED")
            """)
            let missing = ReportMerge.missingShards(r)
            if !missing.isEmpty {
                printError("warning: shards \(missing.map(String.init).joined(separator: ", ")) of \(r.shards?.first?.shard.split(separator: "/").last ?? "?") are missing")
            }
            do {
                if let report { try PlainFile.write(r.jsonData(), to: report); print("report written to \(report)") }
                if let html { try PlainFile.write(Array(BenchHTML.render(r).utf8), to: html); print("HTML report written to \(html)") }
            } catch {
                printError("cannot write the report: \(error)")
                throw ExitCode(1)
            }
            if !r.verified { throw ExitCode(3) }
        }
    }
}
