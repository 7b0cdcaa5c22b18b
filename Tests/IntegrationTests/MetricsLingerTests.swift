import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("bench --metrics-linger: the final values stay up for the last scrape", .serialized)
struct MetricsLingerTests {
    @Test("after a --messages run the endpoint still answers with the final counts; SIGTERM ends the linger at once and the report is written")
    func lingerServesTheFinalValuesAndSIGTERMEndsIt() async throws {
        let fleet = try TestFleet(devices: ["lg-1", "lg-2"])
        defer { fleet.tearDown() }
        let port = freePort()
        let report = "\(fleet.path)/report.json"
        let (bench, output) = try launchSensorfleet([
            "bench", fleet.path, "--rate", "20", "--messages", "10", "--metrics-listen", "127.0.0.1:\(port)",
            "--metrics-linger", "600", "--report", report, "--run-id", "linger",
        ], in: fleet.path)
        defer { bench.signal(SIGKILL) }
        func said() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        // The run is over (20 sent and 20 received); the process is still serving.
        var final: PrometheusText?
        #expect(await waitFor(30) {
            guard let answer = httpGet(port: port, "/metrics", timeout: 1), let text = try? PrometheusText(answer.body) else { return false }
            final = text
            return text.value("sensorfleet_messages_sent_total") == 20 && text.value("sensorfleet_messages_received_total") == 20
        }, "bench: \(said())")
        // The bench is over and says it lingers; it still serves the same final values.
        #expect(await waitFor(30) { said().contains("serving the final values for 600.0 s (--metrics-linger)") }, "bench: \(said())")
        try await Task.sleep(for: .seconds(1))
        #expect(bench.isRunning, "bench exited instead of lingering: \(said())")
        #expect(!FileManager.default.fileExists(atPath: report))
        let again = try PrometheusText(try #require(httpGet(port: port, "/metrics", timeout: 2)).body)
        #expect(again.value("sensorfleet_messages_sent_total") == final?.value("sensorfleet_messages_sent_total"))
        let stopped = Date()
        bench.signal(SIGTERM)
        #expect(bench.wait(timeout: 10) == 0, "bench: \(said())")
        #expect(Date().timeIntervalSince(stopped) < 5)
        let json = try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: report)))
        #expect(json.sent == 20 && json.received == 20 && json.verified)
        #expect(!isListening(port))
    }
}
