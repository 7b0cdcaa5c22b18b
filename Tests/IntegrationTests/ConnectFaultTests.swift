import Foundation
import Logging
import Testing
import X509
import Crypto

@testable import SensorFleetCore
import SensorFleetTesting

/// A listener that accepts TCP connections and never says a word (no TLS handshake).
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var held: [Int32] = []
    private var stopped = false
    private(set) var accepted = 0

    init() throws {
        let (fd, port) = try loopbackListener()
        self.fd = fd
        self.port = port
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 1, 100) > 0 else { continue }
                let client = accept(fd, nil, nil)
                if client >= 0 { lock.withLock { held.append(client); accepted += 1 } }
            }
        }.start()
    }

    func close() {
        lock.withLock {
            stopped = true
            for client in held { Glibc.close(client) }
            held.removeAll()
        }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

/// CPU seconds (user + system) a running process has used so far, from /proc/PID/stat.
func processCPUSeconds(_ pid: pid_t) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After the command name: state is field 3, utime 14, stime 15 (1-based) → indexes 11 and 12 here.
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

@Suite("Connect faults", .serialized)
struct ConnectFaultTests {
    @Test("f: a listener that accepts TCP and never answers TLS — connect time-out, backoff, low CPU")
    func silentListenerTimesOutWithoutBurningCPU() async throws {
        let fleet = try TestFleet(devices: ["silent-1", "silent-2", "silent-3"], startBroker: false)
        defer { fleet.tearDown() }
        let listener = try SilentListener()
        defer { listener.close() }
        // In its own process, so the CPU measured is the fleet's alone (other suites run in parallel here).
        let report = "\(fleet.path)/report.json"
        let (process, output) = try launchSensorfleet(
            ["run", fleet.path, "--broker", "127.0.0.1:\(listener.port)", "--connect-timeout", "1", "--duration", "6",
             "--drain-timeout", "0.1", "--report", report], in: fleet.path)
        defer { process.signal(SIGKILL) }
        let started = Date()
        _ = await waitFor(5.5) { false }
        let cpu = try #require(processCPUSeconds(process.pid))
        let seconds = Date().timeIntervalSince(started)
        #expect(await waitFor(20) { !process.isRunning })
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let parsed = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: report)))
        #expect(listener.accepted >= 3, "the listener saw the TCP connects")
        #expect(parsed.connected == 0 && parsed.connect_attempts >= 3)
        // One attempt per (1 s time-out + backoff) per device: no hot loop of attempts.
        #expect(parsed.connect_attempts <= 3 * 7, "\(parsed.connect_attempts) attempts")
        for (id, device) in parsed.per_device {
            #expect(device.last_error?.contains("connect timed out") == true, "\(id): \(device.last_error ?? "nil"); output: \(text)")
        }
        // A spinning poller would burn about one CPU-second per second here.
        #expect(cpu < 0.25 * seconds, "CPU \(cpu) s over \(seconds) s")
        print("fault f: silent TLS listener: \(parsed.connect_attempts) attempts by 3 devices in 6 s, all timed out after 1 s; sensorfleet CPU \(String(format: "%.2f", cpu)) s in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", 100 * cpu / seconds)) % of one core, start-up included)")
    }

    @Test("g: an expired client certificate at runtime — reported clearly, backed off, no hot loop")
    func expiredCertificateAtRuntime() async throws {
        let fleet = try TestFleet(devices: ["fresh-1", "expired-1"])
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        // The certificate expires after the fleet was validated: replace it with one that ended yesterday.
        let authority = FleetAuthority(
            certificate: try FleetPKI.loadCertificate("\(fleet.path)/ca.pem"), key: try FleetPKI.loadKey("\(fleet.path)/ca.key")
        )
        let key = try FleetPKI.loadKey("\(fleet.path)/expired-1/key.pem")
        let expired = try FleetPKI.makeDevice(id: "expired-1", key: key, authority: authority, now: Date().addingTimeInterval(-3 * 86_400), validityDays: 1)
        try FleetPKI.pem(expired).write(toFile: "\(fleet.path)/expired-1/cert.pem", atomically: true, encoding: .utf8)
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let runner = try Fleet(spec: spec, options: RunOptions(backoff: BackoffPolicy(base: 0.2, cap: 2)), logger: logger)
        let started = Date()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.id == "expired-1" ? $0.failing : $0.acknowledged >= 5 })
        // What the device reported once the broker's alert was read (a later attempt may lose it to the reset).
        let reported = try #require(await runner.snapshot().first { $0.id == "expired-1" })
        try await Task.sleep(for: .seconds(3))
        let summary = await runner.stop(drainTimeout: 1)
        let elapsed = Date().timeIntervalSince(started)
        var bad = try #require(summary.devices.first { $0.id == "expired-1" })
        bad.lastError = reported.lastError
        bad.failing = reported.failing
        let good = try #require(summary.devices.first { $0.id == "fresh-1" })
        #expect(good.acknowledged >= 5 && good.dropped == 0)
        #expect(bad.connects == 0)
        #expect(bad.lastError?.lowercased().contains("expired") == true, "error: \(bad.lastError ?? "nil")")
        #expect(bad.failing, "an expired certificate does not fix itself")
        // Permanent once the broker's alert is read: between cap / 2 and cap (1–2 s here) before
        // each retry. The alert can be lost to the reset on an attempt, which then backs off as a
        // transient failure (0.2, 0.4, 0.8 s ceilings): a few more attempts, never a hot loop
        // (which makes hundreds).
        #expect(bad.attempts <= 4 + Int(elapsed / 1.0), "backed off: \(bad.attempts) attempts in \(elapsed) s")
        print("fault g (expired): \(bad.attempts) attempt(s) in ~4 s, error: \(bad.lastError ?? "nil")")
    }
}

@Suite("Broker refusals", .serialized)
struct RefusalTests {
    @Test("i: CONNACK refused (not authorised) — reason surfaced, a permanent failure, backed off")
    func connackNotAuthorised() async throws {
        let fleet = try TestFleet(devices: ["refused-1"], startBroker: false)
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        // The certificate is checked, but its CN is no longer taken as the user name, and
        // anonymous clients are not allowed: mosquitto answers CONNACK "not authorised".
        fleet.broker = try TestBroker(
            settings: .init(
                caFile: fleet.caFile, certFile: "\(fleet.path)/broker/server.pem", keyFile: "\(fleet.path)/broker/server.key",
                aclFile: "\(fleet.path)/broker/acl", extra: ["use_identity_as_username false"]
            ),
            directory: fleet.path, port: spec.broker.port
        )
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let runner = try Fleet(spec: spec, options: RunOptions(backoff: BackoffPolicy(base: 0.2, cap: 2)), logger: logger)
        let started = Date()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.errors >= 1 })
        try await Task.sleep(for: .seconds(2))
        let summary = await runner.stop(drainTimeout: 0.5)
        let elapsed = Date().timeIntervalSince(started)
        let device = try #require(summary.devices.first)
        #expect(device.connects == 0)
        #expect(device.lastError?.lowercased().contains("not authori") == true, "error: \(device.lastError ?? "nil")")
        #expect(device.failing, "a refusal does not fix itself")
        // A permanent failure waits between cap / 2 and cap (1–2 s here) before each retry.
        #expect(device.attempts <= 1 + Int(elapsed / 1.0), "\(device.attempts) attempts in \(elapsed) s")
        #expect(summary.totals.accepted == summary.totals.acknowledged + summary.totals.dropped)
        print("fault i (CONNACK): \(device.attempts) attempt(s), error: \(device.lastError ?? "nil")")
    }
}
