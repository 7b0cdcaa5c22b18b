import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import SensorFleetCore
import SensorFleetTesting

/// A fresh folder under the system temp directory, removed when the test ends.
private final class ProvisionTempFleet {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: "\(path)/\(relative)", encoding: .utf8)
    }
    func certificate(_ relative: String) throws -> Certificate {
        try Certificate(pemEncoded: read(relative))
    }
    func key(_ relative: String) throws -> P256.Signing.PrivateKey {
        try P256.Signing.PrivateKey(pemRepresentation: read(relative))
    }
    func mode(_ relative: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(path)/\(relative)")
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
    func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(path)/\(relative)")
    }
    func write(_ text: String, to relative: String) throws {
        let url = URL(fileURLWithPath: "\(path)/\(relative)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
}

private func commonName(_ certificate: Certificate) -> String? {
    certificate.subject.flatMap { $0 }.first { $0.type == .RDNAttributeType.commonName }.flatMap { String($0.value) }
}

private func isSigned(_ certificate: Certificate, by ca: Certificate) -> Bool {
    certificate.issuer == ca.subject && ca.publicKey.isValidSignature(certificate.signature, for: certificate)
}

private let openSSL = "/usr/bin/openssl"

/// A valid `sensors:` section, for device.yaml files written by hand.
private let oneSensor = "sensors:\n  - {name: level, type: constant, value: 1}\n"

private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Provisioning: CA, broker and device identities, CRL")
struct ProvisionTests {
    @Test func provisionsThreeDevicesWithPrivateKeys() throws {
        let fleet = try ProvisionTempFleet()
        let result = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 3))
        #expect(result.skipped.isEmpty)
        for file in ["ca.pem", "ca.key", "fleet.yaml", "broker/server.pem", "broker/server.key",
            "broker/mosquitto.conf", "broker/acl"]
        {
            #expect(fleet.exists(file), "\(file)")
        }
        for id in ["sensor-0001", "sensor-0002", "sensor-0003"] {
            #expect(fleet.exists("\(id)/device.yaml") && fleet.exists("\(id)/cert.pem"))
            #expect(try fleet.mode("\(id)/key.pem") == 0o600)
            #expect(try fleet.read("\(id)/key.pem").hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            #expect(try fleet.read("\(id)/device.yaml").contains("id: \(id)\n"))
        }
        #expect(try fleet.mode("ca.key") == 0o600)
        #expect(try fleet.mode("broker/server.key") == 0o600)
        #expect(!fleet.exists("sensor-0004"))
        #expect(try fleet.read("fleet.yaml").contains("port: 8883"))
        // No temporary files left behind.
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: fleet.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test func caIsAConstrainedSelfSignedAuthority() throws {
        let fleet = try ProvisionTempFleet()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path), now: now)
        let ca = try fleet.certificate("ca.pem")
        #expect(isSigned(ca, by: ca))
        #expect(ca.publicKey == Certificate.PublicKey(try fleet.key("ca.key").publicKey))
        let constraints = try #require(try ca.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(ca.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        let usage = try #require(try ca.extensions.keyUsage)
        #expect(usage.keyCertSign && usage.cRLSign && !usage.digitalSignature)
        #expect(ca.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        #expect(try ca.extensions.subjectKeyIdentifier != nil)
        #expect(ca.notValidAfter.timeIntervalSince(now) == 3650 * 86_400)
        #expect(ca.signatureAlgorithm == .ecdsaWithSHA256)
    }

    @Test func deviceAndBrokerCertificatesAreCorrectAndSignedByTheCA() throws {
        let fleet = try ProvisionTempFleet()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try Provisioner.provision(
            ProvisionOptions(directory: fleet.path, newDevices: 2, validityDays: 30), now: now)
        let ca = try fleet.certificate("ca.pem")
        let caKeyID = try #require(try ca.extensions.subjectKeyIdentifier).keyIdentifier

        for id in ["sensor-0001", "sensor-0002"] {
            let cert = try fleet.certificate("\(id)/cert.pem")
            #expect(commonName(cert) == id)
            #expect(cert.issuer == ca.subject)
            #expect(isSigned(cert, by: ca))
            #expect(cert.publicKey == Certificate.PublicKey(try fleet.key("\(id)/key.pem").publicKey))
            #expect(try cert.extensions.extendedKeyUsage == ExtendedKeyUsage([.clientAuth]))
            #expect(try cert.extensions.keyUsage == KeyUsage(digitalSignature: true))
            #expect(try cert.extensions.basicConstraints == .notCertificateAuthority)
            #expect(try cert.extensions.authorityKeyIdentifier?.keyIdentifier == caKeyID)
            #expect(cert.serialNumber.bytes.count == 16 && cert.serialNumber.bytes.first! & 0x80 == 0)
            #expect(cert.notValidAfter.timeIntervalSince(now) == 30 * 86_400)
            #expect(cert.notValidBefore <= now)
        }
        #expect(
            try fleet.certificate("sensor-0001/cert.pem").serialNumber
                != fleet.certificate("sensor-0002/cert.pem").serialNumber)

        let server = try fleet.certificate("broker/server.pem")
        #expect(isSigned(server, by: ca))
        #expect(server.publicKey == Certificate.PublicKey(try fleet.key("broker/server.key").publicKey))
        #expect(try server.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))
        let names = try #require(try server.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(Array(repeating: 0, count: 15) + [1])))))
    }

    @Test func rerunKeepsKeysAndCertificatesAndForceReplacesThem() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 2))
        let files = ["ca.key", "ca.pem", "broker/server.key", "broker/server.pem", "sensor-0001/key.pem",
            "sensor-0001/cert.pem", "sensor-0002/key.pem"]
        let before = try files.map { try fleet.read($0) }

        let again = try Provisioner.provision(ProvisionOptions(directory: fleet.path))
        #expect(try files.map { try fleet.read($0) } == before)
        #expect(again.skipped.contains { $0.contains("sensor-0001/cert.pem") && $0.contains("kept") })
        #expect(!fleet.exists("sensor-0003"))

        let forced = try Provisioner.provision(ProvisionOptions(directory: fleet.path, force: true))
        let after = try files.map { try fleet.read($0) }
        for (old, new) in zip(before, after) { #expect(old != new) }
        #expect(forced.created.contains { $0.contains("force") })
        // Still one consistent fleet.
        #expect(isSigned(try fleet.certificate("sensor-0002/cert.pem"), by: try fleet.certificate("ca.pem")))
    }

    @Test func existingDeviceFolderGetsItsCertificateUnderItsOwnID() throws {
        let fleet = try ProvisionTempFleet()
        try fleet.write("id: lab-probe\ninterval: 2\n" + oneSensor, to: "probe/device.yaml")
        try fleet.write("interval: 2\n" + oneSensor, to: "thermostat-001/device.yaml")
        try fleet.write("not a device\n", to: "notes/readme.txt")
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path))
        #expect(commonName(try fleet.certificate("probe/cert.pem")) == "lab-probe")
        #expect(commonName(try fleet.certificate("thermostat-001/cert.pem")) == "thermostat-001")
        #expect(!fleet.exists("notes/cert.pem"))
        #expect(try fleet.read("probe/device.yaml") == "id: lab-probe\ninterval: 2\n" + oneSensor)
    }

    @Test func newDeviceNumbersContinueAfterTheHighest() throws {
        let fleet = try ProvisionTempFleet()
        try fleet.write("id: sensor-0041\n" + oneSensor, to: "a/device.yaml")
        try fleet.write("id: other-9999\n" + oneSensor, to: "b/device.yaml")
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 2))
        #expect(fleet.exists("sensor-0042/cert.pem") && fleet.exists("sensor-0043/cert.pem"))
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 1, prefix: "gw"))
        #expect(fleet.exists("gw-0001/cert.pem"))
        #expect(Provisioner.deviceID(prefix: "s", number: 12_345) == "s-12345")
    }

    @Test func missingHalfOfAPairIsRepairedWithoutLosingAKey() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 2))
        let key2 = try fleet.read("sensor-0002/key.pem")
        try FileManager.default.removeItem(atPath: "\(fleet.path)/sensor-0001/key.pem")
        try FileManager.default.removeItem(atPath: "\(fleet.path)/sensor-0002/cert.pem")

        let result = try Provisioner.provision(ProvisionOptions(directory: fleet.path))
        #expect(result.created.contains { $0.contains("sensor-0001") && $0.contains("key was missing") })
        #expect(result.created.contains { $0.contains("sensor-0002/cert.pem") && $0.contains("key kept") })
        #expect(try fleet.read("sensor-0002/key.pem") == key2)
        for id in ["sensor-0001", "sensor-0002"] {
            let cert = try fleet.certificate("\(id)/cert.pem")
            #expect(cert.publicKey == Certificate.PublicKey(try fleet.key("\(id)/key.pem").publicKey))
        }
    }

    @Test func rejectsBadIDsAndOptions() throws {
        let fleet = try ProvisionTempFleet()
        try fleet.write("id: \"bad/id\"\n", to: "x/device.yaml")
        #expect(throws: ProvisionError.self) { try Provisioner.provision(ProvisionOptions(directory: fleet.path)) }
        try fleet.write("id: same\n" + oneSensor, to: "x/device.yaml")
        try fleet.write("id: same\n" + oneSensor, to: "y/device.yaml")
        let duplicate = #expect(throws: ProvisionError.self) {
            try Provisioner.provision(ProvisionOptions(directory: fleet.path))
        }
        #expect(duplicate?.code == .invalidFleet)
        #expect(duplicate?.issues.contains { $0.field == "id" && $0.problem.contains("also the id of") } == true)
        for options in [
            ProvisionOptions(directory: fleet.path, newDevices: -1), ProvisionOptions(directory: fleet.path, prefix: "a b"),
            ProvisionOptions(directory: fleet.path, brokerPort: 0), ProvisionOptions(directory: fleet.path, validityDays: 0),
        ] {
            let error = #expect(throws: ProvisionError.self) { try Provisioner.provision(options) }
            #expect(error?.code == .invalidOption)
        }
    }

    @Test func brokerConfigurationPointsAtTheFleetFiles() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, brokerPort: 18_884))
        let conf = try fleet.read("broker/mosquitto.conf")
        // No delayed-ACK stall on every connect (issue 12: ~45 ms per connect on loopback).
        #expect(conf.contains("\nset_tcp_nodelay true\n"))
        for line in ["listener 18884 127.0.0.1", "cafile \(fleet.path)/ca.pem", "keyfile \(fleet.path)/broker/server.key",
            "require_certificate true", "use_identity_as_username true", "acl_file \(fleet.path)/broker/acl"]
        {
            #expect(conf.contains(line + "\n"), "\(line)")
        }
        #expect(!conf.contains("crlfile"))
        let acl = try fleet.read("broker/acl")
        #expect(acl.contains("pattern write devices/%u/#\n") && acl.contains("pattern read devices/%u/commands\n"))
        #expect(try fleet.read("fleet.yaml").contains("port: 18884"))
    }

    @Test func revokeWritesASignedCRLThatKeepsEarlierSerials() throws {
        let fleet = try ProvisionTempFleet()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 3), now: now)
        let ca = try fleet.certificate("ca.pem")
        let caKey = try #require(P256.Signing.PublicKey(ca.publicKey))
        let serial1 = Array(try fleet.certificate("sensor-0001/cert.pem").serialNumber.bytes)
        let serial2 = Array(try fleet.certificate("sensor-0002/cert.pem").serialNumber.bytes)

        let message = try Provisioner.revoke(directory: fleet.path, deviceID: "sensor-0001", now: now)
        #expect(message.contains("sensor-0001"))
        var crl = try RevocationList(pemEncoded: fleet.read("broker/crl.pem"))
        #expect(crl.isSignatureValid(for: caKey))
        #expect(crl.entries == [.init(serial: serial1, revocationDate: now)])
        #expect(crl.issuer == ca.subject)
        #expect(crl.number == 1)
        #expect(crl.thisUpdate == now && crl.nextUpdate == now + 30 * 86_400)
        #expect(crl.authorityKeyID.map { $0[...] } == (try ca.extensions.subjectKeyIdentifier?.keyIdentifier))
        #expect(try fleet.read("broker/mosquitto.conf").contains("crlfile \(fleet.path)/broker/crl.pem\n"))

        #expect(message.contains("Restart the broker"))  // a new crlfile line needs a restart
        let second = try Provisioner.revoke(directory: fleet.path, deviceID: "sensor-0002", now: now + 60)
        #expect(second.contains("SIGHUP"))  // an existing CRL is re-read on SIGHUP
        crl = try RevocationList(pemEncoded: fleet.read("broker/crl.pem"))
        #expect(crl.isSignatureValid(for: caKey))
        #expect(crl.entries.map(\.serial) == [serial1, serial2])
        #expect(crl.number == 2)

        // Revoking again changes nothing but the dates and number.
        _ = try Provisioner.revoke(directory: fleet.path, deviceID: "sensor-0002", now: now + 120)
        #expect(try RevocationList(pemEncoded: fleet.read("broker/crl.pem")).entries.count == 2)

        // A signature over other bytes must not verify.
        let otherKey = P256.Signing.PrivateKey().publicKey
        #expect(!crl.isSignatureValid(for: otherKey))

        // Provisioning again re-signs it, keeping the entries and the crlfile line.
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path), now: now + 86_400)
        let refreshed = try RevocationList(pemEncoded: fleet.read("broker/crl.pem"))
        #expect(refreshed.isSignatureValid(for: caKey) && refreshed.entries.count == 2 && refreshed.number == 4)
        #expect(try fleet.read("broker/mosquitto.conf").contains("crlfile"))
    }

    @Test func revokeRejectsUnknownDevices() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 1))
        let error = #expect(throws: ProvisionError.self) {
            try Provisioner.revoke(directory: fleet.path, deviceID: "nope")
        }
        #expect(error?.code == .unknownDevice)
        #expect(!fleet.exists("broker/crl.pem"))
    }

    @Test func forcedNewCADropsTheOldCRL() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 1))
        _ = try Provisioner.revoke(directory: fleet.path, deviceID: "sensor-0001")
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, force: true))
        #expect(!fleet.exists("broker/crl.pem"))
        #expect(!(try fleet.read("broker/mosquitto.conf").contains("crlfile")))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: openSSL)))
    func openSSLAcceptsTheFilesAndSeesTheRevocation() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 2))
        _ = try Provisioner.revoke(directory: fleet.path, deviceID: "sensor-0002")
        let dir = fleet.path

        let key = try run(openSSL, ["pkey", "-in", "\(dir)/sensor-0001/key.pem", "-noout"])
        #expect(key.status == 0, "\(key.output)")
        let crl = try run(openSSL, ["crl", "-in", "\(dir)/broker/crl.pem", "-noout", "-CAfile", "\(dir)/ca.pem"])
        #expect(crl.status == 0 && crl.output.contains("verify OK"), "\(crl.output)")

        let good = try run(
            openSSL, ["verify", "-crl_check", "-CAfile", "\(dir)/ca.pem", "-CRLfile", "\(dir)/broker/crl.pem",
                "\(dir)/sensor-0001/cert.pem"])
        #expect(good.status == 0, "\(good.output)")
        let revoked = try run(
            openSSL, ["verify", "-crl_check", "-CAfile", "\(dir)/ca.pem", "-CRLfile", "\(dir)/broker/crl.pem",
                "\(dir)/sensor-0002/cert.pem"])
        #expect(revoked.status != 0 && revoked.output.contains("revoked"), "\(revoked.output)")
        let server = try run(
            openSSL, ["verify", "-purpose", "sslserver", "-verify_hostname", "localhost", "-CAfile", "\(dir)/ca.pem",
                "\(dir)/broker/server.pem"])
        #expect(server.status == 0, "\(server.output)")
    }

    @Test("--prefix follows the one device-id rule: refused with the words validate uses for such an id")
    func prefixFollowsTheDeviceIDRule() throws {
        let fleet = try ProvisionTempFleet()
        // What validate says about a device whose id is `_x-0001`…
        try fleet.write("broker:\n  host: localhost\n", to: "fleet.yaml")
        try fleet.write("id: _x-0001\n" + oneSensor, to: "_x-0001/device.yaml")
        let refused = #expect(throws: FleetValidationError.self) { try FleetLoader.loadWithoutCredentials(directory: fleet.path) }
        let validateSays = try #require(refused?.issues.first { $0.field == "id" }).problem
        #expect(validateSays.contains("starts with `_`"))
        try FileManager.default.removeItem(atPath: "\(fleet.path)/_x-0001")
        // …is what provision says about `--prefix _x`, before it writes anything.
        let error = #expect(throws: ProvisionError.self) {
            try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 1, prefix: "_x"))
        }
        #expect(error?.code == .invalidOption)
        #expect(error?.message.contains(validateSays) == true, "\(error?.message ?? "")")
        #expect(!fleet.exists("ca.pem") && !fleet.exists("_x-0001"))
        // The observer's id is no device's.
        #expect(DeviceID.problem(with: Provisioner.observerID) != nil)
        #expect(Provisioner.deviceID(prefix: "x", number: 1) == "x-0001" && DeviceID.isValid("x-0001"))
    }

    @Test("provision refuses a fleet validate refuses, with validate's issues, and writes nothing")
    func refusesWhatValidateRefuses() throws {
        let fleet = try ProvisionTempFleet()
        try fleet.write("broker:\n  host: localhost\n  port: 88833\n", to: "fleet.yaml")
        try fleet.write("qos: 3\n" + oneSensor, to: "dev-1/device.yaml")
        let validate = #expect(throws: FleetValidationError.self) { try FleetLoader.loadWithoutCredentials(directory: fleet.path) }
        let error = #expect(throws: ProvisionError.self) { try Provisioner.provision(ProvisionOptions(directory: fleet.path)) }
        #expect(error?.code == .invalidFleet)
        #expect(error?.issues == validate?.issues)
        #expect(error?.issues.count == 2)
        #expect(!fleet.exists("ca.pem") && !fleet.exists("dev-1/key.pem"))
    }

    @Test("whatever provision makes, validate accepts: new devices, hand-written folders, templates")
    func validateAcceptsWhatProvisionMakes() throws {
        let fleet = try ProvisionTempFleet()
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 2))
        #expect(try FleetLoader.load(directory: fleet.path).spec.devices.map(\.id) == ["sensor-0001", "sensor-0002"])

        // A hand-written folder (id from its name, key where device.yaml says) and a template.
        try fleet.write("key: private/device.key\n" + oneSensor, to: "lab.probe-7/device.yaml")
        try FileManager.default.createDirectory(atPath: "\(fleet.path)/lab.probe-7/private", withIntermediateDirectories: true)
        let yaml = try fleet.read("fleet.yaml") + """
            templates:
              - id: bulk-{000}
                count: 20
                sensors:
                  - {name: level, type: constant, value: 1}

            """
        try fleet.write(yaml, to: "fleet.yaml")
        _ = try Provisioner.provision(ProvisionOptions(directory: fleet.path, newDevices: 1, prefix: "gw"))
        #expect(fleet.exists("lab.probe-7/private/device.key") && !fleet.exists("lab.probe-7/key.pem"))
        let loaded = try FleetLoader.load(directory: fleet.path)
        #expect(loaded.spec.devices.count == 2 + 1 + 1 + 20)
        #expect(loaded.spec.devices.contains { $0.id == "gw-0001" } && loaded.spec.devices.contains { $0.id == "bulk-020" })
        // revoke finds devices through the same loader, template devices included.
        #expect(try Provisioner.revoke(directory: fleet.path, deviceID: "bulk-007").contains("bulk-007"))
    }
}
