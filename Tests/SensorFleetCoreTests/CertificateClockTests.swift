import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Certificates over time: expiry warnings, a clock that is not set yet, changed files")
struct CertificateClockTests {
    @Test("a clock before 2024 is not sane (a Pi without RTC boots in 1970); today is")
    func clockSanity() {
        #expect(!CertificateClock.isSane(Date(timeIntervalSince1970: 0)))
        #expect(!CertificateClock.isSane(Date(timeIntervalSince1970: 1_700_000_000)))  // Nov 2023
        #expect(CertificateClock.isSane(Date(timeIntervalSince1970: 1_704_067_200)))   // 2024-01-01
        #expect(CertificateClock.isSane(Date()))
    }

    @Test("expiry warning within 30 days, none beyond, and one for an expired certificate")
    func expiryWarnings() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make()
            let soon = try ca.issue(cn: "pi-1", notAfter: Date().addingTimeInterval(10 * 86_400))
            let later = try ca.issue(cn: "pi-2", notAfter: Date().addingTimeInterval(200 * 86_400))
            try fleet.write("soon.pem", soon.certificate.pem)
            try fleet.write("later.pem", later.certificate.pem)
            let warning = try #require(CertificateClock.expiryWarning(certFile: fleet.path("soon.pem")))
            #expect(warning.contains("expires in 9 day") || warning.contains("expires in 10 day"))
            #expect(CertificateClock.expiryWarning(certFile: fleet.path("later.pem")) == nil)
            // 190 days on, the later one is close to its end too: the daily check would say so.
            #expect(CertificateClock.expiryWarning(certFile: fleet.path("later.pem"), now: Date().addingTimeInterval(190 * 86_400)) != nil)
            #expect(CertificateClock.expiryWarning(certFile: fleet.path("soon.pem"), now: Date().addingTimeInterval(20 * 86_400))?.contains("expired") == true)
        }
    }

    @Test("a clock behind the certificate's start is told apart from other problems (the agent waits instead of exiting)")
    func clockBehindIsRecognised() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make(notBefore: Date().addingTimeInterval(-86_400))
            try fleet.writeValidFleet(ca: ca, ids: ["pi-1"])
            let behind = Date().addingTimeInterval(-30 * 86_400)
            do throws(FleetValidationError) {
                _ = try AgentLoader.load(deviceDirectory: fleet.path("pi-1"), now: behind)
                Issue.record("a clock before the certificates' start must not pass")
            } catch {
                #expect(CertificateClock.onlyClockBehind(error), "\(error.issues)")
            }
            let loaded = try AgentLoader.load(deviceDirectory: fleet.path("pi-1"))
            #expect(loaded.spec.devices.map(\.id) == ["pi-1"])
            // A real problem (wrong key) is not a clock problem.
            try fleet.writeCredentials(for: "pi-1", identity: try ca.issue(cn: "pi-1"), keyMode: 0o644)
            do throws(FleetValidationError) {
                _ = try AgentLoader.load(deviceDirectory: fleet.path("pi-1"), now: behind)
                Issue.record("a world-readable key must not pass")
            } catch {
                #expect(!CertificateClock.onlyClockBehind(error))
            }
        }
    }

    @Test("the agent loads only its own folder and takes the key from LoadCredential's copy")
    func agentLoaderKeyOverride() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make()
            try fleet.writeValidFleet(ca: ca, ids: ["pi-1", "pi-2"])
            try fleet.write("pi-2/device.yaml", "this: [is broken")  // another device's problem is not ours
            let identity = try ca.issue(cn: "pi-1")
            try fleet.write("credentials/key.pem", identity.keyPEM, mode: 0o400)
            try fleet.write("pi-1/cert.pem", identity.certificate.pem)
            try FileManager.default.removeItem(atPath: fleet.path("pi-1/key.pem"))
            let loaded = try AgentLoader.load(deviceDirectory: fleet.path("pi-1"), keyFile: fleet.path("credentials/key.pem"))
            #expect(loaded.spec.devices.count == 1)
            #expect(loaded.spec.devices.first?.keyFile == fleet.path("credentials/key.pem"))
        }
    }

    @Test("a rewritten or replaced certificate file is noticed once")
    func fileChangeWatch() throws {
        try withTempFleet { fleet in
            try fleet.write("cert.pem", "one")
            let watch = FileChangeWatch(paths: [fleet.path("cert.pem")])
            #expect(!watch.changed())
            try fleet.write("cert.new", "two, longer")
            #expect(rename(fleet.path("cert.new"), fleet.path("cert.pem")) == 0)
            #expect(watch.changed())
            #expect(!watch.changed())
        }
    }
}
