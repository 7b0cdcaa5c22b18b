import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Metrics: the Prometheus exposition of known counter values")
struct MetricsExpositionTests {
    /// Counters as a run would leave them, attached to metrics labelled r1 / 1/4.
    static func known() -> (FleetCounters, FleetMetrics) {
        let counters = FleetCounters(recordLatencies: true)
        let metrics = FleetMetrics(labels: MetricsLabels(runID: "r1", shard: "1/4"))
        metrics.attach(counters, durable: nil)
        counters.devices.store(3, ordering: .relaxed)
        counters.connected.store(2, ordering: .relaxed)
        counters.accepted.store(10, ordering: .relaxed)
        counters.acknowledged.store(7, ordering: .relaxed)
        counters.drop(.overflow, count: 2)
        counters.overruns.store(4, ordering: .relaxed)
        counters.connectAttempts.store(5, ordering: .relaxed)
        counters.connectFailed(.timeout)
        counters.connectFailed(.tls)
        counters.connectFailed(.tls)
        counters.publishLatency!.record(micros: 3_000)   // 3 ms
        counters.publishLatency!.record(micros: 200_000) // 200 ms
        counters.connectLatency!.record(micros: 40_000)
        return (counters, metrics)
    }

    static func parse(_ metrics: FleetMetrics) throws -> PrometheusText {
        try PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
    }

    @Test("names, labels, _total counters and gauges carry the counters' values")
    func countersAndGauges() throws {
        let (_, metrics) = Self.known()
        let text = try Self.parse(metrics)
        let run = ["run_id": "r1", "shard": "1/4"]
        #expect(text.value("sensorfleet_messages_sent_total", run) == 10)
        #expect(text.value("sensorfleet_messages_acknowledged_total", run) == 7)
        #expect(text.value("sensorfleet_messages_dropped_total", ["reason": "overflow"]) == 2)
        #expect(text.value("sensorfleet_messages_dropped_total", ["reason": "expired"]) == 0)
        #expect(text.value("sensorfleet_reading_overruns_total") == 4)
        #expect(text.value("sensorfleet_connect_attempts_total") == 5)
        #expect(text.value("sensorfleet_connect_failures_total", ["reason": "timeout"]) == 1)
        #expect(text.value("sensorfleet_connect_failures_total", ["reason": "tls"]) == 2)
        #expect(text.value("sensorfleet_devices_targeted") == 3)
        #expect(text.value("sensorfleet_devices_connected") == 2)
        #expect(text.value("sensorfleet_outbox_messages") == 1) // 10 accepted − 7 acknowledged − 2 dropped
        #expect(text.value("sensorfleet_outbox_disk_messages") == 0)
        #expect((text.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((text.value("process_open_fds") ?? 0) >= 3)
        #expect(text.value("process_cpu_seconds_total") != nil)
        for (name, type) in text.types {
            #expect(name.hasPrefix("sensorfleet_") || name.hasPrefix("process_"), "\(name)")
            #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
            #expect(text.helps[name] != nil, "\(name) has no HELP")
        }
        // run_id and shard on every series, plus reason (or le) where stated: never a device id.
        for sample in text.samples {
            var allowed: Set<String> = ["run_id", "shard"]
            if sample.name.hasSuffix("_bucket") { allowed.insert("le") }
            if sample.name == "sensorfleet_messages_dropped_total" || sample.name == "sensorfleet_connect_failures_total" { allowed.insert("reason") }
            #expect(Set(sample.labels.keys).isSubset(of: allowed) && sample.labels["run_id"] == "r1" && sample.labels["shard"] == "1/4", "\(sample)")
        }
    }

    @Test("latency histograms: seconds, cumulative buckets, count and sum")
    func histograms() throws {
        let (_, metrics) = Self.known()
        let text = try Self.parse(metrics)
        #expect(text.types["sensorfleet_publish_latency_seconds"] == "histogram")
        func bucket(_ name: String, _ le: String) -> Double? { text.value(name + "_bucket", ["le": le]) }
        let publish = "sensorfleet_publish_latency_seconds"
        #expect(bucket(publish, "0.0025") == 0)
        #expect(bucket(publish, "0.005") == 1)
        #expect(bucket(publish, "0.1") == 1)
        #expect(bucket(publish, "0.25") == 2)
        #expect(bucket(publish, "+Inf") == 2)
        #expect(text.value(publish + "_count") == 2)
        #expect(abs((text.value(publish + "_sum") ?? 0) - 0.203) < 1e-9)
        #expect(text.value("sensorfleet_connect_latency_seconds_count") == 1)
        #expect(bucket("sensorfleet_connect_latency_seconds", "0.05") == 1)
        #expect(text.value("sensorfleet_end_to_end_latency_seconds_count") == 0)
    }

    @Test("a later scrape adds what changed: counters only grow, gauges follow")
    func laterScrape() throws {
        let (counters, metrics) = Self.known()
        _ = metrics.exposition()
        counters.accepted.add(5, ordering: .relaxed)
        counters.connected.store(0, ordering: .relaxed)
        counters.drop(.overflow)
        let text = try Self.parse(metrics)
        #expect(text.value("sensorfleet_messages_sent_total") == 15)
        #expect(text.value("sensorfleet_messages_dropped_total", ["reason": "overflow"]) == 3)
        #expect(text.value("sensorfleet_devices_connected") == 0)
        #expect(!metrics.isReady)
    }

