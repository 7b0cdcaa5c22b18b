import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

@Suite("Nothing disappears silently: device folders that cannot be read are errors naming them")
struct DeviceFolderEntryTests {
    @Test("a broken symbolic link in the fleet folder is an error naming it and its target")
    func brokenLink() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("a/device.yaml", TempFleet.deviceYAML())
            try FileManager.default.createSymbolicLink(atPath: fleet.path("b"), withDestinationPath: fleet.path("gone/b"))
            let issues = parseIssues(fleet)
            let found = try issue(in: issues, file: fleet.path("b"), field: nil)
            #expect(found.problem.contains("symbolic link to \(fleet.path("gone/b"))"), "\(found)")
            #expect(found.fix.contains("restore"), "\(found)")
        }
    }

    @Test("a device.yaml that is a folder, a FIFO or a broken link is an error naming it (a FIFO is never opened)")
    func deviceYAMLNotAFile() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("ok/device.yaml", TempFleet.deviceYAML())
            try FileManager.default.createDirectory(atPath: fleet.path("dir/device.yaml"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: fleet.path("fifo"), withIntermediateDirectories: true)
            #expect(mkfifo(fleet.path("fifo/device.yaml"), 0o644) == 0)
            try FileManager.default.createDirectory(atPath: fleet.path("link"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: fleet.path("link/device.yaml"), withDestinationPath: "/nonexistent/device.yaml")
            let issues = parseIssues(fleet)
            #expect(try issue(in: issues, file: fleet.path("dir/device.yaml"), field: nil).problem.contains("is a folder"))
            #expect(try issue(in: issues, file: fleet.path("fifo/device.yaml"), field: nil).problem.contains("not a regular file"))
            let link = try issue(in: issues, file: fleet.path("link/device.yaml"), field: nil)
            #expect(link.problem.contains("symbolic link to /nonexistent/device.yaml"), "\(link)")
            #expect(issues.count == 3, "\(issues)")
        }
    }

    @Test("folders without device.yaml and plain files stay ignored (broker/, ca.pem, README)")
    func ordinaryEntriesIgnored() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("ok/device.yaml", TempFleet.deviceYAML())
            try fleet.write("broker/mosquitto.conf", "")
            try fleet.write("README.md", "")
            try FileManager.default.createSymbolicLink(atPath: fleet.path("alias"), withDestinationPath: fleet.path("ok"))
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            #expect(spec.devices.map(\.id) == ["alias", "ok"])
        }
    }
}
