import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

@Suite("Advice for a symbolic link fixes the file it points to")
struct PermissionAdviceTests {
    @Test("chmod advice names the resolved target and says the key is a link")
    func linkAdvice() throws {
        try withTempFleet { fleet in
            try fleet.write("secrets/real-key.pem", "x", mode: 0o644)
            try fleet.write("dev/device.yaml", TempFleet.deviceYAML())
            try FileManager.default.createSymbolicLink(atPath: fleet.path("dev/key.pem"), withDestinationPath: "../secrets/real-key.pem")
            let advice = PermissionAdvice.chmod("600", path: fleet.path("dev/key.pem"), display: "dev/key.pem")
            #expect(advice == "chmod 600 \(fleet.path("secrets/real-key.pem")) (dev/key.pem is a symbolic link to it; the mode that counts is the target's)")
            #expect(PermissionAdvice.chmod("600", path: fleet.path("secrets/real-key.pem"), display: "k") == "chmod 600 k")
        }
    }
}
