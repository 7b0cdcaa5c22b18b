import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Shards: several bench processes of one fleet against one mosquitto, merged", .serialized)
struct ShardIntegrationTests {
    @Test("3 × `bench --shard i/3 --start-at` of one 12-device fleet, then `report merge`: every seq of every device arrived exactly once, each verifier saw only its shard, merged totals are the sums")
    func threeShardsMerge() async throws {
        let fleet = try TestFleet(devices: (1...12).map { String(format: "sh-%02d", $0) })
        defer { fleet.tearDown() }
        let messages = 30
        let startAt = Int(Date().timeIntervalSince1970) + 3
        var processes: [(ChildProcess, String, String)] = []
        for i in 0..<3 {
            let json = "\(fleet.path)/shard-\(i).json"
            let (process, output) = try launchSensorfleet([
                "bench", fleet.path, "--shard", "\(i)/3", "--start-at", "\(startAt)", "--messages", "\(messages)",
                "--rate", "20", "--qos", "1", "--duration", "30", "--report", json, "--log-level", "error",
            ], in: fleet.path)
            processes.append((process, output, json))
        }
        var reports: [BenchReport] = []
        for (process, output, json) in processes {
            let code = process.wait(timeout: 90)
            let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(code == 0, "bench exited \(code): \(log)")
            reports.append(try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: json))))
        }
        let expected = [fleet.ids[0..<4], fleet.ids[4..<8], fleet.ids[8..<12]].map(Array.init)
        for (i, report) in reports.enumerated() {
            #expect(report.shard == "\(i)/3")
            #expect(report.runId == StartTime(Date(timeIntervalSince1970: Double(startAt))).runID)
            #expect(report.devices?.map(\.id) == expected[i], "shard \(i): \(report.devices?.map(\.id) ?? [])")
            // Its verifier subscribed to its own devices only: what it received is what its devices sent.
            #expect(report.received == report.sent && report.sent == 4 * messages)
            #expect(report.verified)
            #expect(report.startLateS != nil)
        }

        let merged = "\(fleet.path)/merged.json", html = "\(fleet.path)/merged.html"
        let (merge, mergeOutput) = try launchSensorfleet(
            ["report", "merge"] + processes.map(\.2) + ["--report", merged, "--html", html], in: fleet.path)
        let code = merge.wait(timeout: 30)
        let log = (try? String(contentsOfFile: mergeOutput, encoding: .utf8)) ?? ""
        #expect(code == 0, "report merge exited \(code): \(log)")
        let report = try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: merged)))
        #expect(report.devices?.map(\.id) == fleet.ids)
        #expect(report.devices?.allSatisfy { $0.sent == messages && $0.received == messages && $0.gaps == 0 && $0.duplicates == 0 } == true)
        #expect(report.sent == reports.reduce(0) { $0 + $1.sent } && report.sent == 12 * messages)
        #expect(report.received == reports.reduce(0) { $0 + $1.received })
        #expect(report.acknowledged == reports.reduce(0) { $0 + $1.acknowledged })
        #expect(report.gaps == 0 && report.duplicates == 0 && report.verified)
        #expect(report.latencyMs.endToEnd.count == reports.reduce(0) { $0 + $1.latencyMs.endToEnd.count })
        #expect(report.shards?.map(\.shard) == ["0/3", "1/3", "2/3"])
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.components(separatedBy: "<tr class=\"shard\">").count - 1 == 3)
        let charts = try BenchHTMLCheck.charts(in: page)
        #expect(Set(charts.keys) == ["chart-rate", "chart-connected", "chart-latency", "chart-distribution"])
        if let chromium = findExecutable("chromium") ?? findExecutable("chromium-browser") {
            let dom = "\(fleet.path)/merged-dom.html"
            let render = try ChildProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://\(html)"], output: dom)
            #expect(render.wait() == 0)
            let rendered = try String(contentsOfFile: dom, encoding: .utf8)
            #expect(try BenchHTMLCheck.charts(in: rendered).count == 4)
            #expect(rendered.contains("id=\"shards\""), "Chromium's DOM: \(rendered.prefix(300))")
        }

        // A report of another run is refused, naming the file.
        var other = reports[2]
        other.runId = "run-other"
        let otherFile = "\(fleet.path)/other.json"
        try other.jsonData().write(to: URL(fileURLWithPath: otherFile))
        let (refused, refusedOutput) = try launchSensorfleet(["report", "merge", processes[0].2, otherFile], in: fleet.path)
        #expect(refused.wait(timeout: 30) == 1)
        let refusal = (try? String(contentsOfFile: refusedOutput, encoding: .utf8)) ?? ""
        #expect(refusal.contains("\(otherFile): run id run-other"), "\(refusal)")
    }
}
