import ServiceLifecycle

/// The live status of a running fleet: one line rewritten in place on a terminal (every second),
/// plain periodic lines otherwise. Runs until graceful shutdown.
public struct StatusLineService: Service, CustomStringConvertible {
    public let counters: FleetCounters
    /// Seconds between two lines when the output is not a terminal (at least 0.5).
    public let interval: Double
    public let isTerminal: Bool
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - counters: the fleet's counters.
    ///   - interval: seconds between plain lines (a terminal's line is rewritten every second).
    ///   - isTerminal: rewrite one line (`\r`, clear line) instead of printing lines.
    ///   - write: writes text as it is (no newline added), e.g. to standard output.
    public init(counters: FleetCounters, interval: Double, isTerminal: Bool, write: @escaping @Sendable (String) -> Void) {
        self.counters = counters
        self.interval = interval
        self.isTerminal = isTerminal
        self.write = write
    }

    public func run() async {
        var last = counters.snapshot()
        var lastTime = ContinuousClock.now
        let period = isTerminal ? 1.0 : max(0.5, interval)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(period)) }
            } catch {
                break
            }
            let now = ContinuousClock.now
            let current = counters.snapshot()
            let elapsed = now - lastTime
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(current.accepted - last.accepted) / max(seconds, 0.001)
            let line = Self.line(current, rate: rate)
            write(isTerminal ? "\r\u{1B}[2K\(line)" : line + "\n")
            last = current
            lastTime = now
        }
        if isTerminal { write("\n") }
    }

    /// `connected 3/4  sent 14  acked 14  2.8 msg/s  dropped 0  errors 0`
    public static func line(_ totals: FleetTotals, rate: Double) -> String {
        "connected \(totals.connected)/\(totals.devices)  sent \(totals.accepted)  acked \(totals.acknowledged)  "
            + "\(String(cFormat: "%.1f", rate)) msg/s  dropped \(totals.dropped)  errors \(totals.errors)"
    }

    public var description: String { "StatusLineService" }
}
