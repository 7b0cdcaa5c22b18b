import Logging
import MosquittoKit
import Synchronization

/// What every device of a fleet shares: where to connect, the trust store, limits, counters and
/// how devices publish. Made once by `Fleet`, read by every reactor.
final class FleetContext: Sendable {
    let broker: BrokerSpec
    /// The broker's address, looked up off the reactors (DNS never runs on a reactor thread).
    let resolver: BrokerResolver
    /// nil: plain TCP (`broker.tls: false`).
    let trust: TrustStore?
    let tlsSettings: TLSSettings
    let limiter: ConnectRateLimiter
    let gate: ConnectGate
    let backoff: BackoffPolicy
    let counters: FleetCounters
    let logger: Logger
    let seed: UInt64
    let outbox: OutboxSpec
    let maxInflight: Int
    let connectTimeout: Duration
    let publishing: PublishSettings
    /// Status format, firmware timing, shadow.
    let behaviour: BehaviourSpec
    let bootCounts: BootCounts
    private let nextBindAddress = Atomic<Int>(0)

    init(
        broker: BrokerSpec, resolver: BrokerResolver, trust: TrustStore?, tlsSettings: TLSSettings,
        limiter: ConnectRateLimiter, gate: ConnectGate, backoff: BackoffPolicy, counters: FleetCounters,
        logger: Logger, seed: UInt64, outbox: OutboxSpec, maxInflight: Int, connectTimeout: Duration,
        publishing: PublishSettings, behaviour: BehaviourSpec = BehaviourSpec(), bootCounts: BootCounts = BootCounts(directory: nil)
    ) {
        self.behaviour = behaviour
        self.bootCounts = bootCounts
        self.broker = broker
        self.resolver = resolver
        self.trust = trust
        self.tlsSettings = tlsSettings
        self.limiter = limiter
        self.gate = gate
        self.backoff = backoff
        self.counters = counters
        self.logger = logger
        self.seed = seed
        self.outbox = outbox
        self.maxInflight = maxInflight
        self.connectTimeout = connectTimeout
        self.publishing = publishing
    }

    /// The source address for a device's first connect: round-robin over
    /// `publishing.bindAddresses`, else fleet.yaml's `broker.bind_address`.
    func takeBindAddress() -> String? {
        let addresses = publishing.bindAddresses
        guard !addresses.isEmpty else { return broker.bindAddress }
        let n = nextBindAddress.add(1, ordering: .relaxed).oldValue
        return addresses[n % addresses.count]
    }
}
