import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

private func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

@Suite("Commands to devices over a real mosquitto", .serialized)
struct CommandIntegrationTests {
    @Test("ping, read-now, set-interval, get-config, get-stats and error replies at MQTT 3.1.1")
    func commandsAndReplies() async throws {
        let fleet = try TestFleet(devices: ["dev-1"], interval: 60)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/dev-1/replies", "devices/dev-1/telemetry"])
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await fleet.waitForSubscription("dev-1"))

        let commands = [
            #"{"command": "ping", "id": 1}"#,
            #"{"command": "read-now", "id": 2}"#,
            #"{"command": "get-config", "id": 3}"#,
            #"{"command": "set-interval", "id": 4, "interval": 0.2}"#,
            #"{"command": "set-interval", "id": 5, "interval": -1}"#,
            #"{"command": "selfdestruct", "id": 6}"#,
            #"this is not json"#,
            #"{"id": 8}"#,
            #"[1, 2]"#,
        ]
        for command in commands { try fleet.publishAsObserver("devices/dev-1/commands", command) }
        func replies() -> [[String: Any]] {
            subscriber.messages().filter { $0.topic == "devices/dev-1/replies" }.compactMap { json($0.payload) }
        }
        let all = await waitFor(20) { replies().count >= commands.count }
        #expect(all, "replies: \(replies())")
        let byID = Dictionary(replies().compactMap { r in (r["id"] as? NSNumber).map { ($0.intValue, r) } }) { a, _ in a }

        let ping = try #require(byID[1])
        #expect(ping["ok"] as? Bool == true)
        #expect((ping["result"] as? [String: Any])?["pong"] as? Bool == true)

        let readNow = try #require(byID[2])
        let readResult = try #require(readNow["result"] as? [String: Any])
        let seq = try #require((readResult["seq"] as? NSNumber)?.uint64Value)
        #expect((readResult["readings"] as? [String: Any])?["temperature"] is NSNumber)
        // The reading taken on command went out as telemetry with that seq.
        #expect(await waitFor(10) { subscriber.sequences()["dev-1"]?.contains(seq) == true })

        let config = try #require(byID[3]?["result"] as? [String: Any])
        #expect(config["id"] as? String == "dev-1")
        #expect((config["interval"] as? NSNumber)?.doubleValue == 60)
        #expect(((config["sensors"] as? [[String: Any]])?.first)?["type"] as? String == "random_walk")

        let setInterval = try #require(byID[4])
        #expect(setInterval["ok"] as? Bool == true)
        // The new interval is in force: readings now come every 0.2 s instead of every 60 s.
        #expect(await waitFor(10) { (subscriber.sequences()["dev-1"]?.count ?? 0) >= 6 })

        #expect(byID[5]?["ok"] as? Bool == false)
        #expect((byID[5]?["error"] as? String)?.contains("interval") == true)
        #expect(byID[6]?["ok"] as? Bool == false)
        #expect((byID[6]?["error"] as? String)?.contains("unknown command \"selfdestruct\"") == true)
        #expect((byID[8]?["error"] as? String)?.contains("`command` is missing") == true)
        #expect(replies().contains { ($0["error"] as? String)?.contains("not JSON") == true })
        #expect(replies().contains { ($0["error"] as? String)?.contains("expected a JSON object") == true })

        // get-stats after all that: the device is alive and counts what it sent.
        try fleet.publishAsObserver("devices/dev-1/commands", #"{"command": "get-stats", "id": 9}"#)
        #expect(await waitFor(10) { replies().contains { ($0["id"] as? NSNumber)?.intValue == 9 } })
        let stats = try #require(replies().first { ($0["id"] as? NSNumber)?.intValue == 9 }?["result"] as? [String: Any])
        #expect(stats["connected"] as? Bool == true)
        #expect(((stats["published"] as? NSNumber)?.intValue ?? 0) >= 6)
        let summary = await runner.stop()
        #expect(summary.totals.dropped == 0)
    }

    @Test("MQTT 5: the reply goes to the response topic with the correlation data echoed")
    func mqtt5ResponseTopicAndCorrelation() async throws {
        let fleet = try TestFleet(devices: ["dev-5"], interval: 60, protocolVersion: "5")
        defer { fleet.tearDown() }
        let binary = try #require(findExecutable("mosquitto_sub"))
        let output = "\(fleet.path)/sub-v5.txt"
        let sub = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
            "--key", fleet.observerKey, "-V", "mqttv5", "-q", "1", "-i", "observer-v5", "-t", "devices/dev-5/replies/#",
            "-F", "%t|%D|%p",
        ], output: output)
        defer { sub.terminate() }
        #expect(await fleet.waitForSubscription("observer-v5"))
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await fleet.waitForSubscription("dev-5"))
        try fleet.publishAsObserver("devices/dev-5/commands", #"{"command": "ping"}"#, extra: [
            "-V", "mqttv5", "-D", "publish", "response-topic", "devices/dev-5/replies/req-42",
            "-D", "publish", "correlation-data", "corr-4711",
        ])
        func lines() -> [String] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(await waitFor(20) { !lines().isEmpty }, "nothing on devices/dev-5/replies/#")
        let parts = try #require(lines().first).split(separator: "|", maxSplits: 2).map(String.init)
        #expect(parts.count == 3)
        #expect(parts[0] == "devices/dev-5/replies/req-42")
        #expect(parts[1] == "corr-4711")
        #expect(json(parts[2])?["ok"] as? Bool == true)
        _ = await runner.stop()
    }
}
