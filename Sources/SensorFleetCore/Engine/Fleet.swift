#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MosquittoKit
import Synchronization

/// Runs a fleet: devices spread over a few reactor threads, each device on one reactor.
public final class Fleet: Sendable {
    public let spec: FleetSpec
    public let counters: FleetCounters
    private let context: FleetContext
    private let reactors: [Reactor]
    private let devicesByReactor: [[DeviceSpec]]
    /// The devices of each reactor, in the reactors' order (empty until `start()`).
    private let devices = Mutex<[[Device]]>([])
    private let startedAt = Mutex<Date?>(nil)
    /// The durable outbox, when `RunOptions.stateDirectory` is set.
    public let durableOutbox: DurableOutbox?

    /// Prepares the fleet: resolves the broker's address, loads the CA once and creates the
    /// reactors. Nothing connects until `start()`.
    public init(spec: FleetSpec, options: RunOptions = RunOptions(), logger: Logger) throws {
        self.spec = spec
        counters = FleetCounters(recordLatencies: options.recordLatencies)
        let broker = spec.broker
        let resolver = BrokerResolver(host: broker.host)
        do {
            try resolver.resolveNow()
        } catch {
            guard options.resolveBrokerLater else { throw error }
            logger.warning("\(error); starting anyway, readings are kept and the name is looked up again with each connection attempt")
        }
        var trust: TrustStore?
        if broker.tls {
            do {
                trust = try TrustStore(caFile: broker.caFile)
            } catch {
                throw FleetStartError(description: "\(broker.caFile): \(error)")
            }
        } else {
            logger.warning("INSECURE: TLS is OFF (broker.tls: false in fleet.yaml): every device connects to \(broker.host):\(broker.port) over plain TCP; readings, commands and passwords cross the network in clear and the broker is not authenticated")
        }
        if broker.insecureSkipHostnameVerification {
            logger.warning("INSECURE: broker hostname verification is OFF (insecure_skip_hostname_verification in fleet.yaml); any certificate signed by the CA will be accepted for \(broker.host)")
        }
        context = FleetContext(
            broker: broker, resolver: resolver, trust: trust, tlsSettings: broker.tlsSettings,
            limiter: ConnectRateLimiter(rate: options.connectRate ?? spec.connectRate),
            gate: ConnectGate(limit: options.maxConnecting), backoff: options.backoff, counters: counters, logger: logger, seed: spec.seed,
            outbox: spec.outbox, maxInflight: options.maxInflight,
            connectTimeout: .saturating(seconds: options.connectTimeout), publishing: options.publishing,
            behaviour: spec.behaviour, bootCounts: BootCounts(directory: options.stateDirectory)
        )
        let threads = options.reactorCount(devices: spec.devices.count, cores: ProcessInfo.processInfo.activeProcessorCount)
        reactors = try (0..<threads).map { try Reactor(name: "reactor-\($0)") }
        var split = Array(repeating: [DeviceSpec](), count: threads)
        for (i, device) in spec.devices.enumerated() { split[i % threads].append(device) }
        devicesByReactor = split
        counters.devices.store(spec.devices.count, ordering: .relaxed)
        durableOutbox = options.stateDirectory.map { DurableOutbox(directory: $0, logger: logger) }
        if let qos = options.publishing.qos, qos != 0, let node = spec.devices.first(where: { $0.sparkplug != nil }) {
            logger.warning("QoS \(qos) does not apply to the Sparkplug B devices (e.g. \(node.id)): they publish NBIRTH and NDATA at QoS 0, as Sparkplug B 3.0 requires")
        }
        options.metrics?.attach(counters, durable: durableOutbox)
    }

    /// The broker's address: IPv4 first, as libmosquitto would try it. Runs before any reactor.
    static func resolve(_ host: String) throws -> String {
        try BrokerResolver.lookUp(host).get()
    }

    /// Starts the reactors, then every device (connections paced by the connect-rate limiter).
    public func start() async {
        startedAt.withLock { $0 = Date() }
        for reactor in reactors { reactor.start() }
        var all: [[Device]] = []
        let store = durableOutbox
        let restored = store?.restore() ?? [:]
        let boots = context.bootCounts.powerOn(spec.devices.map(\.id))
        for (index, reactor) in reactors.enumerated() {
            let specs = devicesByReactor[index]
            let context = self.context
            let made = await reactor.submit { () -> [Device] in
                let writer = store.map { ReactorBound(DurableOutboxWriter(store: $0, reactor: reactor), on: reactor) }
                let devices = specs.map { Device(spec: $0, context: context, reactor: reactor) }
                for device in devices {
                    device.assumeIsolated { device in
                        if let state = restored[device.spec.id] { device.restore(state) }
                        device.start(durable: writer, bootCount: boots[device.spec.id] ?? 1)
                    }
                }
                return devices
            }
            all.append(made)
        }
        devices.withLock { $0 = all }
    }

    /// When `start()` began; nil before.
    public var startDate: Date? { startedAt.withLock { $0 } }

