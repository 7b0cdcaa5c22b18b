#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle
import Synchronization

/// Runs a scenario against a running fleet: each event at its time after the fleet started, on
/// the devices its selection chooses (the same seed, the same devices). Each event is told on
/// the live output and kept for the report. Ends after the last event, or at graceful shutdown.
public final class ScenarioService: Service, CustomStringConvertible {
    private let fleet: Fleet
    private let scenario: ScenarioSpec
    private let write: @Sendable (String) -> Void
    private let logger: Logger
    private let done = Mutex<[ScenarioRecord]>([])
    private let everyDevice: [DeviceSpec]

    /// - Parameters:
    ///   - fleet: the fleet the events act on (started by its own service).
    ///   - write: where each event's line goes (the live output).
    ///   - everyDevice: the whole fleet's devices when `fleet` runs one shard of it (selections are
    ///     made over the whole fleet, so shards agree); nil: the fleet's own.
    public init(fleet: Fleet, scenario: ScenarioSpec, everyDevice: [DeviceSpec]? = nil, logger: Logger,
                write: @escaping @Sendable (String) -> Void) {
        self.everyDevice = everyDevice ?? fleet.spec.devices
        self.fleet = fleet
        self.scenario = scenario
        self.logger = logger
        self.write = write
    }

    /// The events that ran so far, with their devices.
    public var records: [ScenarioRecord] { done.withLock { $0 } }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.runEvents()
            }
        } catch is CancellationError {
            // Graceful shutdown before the last event: the rest does not run.
        }
    }

    /// Runs the events (for callers without a service group, such as the load tester).
    public func runEvents() async throws {
        while fleet.startDate == nil { try await Task.sleep(for: .milliseconds(20)) }
        guard let start = fleet.startDate else { return }
        let devices = everyDevice
        let own = Set(fleet.spec.devices.map(\.id))
        for event in scenario.events.sorted(by: { ($0.at, $0.index) < ($1.at, $1.index) }) {
            let wait = start.addingTimeInterval(event.at).timeIntervalSinceNow
            if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
            let chosen = event.selection.choose(from: devices, seed: fleet.spec.seed, event: event.index).filter { own.contains($0) }
            let refused = await fleet.perform(event.action, on: chosen)
            let ranAt = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
            let record = ScenarioRecord(at: event.at, ran: ranAt, action: event.action.name, detail: event.action.description,
                                        devices: chosen, refused: refused.isEmpty ? nil : refused)
            done.withLock { $0.append(record) }
            let names = chosen.prefix(8).joined(separator: ", ") + (chosen.count > 8 ? ", … (\(chosen.count - 8) more)" : "")
            var line = "scenario: t=\(ScenarioAction.format(event.at)) s \(event.action.description) → \(chosen.count) device\(chosen.count == 1 ? "" : "s") (\(event.selection.description))\(chosen.isEmpty ? "" : ": \(names)")"
            if !refused.isEmpty {
                line += "; refused by \(refused.count): " + refused.sorted { $0.key < $1.key }.prefix(3).map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            }
            write(line + "\n")
            logger.info("scenario event", metadata: ["action": "\(event.action.name)", "devices": "\(chosen.count)", "at": "\(event.at)"])
        }
    }

    public var description: String { "ScenarioService" }
}
