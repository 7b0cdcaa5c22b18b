import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Faults caused for real against a real mosquitto (restart, kill -9, an outbox that overflows,
/// a killed sensorfleet process with a durable outbox), each checked against an independent
/// persistent-session subscriber. Each test ends by itself within its waits' deadlines.
/// A persistent-session observer that outlives broker restarts: mosquitto_sub exits when its
/// broker goes away, so `resume()` starts it again with the same client id (the broker kept the
/// session and its queued messages) and keeps what the earlier process received.
final class Observer: @unchecked Sendable {
    private let fleet: TestFleet
    let clientID: String
    private var current: Subscriber
    private var earlier: [String: [UInt64]] = [:]
    let qos: Int

    init(_ fleet: TestFleet, clientID: String, qos: Int = 1) throws {
        self.fleet = fleet
        self.clientID = clientID
        self.qos = qos
        current = try fleet.subscriber(clientID: clientID, cleanSession: false, qos: qos)
    }

    func resume() throws {
        current.stop()
        for (device, seqs) in current.sequences() { earlier[device, default: []] += seqs }
        current = try fleet.subscriber(clientID: clientID, cleanSession: false, qos: qos)
    }

    func sequences() -> [String: [UInt64]] {
        var all = earlier
        for (device, seqs) in current.sequences() { all[device, default: []] += seqs }
        return all
    }

    func stop() { current.stop() }
}

@Suite("Fault tests: nothing lost", .serialized)
struct FaultTests {
    /// Every seq 1…last of every device arrived (duplicates allowed: QoS 1 is at least once).
    private func gaps(_ subscriber: Observer, _ devices: [DeviceSnapshot]) -> [String: [UInt64]] {
        let seen = subscriber.sequences().mapValues(Set.init)
        var missing: [String: [UInt64]] = [:]
        for device in devices where device.lastSeq > 0 {
            let lost = (1...device.lastSeq).filter { !(seen[device.id]?.contains($0) ?? false) }
            if !lost.isEmpty { missing[device.id] = lost }
        }
        return missing
    }

    private func summary(_ missing: [String: [UInt64]]) -> String {
        missing.map { "\($0.key): \($0.value.count) missing, first \($0.value.prefix(5))" }.joined(separator: "; ")
    }

    @Test("a: broker restarted (SIGTERM, persistence on) during a QoS 1 run — every seq arrives, zero gaps")
    func brokerRestartLosesNothing() async throws {
        let ids = (1...4).map { "restart-\($0)" }
        let fleet = try TestFleet(devices: ids, interval: 0.05, persistence: true)
        defer { fleet.tearDown() }
        let subscriber = try Observer(fleet, clientID: "observer-restart")
        defer { subscriber.stop() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })
        fleet.broker.stop()
        // Offline for a while: readings pile up in the outboxes and in libmosquitto's window.
        #expect(await runner.waitUntilAllDevices(timeout: 10) { !$0.connected && $0.queued + $0.inflight >= 10 })
        try fleet.broker.start()
        try subscriber.resume()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connects >= 2 && $0.queued == 0 && $0.acknowledged >= $0.accepted - 25 })
        let result = await runner.stop()
        #expect(result.totals.dropped == 0, "dropped: \(result.totals.droppedByReason)")
        #expect(result.totals.accepted == result.totals.acknowledged)
        let complete = await waitFor(15) { gaps(subscriber, result.devices).isEmpty }
        #expect(complete, "gaps at the subscriber: \(summary(gaps(subscriber, result.devices)))")
        let published = result.devices.reduce(0) { $0 + Int($1.lastSeq) }
        let received = subscriber.sequences().filter { $0.key.hasPrefix("restart-") }.values.reduce(0) { $0 + $1.count }
        let missing = gaps(subscriber, result.devices).values.reduce(0) { $0 + $1.count }
        print("fault a: \(published) published over a broker restart, \(received) received (duplicates \(received - published + missing)), missing \(missing)")
    }

    @Test("b: broker killed with kill -9 and restarted — every device reconnects; published = acknowledged + dropped + queued")
    func brokerKillKeepsTheBooks() async throws {
        let ids = (1...4).map { "kill-\($0)" }
        let fleet = try TestFleet(devices: ids, interval: 0.05)
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })
        fleet.broker.kill()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { !$0.connected })
        let offline = await runner.snapshot()
        for device in offline {
            #expect(device.accepted == device.acknowledged + device.dropped + device.queued + device.inflight,
                    "\(device.id): published \(device.accepted) ≠ acked \(device.acknowledged) + dropped \(device.dropped) + queued \(device.queued) + in flight \(device.inflight)")
        }
        try fleet.broker.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected && $0.connects >= 2 && $0.queued == 0 })
        let result = await runner.stop()
        #expect(result.totals.accepted == result.totals.acknowledged + result.totals.dropped,
                "published \(result.totals.accepted), acked \(result.totals.acknowledged), dropped \(result.totals.dropped)")
        #expect(result.totals.dropped == 0, "nothing had to be dropped: \(result.totals.droppedByReason)")
        print("fault b: kill -9 of the broker: \(result.totals.accepted) published = \(result.totals.acknowledged) acknowledged + \(result.totals.dropped) dropped; reconnects \(result.devices.map(\.connects))")
    }

    @Test("d: broker down longer than the outbox holds — dropped is exactly what never arrived")
    func overflowDropsExactlyWhatIsMissing() async throws {
        let ids = ["overflow-1", "overflow-2"]
        let fleet = try TestFleet(
            devices: ids, interval: 0.02, fleetExtra: "outbox:\n  max_messages: 15\n", persistence: true
        )
        defer { fleet.tearDown() }
        let subscriber = try Observer(fleet, clientID: "observer-overflow")
        defer { subscriber.stop() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })
        fleet.broker.stop()
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.dropped >= 30 })
        try fleet.broker.start()
        try subscriber.resume()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connects >= 2 && $0.queued == 0 })
        let result = await runner.stop()
        #expect(result.totals.accepted == result.totals.acknowledged + result.totals.dropped)
        #expect(result.totals.droppedByReason["overflow"] == result.totals.dropped)
        // Wait for the subscriber to get everything that was acknowledged.
        _ = await waitFor(15) {
            let seen = subscriber.sequences().mapValues { Set($0).count }
            return result.devices.allSatisfy { seen[$0.id] == $0.acknowledged }
        }
        let missing = gaps(subscriber, result.devices)
        for device in result.devices {
            #expect(device.dropped > 0)
            #expect((missing[device.id] ?? []).count == device.dropped,
                    "\(device.id): dropped \(device.dropped), missing at the subscriber \(missing[device.id]?.count ?? 0)")
        }
        print("fault d: outbox of 15 (+ window 20) overflowed: dropped \(result.devices.map(\.dropped)), missing at the subscriber \(result.devices.map { missing[$0.id]?.count ?? 0 })")
    }

    @Test("h: sensorfleet killed with kill -9 with a non-empty durable outbox — all of it delivered after the restart")
    func durableOutboxSurvivesKill9() async throws {
        let ids = ["durable-1", "durable-2"]
        let fleet = try TestFleet(devices: ids, interval: 0.05, persistence: true)
        defer { fleet.tearDown() }
        let state = "\(fleet.path)/state"
        // Broker down: everything the first run reads stays in its outbox (on disk).
        fleet.broker.stop()
        let (first, firstOutput) = try launchSensorfleet(["run", fleet.path, "--state-dir", state], in: fleet.path)
        defer { first.signal(SIGKILL) }
        let filled = await waitFor(20) { DurableOutbox(directory: state, logger: Logger(label: "probe"), claim: false).storedCount() >= 40 }
        #expect(filled, "first run output: \((try? String(contentsOfFile: firstOutput, encoding: .utf8)) ?? "")")
        first.signal(SIGKILL)
        #expect(first.wait() == 128 + SIGKILL)
        let left = DurableOutbox(directory: state, logger: Logger(label: "probe"), claim: false).restore()
        let leftCount = left.values.reduce(0) { $0 + $1.backlog.count }
        #expect(leftCount >= 40)

        try fleet.broker.start()
        let subscriber = try Observer(fleet, clientID: "observer-durable")
        defer { subscriber.stop() }
        let report = "\(fleet.path)/report.json"
        let (second, secondOutput) = try launchSensorfleet(
            ["run", fleet.path, "--state-dir", state, "--duration", "3", "--report", report], in: fleet.path
        )
        defer { second.signal(SIGKILL) }
        let ended = await waitFor(30) { !second.isRunning }
        let output = (try? String(contentsOfFile: secondOutput, encoding: .utf8)) ?? ""
        #expect(ended && second.wait() == 0, "second run: \(output)")
        let parsed = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: report)))
        #expect(parsed.dropped == 0)
        for id in ids {
            let lastBefore = left[id]?.lastSeq ?? 0
            let device = try #require(parsed.per_device[id])
            #expect(device.last_seq > lastBefore, "seq must go on after the restart")
        }
        let devices = parsed.per_device.map { id, d in
            DeviceSnapshot(id: id, connected: true, accepted: d.published, acknowledged: d.acknowledged, dropped: d.dropped,
                           lastSeq: d.last_seq, queued: 0, inflight: 0, attempts: 0, connects: d.connects, errors: 0,
                           lastError: nil, failing: false)
        }
        let complete = await waitFor(15) { gaps(subscriber, devices).isEmpty }
        #expect(complete, "gaps: \(summary(gaps(subscriber, devices)))")
        #expect(DurableOutbox(directory: state, logger: Logger(label: "probe"), claim: false).storedCount() == 0)
        print("fault h: kill -9 with \(leftCount) messages on disk; after the restart all of seq 1…\(devices.map(\.lastSeq)) arrived, store empty")
    }
}

