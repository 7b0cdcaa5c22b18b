import MosquittoKit

/// How a fleet runs, beyond what its files say.
public struct RunOptions: Sendable {
    /// Reactor threads; default: `RunOptions.reactorCount(devices:)`.
    public var reactorThreads: Int?
    public var backoff: BackoffPolicy
    /// Overrides fleet.yaml's `connect_rate`.
    public var connectRate: Double?
    /// From the start of a connection attempt to CONNACK, in seconds.
    public var connectTimeout: Double
    /// Connections being set up at once, fleet-wide (below mosquitto's listen backlog of ~100).
    public var maxConnecting: Int
    /// QoS 1 messages in flight per device.
    public var maxInflight: Int
    /// Folder of the durable outbox (`run --state-dir`); nil: memory only.
    public var stateDirectory: String?
    /// How devices publish where it differs from their device.yaml (the load tester's rate,
    /// QoS, payload size, message limit, source addresses).
    public var publishing = PublishSettings()
    /// Start even when the broker's name does not resolve, and keep looking it up with each
    /// connection attempt (the agent: a Pi that boots before its network). Otherwise a name that
    /// does not resolve at start is an error.
    public var resolveBrokerLater = false
    /// Keep HDR histograms of publish and connect latency in `FleetCounters`.
    public var recordLatencies = false
    /// The metrics endpoint's view (`--metrics-listen`): the fleet hands it its counters, and
    /// its latency recorders (with `recordLatencies`) mirror into its histograms.
    public var metrics: FleetMetrics?

    public init(
        reactorThreads: Int? = nil,
        backoff: BackoffPolicy = BackoffPolicy(), connectRate: Double? = nil, connectTimeout: Double = 10,
        maxConnecting: Int = 64, maxInflight: Int = 20
    ) {
        self.maxConnecting = maxConnecting
        self.reactorThreads = reactorThreads
        self.backoff = backoff
        self.connectRate = connectRate
        self.connectTimeout = connectTimeout
        self.maxInflight = maxInflight
        stateDirectory = nil
    }

    /// Reactor threads for a fleet of `devices`: one per core, at most one per 500 devices,
    /// at least one (or `reactorThreads` when set). The one place this rule lives.
    public func reactorCount(devices: Int, cores: Int) -> Int {
        max(1, reactorThreads ?? min(cores, (devices + 499) / 500))
    }
}

/// A failure to start a fleet, said so a person can act on it.
public struct FleetStartError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// What a fleet did, at the end of a run.
public struct FleetSummary: Sendable {
    public var totals: FleetTotals
    public var devices: [DeviceSnapshot]
    public var durationSeconds: Double
    /// Devices that never connected, or whose last error will not fix itself.
    public var failedDevices: [String] {
        devices.filter { $0.connects == 0 || $0.failing }.map(\.id)
    }
}
