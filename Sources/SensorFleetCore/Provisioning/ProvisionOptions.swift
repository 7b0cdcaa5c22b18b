/// What `Provisioner.provision` makes and where.
public struct ProvisionOptions: Sendable {
    /// The fleet folder (created when missing).
    public var directory: String
    /// How many new device folders to create; 0 provisions only the existing ones.
    public var newDevices: Int
    /// Id prefix of new devices: ids are `<prefix>-0001`, `<prefix>-0002`, … (four digits, more
    /// when needed), continuing after the highest number already in the fleet.
    public var prefix: String
    /// Regenerate keys and certificates that already exist (CA, broker and devices).
    /// Without it, existing private keys are never overwritten.
    public var force: Bool
    /// Broker port written into `fleet.yaml` (when it is created) and `broker/mosquitto.conf`.
    public var brokerPort: Int
    /// Validity of broker and device certificates in days; the CA gets ``caValidityDays``.
    public var validityDays: Int
    /// Only this shard's device keys and certificates (the CA, broker and observer files as
    /// always): a pod that mounts the fleet CA makes its own shard's credentials. New devices
    /// (`newDevices`) cannot be added by a shard.
    public var shard: Shard = .whole

    /// Validity of a newly created CA in days.
    public static let caValidityDays = 3650

    /// - Parameters:
    ///   - directory: the fleet folder.
    ///   - newDevices: device folders to add (default 0).
    ///   - prefix: id prefix for new devices (default `sensor`).
    ///   - force: regenerate existing keys and certificates (default false).
    ///   - brokerPort: broker port (default 8883).
    ///   - validityDays: broker and device certificate validity (default 365).
    public init(
        directory: String, newDevices: Int = 0, prefix: String = "sensor", force: Bool = false,
        brokerPort: Int = 8883, validityDays: Int = 365
    ) {
        self.directory = directory
        self.newDevices = newDevices
        self.prefix = prefix
        self.force = force
        self.brokerPort = brokerPort
        self.validityDays = validityDays
    }
}

/// What a provisioning run did, as lines for a person to read.
public struct ProvisionResult: Sendable {
    /// Files written (with the reason when something was regenerated).
    public var created: [String]
    /// Files kept as they were.
    public var skipped: [String]

    public init(created: [String] = [], skipped: [String] = []) {
        self.created = created
        self.skipped = skipped
    }
}

/// A provisioning or revocation failure: what went wrong, where, and how to fix it.
public struct ProvisionError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case invalidOption, invalidDevice, invalidFleet, unreadableFile, ioFailure, unknownDevice, mismatch }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// An option is out of range or malformed.
        public static let invalidOption = Code(.invalidOption)
        /// A device folder or `device.yaml` is malformed (bad id, duplicate id).
        public static let invalidDevice = Code(.invalidDevice)
        /// fleet.yaml or a device folder is not valid, as `validate` would say: see `issues`.
        public static let invalidFleet = Code(.invalidFleet)
        /// A key, certificate or CRL could not be parsed.
        public static let unreadableFile = Code(.unreadableFile)
        /// Reading, writing or creating a file or folder failed.
        public static let ioFailure = Code(.ioFailure)
        /// `revoke` was given a device id that the fleet does not have.
        public static let unknownDevice = Code(.unknownDevice)
        /// A certificate does not belong to this fleet's CA or key.
        public static let mismatch = Code(.mismatch)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// With `invalidFleet`: every problem, exactly as `validate` reports them.
    public let issues: [FleetIssue]

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
        issues = []
    }

    /// The fleet is not valid (code `invalidFleet`).
    init(issues: [FleetIssue]) {
        code = .invalidFleet
        message = "the fleet is not valid (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  ✗ \($0)" }.joined(separator: "\n")
        self.issues = issues
    }

    public var description: String { message }
}
