import ArgumentParser
import Logging
import SensorFleetCore
import ServiceLifecycle
import UnixSignals

@main
struct SensorFleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensorfleet",
        abstract: "Simulated IoT device fleets publishing telemetry over MQTT with mutual TLS.",
        subcommands: [Run.self, Validate.self, Provision.self, Revoke.self, Bench.self, Report.self, Agent.self]
    )
}

/// Options every command that logs shares.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel): expected one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "sensorfleet")
        logger.logLevel = level
        return logger
    }
}

/// Prints to standard error.
func printError(_ text: String) {
    PlainFile.writeToStandardError(text + "\n")
}

/// Writes `text` to standard output as it is, at once (the live status line).
@Sendable func writeToStandardOutput(_ text: String) {
    PlainFile.writeToStandardOutput(text)
}

/// The signals that stop `run`, `bench` and `agent` gracefully.
let stopSignals: [UnixSignal] = [.sigterm, .sigint]

/// Runs `services` in one service group until they are done; SIGTERM and SIGINT shut it down
/// gracefully (services stop in reverse order).
func runServices(_ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger) async throws {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: stopSignals, logger: logger))
    try await group.run()
}

/// Loads and validates a fleet, printing every problem; exits 1 when there is any.
/// Loads and validates the fleet; `--broker HOST:PORT`, when given, replaces fleet.yaml's broker
/// here, once, before anything reads the spec.
/// With a shard (and `bench --devices`), only those devices' certificates and keys are checked.
func loadFleet(_ directory: String, broker: String? = nil, shard: Shard = .whole, firstDevices: Int? = nil) throws -> LoadedFleet {
    do {
        let selective = shard != .whole || firstDevices != nil
        var loaded = try FleetLoader.load(
            directory: directory, credentialsOf: selective ? { shard.positions(of: $0, firstDevices: firstDevices) } : nil)
        if let broker {
            let (host, port) = try parseBroker(broker)
            loaded.spec = loaded.spec.overridingBroker(host: host, port: port)
        }
        return loaded
    } catch let error as FleetValidationError {
        printIssues(directory, error.issues)
        throw ExitCode(1)
    }
}

/// "DIR: the fleet is not valid (N problems):" and one line per issue, on standard error.
func printIssues(_ directory: String, _ issues: [FleetIssue]) {
    printError("\(directory): the fleet is not valid (\(issues.count) problem\(issues.count == 1 ? "" : "s")):")
    for issue in issues { printError("  ✗ \(issue)") }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a fleet folder without connecting: YAML, keys, certificates, permissions."
    )

    @Argument(help: "The fleet folder.")
    var directory: String = "Devices"

    @Option(help: ArgumentHelp("Check this scenario file against the fleet too.", valueName: "file"))
    var scenario: String?

    func run() throws {
        var loaded = try loadFleet(directory)
        if let scenario { loaded.spec.scenario = try loadScenario(scenario, fleet: loaded.spec, directory: directory) }
        for warning in loaded.warnings { printError("  ! \(warning)") }
        print("\(directory): valid: \(loaded.spec.devices.count) device\(loaded.spec.devices.count == 1 ? "" : "s"), broker \(loaded.spec.broker.host):\(loaded.spec.broker.port)")
        if let profile = loaded.spec.profile {
            print("profile \(profile.rawValue) sets and checks:")
            for line in profile.explanation { print("  - \(line)") }
            let broker = loaded.spec.broker
            print("  = here: port \(broker.port), MQTT \(broker.protocolVersion.rawValue), keep-alive \(broker.keepAlive) s\(broker.alpn.map { ", ALPN \($0)" } ?? "")"
                + (loaded.spec.devices.first.map { ", e.g. \($0.id): topic \($0.topic), QoS \($0.qos)\($0.username.map { ", user name \($0)" } ?? "")" } ?? ""))
        }
        for line in BehaviourSummary.lines(loaded.spec) { print("  \(line)") }
    }
}

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a CA, a broker certificate and per-device certificates and keys for a fleet.",
        discussion: "Existing keys are kept unless --force is given."
    )

    @Argument(help: "The fleet folder (created when missing).")
    var directory: String = "Devices"

    @Option(help: "How many new devices to create.")
    var devices: Int = 0

    @Option(help: "Id prefix for new devices.")
    var prefix: String = "sensor"

    @Option(help: "Broker port written to fleet.yaml (when created) and broker/mosquitto.conf.")
    var port: Int = 8883

    @Flag(help: "Regenerate keys and certificates that already exist.")
    var force = false

    @OptionGroup var sharding: ShardOptions

    func validate() throws {
        _ = try sharding.resolve()
        do {
            try OptionRanges.provision.check("--devices", devices)
            try OptionRanges.provision.check("--port", port)
        } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        var options = ProvisionOptions(directory: directory)
        options.newDevices = devices
        options.prefix = prefix
        options.force = force
        options.brokerPort = port
        options.shard = try sharding.resolve()
        do {
            let result = try Provisioner.provision(options)
            for line in result.created { print("  + \(line)") }
            for line in result.skipped { print("  = \(line)") }
        } catch let error as ProvisionError where error.code == .invalidFleet {
            // Read by the same loader as `validate`, told the same way.
            printIssues(directory, error.issues)
            throw ExitCode(1)
        } catch {
            printError("provision \(directory): \(error)")
            throw ExitCode(1)
        }
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke a device's certificate in the fleet's CRL (DIR/broker/crl.pem); reload the broker after."
    )

    @Argument(help: "The fleet folder.")
    var directory: String = "Devices"

    @Argument(help: "The device id.")
    var device: String

    func run() throws {
        do {
            print(try Provisioner.revoke(directory: directory, deviceID: device))
        } catch {
            printError("revoke \(device): \(error)")
            throw ExitCode(1)
        }
    }
}
