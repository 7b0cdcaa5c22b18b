import Foundation
import Logging
import MosquittoKit
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

private func quietLogger() -> Logger {
    var logger = Logger(label: "outside-broker-test")
    logger.logLevel = .critical
    return logger
}

/// The ACL of an outside broker: the devices as `provision` writes them, and the observer with
/// `observerLines` only.
private func outsideACL(observerLines: [String]) -> String {
    (["pattern write devices/%u/#", "pattern read devices/%u/commands", "", "user sensorfleet-observer"] + observerLines)
        .joined(separator: "\n") + "\n"
}

/// A provisioned fleet whose mosquitto uses `acl` instead of the one `provision` wrote.
private func fleetWithACL(_ ids: [String], acl: String) throws -> TestFleet {
    let fleet = try TestFleet(devices: ids, startBroker: false)
    let aclPath = "\(fleet.path)/outside-acl"
    try acl.write(toFile: aclPath, atomically: true, encoding: .utf8)
    let port = try fleet.load().broker.port
    fleet.broker = try TestBroker(
        settings: .init(caFile: fleet.caFile, certFile: "\(fleet.path)/broker/server.pem",
                        keyFile: "\(fleet.path)/broker/server.key", aclFile: aclPath),
        directory: fleet.path, port: port)
    return fleet
}

/// Tests/Fixtures/picky-broker.py on a free port: closes an MQTT 5 CONNECT, and a 3.1.1
/// connection at its first PUBLISH (as RabbitMQ does).
private final class PickyBroker {
    let process: ChildProcess
    let port: Int

    init(fleet: TestFleet, refuseSubscribe: Bool = false) throws {
        guard let python = findExecutable("python3") else { throw TestFailure("python3 is not installed") }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/picky-broker.py").path
        let portFile = "\(fleet.path)/picky.port"
        process = try ChildProcess(python, [script, portFile, "\(fleet.path)/broker/server.pem", "\(fleet.path)/broker/server.key",
                                            fleet.caFile] + (refuseSubscribe ? ["refuse-subscribe"] : []),
                                       output: "\(fleet.path)/picky.out")
        let deadline = Date().addingTimeInterval(10)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { usleep(20_000) }
        }
        guard let port else { throw TestFailure("picky-broker.py did not start: \((try? String(contentsOfFile: "\(fleet.path)/picky.out", encoding: .utf8)) ?? "")") }
        self.port = port
    }

    deinit { process.terminate(grace: 1) }
}

@Suite("bench and run against a broker we did not configure", .serialized)
struct BrokerWeDidNotConfigureTests {
    @Test("a read-only observer (`topic read devices/#`, no write): bench verifies every message")
    func readOnlyObserverVerifies() async throws {
        let fleet = try fleetWithACL((1...3).map { "ro-\($0)" }, acl: outsideACL(observerLines: ["topic read devices/#"]))
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.messagesPerDevice = 20
        options.ratePerDevice = 0
        options.duration = 30
        let started = Date()
        let report = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
        #expect(report.verified)
        #expect(report.sent == 60)
        #expect(report.received == report.sent)
        #expect(report.gaps == 0)
        // Ready from the SUBACKs, not after the old probe's 15 s time-out.
        #expect(Date().timeIntervalSince(started) < 15)
    }

    @Test("mosquitto's acl_file without read for the observer (it grants the SUBSCRIBE, delivers nothing): a clear error within seconds, naming the ACL lines")
    func silentlyFilteredObserverNamesTheACLFix() async throws {
        let fleet = try fleetWithACL(["no-1", "no-2"], acl: outsideACL(observerLines: ["topic read other/#"]))
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.messagesPerDevice = 5
        options.duration = 60
        let started = Date()
        do {
            _ = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
            Issue.record("bench ran although the observer may not read the devices' topics")
        } catch {
            let text = "\(error)"
            #expect(text.contains("received none of the"), "\(text)")
            #expect(text.contains("user sensorfleet-observer"), "\(text)")
            #expect(text.contains("topic read devices/#"), "\(text)")
            #expect(text.contains("--no-verify"), "\(text)")
        }
        #expect(Date().timeIntervalSince(started) < 15)
    }

