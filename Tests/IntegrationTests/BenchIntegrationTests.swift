import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Logging
import MosquittoKit
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

private func quietLogger() -> Logger {
    var logger = Logger(label: "bench-test")
    logger.logLevel = .error
    return logger
}

@Suite("Load test (bench) against a real mosquitto over mutual TLS", .serialized)
struct BenchIntegrationTests {
    @Test("50 devices × 200 messages at QoS 1: the verifier counts received = sent, no gaps, no duplicates")
    func exactCountsQoS1() async throws {
        let fleet = try TestFleet(devices: (1...50).map { String(format: "b-%03d", $0) })
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.messagesPerDevice = 200
        options.ratePerDevice = 0
        options.qos = 1
        options.duration = 60
        options.connectRate = 200
        options.payloadSize = 100
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
        #expect(report.sent == 50 * 200)
        #expect(report.acknowledged == report.sent)
        #expect(report.received == report.sent)
        #expect(report.gaps == 0)
        #expect(report.duplicates == 0)
        #expect(report.outOfOrder == 0)
        #expect(report.dropped == 0)
        #expect(report.verified)
        #expect(report.connectMs.count == 50)
        #expect(report.latencyMs.puback.count == UInt64(report.sent))
        #expect(report.latencyMs.endToEnd.count == UInt64(report.received))
        #expect(report.latencyMs.endToEnd.p50 > 0 && report.latencyMs.endToEnd.p50 <= report.latencyMs.endToEnd.p99)
        #expect(report.devices?.count == 50)
        #expect(report.devices?.allSatisfy { $0.sent == 200 && $0.received == 200 && $0.gaps == 0 } == true)
    }

    @Test("steady rate: 20 devices at 20 msg/s each hold 400 msg/s within ±10 %, QoS 0, every reading due is sent or counted as an overrun")
    func rateHolds() async throws {
        let fleet = try TestFleet(devices: (1...20).map { "r-\($0)" })
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.ratePerDevice = 20
        options.qos = 0
        options.warmup = 1
        options.duration = 3
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
        let target = 400.0
        #expect(abs(report.msgsPerS - target) <= target * 0.1, "sent \(report.msgsPerS) msg/s, target \(target)")
        // Over the whole run (4 s from each device's random first reading): due readings ≈ made + skipped.
        let due = 20.0 * 20 * 4
        #expect(abs(Double(report.sent + report.overruns) - due) <= due * 0.1, "sent \(report.sent) + overruns \(report.overruns) vs \(due) due")
        // Every message is accounted for: arrived once, or a gap.
        #expect(report.received - report.duplicates + report.gaps == report.sent)
        #expect(report.timeSeries.count >= 4)
        #expect(report.timeSeries.filter(\.measured).allSatisfy { $0.connected == 20 })
    }

    @Test("duplicates, gaps and late messages injected with a device's own identity are detected")
    func injectedDuplicatesAndGaps() async throws {
        let fleet = try TestFleet(devices: ["inj-1", "inj-2"])
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        let verifier = try Verifier(
            settings: .init(host: "127.0.0.1", port: fleet.broker.port, caFile: fleet.caFile, certFile: fleet.observerCert,
                            keyFile: fleet.observerKey, tls: TLSSettings(serverName: "localhost"), connections: 2),
            topics: spec.devices.map { ($0.id, $0.topic) }, logger: quietLogger())
        try await verifier.start(timeout: 10)
        let pub = try #require(findExecutable("mosquitto_pub"))
        for seq in [1, 2, 2, 4, 3, 6] {
            let payload = String(decoding: TelemetryPayload.encode(
                device: "inj-1", seq: UInt64(seq), timestampMillis: Int64(Date().timeIntervalSince1970 * 1000),
                readings: [("x", 1)]), as: UTF8.self)
            let process = try ChildProcess(pub, [
                "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile,
                "--cert", "\(fleet.path)/inj-1/cert.pem", "--key", "\(fleet.path)/inj-1/key.pem",
                "-q", "1", "-t", "devices/inj-1/telemetry", "-m", payload,
            ], output: "\(fleet.path)/pub.out")
            #expect(process.wait() == 0)
        }
        let arrived = await waitFor(10) { await verifier.counts()["inj-1"]?.received == 6 }
        #expect(arrived)
        let counts = await verifier.counts()
        await verifier.stop()
        let tracker = try #require(counts["inj-1"])
        #expect(tracker.duplicates == 1)
        #expect(tracker.outOfOrder == 1)
        #expect(tracker.gaps(lastSent: 6) == 1)  // 5 never sent
        #expect(tracker.gaps(lastSent: 8) == 3)  // and 7, 8 if the device said it sent them
        #expect(counts["inj-2"]?.received == 0)
    }