@Suite("Graceful shutdown under load", .serialized)
struct ShutdownTests {
    @Test("SIGTERM while offline: waits the drain time, then reports what was not delivered (kept with --state-dir, dropped without)")
    func sigtermWhileOfflineReportsTheUndelivered() async throws {
        let fleet = try TestFleet(devices: ["shutdown-1", "shutdown-2"], interval: 0.02, fleetExtra: "outbox:\n  max_messages: 100000\n")
        defer { fleet.tearDown() }
        fleet.broker.stop()
        for durable in [true, false] {
            let state = "\(fleet.path)/state-\(durable)"
            let report = "\(fleet.path)/report-\(durable).json"
            var arguments = ["run", fleet.path, "--drain-timeout", "2", "--report", report]
            if durable { arguments += ["--state-dir", state] }
            let (process, output) = try launchSensorfleet(arguments, in: fleet.path)
            defer { process.signal(SIGKILL) }
            // Readings pile up while the broker is away.
            let piled = await waitFor(20) {
                ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("sensorfleet: 2 devices")
            }
            #expect(piled)
            try await Task.sleep(for: .seconds(1))
            let signalled = Date()
            process.signal(SIGTERM)
            let ended = await waitFor(15) { !process.isRunning }
            let took = Date().timeIntervalSince(signalled)
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(ended, "still running 15 s after SIGTERM: \(text)")
            #expect(took >= 2, "the drain time is waited for a reconnect (took \(took) s)")
            let parsed = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: report)))
            #expect(parsed.acknowledged == 0 && parsed.published > 20)
            if durable {
                let stored = DurableOutbox(directory: state, logger: Logger(label: "probe"), claim: false).storedCount()
                #expect(stored == parsed.published, "all accepted messages stay on disk")
                #expect(parsed.dropped == 0)
                #expect(text.contains("not delivered: \(stored) message(s), kept in \(state)/outbox.sqlite"), "output: \(text)")
            } else {
                #expect(parsed.dropped == parsed.published)
                #expect(parsed.dropped_by_reason?["unsent"] == parsed.published)
                #expect(text.contains("not delivered: \(parsed.published) message(s) still queued at the end were dropped"), "output: \(text)")
            }
            print("shutdown (\(durable ? "durable" : "memory")): SIGTERM offline → exit after \(String(format: "%.1f", took)) s with \(parsed.published) undelivered, \(durable ? "kept on disk" : "counted as dropped")")
        }
    }
}

