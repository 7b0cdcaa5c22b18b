import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Payload formats over a real mosquitto: influx and template, verified by bench", .serialized)
struct PayloadFormatIntegrationTests {
    @Test("a template device and an influx device: what a subscriber receives has the declared shape, and bench finds every seq")
    func templateAndInfluxArriveAndVerify() async throws {
        let fleet = try TestFleet(
            devices: ["tpl-1", "lp-1"], interval: 0.05,
            deviceExtra: { id in
                id == "tpl-1"
                    ? "payload:\n  format: template\n  template: 'id={{id}};seq={{seq}};at={{ts_iso}};t={{temperature}}'"
                    : "payload:\n  format: influx\n  measurement: plant room\n  tags:\n    site: \"{id}-north\""
            })
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/telemetry"])
        defer { subscriber.stop() }
        var options = BenchOptions()
        options.messagesPerDevice = 50
        options.ratePerDevice = 0
        options.qos = 1
        options.duration = 30
        var logger = Logger(label: "payload-bench")
        logger.logLevel = .error
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: logger)
        #expect(report.sent == 100 && report.received == 100 && report.gaps == 0 && report.duplicates == 0, "\(report.sent) \(report.received)")
        #expect(report.verified)
        #expect(report.latencyMs.endToEnd.count == 100)

        #expect(await waitFor(10) { subscriber.messages().count >= 100 })
        let messages = subscriber.messages()
        let template = messages.filter { $0.topic == "devices/tpl-1/telemetry" }.map(\.payload)
        let influx = messages.filter { $0.topic == "devices/lp-1/telemetry" }.map(\.payload)
        #expect(template.count == 50 && influx.count == 50)
        // The template's text, field by field, with an independent parse (split, ISO8601DateFormatter).
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for (n, line) in template.enumerated() {
            let fields = Dictionary(uniqueKeysWithValues: line.split(separator: ";").map {
                let kv = $0.split(separator: "=", maxSplits: 1)
                return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
            })
            #expect(fields["id"] == "tpl-1" && fields["seq"] == "\(n + 1)", "\(line)")
            let at = try #require(iso.date(from: fields["at"] ?? ""), "\(line)")
            #expect(abs(at.timeIntervalSinceNow) < 120)
            #expect(Double(fields["t"] ?? "").map { (10...30).contains($0) } == true, "\(line)")
        }
        // Line protocol: `measurement,tags fields timestamp`, split on unescaped spaces.
        for (n, line) in influx.enumerated() {
            let parts = line.replacingOccurrences(of: "\\ ", with: "\u{1}").split(separator: " ").map {
                $0.replacingOccurrences(of: "\u{1}", with: " ")
            }
            #expect(parts.count == 3, "\(line)")
            #expect(parts[0] == "plant room,device=lp-1,site=lp-1-north", "\(line)")
            #expect(parts[1].hasPrefix("temperature=") && parts[1].hasSuffix(",seq=\(n + 1)i"), "\(line)")
            let nanos = try #require(Int64(parts[2]), "\(line)")
            #expect(abs(Double(nanos) / 1e9 - Date().timeIntervalSince1970) < 120)
        }
    }

    @Test("sensorfleet bench from the command line: QoS 2, a payload template and MQTT 5 properties; the subscriber sees them")
    func benchCommandLineQoS2TemplateAndProperties() async throws {
        let fleet = try TestFleet(devices: ["cli-1", "cli-2"], protocolVersion: "3.1.1")
        defer { fleet.tearDown() }
        let binary = try #require(findExecutable("mosquitto_sub"))
        let output = "\(fleet.path)/props.txt"
        let sub = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
            "--key", fleet.observerKey, "-V", "mqttv5", "-q", "2", "-i", "observer-cli", "-t", "devices/cli-1/telemetry",
            "-F", "%q|%C|%E|%P|%p",
        ], output: output)
        defer { sub.terminate() }
        #expect(await waitFor(20) { fleet.broker.log().contains("Received SUBSCRIBE from observer-cli") })
        let (bench, benchOutput) = try launchSensorfleet([
            "bench", fleet.path, "--qos", "2", "--protocol", "5", "--messages", "30", "--rate", "max",
            "--payload-format", "template",
            "--payload-template", #"{"id":"{{id}}","n":{{seq}},"at":{{ts_us}},"t":{{temperature}}}"#,
            "--message-expiry", "60", "--content-type", "application/json", "--user-property", "site={id}-north",
        ], in: fleet.path)
        let code = bench.wait(timeout: 60)
        let printed = (try? String(contentsOfFile: benchOutput, encoding: .utf8)) ?? ""
        #expect(code == 0, "\(printed)")
        #expect(printed.contains("QoS 2") && printed.contains("VERIFIED"), "\(printed)")
        #expect(fleet.broker.log().contains("Received PUBREL from cli-1"))
        func lines() -> [String] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(await waitFor(10) { lines().count >= 30 })
        let got = lines()
        #expect(got.count == 30, "\(got.count) messages")
        for (n, line) in got.enumerated() {
            let parts = line.split(separator: "|", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            #expect(parts.count == 5, "\(line)")
            guard parts.count == 5 else { continue }
            #expect(parts[0] == "2" && parts[1] == "application/json" && (Int(parts[2]) ?? 0) > 50, "\(line)")
            #expect(parts[3].contains("site:cli-1-north"), "\(line)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(parts[4].utf8)) as? [String: Any], "\(line)")
            #expect(object["id"] as? String == "cli-1" && object["n"] as? Int == n + 1, "\(line)")
        }
    }

    @Test("bench refuses a template the verifier cannot read, and MQTT 5 properties at 3.1.1, before connecting")
    func benchRefusesUnverifiableTemplate() async throws {
        let fleet = try TestFleet(devices: ["ref-1"], startBroker: false)
        defer { fleet.tearDown() }
        let (noSeq, out1) = try launchSensorfleet(
            ["bench", fleet.path, "--payload-format", "template", "--payload-template", "t={{temperature}}"], in: fleet.path)
        #expect(noSeq.wait(timeout: 30) != 0)
        let text1 = (try? String(contentsOfFile: out1, encoding: .utf8)) ?? ""
        #expect(text1.contains("{{seq}}") && text1.contains("--no-verify"), "\(text1)")
        let (props, out2) = try launchSensorfleet(["bench", fleet.path, "--protocol", "3.1.1", "--message-expiry", "5"], in: fleet.path)
        #expect(props.wait(timeout: 30) == 64)
        let text2 = (try? String(contentsOfFile: out2, encoding: .utf8)) ?? ""
        #expect(text2.contains("--protocol 5"), "\(text2)")
        let (unknown, out3) = try launchSensorfleet(
            ["bench", fleet.path, "--payload-format", "template", "--payload-template", "{{seq}} {{ts_ms}} {{pressure}}"], in: fleet.path)
        #expect(unknown.wait(timeout: 30) != 0)
        let text3 = (try? String(contentsOfFile: out3, encoding: .utf8)) ?? ""
        #expect(text3.contains("{{pressure}}") && text3.contains("{{temperature}}"), "\(text3)")
    }
}
