import Foundation
import Logging
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Makes a mosquitto password file with the real `mosquitto_passwd -b`.
private func makePasswordFile(_ path: String, _ users: [(String, String)]) throws {
    let binary = try #require(findExecutable("mosquitto_passwd"))
    for (index, (user, password)) in users.enumerated() {
        let process = try ChildProcess(binary, (index == 0 ? ["-c"] : []) + ["-b", path, user, password], output: "\(path).out")
        #expect(process.wait() == 0)
    }
}

/// Adds `password_file: password.txt` to the devices' device.yaml (after provisioning, which
/// reads the fleet and would not find the file yet).
private func addPasswordFile(_ fleet: TestFleet, _ ids: [String]) throws {
    for id in ids {
        let path = "\(fleet.path)/\(id)/device.yaml"
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
        try ("password_file: password.txt\n" + yaml).write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// The other ways in, each only when asked for by name, against mosquitto configured for them:
/// a user name and password (mosquitto_passwd) as well as the certificate, and plain TCP.
@Suite("User names, passwords and plain TCP over a real mosquitto", .serialized)
struct LoginIntegrationTests {
    @Test("TLS with a certificate and a templated user name + password_file: accepted; a wrong password: refused in words, permanent")
    func certificateAndPassword() async throws {
        let fleet = try TestFleet(
            devices: ["dev-pw", "dev-bad"], interval: 0.2,
            deviceExtra: { _ in "username: \"{id}\"" },
            brokerSettings: { settings, path in
                settings.identityAsUsername = false
                settings.passwordFile = "\(path)/broker/passwords"
                try makePasswordFile("\(path)/broker/passwords", [("dev-pw", "right-pw"), ("dev-bad", "right-too")])
            })
        defer { fleet.tearDown() }
        try addPasswordFile(fleet, ["dev-pw", "dev-bad"])
        try "right-pw\n".write(toFile: "\(fleet.path)/dev-pw/password.txt", atomically: true, encoding: .utf8)
        try "wrong-pw\n".write(toFile: "\(fleet.path)/dev-bad/password.txt", atomically: true, encoding: .utf8)
        chmod("\(fleet.path)/dev-pw/password.txt", 0o600)
        chmod("\(fleet.path)/dev-bad/password.txt", 0o600)
        let runner = try fleet.makeFleet(logLevel: .debug)
        await runner.start()
        var snapshots: [DeviceSnapshot] = []
        let settled = await waitFor(20) {
            snapshots = await runner.snapshot()
            return (snapshots.first { $0.id == "dev-pw" }?.acknowledged ?? 0) >= 3
                && snapshots.first { $0.id == "dev-bad" }?.lastError != nil
        }
        #expect(settled, "\(snapshots.map { "\($0.id): acked \($0.acknowledged), \($0.lastError ?? "-")" })")
        let log = fleet.broker.log()
        // The user name in CONNECT is the identity the ACL saw (not the certificate's CN).
        #expect(log.contains("as dev-pw (p2, c1, k10, u'dev-pw')"))
        #expect(!log.contains("Denied PUBLISH from dev-pw"))
        let bad = try #require(snapshots.first { $0.id == "dev-bad" })
        // mosquitto 2.0.11 answers a wrong password at 3.1.1 with return code 5, "not authorised".
        #expect(bad.lastError?.contains("the broker refused the connection (reason 135: not authorised") == true, "\(bad.lastError ?? "nil")")
        #expect(bad.failing)
        _ = await runner.stop()
    }

    @Test("broker.tls: false connects over plain TCP with a user name and password; telemetry arrives")
    func plainTCP() async throws {
        let plainPort = freePort()
        let fleet = try TestFleet(
            devices: ["dev-plain"], interval: 0.2, protocolVersion: "5",
            deviceExtra: { _ in "username: \"{id}\"" },
            brokerSettings: { settings, path in
                settings.plainPort = plainPort
                settings.passwordFile = "\(path)/broker/passwords"
                try makePasswordFile("\(path)/broker/passwords", [("dev-plain", "plain-pw")])
            })
        defer { fleet.tearDown() }
        try addPasswordFile(fleet, ["dev-plain"])
        try "plain-pw\n".write(toFile: "\(fleet.path)/dev-plain/password.txt", atomically: true, encoding: .utf8)
        chmod("\(fleet.path)/dev-plain/password.txt", 0o600)
        let yaml = try String(contentsOfFile: "\(fleet.path)/fleet.yaml", encoding: .utf8)
            .replacingOccurrences(of: "broker:\n", with: "broker:\n  tls: false\n")
        try yaml.write(toFile: "\(fleet.path)/fleet.yaml", atomically: true, encoding: .utf8)
        let loaded = try FleetLoader.load(directory: fleet.path)
        #expect(loaded.warnings.contains { $0.field == "broker.tls" && $0.problem.contains("TLS is OFF") })
        let runner = try fleet.makeFleet(broker: (host: nil, port: plainPort))
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.acknowledged >= 3 })
        let log = fleet.broker.log()
        #expect(log.contains("New client connected from 127.0.0.1"))
        #expect(log.contains("as dev-plain (p5, c1, k10, u'dev-plain')"))
        #expect(!log.contains("Denied PUBLISH from dev-plain"))
        _ = await runner.stop()
    }
}