@Suite("Connections cut by a TCP proxy", .serialized)
struct ProxyFaultTests {
    @Test("c: reset and stalled connections — detected (stall within 1.5 × keep-alive), reconnected, zero gaps")
    func resetAndStallAreSurvived() async throws {
        let ids = ["cut-1", "cut-2"]
        // keepalive is 10 s in TestFleet; a PUBACK overdue for 4 s marks a stalled connection dead.
        let fleet = try TestFleet(devices: ids, interval: 0.05, fleetExtra: "outbox:\n  ack_timeout: 4\n")
        defer { fleet.tearDown() }
        let subscriber = try fleet.subscriber()
        defer { subscriber.stop() }
        let proxy = try TCPProxy(target: fleet.broker.port)
        defer { proxy.close() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)), broker: (nil, proxy.port))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 10 })

        proxy.reset()
        let afterReset = await runner.waitUntilAllDevices(timeout: 15) { $0.connects >= 2 && $0.connected }
        #expect(afterReset)

        let acknowledgedBefore = await runner.snapshot().map(\.acknowledged)
        let stalledAt = Date()
        proxy.stall()
        let detected = await runner.waitUntilAllDevices(timeout: 20) { $0.connects >= 3 && $0.connected }
        let detection = Date().timeIntervalSince(stalledAt)
        #expect(detected)
        #expect(detection < 1.5 * 10, "a stalled connection must be given up within 1.5 × keep-alive (took \(detection) s)")
        #expect(runner.counters.ackTimeouts.load(ordering: .relaxed) >= ids.count)
        #expect(await runner.waitUntilAllDevices(timeout: 15) { $0.queued == 0 && $0.inflight == 0 })
        let result = await runner.stop()
        #expect(zip(result.devices.map(\.acknowledged), acknowledgedBefore).allSatisfy { $0 > $1 })
        #expect(result.totals.dropped == 0, "\(result.totals.droppedByReason)")
        #expect(result.totals.accepted == result.totals.acknowledged)
        let complete = await waitFor(15) {
            let seen = subscriber.sequences().mapValues(Set.init)
            return result.devices.allSatisfy { d in (1...d.lastSeq).allSatisfy { seen[d.id]?.contains($0) ?? false } }
        }
        #expect(complete, "gaps at the subscriber")
        print("fault c: reset → reconnected; stall → detected and reconnected after \(String(format: "%.1f", detection)) s (ack_timeout 4 s, keep-alive 10 s); \(result.totals.accepted) published, 0 gaps")
    }
}

