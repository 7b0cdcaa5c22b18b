import Foundation
import Logging
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("--metrics-listen: a real run scraped over loopback", .serialized)
struct MetricsEndpointTests {
    static func quietLogger() -> Logger {
        var logger = Logger(label: "metrics-test")
        logger.logLevel = .critical
        return logger
    }

    static func scrape(_ port: Int) throws -> PrometheusText {
        let answer = try #require(httpGet(port: port, "/metrics", timeout: 2))
        #expect(answer.status == 200)
        return try PrometheusText(answer.body)
    }

    @Test("sensorfleet run --metrics-listen: ready once connected, values move, hostile clients stall nothing, the report has at least what was scraped")
    func runCommand() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"], interval: 0.05)
        defer { fleet.tearDown() }
        let port = freePort()
        let report = "\(fleet.path)/report.json"
        let (process, output) = try launchSensorfleet(
            ["run", fleet.path, "--metrics-listen", "127.0.0.1:\(port)", "--report", report, "--status-interval", "1",
             "--run-id", "metrics-run"], in: fleet.path)
        defer { process.signal(SIGKILL) }
        func said() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        #expect(await waitFor(20) { httpGet(port: port, "/healthz", timeout: 1)?.status == 200 }, "output: \(said())")
        let first = try Self.scrape(port)
        let firstSent = try #require(first.value("sensorfleet_messages_sent_total", ["run_id": "metrics-run", "shard": "0/1"]))
        #expect(first.value("sensorfleet_devices_targeted") == 2)

