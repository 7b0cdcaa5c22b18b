import Foundation
import Logging
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// The broker's name is looked up off the reactors, and again when connections fail: a name
/// that does not resolve at start is an error for `run`, and for the agent (a Pi that boots
/// before its network) a wait with the readings kept, until it resolves.
@Suite(.serialized) struct BrokerNameTests {
    /// A name under `.test` (RFC 6761), unique to this run, mapped to loopback in /etc/hosts only
    /// while `body` says so. glibc reads /etc/hosts on every lookup.
    final class HostsEntry: @unchecked Sendable {
        let name = "sf-broker-\(UUID().uuidString.prefix(8).lowercased()).test"
        private let original: String

        init() throws { original = try String(contentsOfFile: "/etc/hosts", encoding: .utf8) }

        func add() throws {
            try (original + (original.hasSuffix("\n") ? "" : "\n") + "127.0.0.1 \(name)\n").write(toFile: "/etc/hosts", atomically: false, encoding: .utf8)
        }

        func remove() { try? original.write(toFile: "/etc/hosts", atomically: false, encoding: .utf8) }
    }

    @Test("a broker name that does not resolve at start stops `run` with the name and what to check")
    func unresolvableNameIsAnErrorForRun() throws {
        let fleet = try TestFleet(devices: ["dev-1"], startBroker: false)
        defer { fleet.tearDown() }
        var spec = try fleet.load()
        spec.broker.host = "no-such-broker.invalid"
        #expect {
            _ = try Fleet(spec: spec, options: RunOptions(), logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("cannot resolve broker host \"no-such-broker.invalid\"")
        }
    }

    @Test("with resolveBrokerLater the fleet starts without the name, keeps its readings, and delivers all of them once the name resolves")
    func nameThatResolvesLaterLosesNothing() async throws {
        guard getuid() == 0, FileManager.default.isWritableFile(atPath: "/etc/hosts") else {
            print("skipped: needs root to edit /etc/hosts (as on these machines and in CI)")
            return
        }
        let hosts = try HostsEntry()
        defer { hosts.remove() }
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"], interval: 0.1, fleetExtra: "")
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber(["devices/+/telemetry"])
        defer { subscriber.stop() }
        var spec = try fleet.load()
        spec.broker.host = hosts.name
        // The broker's certificate names localhost; this test is about the lookup, so the name
        // check is turned off by its one setting (which also logs its warning).
        spec.broker.insecureSkipHostnameVerification = true
        var options = RunOptions(backoff: BackoffPolicy(base: 0.2, cap: 1))
        options.resolveBrokerLater = true
        var logger = Logger(label: "test-fleet")
        logger.logLevel = .error
        let runner = try Fleet(spec: spec, options: options, logger: logger)
        await runner.start()
        // Offline for a while: readings are made and kept; attempts fail on the name.
        #expect(await runner.waitUntilAllDevices(timeout: 10) { $0.accepted >= 10 && $0.attempts >= 1 })
        let offline = await runner.snapshot()
        #expect(offline.allSatisfy { !$0.connected && $0.acknowledged == 0 })
        #expect(offline.allSatisfy { $0.lastError?.contains("resolve") == true }, "\(offline.map { $0.lastError ?? "nil" })")
        try hosts.add()
        // Within a few backoff rounds the name resolves, the devices connect and send everything.
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected && $0.queued == 0 && $0.inflight == 0 })
        let summary = await runner.stop(drainTimeout: 5)
        #expect(summary.totals.dropped == 0)
        #expect(summary.totals.accepted == summary.totals.acknowledged)
        let expected = Dictionary(uniqueKeysWithValues: summary.devices.map { ($0.id, $0.lastSeq) })
        let complete = await waitFor(10) {
            let seen = subscriber.sequences()
            return expected.allSatisfy { id, last in Set(seen[id] ?? []) == Set(1...max(1, last)) }
        }
        #expect(complete, "subscriber saw \(subscriber.sequences().mapValues(\.count)), expected \(expected)")
        print("broker name resolved late: \(summary.totals.accepted) readings kept while it did not resolve, then delivered, 0 lost")
    }
}
