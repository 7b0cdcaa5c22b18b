import Foundation
import Logging
import Testing
import X509
import Crypto

@testable import SensorFleetCore

/// A listener that accepts TCP connections and never says a word (no TLS handshake).
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var held: [Int32] = []
    private var stopped = false
    private(set) var accepted = 0

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else { throw TestFailure("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
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

/// CPU seconds (user + system) this process has used so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

@Suite("Connect faults", .serialized)
struct ConnectFaultTests {
    @Test("f: a listener that accepts TCP and never answers TLS — connect time-out, backoff, low CPU")
    func silentListenerTimesOutWithoutBurningCPU() async throws {
        let fleet = try TestFleet(devices: ["silent-1", "silent-2", "silent-3"], startBroker: false)
        defer { fleet.tearDown() }
        let listener = try SilentListener()
        defer { listener.close() }
        let runner = try fleet.makeFleet(
            RunOptions(brokerPort: listener.port, backoff: BackoffPolicy(base: 0.5, cap: 2), connectTimeout: 1),
            logLevel: .critical
        )
        let cpuBefore = processCPUSeconds()
        let started = Date()
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { $0.errors >= 2 })
        try await Task.sleep(for: .seconds(3))
        let summary = await runner.stop(drainTimeout: 0.1, disconnectTimeout: 0.5)
        let seconds = Date().timeIntervalSince(started)
        let cpu = processCPUSeconds() - cpuBefore
        #expect(listener.accepted >= 3, "the listener saw the TCP connects")
        for device in summary.devices {
            #expect(device.connects == 0)
            #expect(device.lastError?.contains("connect timed out") == true, "\(device.id): \(device.lastError ?? "nil")")
            // One attempt per (1 s time-out + backoff): no hot loop of attempts.
            #expect(device.attempts <= Int(seconds) + 1, "\(device.id): \(device.attempts) attempts in \(seconds) s")
        }
        // A spinning poller would burn about one CPU-second per second here.
        #expect(cpu < 0.35 * seconds, "CPU \(cpu) s over \(seconds) s")
        print("fault f: silent TLS listener: \(summary.devices.map(\.attempts)) attempts in \(String(format: "%.1f", seconds)) s, all timed out; CPU \(String(format: "%.3f", cpu)) s (\(String(format: "%.1f", 100 * cpu / seconds)) % of one core, the test process included)")
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
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.id == "expired-1" ? $0.errors >= 1 : $0.acknowledged >= 5 })
        try await Task.sleep(for: .seconds(3))
        let summary = await runner.stop(drainTimeout: 1)
        let bad = try #require(summary.devices.first { $0.id == "expired-1" })
        let good = try #require(summary.devices.first { $0.id == "fresh-1" })
        #expect(good.acknowledged >= 5 && good.dropped == 0)
        #expect(bad.connects == 0)
        #expect(bad.lastError?.lowercased().contains("expired") == true, "error: \(bad.lastError ?? "nil")")
        #expect(bad.attempts <= 4, "backed off: \(bad.attempts) attempts in about 4 s")
        print("fault g (expired): \(bad.attempts) attempt(s) in ~4 s, error: \(bad.lastError ?? "nil")")
    }
}
