import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

/// Lines a service writes, kept for the test.
private final class Lines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite("The command line's services in a ServiceGroup, against a real mosquitto", .serialized)
struct ServiceTests {
    private static func logger() -> Logger {
        var logger = Logger(label: "service-test")
        logger.logLevel = .warning
        return logger
    }

    @Test("a duration ends the run like a signal: status lines, then the fleet drains and says why it stopped")
    func durationShutsTheGroupDownGracefully() async throws {
        let fleet = try TestFleet(devices: ["svc-1", "svc-2"], interval: 0.1)
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber()
        let running = try fleet.makeFleet()
        let reason = StopReason()
        let said = Lines()
        let status = Lines()
        let service = FleetService(fleet: running, drainTimeout: 5, onStopping: { unacknowledged in
            said.append("stopping (\(await reason.settled())): \(unacknowledged)")
        })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [
            .init(service: service),
            .init(service: StatusLineService(counters: running.counters, interval: 0.5, isTerminal: false) { status.append($0) }),
            .init(service: DurationService(.seconds(3), reason: reason), successTerminationBehavior: .gracefullyShutdownGroup),
        ], logger: Self.logger()))
        let began = ContinuousClock.now
        try await group.run()
        #expect(ContinuousClock.now - began < .seconds(10))

        let summary = try #require(service.summary)
        #expect(said.all.first?.hasPrefix("stopping (duration reached)") == true, "\(said.all)")
        #expect(summary.totals.connected == 2 && summary.failedDevices.isEmpty)
        #expect(summary.totals.accepted > 0 && summary.totals.accepted == summary.totals.acknowledged)
        #expect(status.all.count >= 3 && status.all.allSatisfy { $0.hasPrefix("connected ") && $0.hasSuffix("\n") }, "\(status.all)")
        #expect(status.all.contains { $0.hasPrefix("connected 2/2") })
        // Graceful: the last retained status says offline.
        #expect(await waitFor(10) {
            ["svc-1", "svc-2"].allSatisfy { id in
                subscriber.messages().last { $0.topic == "devices/\(id)/status" }.map { statusWord($0.payload) } == "offline"
            }
        })
    }

    @Test("triggerGracefulShutdown stops the fleet with everything acknowledged; a cancelled group stops it without waiting")
    func gracefulAndCancelled() async throws {
        let fleet = try TestFleet(devices: ["svc-3"], interval: 0.1)
        defer { fleet.tearDown() }
        let service = FleetService(fleet: try fleet.makeFleet(), drainTimeout: 5)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: service)], logger: Self.logger()))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await waitFor(20) { service.fleet.counters.snapshot().acknowledged >= 5 })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let summary = try #require(service.summary)
        #expect(summary.totals.dropped == 0 && summary.totals.accepted == summary.totals.acknowledged)

        let cancelled = FleetService(fleet: try fleet.makeFleet(), drainTimeout: 30)
        let other = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: cancelled)], logger: Self.logger()))
        let began = ContinuousClock.now
        let task = Task { try await other.run() }
        #expect(await waitFor(20) { cancelled.fleet.counters.snapshot().connected == 1 })
        task.cancel()
        _ = try? await task.value
        #expect(ContinuousClock.now - began < .seconds(25), "a cancelled fleet does not wait for the drain")
        #expect(cancelled.summary != nil)
    }

    @Test("CredentialWatchService: a reload request and a rotated file each reconnect the device with its new identity")
    func credentialWatchReloads() async throws {
        let fleet = try TestFleet(devices: ["svc-4"], interval: 0.1)
        defer { fleet.tearDown() }
        let running = try fleet.makeFleet()
        let device = try #require(running.spec.devices.first)
        let (hangups, hangup) = AsyncStream<Void>.makeStream()
        let watch = CredentialWatchService(fleet: running, device: device, watchInterval: 0.2, hangups: hangups,
                                           notifier: SystemdNotifier(environment: [:]), logger: Self.logger())
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [
            .init(service: FleetService(fleet: running, drainTimeout: 5)), .init(service: watch),
        ], logger: Self.logger()))
        func connects() -> Int { fleet.broker.log().components(separatedBy: "as svc-4 (").count - 1 }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            func acknowledged() -> Int { running.counters.snapshot().acknowledged }
            // Publishing (connected at both ends), as the agent is when SIGHUP comes.
            #expect(await waitFor(20) { connects() == 1 && acknowledged() >= 3 })
            hangup.yield()
            #expect(await waitFor(20) { connects() == 2 }, "\(fleet.broker.log().suffix(1000))")
            let before = acknowledged()
            #expect(await waitFor(20) { acknowledged() >= before + 3 })
            let cert = try String(contentsOfFile: device.certFile, encoding: .utf8)
            try cert.write(toFile: device.certFile + ".new", atomically: false, encoding: .utf8)
            #expect(rename(device.certFile + ".new", device.certFile) == 0)
            #expect(await waitFor(20) { connects() == 3 })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
