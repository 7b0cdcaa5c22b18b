import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

@Suite("The agent runs exactly the device it is given")
struct AgentLayoutTests {
    /// docs/raspberry-pi.md: `fleet/` holds fleet.yaml (here with templates for simulated
    /// devices that have no certificates on the Pi), ca.pem and one device folder.
    static func writeDocsLayout(_ fleet: TempFleet, ca: TestCA) throws {
        try fleet.write("fleet/fleet.yaml", """
            broker:
              host: localhost
            templates:
              - id: sim-{0000}
                count: 50
                sensors: [{name: t, type: constant, value: 1}]
            """)
        try fleet.write("fleet/ca.pem", ca.certificate.pem)
        try fleet.write("fleet/pi-0001/device.yaml", TempFleet.deviceYAML())
        try fleet.writeCredentials(for: "fleet/pi-0001", identity: ca.issue(cn: "pi-0001"))
        try fleet.write("fleet/pi-0002/device.yaml", "this is: [broken")
    }

    @Test("docs layout: only pi-0001 is loaded; the templates' devices and a broken sibling are not touched")
    func docsLayout() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make()
            try Self.writeDocsLayout(fleet, ca: ca)
            let loaded = try AgentLoader.load(deviceDirectory: fleet.path("fleet/pi-0001"))
            #expect(loaded.spec.devices.map(\.id) == ["pi-0001"])
            #expect(loaded.spec.devices.first?.certFile == fleet.path("fleet/pi-0001/cert.pem"))
            // Spelt with a trailing slash or through `..`, it is still that one device.
            #expect(try AgentLoader.load(deviceDirectory: fleet.path("fleet/pi-0001/")).spec.devices.map(\.id) == ["pi-0001"])
            #expect(try AgentLoader.load(deviceDirectory: fleet.path("fleet/pi-0002/../pi-0001")).spec.devices.map(\.id) == ["pi-0001"])
        }
    }

    @Test("--fleet elsewhere: the device is read from the folder given, not from a namesake in the fleet folder")
    func deviceOutsideTheFleetFolder() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make()
            try Self.writeDocsLayout(fleet, ca: ca)
            try fleet.write("elsewhere/pi-0009/device.yaml", TempFleet.deviceYAML("id: pi-0009"))
            try fleet.writeCredentials(for: "elsewhere/pi-0009", identity: ca.issue(cn: "pi-0009"))
            let loaded = try AgentLoader.load(deviceDirectory: fleet.path("elsewhere/pi-0009"), fleetDirectory: fleet.path("fleet"))
            #expect(loaded.spec.devices.map(\.id) == ["pi-0009"])
            #expect(loaded.spec.devices.first?.directory == fleet.path("elsewhere/pi-0009"))
        }
    }

    @Test("a device.yaml that is a FIFO is refused by the agent without opening it")
    func fifoDeviceYAML() throws {
        try withTempFleet { fleet in
            let ca = try TestCA.make()
            try Self.writeDocsLayout(fleet, ca: ca)
            try FileManager.default.removeItem(atPath: fleet.path("fleet/pi-0001/device.yaml"))
            #expect(mkfifo(fleet.path("fleet/pi-0001/device.yaml"), 0o644) == 0)
            do throws(FleetValidationError) {
                _ = try AgentLoader.load(deviceDirectory: fleet.path("fleet/pi-0001"))
                Issue.record("a FIFO device.yaml must be refused")
            } catch {
                #expect(error.issues.first?.problem.contains("not a regular file") == true, "\(error.issues)")
            }
        }
    }
}
