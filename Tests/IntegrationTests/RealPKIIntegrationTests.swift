import Foundation
import MosquittoKit
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

/// Runs Tests/Fixtures/intermediate-pki.sh: a root and an intermediate CA (made with the openssl
/// CLI), and a device certificate for `cn` issued by the intermediate.
func makeIntermediatePKI(cn: String, in dir: String) throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/intermediate-pki.sh").path
    let output = "\(dir).out"
    let process = try ChildProcess("/bin/bash", [script, dir, cn], output: output)
    let code = process.wait(timeout: 30)
    if code != 0 { throw TestFailure("intermediate-pki.sh exited \(code): \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")") }
}

@Suite("Real PKIs against a real mosquitto", .serialized)
struct RealPKIIntegrationTests {
    @Test("a device issued by an intermediate CA (cert.pem = leaf + intermediate): validate passes, mosquitto accepts it through `run`")
    func intermediateChainRunsAgainstMosquitto() async throws {
        let fleet = try TestFleet(devices: ["dev-1"], interval: 0.1, startBroker: false)
        defer { fleet.tearDown() }
        let pki = "\(fleet.path)/outside-pki"
        try makeIntermediatePKI(cn: "dev-1", in: pki)
        // ca.pem holds two CAs: the fleet's (it signed the broker's certificate; provision makes
        // it with path length 0, so no intermediate may hang below it) and the outside root.
        // The broker's cafile is the same bundle.
        let bundle = try String(contentsOfFile: fleet.caFile, encoding: .utf8) + String(contentsOfFile: "\(pki)/root.pem", encoding: .utf8)
        try bundle.write(toFile: fleet.caFile, atomically: true, encoding: .utf8)
        chmod(pki, 0o755)
        fleet.broker = try TestBroker(
            settings: .init(caFile: fleet.caFile, certFile: "\(fleet.path)/broker/server.pem", keyFile: "\(fleet.path)/broker/server.key",
                            aclFile: "\(fleet.path)/broker/acl"),
            directory: fleet.path, port: try fleet.load().broker.port)
        try FileManager.default.removeItem(atPath: "\(fleet.path)/dev-1/cert.pem")
        try FileManager.default.removeItem(atPath: "\(fleet.path)/dev-1/key.pem")
        try FileManager.default.copyItem(atPath: "\(pki)/chain.pem", toPath: "\(fleet.path)/dev-1/cert.pem")
        try FileManager.default.copyItem(atPath: "\(pki)/leaf.key", toPath: "\(fleet.path)/dev-1/key.pem")
        chmod("\(fleet.path)/dev-1/key.pem", 0o600)

        let (validate, validateOutput) = try launchSensorfleet(["validate", fleet.path], in: fleet.path)
        let validateCode = validate.wait(timeout: 60)
        let validateText = (try? String(contentsOfFile: validateOutput, encoding: .utf8)) ?? ""
        #expect(validateCode == 0, "validate: \(validateText)")

        let subscriber = try fleet.subscriber(["devices/dev-1/telemetry"])
        let (run, runOutput) = try launchSensorfleet(["run", fleet.path, "--duration", "3", "--log-level", "warning"], in: fleet.path)
        let runCode = run.wait(timeout: 60)
        let runText = (try? String(contentsOfFile: runOutput, encoding: .utf8)) ?? ""
        #expect(runCode == 0, "run: \(runText)")
        let arrived = await waitFor(10) { (subscriber.sequences()["dev-1"]?.count ?? 0) >= 5 }
        #expect(arrived, "received: \(subscriber.sequences()); run: \(runText)")
        // The broker saw the device by its certificate's CN, through the intermediate.
        #expect(fleet.broker.log().contains("u'dev-1'"), "\(fleet.broker.log().suffix(1500))")
    }

    @Test("an encrypted key at connect time fails at once with the hint, never a passphrase prompt", arguments: [false, true])
    func encryptedKeyAtRuntime(traditional: Bool) throws {
        let fleet = try TestFleet(devices: ["dev-1"], startBroker: false)
        defer { fleet.tearDown() }
        let encrypted = "\(fleet.path)/dev-1/key-encrypted.pem"
        let output = "\(fleet.path)/pkey.out"
        let process = try ChildProcess("/usr/bin/openssl", ["pkey", "-in", "\(fleet.path)/dev-1/key.pem", "-aes256",
                                                             "-passout", "pass:secret", "-out", encrypted] + (traditional ? ["-traditional"] : []),
                                       output: output)
        #expect(process.wait(timeout: 30) == 0)
        let trust = try TrustStore(caFile: fleet.caFile)
        let started = Date()
        do {
            _ = try TLSContext(trust: trust, certFile: "\(fleet.path)/dev-1/cert.pem", keyFile: encrypted,
                               settings: TLSSettings(serverName: "localhost"))
            Issue.record("an encrypted key loaded without a passphrase")
        } catch {
            #expect(error.hint?.contains("encrypted") == true, "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
