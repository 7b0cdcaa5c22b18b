import Foundation
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

@Suite("Real-world paths: a sensor read that blocks", .serialized)
struct BlockingSensorIntegrationTests {
    @Test("agent with a `file` sensor on a FIFO nobody writes to: other readings published, watchdog pings go on, the hang is logged once, SIGTERM exits promptly")
    func fifoSensorDoesNotStallTheAgent() async throws {
        let fleet = try TestFleet(devices: ["pi-9"])
        defer { fleet.tearDown() }
        #expect(mkfifo("\(fleet.path)/pi-9/stuck", 0o644) == 0)
        try """
        id: pi-9
        interval: 0.2
        qos: 1
        sensors:
          - {name: stuck, type: file, path: stuck}
          - {name: load1, type: loadavg, min: 0}
        """.write(toFile: "\(fleet.path)/pi-9/device.yaml", atomically: true, encoding: .utf8)
        let subscriber = try fleet.subscriber(["devices/pi-9/telemetry"])
        let notify = try NotifySocket(in: fleet.path)
        let output = "\(fleet.path)/agent.out"
        let agent = try ChildProcess("/usr/bin/env", [
            "NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=400000",
            try sensorfleetBinary(), "agent", "\(fleet.path)/pi-9", "--log-level", "warning", "--drain-timeout", "1",
        ], output: output)
        defer { agent.terminate() }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }

        #expect(await waitFor(20) { (subscriber.sequences()["pi-9"]?.count ?? 0) >= 5 }, "agent output: \(log())")
        let message = try #require(subscriber.messages().last)
        let readings = try #require((try JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any])?["readings"] as? [String: Any])
        #expect(readings["load1"] != nil && readings["stuck"] == nil, "\(message.payload)")
        // The hang is reported after 5 s, once; meanwhile the loop keeps publishing and pinging.
        #expect(await waitFor(15) { log().contains("has not returned for over 5 s") }, "agent output: \(log())")
        let pings = notify.messages().filter { $0 == "WATCHDOG=1" }.count
        let published = subscriber.sequences()["pi-9"]?.count ?? 0
        #expect(await waitFor(10) { notify.messages().filter { $0 == "WATCHDOG=1" }.count >= pings + 3 })
        #expect(await waitFor(10) { (subscriber.sequences()["pi-9"]?.count ?? 0) >= published + 5 })
        #expect(log().components(separatedBy: "has not returned for over").count == 2, "logged once: \(log())")

        let start = Date()
        agent.signal(SIGTERM)
        let stopped = await waitFor(10) { !agent.isRunning }
        #expect(stopped, "the agent ignored SIGTERM while a sensor read hangs: \(log())")
        #expect(agent.wait() == 0, "agent output: \(log())")
        print("blocking sensor: exited \(String(format: "%.2f", Date().timeIntervalSince(start))) s after SIGTERM (drain 1 s) with a read hung on a FIFO")
    }
}