    @Test("promtool check metrics accepts the exposition")
    func promtoolAccepts() throws {
        guard let promtool = findExecutable("promtool") else {
            print("skipped: promtool is not installed (Debian package prometheus; Scripts/lib/common.sh installs it)")
            return
        }
        let (_, metrics) = Self.known()
        let dir = try TempDir("promtool")
        defer { dir.remove() }
        let input = "\(dir.path)/metrics.txt"
        try Data(metrics.exposition()).write(to: URL(fileURLWithPath: input))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" check metrics < \"$1\" > \"$1.out\" 2>&1", promtool, input]
        try process.run()
        process.waitUntilExit()
        let said = (try? String(contentsOfFile: input + ".out", encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "promtool: \(said)")
        #expect(said.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(said)")
    }
}

@Suite("Metrics endpoint: only GET /metrics and /healthz, bounded, never stalled", .serialized)
struct MetricsServerTests {
    static func server(timeout: Double = 5, maxConnections: Int = 16) throws -> (MetricsServer, FleetCounters) {
        var limits = MetricsServerLimits()
        limits.connectionTimeout = timeout
        limits.maxConnections = maxConnections
        let metrics = FleetMetrics()
        let server = try MetricsServer(address: try MetricsListenAddress(parsing: "127.0.0.1:0"), metrics: metrics, limits: limits)
        let counters = FleetCounters()
        metrics.attach(counters, durable: nil)
        server.start()
        return (server, counters)
    }

    @Test("GET /metrics 200, /healthz 503 then 200 once a device is connected, 404, 405, 400, 431")
    func answers() throws {
        let (server, counters) = try Self.server()
        defer { server.stop() }
        let port = server.address.port
        let scrape = try #require(httpGet(port: port, "/metrics"))
        #expect(scrape.status == 200)
        #expect(scrape.body.contains("sensorfleet_messages_sent_total{"))
        #expect(httpGet(port: port, "/healthz")?.status == 503)
        counters.connected.store(1, ordering: .relaxed)
        let ready = try #require(httpGet(port: port, "/healthz"))
        #expect(ready.status == 200 && ready.body == "ready\n")
        #expect(httpGet(port: port, "/metrics?x=1")?.status == 200)
        #expect(httpGet(port: port, "/")?.status == 404)
        #expect(httpGet(port: port, "/metrics/extra")?.status == 404)
        #expect(rawHTTP(port: port, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")?.status == 405)
        #expect(rawHTTP(port: port, "HEAD /healthz HTTP/1.1\r\n\r\n")?.status == 405)
        #expect(rawHTTP(port: port, "nonsense\r\n\r\n")?.status == 400)
        let huge = "GET /metrics HTTP/1.1\r\nX-Fill: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        #expect(rawHTTP(port: port, huge)?.status == 431)
    }

    @Test("silent, byte-by-byte and never-reading clients: another scrape still answers promptly; each is cut at the time limit")
    func hostileClients() async throws {
        let (server, _) = try Self.server(timeout: 1.5)
        defer { server.stop() }
        let port = server.address.port
        func open() throws -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard connectLoopback(fd, port: port) else { throw TestFailure("cannot connect") }
            return fd
        }
        let silent = try open()
        defer { close(silent) }
        let trickle = try open()
        defer { close(trickle) }
        _ = send(trickle, "GE", 2, Int32(MSG_NOSIGNAL))
        // Asks for /metrics again and again on one connection and never reads an answer.
        let deaf = try open()
        defer { close(deaf) }
        var small: Int32 = 1024
        setsockopt(deaf, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        _ = send(deaf, "GET /metrics HTTP/1.1\r\n\r\n", 25, Int32(MSG_NOSIGNAL))

        let started = Date()
        let scrape = httpGet(port: port, "/metrics", timeout: 2)
        #expect(scrape?.status == 200)
        #expect(Date().timeIntervalSince(started) < 1, "a scrape beside hostile clients took \(Date().timeIntervalSince(started)) s")

        // Past the limit the server has closed the silent client (EOF, or reset for the deaf one).
        try await Task.sleep(for: .seconds(2))
        var byte: UInt8 = 0
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        #expect(recv(silent, &byte, 1, 0) == 0, "the silent client is still open")
        #expect(httpGet(port: port, "/healthz", timeout: 2)?.status == 503)
    }

    @Test("over the connection cap: 503 at once, and the server serves again when they go")
    func connectionCap() async throws {
        let (server, _) = try Self.server(timeout: 5, maxConnections: 4)
        defer { server.stop() }
        let port = server.address.port
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(connectLoopback(fd, port: port))
            idle.append(fd)
        }
        // Let the loop accept them.
        #expect(await waitFor(2) { httpGet(port: port, "/metrics", timeout: 1)?.status == 503 })
        for fd in idle { close(fd) }
        idle = []
        #expect(await waitFor(3) { httpGet(port: port, "/metrics", timeout: 1)?.status == 200 })
    }

    @Test("--metrics-listen takes ADDR:PORT with a numeric address; a taken port fails at start")
    func addresses() throws {
        #expect(try MetricsListenAddress(parsing: "127.0.0.1:9464").port == 9464)
        #expect(try MetricsListenAddress(parsing: "[::1]:9464").host == "::1")
        #expect(try MetricsListenAddress(parsing: "localhost:1").host == "127.0.0.1")
        for bad in ["9464", "example.com:9464", "127.0.0.1:70000", "127.0.0.1:x", ":9464"] {
            #expect(throws: MetricsServerError.self) { try MetricsListenAddress(parsing: bad) }
        }
        let (server, _) = try Self.server()
        defer { server.stop() }
        #expect(throws: MetricsServerError.self) {
            try MetricsServer(address: MetricsListenAddress(parsing: "127.0.0.1:\(server.address.port)"), metrics: FleetMetrics())
        }
    }
}
