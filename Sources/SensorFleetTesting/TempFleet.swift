import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

import SensorFleetCore

/// A fleet folder in a fresh temporary directory. Use through ``withTempFleet(_:)``, which removes it.
public final class TempFleet {
    /// Absolute path of the folder; also the directory argument the tests pass to `FleetLoader`,
    /// so issue files read `root/relative`.
    public let root: String

    public init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    public func path(_ relative: String) -> String { root + "/" + relative }

    /// Writes `text` to `relative`, creating folders; `mode` sets the permission bits.
    public func write(_ relative: String, _ text: String, mode: Int? = nil) throws {
        let url = URL(fileURLWithPath: path(relative))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: false, encoding: .utf8)
        if let mode {
            try FileManager.default.setAttributes([.posixPermissions: NSNumber(value: mode)], ofItemAtPath: url.path)
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// A minimal valid `device.yaml` body (one constant sensor) with `extra` lines at the top.
    public static func deviceYAML(_ extra: String = "") -> String {
        extra + (extra.isEmpty || extra.hasSuffix("\n") ? "" : "\n") + """
            sensors:
              - name: level
                type: constant
                value: 1
            """
    }

    /// Writes `ca.pem` from `ca`, and for each device a folder with `device.yaml`, `cert.pem`
    /// (CN = id, issued by `ca`) and `key.pem` (mode 0600).
    public func writeValidFleet(ca: TestCA, ids: [String], fleetYAML: String = "broker:\n  host: localhost\n") throws {
        try write("fleet.yaml", fleetYAML)
        try write("ca.pem", ca.certificate.pem)
        for id in ids {
            try write("\(id)/device.yaml", Self.deviceYAML())
            try writeCredentials(for: id, identity: ca.issue(cn: id))
        }
    }

    public func writeCredentials(for folder: String, identity: TestIdentity, keyMode: Int = 0o600) throws {
        try write("\(folder)/cert.pem", identity.certificate.pem)
        try write("\(folder)/key.pem", identity.keyPEM, mode: keyMode)
    }
}

/// Runs `body` with a fresh temporary fleet folder and removes it afterwards.
public func withTempFleet(_ body: (TempFleet) throws -> Void) throws {
    let fleet = try TempFleet()
    defer { fleet.remove() }
    try body(fleet)
}

/// The issues `FleetLoader.load` throws for `fleet`; records a test failure when it loads.
public func loadIssues(_ fleet: TempFleet, now: Date = Date(), sourceLocation: SourceLocation = #_sourceLocation)
    -> [FleetIssue]
{
    do {
        let loaded = try FleetLoader.load(directory: fleet.root, now: now)
        Issue.record("expected the fleet to be refused, but it loaded \(loaded.spec.devices.count) devices",
                     sourceLocation: sourceLocation)
        return []
    } catch {
        return error.issues
    }
}

/// The issues `FleetLoader.loadWithoutCredentials` throws for `fleet`.
public func parseIssues(_ fleet: TempFleet, sourceLocation: SourceLocation = #_sourceLocation) -> [FleetIssue] {
    do {
        _ = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
        Issue.record("expected the fleet to be refused, but it parsed", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.issues
    }
}

/// The one issue about `field` in `file`; records a failure listing all issues when there is none.
public func issue(in issues: [FleetIssue], file: String, field: String?,
           sourceLocation: SourceLocation = #_sourceLocation) throws -> FleetIssue {
    let found = issues.first { $0.file == file && $0.field == field }
    return try #require(found, "no issue for \(field ?? "nil") in \(file); got:\n\(issues.map(\.description).joined(separator: "\n"))",
                        sourceLocation: sourceLocation)
}

// MARK: - Certificates

/// A device (or CA) certificate with its private key.
public struct TestIdentity {
    public let key: P256.Signing.PrivateKey
    public let certificate: Certificate
    public var keyPEM: String { key.pemRepresentation }
}

/// A throwaway certificate authority built with swift-certificates (P256).
public struct TestCA {
    public let key: P256.Signing.PrivateKey
    public let certificate: Certificate

    /// A self-signed CA valid from `notBefore` to `notAfter`.
    public static func make(name: String = "SensorFleet Test CA", notBefore: Date = Date().addingTimeInterval(-3600),
                     notAfter: Date = Date().addingTimeInterval(365 * 86_400)) throws -> TestCA {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("SensorFleet Tests")
            CommonName(name)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return TestCA(key: key, certificate: certificate)
    }

    /// A certificate with subject CN `cn` signed by this CA, for `key` (a new one by default).
    public func issue(cn: String, key: P256.Signing.PrivateKey = P256.Signing.PrivateKey(),
               notBefore: Date = Date().addingTimeInterval(-3600),
               notAfter: Date = Date().addingTimeInterval(180 * 86_400)) throws -> TestIdentity {
        let subject = try DistinguishedName { CommonName(cn) }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
            },
            issuerPrivateKey: Certificate.PrivateKey(self.key))
        return TestIdentity(key: key, certificate: certificate)
    }
}

extension Certificate {
    /// PEM text; empty when it cannot be serialised.
    public var pem: String {
        // Serializing a certificate we just built cannot fail; an empty string would fail the test loudly.
        (try? serializeAsPEM().pemString) ?? ""
    }
}
