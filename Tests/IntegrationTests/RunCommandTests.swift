import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("sensorfleet run, as a user runs it", .serialized)
struct RunCommandTests {
    @Test("SIGTERM stops gracefully: exit 0, a summary, a complete JSON report, retained offline")
    func sigtermWritesReportAndOffline() async throws {
        let ids = ["dev-1", "dev-2", "dev-3"]
        let fleet = try TestFleet(devices: ids, interval: 0.1)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber()
        let report = "\(fleet.path)/report.json"
        let (process, output) = try launchSensorfleet(["run", fleet.path, "--report", report, "--status-interval", "0.5"], in: fleet.path)
        defer { process.signal(SIGKILL) }
        // Wait until every device has something delivered, then ask it to stop.
        let delivered = await waitFor(20) { ids.allSatisfy { (subscriber.sequences()[$0]?.count ?? 0) >= 5 } }
        #expect(delivered)
        // Plain status lines when the output is not a terminal.
        let statusLine = await waitFor(10) {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("connected 3/3")
        }
        #expect(statusLine)
        process.signal(SIGTERM)
        let status = process.wait()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(status == 0, "output: \(text)")
        #expect(text.contains("stopping (SIGTERM)"))
        #expect(text.contains("summary after"))

        let data = try Data(contentsOf: URL(fileURLWithPath: report))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["devices", "connected", "published", "acknowledged", "dropped", "errors", "duration_s", "per_device"] {
            #expect(json[key] != nil, "report lacks \(key)")
        }
        #expect(json["devices"] as? Int == 3)
        #expect(json["connected"] as? Int == 3)
        #expect(json["dropped"] as? Int == 0)
        #expect(json["published"] as? Int == json["acknowledged"] as? Int)
        let perDevice = try #require(json["per_device"] as? [String: [String: Any]])
        #expect(Set(perDevice.keys) == Set(ids))
        for id in ids {
            let device = try #require(perDevice[id])
            let lastSeq = try #require(device["last_seq"] as? Int)
            #expect(device["published"] as? Int == lastSeq)
            #expect(device["acknowledged"] as? Int == lastSeq)
            // What the report says was acknowledged is what the subscriber saw, 1…last_seq.
            #expect(await waitFor(10) { subscriber.sequences()[id] == Array(1...UInt64(lastSeq)) })
        }
        // Graceful: the retained status says offline (published before DISCONNECT).
        let statuses = subscriber.messages().filter { $0.topic.hasSuffix("/status") }
        for id in ids {
            #expect(statuses.last { $0.topic == "devices/\(id)/status" }.map { statusWord($0.payload) } == "offline")
        }
    }

    @Test("validate exits 0 on a good fleet and 1 with every problem named on a broken one")
    func validateExitCodes() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"], startBroker: false)
        defer { fleet.tearDown() }
        let (good, goodOutput) = try launchSensorfleet(["validate", fleet.path], in: fleet.path)
        #expect(good.wait() == 0, "\((try? String(contentsOfFile: goodOutput, encoding: .utf8)) ?? "")")
        try "interval: -1\nsensors: []\nqos: 3\n".write(toFile: "\(fleet.path)/dev-2/device.yaml", atomically: true, encoding: .utf8)
        let (bad, badOutput) = try launchSensorfleet(["validate", fleet.path], in: fleet.path)
        #expect(bad.wait() == 1)
        let text = try String(contentsOfFile: badOutput, encoding: .utf8)
        #expect(text.contains("dev-2/device.yaml:1: interval"), "output: \(text)")
        #expect(text.contains("qos"))
        #expect(text.contains("sensors"))
        #expect(!text.contains("Fatal error") && !text.contains("Stack"))
    }

    @Test("provision and validate read a fleet alike: --prefix _x refused in validate's words; validate accepts what provision makes")
    func provisionAndValidateAgree() async throws {
        let fleet = try TestFleet(devices: ["dev-1"], startBroker: false)
        defer { fleet.tearDown() }
        func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        // What validate says about a device whose id is `_x-0001`…
        try FileManager.default.createDirectory(atPath: "\(fleet.path)/_x-0001", withIntermediateDirectories: true)
        try "id: _x-0001\nsensors:\n  - {name: level, type: constant, value: 1}\n"
            .write(toFile: "\(fleet.path)/_x-0001/device.yaml", atomically: true, encoding: .utf8)
        let (validate, validateOutput) = try launchSensorfleet(["validate", fleet.path], in: fleet.path)
        #expect(validate.wait() == 1)
        let line = try #require(text(validateOutput).split(separator: "\n").first { $0.contains("_x-0001/device.yaml") && $0.contains("id: ") },
                                "\(text(validateOutput))")
        let problem = try #require(line.components(separatedBy: "id: ").dropFirst().first?.components(separatedBy: " — fix").first)
        #expect(problem.contains("starts with `_`"))
        try FileManager.default.removeItem(atPath: "\(fleet.path)/_x-0001")

        // …is what provision says about `--prefix _x`.
        let (provision, provisionOutput) = try launchSensorfleet(["provision", fleet.path, "--devices", "1", "--prefix", "_x"], in: fleet.path)
        #expect(provision.wait() == 1)
        #expect(text(provisionOutput).contains(problem), "\(text(provisionOutput))")
        #expect(!FileManager.default.fileExists(atPath: "\(fleet.path)/_x-0001"))

        // Whatever provision makes, validate accepts.
        let (good, goodOutput) = try launchSensorfleet(["provision", fleet.path, "--devices", "2", "--prefix", "gw"], in: fleet.path)
        #expect(good.wait() == 0, "\(text(goodOutput))")
        let (check, checkOutput) = try launchSensorfleet(["validate", fleet.path], in: fleet.path)
        #expect(check.wait() == 0, "\(text(checkOutput))")
        #expect(text(checkOutput).contains("valid: 3 devices"))
    }
}