@Suite("Durable backlog", .serialized)
struct DurableBacklogTests {
    @Test("a backlog left by an earlier run goes out oldest first, at its bounded rate, with live data alongside")
    func backlogIsPacedAndInterleaved() async throws {
        let fleet = try TestFleet(
            devices: ["backlog-1"], interval: 0.01, fleetExtra: "outbox:\n  max_messages: 100000\n  backlog_rate: 100\n"
        )
        defer { fleet.tearDown() }
        let state = "\(fleet.path)/state"
        var options = RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1))
        options.stateDirectory = state
        // First run: the broker is away; everything read stays on disk.
        fleet.broker.stop()
        let first = try fleet.makeFleet(options, logLevel: .critical)
        await first.start()
        #expect(await first.waitUntilAllDevices(timeout: 20) { $0.queued >= 300 })
        let firstSummary = await first.stop(drainTimeout: 0.1, disconnectTimeout: 0.5)
        let backlog = firstSummary.totals.kept
        let lastSeqBefore = try #require(firstSummary.devices.first).lastSeq
        #expect(backlog == Int(lastSeqBefore) && backlog >= 300)

        try fleet.broker.start()
        let subscriber = try fleet.subscriber()
        defer { subscriber.stop() }
        let second = try fleet.makeFleet(options, logLevel: .critical)
        let started = Date()
        await second.start()
        let drained = await waitFor(30) {
            subscriber.sequences()["backlog-1"].map { Set($0).isSuperset(of: 1...lastSeqBefore) } ?? false
        }
        let took = Date().timeIntervalSince(started)
        #expect(drained)
        let summary = await second.stop(drainTimeout: 5)
        #expect(summary.totals.restored == backlog)
        #expect(summary.totals.dropped == 0)
        let arrived = subscriber.sequences()["backlog-1"] ?? []
        let backlogArrivals = arrived.filter { $0 <= lastSeqBefore }
        // Oldest first.
        #expect(backlogArrivals == backlogArrivals.sorted(), "backlog out of order")
        // Bounded: 100 per second after a one-second burst, so at least (backlog − 100) / 100 s.
        let floor = Double(backlog - 100) / 100
        #expect(took >= floor * 0.9, "backlog of \(backlog) went out in \(took) s; the rate allows no less than \(floor) s")
        // Alongside: live readings (seq after the old last one) arrived before the backlog was through.
        let lastBacklogIndex = arrived.lastIndex { $0 <= lastSeqBefore } ?? 0
        let firstLiveIndex = arrived.firstIndex { $0 > lastSeqBefore } ?? Int.max
        #expect(firstLiveIndex < lastBacklogIndex, "live data waited for the whole backlog")
        print("durable backlog: \(backlog) messages from the earlier run delivered oldest first in \(String(format: "%.1f", took)) s at 100/s (floor \(String(format: "%.1f", floor)) s), live data interleaved from arrival #\(firstLiveIndex)")
    }
}