    @Test("sensorfleet bench writes a complete JSON report and a self-contained HTML report with its four charts")
    func reportsComplete() async throws {
        let fleet = try TestFleet(devices: (1...10).map { "h-\($0)" })
        defer { fleet.tearDown() }
        let json = "\(fleet.path)/report.json", html = "\(fleet.path)/report.html"
        let (process, output) = try launchSensorfleet([
            "bench", fleet.path, "--devices", "8", "--rate", "10", "--qos", "1", "--duration", "2", "--warmup", "1",
            "--payload-size", "200", "--report", json, "--html", html, "--log-level", "error",
        ], in: fleet.path)
        let code = process.wait()
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(code == 0, "bench exited \(code): \(log)")
        #expect(log.contains("VERIFIED"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        for key in ["sent", "received", "gaps", "duplicates", "dropped", "overruns", "connect_failures", "msgs_per_s",
                    "latency_ms", "connect_ms", "time_series", "settings", "cpu_seconds", "verified"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        let latency = try #require(object["latency_ms"] as? [String: Any])
        for kind in ["end_to_end", "puback"] {
            let summary = try #require(latency[kind] as? [String: Any])
            for p in ["p50", "p90", "p99", "p99_9", "max"] { #expect(summary[p] is NSNumber, "\(kind).\(p)") }
        }
        let series = try #require(object["time_series"] as? [[String: Any]])
        #expect(series.count >= 3)
        let report = try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.settings.devices == 8 && report.settings.payloadBytes == 200)
        #expect(report.sent > 0 && report.received == report.sent)

        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(!page.contains("http://") || !page.contains("<script"))
        #expect(!page.contains("src=\"http") && !page.contains("href=\"http"))
        let charts = try BenchHTMLCheck.charts(in: page)
        #expect(Set(charts.keys) == ["chart-rate", "chart-connected", "chart-latency", "chart-distribution"])
        #expect(charts["chart-rate"] == 2 && charts["chart-latency"] == 3)
        #expect(page.contains(">8</td>"))  // the settings table

        if let chromium = findExecutable("chromium") ?? findExecutable("chromium-browser") {
            let dom = "\(fleet.path)/dom.html"
            let render = try ChildProcess(chromium, [
                "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://\(html)",
            ], output: dom)
            #expect(render.wait() == 0)
            let rendered = try String(contentsOfFile: dom, encoding: .utf8)
            let renderedCharts = try BenchHTMLCheck.charts(in: rendered)
            #expect(renderedCharts.count == 4, "Chromium's DOM: \(rendered.prefix(300))")
        }
    }

    @Test("a fleet that cannot fit in the descriptor limit is refused before connecting, with the way out")
    func descriptorBudget() async throws {
        let fleet = try TestFleet(devices: (1...30).map { "fd-\($0)" })
        defer { fleet.tearDown() }
        let (process, output) = try launchSensorfleetLimited(
            ["bench", fleet.path, "--three-descriptors", "--duration", "1"], limit: 64, in: fleet.path)
        let code = process.wait()
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(code == 1)
        #expect(log.contains("do not fit"), "\(log)")
        #expect(log.contains("--devices"))
        #expect(!fleet.broker.log().contains("New client connected"))
    }
}

