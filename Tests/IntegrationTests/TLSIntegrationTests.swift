import Crypto
import Foundation
import Logging
import Testing
import X509
@testable import SensorFleetCore
import SensorFleetTesting

/// Issues a broker certificate for `names` (DNS SANs only) from the fleet's CA.
func issueServerCertificate(fleet: TestFleet, names: [String]) throws -> (cert: String, key: String) {
    let caKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: "\(fleet.path)/ca.key", encoding: .utf8))
    let caCert = try Certificate(pemEncoded: String(contentsOfFile: fleet.caFile, encoding: .utf8))
    let key = P256.Signing.PrivateKey()
    let now = Date()
    let cert = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
        notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caCert.subject,
        subject: try DistinguishedName { CommonName(names[0]) }, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
            SubjectAlternativeNames(names.map { .dnsName($0) })
            try ExtendedKeyUsage([.serverAuth])
        },
        issuerPrivateKey: .init(caKey)
    )
    let certPath = "\(fleet.path)/broker/wrong-name.pem"
    let keyPath = "\(fleet.path)/broker/wrong-name.key"
    try cert.serializeAsPEM().pemString.write(toFile: certPath, atomically: true, encoding: .utf8)
    try key.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
    return (certPath, keyPath)
}

@Suite("TLS checks of the broker", .serialized)
struct TLSIntegrationTests {
    /// A broker whose certificate (from the right CA) names only `wrong.example`.
    func brokerWithWrongName() throws -> TestFleet {
        let fleet = try TestFleet(devices: ["dev-1"], startBroker: false)
        let (cert, key) = try issueServerCertificate(fleet: fleet, names: ["wrong.example"])
        let port = try #require(Int(try String(contentsOfFile: "\(fleet.path)/fleet.yaml", encoding: .utf8)
            .split(separator: "\n").first { $0.contains("port:") }!.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)))
        fleet.broker = try TestBroker(
            settings: .init(caFile: fleet.caFile, certFile: cert, keyFile: key, aclFile: "\(fleet.path)/broker/acl"),
            directory: fleet.path, port: port
        )
        return fleet
    }

    @Test("a broker certificate for another name is refused: hostname verification is on by default")
    func wrongNameIsRefused() async throws {
        let fleet = try brokerWithWrongName()
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet(logLevel: .critical)
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { $0.errors >= 1 })
        let summary = await runner.stop()
        let device = try #require(summary.devices.first)
        #expect(device.connects == 0)
        #expect(device.failing)
        #expect(device.lastError?.contains("hostname mismatch") == true, "error: \(device.lastError ?? "nil")")
        #expect(!fleet.broker.log().contains("New client connected"))
    }

    @Test("insecure_skip_hostname_verification, asked for by name, connects to that broker (chain still checked)")
    func insecureFlagSkipsOnlyTheNameCheck() async throws {
        let fleet = try brokerWithWrongName()
        defer { fleet.tearDown() }
        let yaml = try String(contentsOfFile: "\(fleet.path)/fleet.yaml", encoding: .utf8)
        try yaml.replacingOccurrences(of: "  keepalive: 10", with: "  keepalive: 10\n  insecure_skip_hostname_verification: true")
            .write(toFile: "\(fleet.path)/fleet.yaml", atomically: true, encoding: .utf8)
        let loaded = try FleetLoader.load(directory: fleet.path)
        #expect(loaded.warnings.contains { $0.description.uppercased().contains("INSECURE") || $0.description.contains("hostname") })
        let runner = try fleet.makeFleet(logLevel: .critical)
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 10) { $0.acknowledged >= 1 })
        let summary = await runner.stop()
        #expect(summary.failedDevices.isEmpty)
    }
}
