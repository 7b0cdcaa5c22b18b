import Foundation
import Testing

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass. Returns whether it held.
func waitFor(_ timeout: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}

/// A fresh temporary folder, removed by `remove()`.
struct TempDir {
    let path: String
    init(_ name: String = "sensorfleet-test") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // mosquitto started as root drops to its own user unless told otherwise; keep the folder readable.
        chmod(path, 0o755)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A loopback port nobody listens on right now.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A listening TCP socket on 127.0.0.1 with a port the kernel chose (for the test's own
/// listeners: a silent TLS port, the TCP proxy).
func loopbackListener(reuseAddress: Bool = false, backlog: Int32 = 64) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    if reuseAddress {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("cannot listen on 127.0.0.1: \(reason)")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

/// True when something accepts TCP connections on 127.0.0.1:port.
func isListening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}

func findExecutable(_ name: String) -> String? {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// A real mosquitto on a free loopback port with mutual TLS, the fleet's CA, the per-device ACL
/// and (optionally) a CRL: started for one test, stopped at its end.
final class TestBroker: @unchecked Sendable {
    let port: Int
    let directory: String
    let configPath: String
    let logPath: String
    private var process: ChildProcess?

    struct Settings {
        var caFile: String
        var certFile: String
        var keyFile: String
        var aclFile: String
        var crlFile: String? = nil
        var persistence = false
        var extra: [String] = []
    }

    init(settings: Settings, directory: String, port: Int = freePort()) throws {
        self.port = port
        self.directory = directory
        configPath = "\(directory)/mosquitto-test.conf"
        logPath = "\(directory)/mosquitto-test.log"
        var lines = [
            "user root",
            "per_listener_settings false",
            "allow_anonymous false",
            "listener \(port) 127.0.0.1",
            "cafile \(settings.caFile)",
            "certfile \(settings.certFile)",
            "keyfile \(settings.keyFile)",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
            "acl_file \(settings.aclFile)",
            "log_dest file \(logPath)",
            "log_type all",
            "connection_messages true",
        ]
        if let crl = settings.crlFile { lines.append("crlfile \(crl)") }
        if settings.persistence {
            lines += ["persistence true", "persistence_location \(directory)/", "autosave_interval 1"]
        } else {
            lines.append("persistence false")
        }
        lines += settings.extra
        try (lines.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        try start()
    }

    /// Starts mosquitto and waits (up to 10 s) until it accepts connections.
    func start() throws {
        guard let binary = findExecutable("mosquitto") else {
            throw TestFailure("mosquitto is not installed: run Scripts/test, which installs it")
        }
        let process = try ChildProcess(binary, ["-c", configPath], output: "\(directory)/mosquitto-test.out")
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while !isListening(port) {
            guard process.isRunning, Date() < deadline else {
                throw TestFailure("mosquitto did not start on port \(port); its log: \(log().suffix(2000))")
            }
            usleep(20_000)
        }
    }

    /// SIGTERM (a clean shutdown that saves persistence) and waits.
    func stop() {
        process?.terminate()
        process = nil
    }

    /// SIGKILL: nothing saved, connections reset.
    func kill() {
        process?.signal(SIGKILL)
        process?.wait()
        process = nil
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit { stop() }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
