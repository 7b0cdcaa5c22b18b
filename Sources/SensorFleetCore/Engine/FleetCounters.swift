import MosquittoKit
import Synchronization

/// Fleet-wide totals, updated by the reactor threads and read by the live status line.
public final class FleetCounters: Sendable {
    public let devices = Atomic<Int>(0)
    public let connected = Atomic<Int>(0)
    /// Telemetry messages accepted for publishing (into an outbox). Reports call it `published`.
    public let accepted = Atomic<Int>(0)
    /// PUBACK received (QoS 1) or written to the socket (QoS 0).
    public let acknowledged = Atomic<Int>(0)
    /// Accepted but never delivered: outbox overflow, refused by the broker, left at exit.
    public let dropped = Atomic<Int>(0)
    /// Connection failures and refused publishes.
    public let errors = Atomic<Int>(0)
    public let connectAttempts = Atomic<Int>(0)
    /// Readings due while the previous one was still being produced late (timer overrun).
    public let overruns = Atomic<Int>(0)
    /// `dropped`, split by reason (indexed like `DropReason.allCases`).
    private let dropReasons = (0..<DropReason.allCases.count).map { _ in AtomicCounter() }
    /// Failed connection attempts (before CONNACK), split by class (indexed like
    /// `ConnectFailureClass.allCases`).
    private let connectFailureClasses = (0..<ConnectFailureClass.allCases.count).map { _ in AtomicCounter() }
    /// PUBACKs overdue on a live connection (each one aborted that connection).
    public let ackTimeouts = Atomic<Int>(0)
    /// Unacknowledged messages taken over from an earlier run's durable outbox.
    public let restored = Atomic<Int>(0)
    /// Left in the durable outbox at the end of the run, for the next one.
    public let kept = Atomic<Int>(0)
    /// Accepted while the durable outbox could not write: in memory only.
    public let notDurable = Atomic<Int>(0)

    /// PUBACK (QoS 1) or write-out (QoS 0) latency from the hand-over to libmosquitto; nil
    /// unless the run asked for latencies (`RunOptions.recordLatencies`).
    public let publishLatency: LatencyRecorder?
    /// TCP + TLS + CONNACK time of every successful connect (same condition).
    public let connectLatency: LatencyRecorder?

    public init(recordLatencies: Bool = false) {
        publishLatency = recordLatencies ? LatencyRecorder() : nil
        connectLatency = recordLatencies ? LatencyRecorder() : nil
    }

    /// Counts `count` accepted messages as dropped for `reason`.
    public func drop(_ reason: DropReason, count: Int = 1) {
        guard count > 0 else { return }
        dropped.add(count, ordering: .relaxed)
        dropReasons[DropReason.allCases.firstIndex(of: reason)!].value.add(count, ordering: .relaxed)
    }

    public func dropped(_ reason: DropReason) -> Int {
        dropReasons[DropReason.allCases.firstIndex(of: reason)!].value.load(ordering: .relaxed)
    }

    /// Counts one failed connection attempt of `kind`.
    public func connectFailed(_ kind: ConnectFailureClass) {
        connectFailureClasses[ConnectFailureClass.allCases.firstIndex(of: kind)!].value.add(1, ordering: .relaxed)
    }

    public func connectFailures(_ kind: ConnectFailureClass) -> Int {
        connectFailureClasses[ConnectFailureClass.allCases.firstIndex(of: kind)!].value.load(ordering: .relaxed)
    }

    public func snapshot() -> FleetTotals {
        FleetTotals(
            devices: devices.load(ordering: .relaxed), connected: connected.load(ordering: .relaxed),
            accepted: accepted.load(ordering: .relaxed), acknowledged: acknowledged.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed), errors: errors.load(ordering: .relaxed),
            connectAttempts: connectAttempts.load(ordering: .relaxed), overruns: overruns.load(ordering: .relaxed),
            droppedByReason: Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.rawValue, dropped($0)) }),
            ackTimeouts: ackTimeouts.load(ordering: .relaxed), restored: restored.load(ordering: .relaxed),
            kept: kept.load(ordering: .relaxed), notDurable: notDurable.load(ordering: .relaxed)
        )
    }
}

public struct FleetTotals: Sendable, Equatable, Codable {
    public var devices: Int
    public var connected: Int
    /// Accepted for publishing (reports: `published`).
    public var accepted: Int
    public var acknowledged: Int
    public var dropped: Int
    public var errors: Int
    public var connectAttempts: Int
    public var overruns: Int
    /// `dropped` by `DropReason` raw value.
    public var droppedByReason: [String: Int] = [:]
    public var ackTimeouts: Int = 0
    /// Taken over from an earlier run's durable outbox (published then, not now).
    public var restored: Int = 0
    /// Left in the durable outbox for the next run (not dropped).
    public var kept: Int = 0
    /// Accepted while the durable outbox could not write.
    public var notDurable: Int = 0

    enum CodingKeys: String, CodingKey {
        case devices, connected, accepted = "published", acknowledged, dropped, errors, connectAttempts, overruns
        case droppedByReason, ackTimeouts, restored, kept, notDurable
    }
}

/// An atomic that can live in an array.
final class AtomicCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The class of a failed connection attempt: a bounded set, fit for a metric label (the error's
/// text is not: it carries addresses and OpenSSL's words).
public enum ConnectFailureClass: String, Sendable, CaseIterable {
    /// No CONNACK within the connect time-out.
    case timeout
    /// CONNACK with a refusal (identity, authorisation, server busy…).
    case refused
    /// The broker's name did not resolve.
    case dns
    /// Trust or identity rejected during the TLS handshake (will not fix itself).
    case tls
    /// Closed or reset before CONNACK, or a system call failed (refused port, unreachable).
    case network
    /// Anything else.
    case other

    public init(_ error: MosquittoError) {
        switch error.code {
        case MosquittoError.connectTimeoutCode: self = .timeout
        case MosquittoError.connectRefusedCode: self = .refused
        case MosquittoError.nameResolutionCode: self = .dns
        case _ where error.isPermanent: self = .tls
        case MosquittoError.connectionLostCode, MosquittoError.systemCallFailedCode: self = .network
        default: self = .other
        }
    }
}
