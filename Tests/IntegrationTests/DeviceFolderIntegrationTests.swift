import Foundation
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

@Suite("Real-world paths: a device folder that cannot be read", .serialized)
struct DeviceFolderIntegrationTests {
    @Test("a device folder this user cannot search is an error naming it (run as nobody), not a fleet with one device fewer")
    func unreadableFolderIsNamed() throws {
        guard getuid() == 0 else {
            print("skipped: needs root to run the check as another user")
            return
        }
        let dir = try TempDir("locked")
        defer { dir.remove() }
        try "broker:\n  host: localhost\n".write(toFile: "\(dir.path)/fleet.yaml", atomically: true, encoding: .utf8)
        for id in ["open", "locked"] {
            try FileManager.default.createDirectory(atPath: "\(dir.path)/\(id)", withIntermediateDirectories: true)
            try "sensors:\n  - {name: a, type: constant, value: 1}\n".write(toFile: "\(dir.path)/\(id)/device.yaml", atomically: true, encoding: .utf8)
            chmod("\(dir.path)/\(id)", 0o755)
            chmod("\(dir.path)/\(id)/device.yaml", 0o644)
        }
        chmod("\(dir.path)/fleet.yaml", 0o644)
        chmod("\(dir.path)/locked", 0o700)
        let output = "\(dir.path)/validate.out"
        let process = try ChildProcess("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                                            try sensorfleetBinary(), "validate", dir.path], output: output)
        let code = process.wait(timeout: 30)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(code == 1, "\(text)")
        #expect(text.contains("\(dir.path)/locked: cannot look into the folder \(dir.path)/locked (Permission denied)"), "\(text)")
    }
}
