import Crypto
import Foundation
import Testing
import X509

@testable import SensorFleetCore
import SensorFleetTesting

/// Certificate and key checks with real P256 certificates made by swift-certificates.
@Suite struct FleetLoaderCredentialTests {
    static let day: TimeInterval = 86_400

    @Test func validCredentialsLoadWithoutWarnings() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1", "dev-2"])
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.spec.devices.count == 2)
            #expect(loaded.warnings.isEmpty)
        }
    }

    @Test func missingCAFileIsReportedAtBrokerCA() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"], fleetYAML: "broker:\n  host: localhost\n  ca: root.pem\n")
            let found = try issue(in: loadIssues(fleet), file: fleet.path("fleet.yaml"), field: "broker.ca")
            #expect(found.line == 3)
            #expect(found.problem.contains(fleet.path("root.pem")))
            #expect(found.problem.contains("does not exist"))
            #expect(found.fix.contains("sensorfleet provision"))
        }
    }

    @Test func unprovisionedFleetGetsOneIssueNotOnePerFile() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            for id in ["a", "b", "c"] {
                try fleet.write("\(id)/device.yaml", TempFleet.deviceYAML())
            }
            let issues = loadIssues(fleet)
            #expect(issues.count == 1)
            let found = try issue(in: issues, file: fleet.path("fleet.yaml"), field: "broker.ca")
            #expect(found.problem.contains("all 3 devices"))
            #expect(found.fix == "run `sensorfleet provision \(fleet.root)` to create the CA and the devices' certificates and keys")
        }
    }

    @Test func missingCertificateAndKeyAreReportedAtTheirKeys() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try FileManager.default.removeItem(atPath: fleet.path("dev-1/cert.pem"))
            try FileManager.default.removeItem(atPath: fleet.path("dev-1/key.pem"))
            let issues = loadIssues(fleet)
            let cert = try issue(in: issues, file: fleet.path("dev-1/device.yaml"), field: "cert")
            #expect(cert.problem.contains(fleet.path("dev-1/cert.pem")))
            #expect(cert.fix.contains("sensorfleet provision"))
            let key = try issue(in: issues, file: fleet.path("dev-1/device.yaml"), field: "key")
            #expect(key.problem.contains(fleet.path("dev-1/key.pem")))
            #expect(issues.count == 2)
        }
    }

    @Test func credentialsAreNotReadWithoutCredentials() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("dev-1/device.yaml", TempFleet.deviceYAML())
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            #expect(spec.devices.first?.certFile == fleet.path("dev-1/cert.pem"))
        }
    }

    @Test func keyThatDoesNotMatchTheCertificate() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.write("dev-1/key.pem", P256.Signing.PrivateKey().pemRepresentation, mode: 0o600)
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/key.pem"), field: nil)
            #expect(found.problem.contains("does not belong to the certificate"))
            #expect(found.problem.contains(fleet.path("dev-1/cert.pem")))
        }
    }

    @Test func expiredDeviceCertificate() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            let expired = try ca.issue(cn: "dev-1", notBefore: Date() - 10 * Self.day, notAfter: Date() - Self.day)
            try fleet.writeCredentials(for: "dev-1", identity: expired)
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("expired on"))
            #expect(found.fix.contains("new certificate"))
        }
    }

    @Test func notYetValidDeviceCertificateDependsOnNow() throws {
        let ca = try TestCA.make(notBefore: Date() - 100 * Self.day)
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            let future = try ca.issue(cn: "dev-1", notBefore: Date() + 2 * Self.day, notAfter: Date() + 90 * Self.day)
            try fleet.writeCredentials(for: "dev-1", identity: future)
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("not valid yet"))
            // The same files load when checked at a time inside the validity period.
            #expect(throws: Never.self) { try FleetLoader.load(directory: fleet.root, now: Date() + 3 * Self.day) }
        }
    }

    @Test func expiredCA() throws {
        let ca = try TestCA.make(notBefore: Date() - 30 * Self.day, notAfter: Date() - Self.day)
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            let found = try issue(in: loadIssues(fleet), file: fleet.path("ca.pem"), field: nil)
            #expect(found.problem.contains("CA certificate"))
            #expect(found.problem.contains("expired"))
        }
    }

    @Test func certificateExpiringWithinThirtyDaysIsAWarning() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.writeCredentials(for: "dev-1", identity: ca.issue(cn: "dev-1", notAfter: Date() + 10 * Self.day))
            let loaded = try FleetLoader.load(directory: fleet.root)
            let warning = try #require(loaded.warnings.first)
            #expect(loaded.warnings.count == 1)
            #expect(warning.file == fleet.path("dev-1/cert.pem"))
            #expect(warning.problem.contains("expires on"))
            #expect(warning.problem.contains("in 9 days") || warning.problem.contains("in 10 days"))
        }
    }

    @Test func certificateFromAnotherCA() throws {
        let ca = try TestCA.make()
        let other = try TestCA.make(name: "Someone Else's CA")
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.writeCredentials(for: "dev-1", identity: other.issue(cn: "dev-1"))
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("Someone Else's CA"))
            #expect(found.problem.contains("not by the fleet's CA"))
            #expect(found.fix.contains("fleet's CA"))
        }
    }

    @Test func certificateSignedByAnotherCAOfTheSameName() throws {
        let ca = try TestCA.make()
        let impostor = try TestCA.make()  // same subject, different key
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.writeCredentials(for: "dev-1", identity: impostor.issue(cn: "dev-1"))
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("signature does not verify"))
            #expect(found.problem.contains(fleet.path("ca.pem")))
        }
    }

    @Test func certificateCNMustBeTheDeviceID() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.writeCredentials(for: "dev-1", identity: ca.issue(cn: "dev-2"))
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("CN `dev-2`"))
            #expect(found.problem.contains("`dev-1`"))
            #expect(found.problem.contains("username"))
            #expect(found.fix.contains("CN=dev-1"))
        }
    }

    @Test func keyReadableByOthersIsRefusedWithChmod() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.writeCredentials(for: "dev-1", identity: ca.issue(cn: "dev-1"), keyMode: 0o644)
            let issues = loadIssues(fleet)
            let found = try issue(in: issues, file: fleet.path("dev-1/key.pem"), field: nil)
            #expect(found.problem.contains("group or others"))
            #expect(found.problem.contains("644"))
            #expect(found.fix == "chmod 600 \(fleet.path("dev-1/key.pem"))")
            #expect(issues.count == 1)
        }
    }

    @Test func symlinkedKeyIsJudgedByItsTarget() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try FileManager.default.moveItem(atPath: fleet.path("dev-1/key.pem"), toPath: fleet.path("dev-1/real-key.pem"))
            try FileManager.default.createSymbolicLink(atPath: fleet.path("dev-1/key.pem"), withDestinationPath: "real-key.pem")
            #expect(throws: Never.self) { try FleetLoader.load(directory: fleet.root) }
        }
    }

    @Test func aSymlinkedKeyReadableByOthersIsFixedAtItsTarget() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try FileManager.default.createDirectory(atPath: fleet.path("secrets"), withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: fleet.path("dev-1/key.pem"), toPath: fleet.path("secrets/real-key.pem"))
            try FileManager.default.createSymbolicLink(atPath: fleet.path("dev-1/key.pem"), withDestinationPath: "../secrets/real-key.pem")
            chmod(fleet.path("secrets/real-key.pem"), 0o644)
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/key.pem"), field: nil)
            #expect(found.problem.contains("644"))
            // chmod on the link would change nothing: the advice names the file it points to.
            let target = URL(fileURLWithPath: fleet.path("secrets/real-key.pem")).resolvingSymlinksInPath().path
            #expect(found.fix.hasPrefix("chmod 600 \(target) "), "\(found.fix)")
            #expect(found.fix.contains("symbolic link"))
        }
    }

    @Test(arguments: ["cert.pem", "key.pem", "ca.pem"])
    func pemThatDoesNotParseNamesTheFile(file: String) throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            let relative = file == "ca.pem" ? file : "dev-1/\(file)"
            try fleet.write(relative, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
                            mode: 0o600)
            let found = try issue(in: loadIssues(fleet), file: fleet.path(relative), field: nil)
            #expect(found.problem.contains("PEM"))
            #expect(found.fix.contains(fleet.path(relative)))
        }
    }

    @Test func textThatIsNotPEMAtAll() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["dev-1"])
            try fleet.write("dev-1/cert.pem", "hello\n")
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("PEM"))
        }
    }
}