        // Hostile clients: one sends nothing, one sends a byte, one asks and never reads.
        var hostile: [Int32] = []
        defer { for fd in hostile { close(fd) } }
        for request in ["", "G", "GET /metrics HTTP/1.1\r\n\r\n"] {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(connectLoopback(fd, port: port))
            if !request.isEmpty { _ = send(fd, request, request.utf8.count, Int32(MSG_NOSIGNAL)) }
            hostile.append(fd)
        }
        let started = Date()
        let beside = try Self.scrape(port)
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(httpGet(port: port, "/nope")?.status == 404)
        #expect(rawHTTP(port: port, "DELETE /metrics HTTP/1.1\r\n\r\n")?.status == 405)
        // The fleet keeps publishing, and the scrapes see it.
        var last = beside
        #expect(await waitFor(10) {
            guard let text = try? Self.scrape(port) else { return false }
            last = text
            return (text.value("sensorfleet_messages_acknowledged_total") ?? 0) > firstSent + 20
        })
        #expect((last.value("sensorfleet_publish_latency_seconds_count") ?? 0) > 0)
        #expect(last.value("sensorfleet_connect_latency_seconds_count") == 2)
        #expect(last.value("sensorfleet_devices_connected") == 2)

        process.signal(SIGTERM)
        #expect(process.wait() == 0, "output: \(said())")
        #expect(said().contains("metrics: http://127.0.0.1:\(port)/metrics"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        let published = try #require(json["published"] as? Int)
        let acknowledged = try #require(json["acknowledged"] as? Int)
        #expect(Double(published) >= last.value("sensorfleet_messages_sent_total") ?? .infinity)
        #expect(Double(acknowledged) >= last.value("sensorfleet_messages_acknowledged_total") ?? .infinity)
        // No socket once the run is over.
        #expect(!isListening(port))
    }

    @Test("the fleet in-process: after the stop the exposition equals the summary")
    func matchesSummary() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2", "dev-3"], interval: 0.05)
        defer { fleet.tearDown() }
        let metrics = FleetMetrics(labels: MetricsLabels(runID: "run-7", shard: "0/1"))
        var options = RunOptions()
        options.metrics = metrics
        options.recordLatencies = true
        let runner = try Fleet(spec: try fleet.load(), options: options, logger: Self.quietLogger())
        await runner.start()
        #expect(await waitFor(20) { runner.counters.acknowledged.load(ordering: .relaxed) >= 60 })
        let summary = await runner.stop(drainTimeout: 5, disconnectTimeout: 2)
        let t = summary.totals
        let text = try PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(text.value("sensorfleet_messages_sent_total") == Double(t.accepted))
        #expect(text.value("sensorfleet_messages_acknowledged_total") == Double(t.acknowledged))
        let dropped = text.samples.filter { $0.name == "sensorfleet_messages_dropped_total" }.map(\.value).reduce(0, +)
        #expect(dropped == Double(t.dropped))
        #expect(text.value("sensorfleet_connect_attempts_total") == Double(t.connectAttempts))
        #expect(text.value("sensorfleet_devices_targeted") == 3)
        #expect(text.value("sensorfleet_devices_connected") == 0)
        #expect(text.value("sensorfleet_connect_latency_seconds_count") == Double(summary.devices.map(\.connects).reduce(0, +)))
        #expect(text.value("sensorfleet_publish_latency_seconds_count") == Double(runner.counters.publishLatency!.total.totalCount))
        #expect(text.value("sensorfleet_outbox_messages") == 0)
    }

    @Test("a real Prometheus scrapes the endpoint and reports the fleet's acknowledged total")
    func realPrometheus() async throws {
        guard let prometheus = findExecutable("prometheus") else {
            print("skipped: prometheus is not installed (Debian package prometheus; Scripts/lib/common.sh installs it)")
            return
        }
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"], interval: 0.05)
        defer { fleet.tearDown() }
        let metrics = FleetMetrics(labels: MetricsLabels(runID: "prom", shard: "0/1"))
        let server = try MetricsServer(address: MetricsListenAddress(parsing: "127.0.0.1:0"), metrics: metrics)
        server.start()
        defer { server.stop() }
        var options = RunOptions()
        options.metrics = metrics
        let runner = try Fleet(spec: try fleet.load(), options: options, logger: Self.quietLogger())
        await runner.start()
        #expect(await waitFor(20) { runner.counters.acknowledged.load(ordering: .relaxed) >= 20 })
        let summary = await runner.stop(drainTimeout: 5, disconnectTimeout: 2)

        let dir = try TempDir("prometheus")
        defer { dir.remove() }
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: sensorfleet
            static_configs:
              - targets: ["127.0.0.1:\(server.address.port)"]
        """.write(toFile: "\(dir.path)/prometheus.yml", atomically: true, encoding: .utf8)
        let webPort = freePort()
        let child = try ChildProcess(prometheus, [
            "--config.file=\(dir.path)/prometheus.yml", "--storage.tsdb.path=\(dir.path)/data",
            "--web.listen-address=127.0.0.1:\(webPort)",
        ], output: "\(dir.path)/prometheus.out")
        defer { child.terminate() }
        let expected = summary.totals.acknowledged
        var seen = "nothing"
        let agreed = await waitFor(40) {
            guard let answer = httpGet(port: webPort, "/api/v1/query?query=sum(sensorfleet_messages_acknowledged_total)", timeout: 2),
                  answer.status == 200,
                  let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                  let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let value = result.first?["value"] as? [Any], let text = value.last as? String else { return false }
            seen = text
            return Double(text) == Double(expected)
        }
        #expect(agreed, "Prometheus said \(seen), the fleet \(expected); log: \((try? String(contentsOfFile: "\(dir.path)/prometheus.out", encoding: .utf8)) ?? "")")
    }

    /// VmRSS of a process, in KB.
    static func rssKB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test("agent --metrics-listen: /healthz ready with its one device connected; RSS with and without the endpoint")
    func agentEndpointAndMemory() async throws {
        let fleet = try TestFleet(devices: ["pi-1"], interval: 0.5)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber()
        var rss: [Bool: Int] = [:]
        for withEndpoint in [false, true] {
            let port = freePort()
            var arguments = ["agent", "\(fleet.path)/pi-1", "--log-level", "warning"]
            if withEndpoint { arguments += ["--metrics-listen", "127.0.0.1:\(port)"] }
            let before = subscriber.sequences()["pi-1"]?.count ?? 0
            let (agent, output) = try launchSensorfleet(arguments, in: fleet.path)
            defer { agent.terminate() }
            func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
            #expect(await waitFor(20) { (subscriber.sequences()["pi-1"]?.count ?? 0) >= before + 4 }, "agent: \(log())")
            if withEndpoint {
                #expect(httpGet(port: port, "/healthz")?.status == 200)
                let text = try Self.scrape(port)
                #expect(text.value("sensorfleet_devices_connected") == 1)
                #expect((text.value("sensorfleet_messages_acknowledged_total") ?? 0) >= 1)
                #expect(text.value("sensorfleet_connect_latency_seconds_count") == 1)
                // Scraped a few times, as Prometheus would.
                for _ in 0..<5 { _ = httpGet(port: port, "/metrics") }
            } else {
                #expect(!isListening(port))
            }
            try await Task.sleep(for: .seconds(2))
            rss[withEndpoint] = Self.rssKB(agent.pid)
            agent.signal(SIGTERM)
            #expect(agent.wait() == 0, "agent: \(log())")
        }
        print("metrics rss: agent without --metrics-listen \(rss[false] ?? 0) KB, with it (scraped) \(rss[true] ?? 0) KB")
        #expect((rss[true] ?? 0) - (rss[false] ?? 0) < 4 * 1024)
    }

    @Test("bench --metrics-listen: the verifier's received total and end-to-end histogram are scraped; gaps and duplicates are 0")
    func benchScrape() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"], interval: 0.05)
        defer { fleet.tearDown() }
        let port = freePort()
        let (bench, output) = try launchSensorfleet(
            ["bench", fleet.path, "--rate", "20", "--duration", "4", "--metrics-listen", "127.0.0.1:\(port)"], in: fleet.path)
        defer { bench.signal(SIGKILL) }
        func said() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        var last: PrometheusText?
        #expect(await waitFor(20) {
            guard let answer = httpGet(port: port, "/metrics", timeout: 1), let text = try? PrometheusText(answer.body) else { return false }
            last = text
            return (text.value("sensorfleet_messages_received_total") ?? 0) >= 20
        }, "bench: \(said())")
        let text = try #require(last)
        #expect((text.value("sensorfleet_end_to_end_latency_seconds_count") ?? 0) >= 1)
        #expect(text.value("sensorfleet_messages_duplicates_total") == 0)
        #expect(text.value("sensorfleet_messages_gaps_total") == 0)
        #expect(bench.wait() == 0, "bench: \(said())")
    }
}
