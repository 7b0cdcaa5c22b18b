import Foundation

/// A real mosquitto on a free loopback port with mutual TLS, the fleet's CA, the per-device ACL
/// and (optionally) a CRL: started for one test, stopped at its end.
public final class TestBroker: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let configPath: String
    public let logPath: String
    private var process: ChildProcess?

    public struct Settings {
        public var caFile: String
        public var certFile: String
        public var keyFile: String
        public var aclFile: String
        public var crlFile: String? = nil
        public var persistence = false
        public var extra: [String] = []
        /// A mosquitto password file (`mosquitto_passwd`): clients must send a valid user name and password.
        public var passwordFile: String? = nil
        /// false: the TLS listener does not take the certificate's CN as the user name, so the
        /// user name in CONNECT (checked against `passwordFile`) is the identity the ACL sees.
        public var identityAsUsername = true
        /// A second listener on this port, plain TCP (no TLS), for `broker.tls: false`.
        public var plainPort: Int? = nil

        public init(caFile: String, certFile: String, keyFile: String, aclFile: String, crlFile: String? = nil,
                    persistence: Bool = false, extra: [String] = []) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.aclFile = aclFile
            self.crlFile = crlFile
            self.persistence = persistence
            self.extra = extra
        }
    }

    public init(settings: Settings, directory: String, port: Int = freePort()) throws {
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
            "use_identity_as_username \(settings.identityAsUsername)",
            "tls_version tlsv1.2",
            "acl_file \(settings.aclFile)",
            "log_dest file \(logPath)",
            "log_type all",
            "connection_messages true",
        ]
        if let crl = settings.crlFile { lines.append("crlfile \(crl)") }
        if let passwordFile = settings.passwordFile { lines.append("password_file \(passwordFile)") }
        if let plainPort = settings.plainPort { lines.append("listener \(plainPort) 127.0.0.1") }
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
    public func start() throws {
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
    public func stop() {
        process?.terminate()
        process = nil
    }

    /// SIGKILL: nothing saved, connections reset.
    public func kill() {
        process?.signal(SIGKILL)
        process?.wait()
        process = nil
    }

    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit { stop() }
}
