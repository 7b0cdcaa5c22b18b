import ServiceLifecycle

/// `--metrics-listen` as a service: serves while the group runs, closes at graceful shutdown.
/// Put it first in the group so it stops last: the drain at the end can still be watched.
public final class MetricsService: Service, CustomStringConvertible {
    public let server: MetricsServer

    /// - Parameter server: a bound server that has not been started.
    public init(server: MetricsServer) {
        self.server = server
    }

    /// Opens the endpoint for a command: binds `listen` (failing before the run starts when it
    /// cannot), with the metrics the run will feed.
    /// - Parameters:
    ///   - listen: "ADDR:PORT".
    ///   - labels: `run_id` and `shard`.
    public static func open(listen: String, labels: MetricsLabels = MetricsLabels()) throws(MetricsServerError) -> MetricsService {
        let address = try MetricsListenAddress(parsing: listen)
        return MetricsService(server: try MetricsServer(address: address, metrics: FleetMetrics(labels: labels)))
    }

    public var metrics: FleetMetrics { server.metrics }

    public func run() async {
        server.start()
        try? await gracefulShutdown()
        server.stop()
    }

    public var description: String { "MetricsService(\(server.address))" }
}
