import Foundation

/// A fresh temporary folder, removed by `remove()`.
public struct TempDir: Sendable {
    public let path: String

    public init(_ name: String = "sensorfleet-test") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // mosquitto started as root drops to its own user unless told otherwise; keep the folder readable.
        chmod(path, 0o755)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A test precondition that did not hold (a tool missing, a fixture that did not start).
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The path of an installed program (`mosquitto`, `mosquitto_sub`, `prlimit`…), or nil.
public func findExecutable(_ name: String) -> String? {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// The built `sensorfleet` executable, beside the test bundle.
public func sensorfleetBinary() throws -> String {
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sensorfleet").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure("\(path) is missing: build it first (swift build, or Scripts/test)")
    }
    return path
}

/// Runs the `sensorfleet` binary; returns the process and where its output goes.
public func launchSensorfleet(_ arguments: [String], in dir: String) throws -> (ChildProcess, String) {
    let output = "\(dir)/sensorfleet-\(UUID().uuidString.prefix(6)).out"
    return (try ChildProcess(try sensorfleetBinary(), arguments, output: output), output)
}
