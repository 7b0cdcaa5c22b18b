#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ServiceLifecycle

/// `bench --metrics-linger S`: runs the bench, then waits S seconds before returning, so that the
/// metrics endpoint (the other service in the group, stopped once this one returns) serves the
/// final values to a scraper that comes every 15 s — in a Kubernetes Job the pod would otherwise
/// exit between two scrapes and the run's last seconds would never reach Prometheus. SIGTERM or
/// SIGINT during the wait ends it at once.
struct LingerAfter: Service, CustomStringConvertible {
    let inner: any Service
    let seconds: Double

    init(_ inner: any Service, seconds: Double) {
        self.inner = inner
        self.seconds = seconds
    }

    func run() async throws {
        try await inner.run()
        guard !Task.isShuttingDownGracefully else { return }
        print("metrics: serving the final values for \(seconds) s (--metrics-linger)")
        fflush(nil)  // in the pod's log now, not at exit
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(seconds)) }
    }

    var description: String { "\(inner) + linger \(seconds) s" }
}
