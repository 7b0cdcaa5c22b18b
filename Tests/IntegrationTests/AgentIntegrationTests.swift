import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

/// A unix datagram socket in a temporary folder that collects what is sent to it, as systemd's
/// `$NOTIFY_SOCKET` does.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(in dir: String) throws {
        path = "\(dir)/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    private var received: [String] = []

    /// Every datagram received so far (reads what is waiting, up to 100 ms).
    func messages() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return received
    }
}

@Suite("systemd integration: sd_notify datagrams and the unit file")
struct SystemdTests {
    @Test("READY=1, STATUS and WATCHDOG=1 arrive as datagrams on a real unix socket; nothing without NOTIFY_SOCKET")
    func notifyDatagrams() throws {
        let dir = try TempDir("notify")
        defer { dir.remove() }
        let socket = try NotifySocket(in: dir.path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000"])
        #expect(notifier.watchdogInterval == 1.0)
        #expect(notifier.notify("READY=1\nSTATUS=running"))
        #expect(notifier.notify("WATCHDOG=1"))
        #expect(socket.messages() == ["READY=1\nSTATUS=running", "WATCHDOG=1"])
        let absent = SystemdNotifier(environment: [:])
        #expect(absent.watchdogInterval == nil)
        #expect(!absent.notify("READY=1"))
        // WATCHDOG_PID names another process: the watchdog is not ours.
        let other = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"])
        #expect(other.watchdogInterval == nil)
    }

    @Test("Scripts/sensorfleet-agent.service passes systemd-analyze verify without a warning")
    func unitVerifies() throws {
        guard let analyze = findExecutable("systemd-analyze") else {
            throw TestFailure("systemd-analyze is missing: Scripts/test installs the systemd package")
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let unit = try String(contentsOfFile: "\(repo)/Scripts/sensorfleet-agent.service", encoding: .utf8)
        #expect(unit.contains("Type=notify") && unit.contains("WatchdogSec=") && unit.contains("LoadCredential=key.pem:")
                && unit.contains("StateDirectory=") && unit.contains("ProtectSystem=strict") && unit.contains("NoNewPrivileges=yes")
                && unit.contains("Restart=on-failure"))
        let dir = try TempDir("unit")
        defer { dir.remove() }
        // verify checks that ExecStart exists: point it at the binary just built.
        let local = unit.replacingOccurrences(of: "/usr/local/bin/sensorfleet", with: try sensorfleetBinary())
        try local.write(toFile: "\(dir.path)/sensorfleet-agent.service", atomically: true, encoding: .utf8)
        let output = "\(dir.path)/verify.out"
        let process = try ChildProcess(analyze, ["verify", "--man=no", "\(dir.path)/sensorfleet-agent.service"], output: output)
        let code = process.wait()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(code == 0, "systemd-analyze verify: \(text)")
        // Unknown keys are only warnings (exit 0): any output is a failure too.
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify: \(text)")
    }

    @Test("Scripts/install-agent --root lays out binary, unit, fleet and device with a private key")
    func installAgentLayout() async throws {
        let fleet = try TestFleet(devices: ["pi-1"], startBroker: false)
        defer { fleet.tearDown() }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let root = "\(fleet.path)/staging"
        let output = "\(fleet.path)/install.out"
        let process = try ChildProcess("/bin/bash", ["\(repo)/Scripts/install-agent", "--root", root, try sensorfleetBinary(), fleet.path, "pi-1"], output: output)
        #expect(process.wait() == 0, "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        let fm = FileManager.default
        for file in ["usr/local/bin/sensorfleet", "etc/systemd/system/sensorfleet-agent.service", "etc/sensorfleet/fleet.yaml",
                     "etc/sensorfleet/ca.pem", "etc/sensorfleet/device/device.yaml", "etc/sensorfleet/device/cert.pem"] {
            #expect(fm.fileExists(atPath: "\(root)/\(file)"), "\(file) missing")
        }
        let mode = try fm.attributesOfItem(atPath: "\(root)/etc/sensorfleet/device/key.pem")[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        // The installed folder is a loadable agent device, whose id is written in device.yaml.
        let loaded = try AgentLoader.load(deviceDirectory: "\(root)/etc/sensorfleet/device")
        #expect(loaded.spec.devices.map(\.id) == ["pi-1"])
    }
}

@Suite("The agent: one real device under a real mosquitto", .serialized)
struct AgentIntegrationTests {
    /// Makes `id`'s device.yaml read this machine's real /proc.
    static func writeRealDevice(_ fleet: TestFleet, _ id: String, interval: Double) throws {
        try """
        id: \(id)
        interval: \(interval)
        qos: 1
        sensors:
          - {name: load1, type: loadavg, min: 0}
          - {name: mem_available, type: meminfo, field: MemAvailable, unit: kB}
          - {name: missing_probe, type: w1_ds18b20}
        """.write(toFile: "\(fleet.path)/\(id)/device.yaml", atomically: true, encoding: .utf8)
    }

    @Test("publishes this machine's /proc readings over TLS, answers commands, READY=1 then WATCHDOG=1 from the loop")
    func agentRunsUnderNotify() async throws {
        let fleet = try TestFleet(devices: ["pi-1"])
        defer { fleet.tearDown() }
        try Self.writeRealDevice(fleet, "pi-1", interval: 0.2)
        let subscriber = try fleet.subscriber(["devices/pi-1/#"])
        let notify = try NotifySocket(in: fleet.path)
        let output = "\(fleet.path)/agent.out"
        let agent = try ChildProcess("/usr/bin/env", [
            "NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=400000",
            try sensorfleetBinary(), "agent", "\(fleet.path)/pi-1", "--log-level", "warning",
        ], output: output)
        defer { agent.terminate() }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }

        #expect(await waitFor(20) { notify.messages().contains { $0.hasPrefix("READY=1") } }, "agent output: \(log())")
        #expect(await waitFor(10) { notify.messages().filter { $0 == "WATCHDOG=1" }.count >= 3 }, "datagrams: \(notify.messages())")
        #expect(await waitFor(20) { (subscriber.sequences()["pi-1"]?.count ?? 0) >= 3 }, "agent output: \(log())")
        let message = try #require(subscriber.messages().first { $0.topic == "devices/pi-1/telemetry" })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any])
        let readings = try #require(object["readings"] as? [String: Any])
        #expect(((readings["load1"] as? NSNumber)?.doubleValue ?? -1) >= 0)
        #expect(((readings["mem_available"] as? NSNumber)?.doubleValue ?? 0) > 1000)
        // No DS18B20 here: that reading is skipped (absent), never fatal.
        #expect(readings["missing_probe"] == nil)

        try fleet.publishAsObserver("devices/pi-1/commands", #"{"command": "get-stats", "id": "s"}"#)
        #expect(await waitFor(10) { subscriber.messages().contains { $0.topic == "devices/pi-1/replies" } })
        let reply = try #require(subscriber.messages().first { $0.topic == "devices/pi-1/replies" })
        let stats = try #require((try JSONSerialization.jsonObject(with: Data(reply.payload.utf8)) as? [String: Any])?["result"] as? [String: Any])
        #expect(((stats["sensor_errors"] as? NSNumber)?.intValue ?? 0) >= 1)

        agent.signal(SIGTERM)
        // Bounded: a blocking wait on a process that ignores SIGTERM would hang the suite.
        let stopped = await waitFor(20) { !agent.isRunning }
        #expect(stopped, "the agent ignored SIGTERM: \(log())")
        if !stopped { agent.signal(SIGKILL) }
        #expect(agent.wait() == 0, "agent output: \(log())")
        #expect(notify.messages().contains { $0.hasPrefix("STOPPING=1") })
        // Everything published was delivered, seq 1…N without gaps.
        let seqs = subscriber.sequences()["pi-1"] ?? []
        #expect(await waitFor(10) { log().contains("dropped 0") }, "agent output: \(log())")
        #expect(Set(seqs) == Set(1...UInt64(seqs.count)))
    }

    @Test("SIGHUP and a changed certificate file reload the identity and reconnect without a gap in seq")
    func reloadOnSignalAndFileChange() async throws {
        let fleet = try TestFleet(devices: ["pi-2"])
        defer { fleet.tearDown() }
        try Self.writeRealDevice(fleet, "pi-2", interval: 0.1)
        let subscriber = try fleet.subscriber(["devices/pi-2/telemetry"])
        let (agent, output) = try launchSensorfleet(["agent", "\(fleet.path)/pi-2", "--watch-interval", "0.3", "--log-level", "info"], in: fleet.path)
        defer { agent.terminate() }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        func connects() -> Int { fleet.broker.log().components(separatedBy: "as pi-2 (").count - 1 }

        #expect(await waitFor(20) { connects() == 1 && (subscriber.sequences()["pi-2"]?.count ?? 0) >= 3 }, "agent: \(log())")
        agent.signal(SIGHUP)
        #expect(await waitFor(20) { connects() == 2 }, "agent: \(log())\nbroker: \(fleet.broker.log().suffix(1500))")
        #expect(log().contains("certificate and key reloaded"))

        // A rotated certificate (here: the same one written again) is noticed by the file watch.
        let cert = try String(contentsOfFile: "\(fleet.path)/pi-2/cert.pem", encoding: .utf8)
        try cert.write(toFile: "\(fleet.path)/pi-2/cert.pem.new", atomically: false, encoding: .utf8)
        #expect(rename("\(fleet.path)/pi-2/cert.pem.new", "\(fleet.path)/pi-2/cert.pem") == 0)
        #expect(await waitFor(20) { connects() == 3 }, "agent: \(log())")
        #expect(log().contains("file changed"))

        let before = subscriber.sequences()["pi-2"]?.count ?? 0
        #expect(await waitFor(10) { (subscriber.sequences()["pi-2"]?.count ?? 0) >= before + 3 })
        agent.signal(SIGTERM)
        #expect(await waitFor(20) { !agent.isRunning }, "the agent ignored SIGTERM: \(log())")
        #expect(agent.wait() == 0, "agent: \(log())")
        #expect(await waitFor(10) { log().contains("dropped 0") })
        let seqs = subscriber.sequences()["pi-2"] ?? []
        let highest = seqs.max() ?? 0
        #expect(await waitFor(10) { Set(subscriber.sequences()["pi-2"] ?? []) == Set(1...max(1, highest)) },
                "missing: \(Set(1...max(1, highest)).subtracting(seqs).sorted())")
    }

    @Test("a broken device folder: a clear error naming file and field, exit 1, no stack trace")
    func badDeviceFolder() async throws {
        let fleet = try TestFleet(devices: ["pi-3"], startBroker: false)
        defer { fleet.tearDown() }
        try "interval: 1\nsensors:\n  - {name: t, type: thermal_zone}\n".write(toFile: "\(fleet.path)/pi-3/device.yaml", atomically: true, encoding: .utf8)
        let (agent, output) = try launchSensorfleet(["agent", "\(fleet.path)/pi-3"], in: fleet.path)
        #expect(await waitFor(20) { !agent.isRunning })
        #expect(agent.wait() == 1)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("pi-3/device.yaml") && text.contains("sensors[0].zone") && text.contains("fix:"), "\(text)")
        #expect(!text.contains("Fatal error") && !text.contains("Stack"))
    }

    @Test("agent killed with kill -9 during a broker outage, restarted: no reading lost, seq without gaps")
    func killNineWithoutLosingAReading() async throws {
        let fleet = try TestFleet(devices: ["pi-4"], persistence: true)
        defer { fleet.tearDown() }
        try Self.writeRealDevice(fleet, "pi-4", interval: 0.1)
        let state = "\(fleet.path)/state"
        let subscriber = try fleet.subscriber(["devices/pi-4/telemetry"], clientID: "observer-agent", cleanSession: false)
        let arguments = ["agent", "\(fleet.path)/pi-4", "--state-dir", state, "--log-level", "warning"]
        var (agent, output) = try launchSensorfleet(arguments, in: fleet.path)
        defer { agent.signal(SIGKILL) }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        #expect(await waitFor(20) { (subscriber.sequences()["pi-4"]?.count ?? 0) >= 5 }, "agent: \(log())")

        // Broker down: readings pile up in the durable outbox; then kill -9 the agent.
        fleet.broker.stop()
        let deliveredBefore = subscriber.sequences()["pi-4"]?.max() ?? 0
        let journal = state
        #expect(await waitFor(10) {
            // The outbox folder grows while the agent keeps reading (about 10 readings a second).
            ((try? FileManager.default.contentsOfDirectory(atPath: journal)) ?? []).isEmpty == false
        })
        try await Task.sleep(for: .seconds(1))  // ~10 readings taken while offline: the backlog under test
        let killedAtMillis = Int64(Date().timeIntervalSince1970 * 1000)
        agent.signal(SIGKILL)
        #expect(await waitFor(10) { !agent.isRunning })

