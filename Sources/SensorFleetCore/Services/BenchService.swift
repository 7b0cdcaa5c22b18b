import Logging
import ServiceLifecycle
import Synchronization

/// `sensorfleet bench` as a service: runs ``BenchRunner`` once and keeps its report. Graceful
/// shutdown (SIGINT/SIGTERM) ends the measurement early; the fleet still stops gracefully and the
/// report covers what was measured. Returns when the bench is over: configure it with
/// `successTerminationBehavior: .gracefullyShutdownGroup`.
public final class BenchService: Service, CustomStringConvertible {
    public let spec: FleetSpec
    public let options: BenchOptions
    private let logger: Logger
    private let onSecond: @Sendable (BenchReport.Second, Int) -> Void
    private let result = Mutex<BenchReport?>(nil)

    /// - Parameters:
    ///   - spec: the loaded fleet.
    ///   - options: the load profile and what to measure.
    ///   - logger: the bench's logger.
    ///   - onSecond: each second's sample and the number of devices (for the live line).
    public init(spec: FleetSpec, options: BenchOptions, logger: Logger,
                onSecond: @escaping @Sendable (BenchReport.Second, Int) -> Void = { _, _ in }) {
        self.spec = spec
        self.options = options
        self.logger = logger
        self.onSecond = onSecond
    }

    /// The report; nil until `run()` has returned normally.
    public var report: BenchReport? { result.withLock { $0 } }

    public func run() async throws {
        let report = try await BenchRunner.run(fleet: spec, options: options, logger: logger, onSecond: onSecond)
        result.withLock { $0 = report }
    }

    public var description: String { "BenchService" }
}