    @Test("a broker that refuses the observer's SUBSCRIBE (SUBACK 0x80): the verifier fails at once, naming the topic and the ACL lines")
    func refusedSubscriptionNamesTheACLFix() async throws {
        let fleet = try TestFleet(devices: ["no-1", "no-2"], startBroker: false)
        defer { fleet.tearDown() }
        let picky = try PickyBroker(fleet: fleet, refuseSubscribe: true)
        let spec = try fleet.load()
        let verifier = try Verifier(
            settings: .init(host: "127.0.0.1", port: picky.port, caFile: fleet.caFile, certFile: fleet.observerCert,
                            keyFile: fleet.observerKey, tls: TLSSettings(serverName: "localhost"), connections: 1),
            topics: spec.devices.map { ($0.id, $0.topic) }, logger: quietLogger())
        let started = Date()
        do {
            try await verifier.start(timeout: 15)
            Issue.record("the verifier started although every subscription was refused")
        } catch {
            let text = "\(error)"
            #expect(text.contains("refused the verifier's subscription to devices/no-"), "\(text)")
            #expect(text.contains("SUBACK 0x80"), "\(text)")
            #expect(text.contains("user sensorfleet-observer"), "\(text)")
            #expect(text.contains("topic read devices/#"), "\(text)")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        await verifier.stop()
    }

    @Test("--bind with an address that is not this machine's (TEST-NET 192.0.2.1) names the bind address, not the broker")
    func unusableBindAddressIsNamed() async throws {
        let fleet = try TestFleet(devices: ["bind-1"])
        defer { fleet.tearDown() }
        var options = BenchOptions()
        options.messagesPerDevice = 5
        options.bind = ["192.0.2.1"]
        do {
            _ = try await BenchRunner.run(fleet: try fleet.load(), options: options, logger: quietLogger())
            Issue.record("bench ran with an unusable source address")
        } catch {
            let text = "\(error)"
            #expect(text.contains("source address 192.0.2.1"), "\(text)")
            #expect(text.contains("not an address of this machine"), "\(text)")
            #expect(!text.contains("\(fleet.broker.port)"), "\(text)")
        }
        // The same through a client that binds: the connection error names the address too.
        let spec = try fleet.load()
        let verifier = try Verifier(
            settings: .init(host: "127.0.0.1", port: fleet.broker.port, caFile: fleet.caFile, certFile: fleet.observerCert,
                            keyFile: fleet.observerKey, tls: TLSSettings(serverName: "localhost"), connections: 1,
                            bindAddress: "192.0.2.1"),
            topics: spec.devices.map { ($0.id, $0.topic) }, logger: quietLogger())
        let started = Date()
        await #expect {
            try await verifier.start(timeout: 10)
        } throws: { error in
            "\(error)".contains("192.0.2.1") && "\(error)".contains("--bind")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        await verifier.stop()
        #expect(!fleet.broker.log().contains("New connection from 192.0.2.1"))
    }

    @Test("a broker that closes an MQTT 5 CONNECT: the error says it may not support MQTT 5 and to set broker.protocol")
    func mqtt5ClosedBeforeConnack() async throws {
        let fleet = try TestFleet(devices: ["v5-1"], protocolVersion: "5", startBroker: false)
        defer { fleet.tearDown() }
        let picky = try PickyBroker(fleet: fleet)
        let runner = try fleet.makeFleet(RunOptions(), broker: ("127.0.0.1", picky.port), logLevel: .critical)
        await runner.start()
        let failed = await runner.waitUntilAllDevices(timeout: 15) { $0.errors >= 1 && $0.lastError != nil }
        let summary = await runner.stop(drainTimeout: 0)
        #expect(failed)
        let error = summary.devices.first?.lastError ?? ""
        #expect(error.contains("closed the connection right after CONNECT at MQTT 5"), "\(error)")
        #expect(error.contains("broker.protocol: \"3.1.1\""), "\(error)")
        #expect(!error.contains("timed out"), "\(error)")
    }

    @Test("a broker that closes the connection at a forbidden PUBLISH (as RabbitMQ does): the error names the publish and the ACL")
    func closeAfterPublishIsDiagnosed() async throws {
        let fleet = try TestFleet(devices: ["pub-1"], interval: 0.2, startBroker: false)
        defer { fleet.tearDown() }
        let picky = try PickyBroker(fleet: fleet)
        let runner = try fleet.makeFleet(RunOptions(), broker: ("127.0.0.1", picky.port), logLevel: .critical)
        await runner.start()
        let failed = await runner.waitUntilAllDevices(timeout: 15) { $0.connects >= 1 && $0.errors >= 1 && $0.lastError != nil }
        let summary = await runner.stop(drainTimeout: 0)
        #expect(failed)
        let error = summary.devices.first?.lastError ?? ""
        #expect(error.contains("closed the connection right after a PUBLISH to devices/pub-1/"), "\(error)")
        #expect(error.contains("ACL"), "\(error)")
    }
}