        // Broker back, agent back on the same state folder: the backlog goes out, seq continues.
        try fleet.broker.start()
        (agent, output) = try launchSensorfleet(arguments, in: fleet.path)
        #expect(await waitFor(30) {
            let seqs = subscriber.sequences()["pi-4"] ?? []
            guard let highest = seqs.max(), highest > deliveredBefore + 15 else { return false }
            return Set(seqs) == Set(1...highest)
        }, "agent: \(log())")
        let seqs = subscriber.sequences()["pi-4"] ?? []
        let highest = seqs.max() ?? 0
        #expect(Set(1...max(1, highest)).subtracting(seqs).isEmpty, "missing: \(Set(1...max(1, highest)).subtracting(seqs).sorted().prefix(20))")
        // The readings taken before the kill — delivered ones and the offline backlog — all
        // arrived: seq 1…K by their own timestamps, with K well past what was delivered before
        // the outage. (A memory-only agent would lose the backlog and restart at seq 1.)
        var beforeKill = Set<UInt64>()
        for message in subscriber.messages() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any],
                  let seq = (object["seq"] as? NSNumber)?.uint64Value, let ts = (object["ts"] as? NSNumber)?.int64Value,
                  ts < killedAtMillis else { continue }
            beforeKill.insert(seq)
        }
        let lastBeforeKill = beforeKill.max() ?? 0
        #expect(lastBeforeKill >= deliveredBefore + 5, "readings before the kill: \(beforeKill.count), delivered before the outage: \(deliveredBefore)")
        #expect(beforeKill == Set(1...max(1, lastBeforeKill)))
        agent.signal(SIGTERM)
        #expect(await waitFor(20) { !agent.isRunning }, "the agent ignored SIGTERM: \(log())")
    }
}
