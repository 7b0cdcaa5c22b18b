import Foundation
import Logging
import SensorFleetCore

/// A fleet provisioned for one test by the real `Provisioner` (CA, broker and device
/// certificates), with a real mosquitto that requires client certificates and applies the
/// per-device ACL.
public final class TestFleet: @unchecked Sendable {
    public let dir: TempDir
    public let ids: [String]
    public var broker: TestBroker!

    public var path: String { dir.path }
    public var caFile: String { "\(path)/ca.pem" }
    public var observerCert: String { "\(path)/broker/observer/cert.pem" }
    public var observerKey: String { "\(path)/broker/observer/key.pem" }

    /// - Parameters:
    ///   - devices: ids of the devices; each gets a `device.yaml` with `deviceYAML(id)`.
    ///   - fleetYAML: extra lines for fleet.yaml (the broker port is filled in).
    public init(
        devices: [String], interval: Double = 0.1, qos: Int = 1, protocolVersion: String = "3.1.1",
        fleetExtra: String = "", deviceExtra: (String) -> String = { _ in "" },
        startBroker: Bool = true, persistence: Bool = false, revoke: [String] = [],
        brokerSettings: (inout TestBroker.Settings, _ fleetPath: String) throws -> Void = { _, _ in }
    ) throws {
        dir = try TempDir("fleet")
        ids = devices
        for id in devices {
            let folder = "\(dir.path)/\(id)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try """
            interval: \(interval)
            qos: \(qos)
            sensors:
              - name: temperature
                type: random_walk
                start: 20
                step: 0.5
                min: 10
                max: 30
            \(deviceExtra(id))
            """.write(toFile: "\(folder)/device.yaml", atomically: true, encoding: .utf8)
        }
        _ = try Provisioner.provision(ProvisionOptions(directory: dir.path))
        for id in revoke { _ = try Provisioner.revoke(directory: dir.path, deviceID: id) }
        let port = freePort()
        try """
        broker:
          host: localhost
          port: \(port)
          ca: ca.pem
          protocol: "\(protocolVersion)"
          keepalive: 10
        seed: 7
        connect_rate: 200
        \(fleetExtra)
        """.write(toFile: "\(dir.path)/fleet.yaml", atomically: true, encoding: .utf8)
        if startBroker {
            var settings = TestBroker.Settings(
                caFile: caFile, certFile: "\(path)/broker/server.pem", keyFile: "\(path)/broker/server.key",
                aclFile: "\(path)/broker/acl", crlFile: revoke.isEmpty ? nil : "\(path)/broker/crl.pem",
                persistence: persistence
            )
            try brokerSettings(&settings, path)
            broker = try TestBroker(settings: settings, directory: path, port: port)
        }
    }

    public func load() throws -> FleetSpec { try FleetLoader.load(directory: path).spec }

    public func subscriber(_ topics: [String] = ["devices/#"], clientID: String? = nil, cleanSession: Bool = true,
                           qos: Int = 1) throws -> Subscriber {
        try Subscriber(
            broker: broker, caFile: caFile, certFile: observerCert, keyFile: observerKey, topics: topics,
            clientID: clientID ?? "observer-\(UUID().uuidString.prefix(6))", cleanSession: cleanSession, qos: qos
        )
    }

    /// - Parameter broker: host and port instead of fleet.yaml's (as `--broker` does).
    public func makeFleet(_ options: RunOptions = RunOptions(), broker: (host: String?, port: Int?)? = nil,
                          logLevel: Logger.Level = .warning) throws -> Fleet {
        var logger = Logger(label: "test-fleet")
        logger.logLevel = logLevel
        let spec = try load().overridingBroker(host: broker?.host, port: broker?.port)
        return try Fleet(spec: spec, options: options, logger: logger)
    }

    public func tearDown() {
        broker?.stop()
        dir.remove()
    }
}

extension TestFleet {
    /// Publishes `payload` with `mosquitto_pub` as the observer (which may write
    /// devices/+/commands); `extra` adds options (e.g. MQTT 5 properties). Waits for it to exit.
    public func publishAsObserver(_ topic: String, _ payload: String, extra: [String] = []) throws {
        guard let binary = findExecutable("mosquitto_pub") else { throw TestFailure("mosquitto_pub is not installed") }
        let output = "\(path)/pub-\(UUID().uuidString.prefix(6)).out"
        let process = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(broker.port)", "--cafile", caFile, "--cert", observerCert, "--key", observerKey,
            "-q", "1", "-t", topic, "-m", payload,
        ] + extra, output: output)
        let code = process.wait()
        if code != 0 { throw TestFailure("mosquitto_pub exited \(code): \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")") }
    }

    /// Waits until the broker has seen `clientID` subscribe (to its commands topic).
    public func waitForSubscription(_ clientID: String) async -> Bool {
        await waitFor(20) { broker.log().contains("Received SUBSCRIBE from \(clientID)") }
    }
}