    /// Carries out a scenario action on the devices `ids` (on their reactors).
    /// - Returns: the devices that refused it, with why (e.g. already rebooting).
    public func perform(_ action: ScenarioAction, on ids: [String]) async -> [String: String] {
        let wanted = Set(ids)
        let groups = devices.withLock { $0 }
        var refused: [String: String] = [:]
        for (index, group) in groups.enumerated() {
            let chosen = group.filter { wanted.contains($0.spec.id) }
            guard !chosen.isEmpty else { continue }
            let result = await reactors[index].submit { () -> [String: String] in
                var refused: [String: String] = [:]
                for device in chosen {
                    if let why = device.assumeIsolated({ $0.perform(action) }) { refused[device.spec.id] = why }
                }
                return refused
            }
            refused.merge(result) { a, _ in a }
        }
        return refused
    }

    /// Per-device figures, gathered on each reactor.
    public func snapshot() async -> [DeviceSnapshot] {
        var result: [DeviceSnapshot] = []
        let groups = devices.withLock { $0 }
        for (index, group) in groups.enumerated() {
            result += await reactors[index].submit { group.map { $0.assumeIsolated { $0.snapshot() } } }
        }
        return result.sorted { $0.id < $1.id }
    }

    /// Waits until `condition` holds on every device, or the deadline passes. True when it held.
    public func waitUntilAllDevices(timeout: Double, _ condition: @escaping @Sendable (DeviceSnapshot) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let snapshots = await snapshot()
            if snapshots.allSatisfy(condition) { return true }
            if Date() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Graceful stop: no new readings; waits up to `drainTimeout` for what is queued to be
    /// acknowledged (offline devices keep reconnecting meanwhile); publishes `offline` and sends DISCONNECT; waits up to `disconnectTimeout`
    /// for the broker to close; counts whatever was not delivered as dropped; ends the reactors.
    public func stop(drainTimeout: Double = 10, disconnectTimeout: Double = 3) async -> FleetSummary {
        let groups = devices.withLock { $0 }
        for (index, group) in groups.enumerated() {
            await reactors[index].submit { for device in group { device.assumeIsolated { $0.stopProducing() } } }
        }
        // Offline devices keep reconnecting meanwhile: a broker back within the drain time still
        // gets what they hold.
        _ = await waitUntil(timeout: drainTimeout, groups) { $0.isSettled }
        var connectedAtEnd = Set<String>()
        for (index, group) in groups.enumerated() {
            connectedAtEnd.formUnion(await reactors[index].submit { () -> [String] in
                group.compactMap { device in
                    device.assumeIsolated { device in
                        defer { device.disconnect() }
                        return device.isConnected ? device.spec.id : nil
                    }
                }
            })
        }
        _ = await waitUntil(timeout: disconnectTimeout, groups) { $0.isClosed }
        var snapshots: [DeviceSnapshot] = []
        for (index, group) in groups.enumerated() {
            snapshots += await reactors[index].submit { () -> [DeviceSnapshot] in
                group.map { device in
                    device.assumeIsolated { device in
                        device.finish()
                        return device.snapshot()
                    }
                }
            }
        }
        for reactor in reactors { reactor.stop() }
        for reactor in reactors { await Task.detached { reactor.join() }.value }
        let began = startedAt.withLock { $0 } ?? Date()
        for i in snapshots.indices { snapshots[i].connected = connectedAtEnd.contains(snapshots[i].id) }
        var totals = counters.snapshot()
        totals.connected = connectedAtEnd.count
        return FleetSummary(
            totals: totals, devices: snapshots.sorted { $0.id < $1.id },
            durationSeconds: Date().timeIntervalSince(began)
        )
    }

    /// Re-reads every device's certificate and key (rotation); live connections are renewed
    /// once nothing is in flight. Returns the devices whose new files are unusable, with why.
    public func reloadCredentials() async -> [String: String] {
        var failures: [String: String] = [:]
        let groups = devices.withLock { $0 }
        for (index, group) in groups.enumerated() {
            let result = await reactors[index].submit { () -> [String: String] in
                var failed: [String: String] = [:]
                for device in group {
                    if let error = device.assumeIsolated({ $0.reloadCredentials() }) { failed[device.spec.id] = error }
                }
                return failed
            }
            failures.merge(result) { a, _ in a }
        }
        return failures
    }

    /// Runs `body` every `seconds` on each reactor thread, for as long as it runs: a heartbeat
    /// that stops when a reactor is stuck (the agent's systemd watchdog).
    public func onEveryReactor(every seconds: Double, _ body: @escaping @Sendable () -> Void) {
        for reactor in reactors {
            reactor.execute {
                final class Repeater {
                    let reactor: Reactor, seconds: Double, body: () -> Void
                    init(_ reactor: Reactor, _ seconds: Double, _ body: @escaping () -> Void) {
                        self.reactor = reactor; self.seconds = seconds; self.body = body
                    }
                    func fire() {
                        body()
                        _ = reactor.schedule(after: .saturating(seconds: seconds)) { self.fire() }
                    }
                }
                Repeater(reactor, seconds, body).fire()
            }
        }
    }

    private func waitUntil(timeout: Double, _ groups: [[Device]], _ condition: @escaping @Sendable (isolated Device) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var all = true
            for (index, group) in groups.enumerated() {
                let ok = await reactors[index].submit { group.allSatisfy { $0.assumeIsolated(condition) } }
                all = all && ok
            }
            if all { return true }
            if Date() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