extension BenchIntegrationTests {
    @Test("clients whose socketpair was refused (one descriptor each) connect, publish and are acknowledged")
    func oneDescriptorPerClient() async throws {
        #expect(DescriptorBudget.isInterposed, "the test binary does not export socketpair")
        DescriptorBudget.singleDescriptorClients = true
        let fleet = try TestFleet(devices: (1...30).map { "one-\($0)" }, interval: 1)
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet()
        let refusedBefore = DescriptorBudget.refusals
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected && $0.acknowledged >= 2 })
        #expect(DescriptorBudget.refusals - refusedBefore >= 30)
        // One TCP socket per device to the broker (the refused socketpairs were never opened).
        let port = fleet.broker.port
        let sockets = try socketsTo(port: port)
        _ = await runner.stop()
        #expect(sockets == 30, "\(sockets) connections to the broker")
    }

    @Test("--bind spreads devices over several source addresses")
    func bindSpreadsSources() async throws {
        let fleet = try TestFleet(devices: (1...6).map { "bind-\($0)" })
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.ratePerDevice = 5
        options.duration = 1
        options.bind = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
        #expect(report.verified)
        let log = fleet.broker.log()
        for address in options.bind {
            #expect(log.contains("from \(address):"), "no connection from \(address)")
        }
    }
}

/// Established TCP connections in this process whose remote port is `port` (from /proc/net/tcp
/// and this process's socket inodes).
func socketsTo(port: Int) throws -> Int {
    let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
    var inodes = Set<String>()
    for fd in fds {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
           target.hasPrefix("socket:[") {
            inodes.insert(String(target.dropFirst(8).dropLast()))
        }
    }
    // /proc files report size 0: read until the end, not a size's worth.
    let handle = try #require(FileHandle(forReadingAtPath: "/proc/net/tcp"))
    defer { try? handle.close() }
    let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    let hexPort = String(format: "%04X", port)
    var count = 0
    for line in table.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ")
        guard f.count > 9 else { continue }
        if f[2].hasSuffix(":" + hexPort), f[3] == "01", inodes.contains(String(f[9])) { count += 1 }
    }
    return count
}

/// Runs sensorfleet under `prlimit --nofile=LIMIT` (soft = hard), so raising cannot help.
func launchSensorfleetLimited(_ arguments: [String], limit: Int, in dir: String) throws -> (ChildProcess, String) {
    let prlimit = try #require(findExecutable("prlimit"))
    let output = "\(dir)/sensorfleet-\(UUID().uuidString.prefix(6)).out"
    return (try ChildProcess(prlimit, ["--nofile=\(limit):\(limit)", try sensorfleetBinary()] + arguments, output: output), output)
}

/// Parses each inline `<svg>…</svg>` of a page as XML: chart id → number of data series.
enum BenchHTMLCheck {
    final class Counter: NSObject, XMLParserDelegate {
        var id: String?
        var series = 0
        var pointsOK = true
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if name == "svg" { id = attributes["id"] }
            if name == "polyline", attributes["class"] == "series" {
                series += 1
                if (attributes["points"] ?? "").split(separator: " ").isEmpty { pointsOK = false }
            }
        }
    }

    static func charts(in page: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        var rest = Substring(page)
        while let start = rest.range(of: "<svg"), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
            let svg = String(rest[start.lowerBound..<end.upperBound])
            let parser = XMLParser(data: Data(svg.utf8))
            let counter = Counter()
            parser.delegate = counter
            guard parser.parse(), let id = counter.id, counter.pointsOK else {
                throw TestFailure("an SVG chart does not parse: \(svg.prefix(200))")
            }
            result[id] = counter.series
            rest = rest[end.upperBound...]
        }
        return result
    }
}
