import Foundation
import Logging
import MosquittoKit
import Synchronization
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// A connection that records what `Delivery` hands over and acknowledges only when told: the
/// session side is tested here without a broker (the integration suites test it with one).
final class RecordingTransport: DeliveryTransport {
    var isConnected = true
    private(set) var handedOver: [(mid: Int32, seq: UInt64)] = []
    private(set) var aborts = 0
    private var nextID: Int32 = 1

    func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool,
                 properties: MQTTPublishProperties?, topicAlias: Bool) -> Result<Int32, MosquittoError> {
        guard isConnected else { return .failure(MosquittoError(code: MosquittoError.connectionLostCode)) }
        let mid = nextID
        nextID += 1
        handedOver.append((mid, Self.seq(of: payload)))
        return .success(mid)
    }

    func abort() {
        aborts += 1
        isConnected = false
    }

    /// The payloads here are the seq as text.
    static func seq(of payload: UnsafeRawBufferPointer) -> UInt64 { UInt64(String(decoding: payload, as: UTF8.self)) ?? 0 }
}

/// A `Delivery` and its transport on a real reactor thread, driven from the test.
final class DeliveryFixture: Sendable {
    let reactor: Reactor
    let counters = FleetCounters()
    private let parts: ReactorBound<(Delivery, RecordingTransport)>

    init(qos: Int = 1, outbox: OutboxSpec = OutboxSpec(), window: Int = 20, ackTimeout: Duration = .seconds(30)) async throws {
        let reactor = try Reactor(name: "delivery-test")
        reactor.start()
        self.reactor = reactor
        let counters = self.counters
        parts = await reactor.submit {
            let delivery = Delivery(
                deviceID: "dev-1", topic: "devices/dev-1/telemetry", qos: qos, outbox: outbox, window: window,
                ackTimeout: ackTimeout, reactor: reactor, counters: counters, logger: Logger(label: "test"))
            let transport = RecordingTransport()
            delivery.transport = transport
            return ReactorBound((delivery, transport), on: reactor)
        }
    }

    /// Runs `body` on the reactor with the delivery and its transport.
    func run<T: Sendable>(_ body: @escaping @Sendable (Delivery, RecordingTransport) -> T) async -> T {
        let parts = self.parts
        return await reactor.submit { body(parts.value.0, parts.value.1) }
    }

    func stop() async {
        reactor.stop()
        let reactor = self.reactor
        await Task.detached { reactor.join() }.value
    }

    static func entry(_ seq: UInt64, at time: MonotonicInstant = .now()) -> Outbox.Entry {
        Outbox.Entry(seq: seq, payload: Array(String(seq).utf8), enqueuedAt: time)
    }
}

@Suite struct DeliveryTests {
    @Test func aFullOutboxDropsTheOldestAndCountsEveryMessage() async throws {
        let fixture = try await DeliveryFixture(outbox: OutboxSpec(maxMessages: 3))
        let (accepted, dropped, queued, overflow) = await fixture.run { delivery, transport in
            transport.isConnected = false
            for seq in 1...5 as ClosedRange<UInt64> { delivery.enqueue(DeliveryFixture.entry(seq)) }
            return (delivery.accepted, delivery.dropped, delivery.queued, delivery.dropCounts[.overflow])
        }
        #expect(accepted == 5 && dropped == 2 && queued == 3 && overflow == 2)
        // Back online: exactly the three newest go out, oldest first.
        let sent = await fixture.run { delivery, transport in
            transport.isConnected = true
            delivery.pump()
            return transport.handedOver.map(\.seq)
        }
        #expect(sent == [3, 4, 5])
        #expect(fixture.counters.snapshot().accepted == 5)
        await fixture.stop()
    }

    @Test func messagesOlderThanTheTTLExpireAndAreCounted() async throws {
        let fixture = try await DeliveryFixture(outbox: OutboxSpec(ttl: 1))
        let (expired, queued) = await fixture.run { delivery, transport in
            transport.isConnected = false
            let now = MonotonicInstant.now()
            let old = MonotonicInstant(nanoseconds: now.nanoseconds - 2_000_000_000)
            delivery.enqueue(DeliveryFixture.entry(1, at: old))
            delivery.enqueue(DeliveryFixture.entry(2, at: old))
            delivery.enqueue(DeliveryFixture.entry(3, at: now))
            delivery.expire(now: now)
            return (delivery.dropCounts[.expired], delivery.queued)
        }
        #expect(expired == 2 && queued == 1)
        await fixture.stop()
    }

    @Test func theBacklogOfAnEarlierRunGoesOutAtItsRateWithLiveDataAlongside() async throws {
        let rate = 50.0
        let fixture = try await DeliveryFixture(outbox: OutboxSpec(backlogRate: rate), window: 1000)
        let started = MonotonicInstant.now()
        await fixture.run { delivery, _ in
            delivery.restore((1...120).map { (UInt64($0), Array(String($0).utf8)) }, now: .now())
            delivery.enqueue(DeliveryFixture.entry(1000))
            delivery.pump()
        }
        var done = false
        let deadline = ContinuousClock.now + .seconds(20)
        while !done && ContinuousClock.now < deadline {
            done = await fixture.run { _, transport in transport.handedOver.count == 121 }
            if !done { try await Task.sleep(for: .milliseconds(10)) }
        }
        let elapsed = MonotonicInstant.now().seconds(since: started)
        let order = await fixture.run { _, transport in transport.handedOver.map(\.seq) }
        #expect(done, "handed over: \(order.count) of 121")
        // A first burst of one second's worth, then `rate` per second: 70 more take 1.4 s.
        #expect(elapsed >= 1.2, "the backlog went out in \(elapsed) s, faster than \(rate)/s")
        #expect(order.filter { $0 < 1000 } == Array(1...120), "backlog order: \(order)")
        // Live data is not held behind the whole backlog.
        #expect((order.firstIndex(of: 1000) ?? 999) < 120)
        #expect(fixture.counters.snapshot().restored == 120)
        await fixture.stop()
    }

    @Test func qos0HandedOverAndThenLostWithTheConnectionIsCountedAsDropped() async throws {
        let fixture = try await DeliveryFixture(qos: 0)
        let (handedOver, lost, inflight, accepted) = await fixture.run { delivery, transport in
            for seq in 1...5 as ClosedRange<UInt64> { delivery.enqueue(DeliveryFixture.entry(seq)) }
            delivery.pump()
            let handedOver = transport.handedOver.count
            transport.isConnected = false
            delivery.connectionDown()
            return (handedOver, delivery.dropCounts[.connectionLost], delivery.inflightCount, delivery.accepted)
        }
        #expect(handedOver == 5 && lost == 5 && inflight == 0 && accepted == 5)
        #expect(fixture.counters.dropped(.connectionLost) == 5)
        await fixture.stop()
    }

    @Test func anOverduePUBACKAbortsTheConnectionAndTheMessageStaysInFlight() async throws {
        let fixture = try await DeliveryFixture(qos: 1, ackTimeout: .milliseconds(200))
        await fixture.run { delivery, _ in
            delivery.enqueue(DeliveryFixture.entry(1))
            delivery.pump()
        }
        var aborts = 0
        let deadline = ContinuousClock.now + .seconds(10)
        while aborts == 0 && ContinuousClock.now < deadline {
            aborts = await fixture.run { _, transport in transport.aborts }
            if aborts == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(aborts == 1)
        #expect(fixture.counters.ackTimeouts.load(ordering: .relaxed) == 1)
        // libmosquitto re-sends it after the reconnect: it stays in flight, not dropped.
        let (inflight, dropped) = await fixture.run { delivery, _ in (delivery.inflightCount, delivery.dropped) }
        #expect(inflight == 1 && dropped == 0)
        await fixture.stop()
    }

    @Test func aPUBACKInTimeIsCountedAndTheRefusalsOfTheBrokerAreDropped() async throws {
        let fixture = try await DeliveryFixture(qos: 1)
        let (acked, refusal, dropped) = await fixture.run { delivery, transport in
            delivery.enqueue(DeliveryFixture.entry(1))
            delivery.enqueue(DeliveryFixture.entry(2))
            delivery.pump()
            let ids = transport.handedOver.map(\.mid)
            _ = delivery.didComplete(messageID: ids[0], reasonCode: 0)
            let refusal = delivery.didComplete(messageID: ids[1], reasonCode: 0x87)
            return (delivery.acknowledged, refusal, delivery.dropCounts[.brokerRefused])
        }
        #expect(acked == 1 && dropped == 1)
        #expect(refusal?.contains("not authorised") == true, "\(refusal ?? "nil")")
        await fixture.stop()
    }

    @Test func theWindowNeverExceedsTheBrokersReceiveMaximum() async throws {
        let fixture = try await DeliveryFixture(qos: 1, window: 20)
        let (first, afterAck, window) = await fixture.run { delivery, transport in
            delivery.brokerReceiveMaximum = 3
            for seq in 1...10 as ClosedRange<UInt64> { delivery.enqueue(DeliveryFixture.entry(seq)) }
            delivery.pump()
            let first = delivery.inflightCount
            _ = delivery.didComplete(messageID: transport.handedOver[0].mid, reasonCode: 0)
            delivery.pump()
            return (first, delivery.inflightCount, delivery.effectiveWindow)
        }
        #expect(first == 3 && afterAck == 3 && window == 3)
        // A Receive Maximum above our window leaves ours in force; QoS 0 has none.
        let larger = await fixture.run { delivery, _ in
            delivery.brokerReceiveMaximum = 65_535
            return delivery.effectiveWindow
        }
        #expect(larger == 20)
        await fixture.stop()
    }

    @Test func qos2CountsAMessageDeliveredOnceAtItsCompletionAndKeepsItAcrossAReconnect() async throws {
        let fixture = try await DeliveryFixture(qos: 2)
        let (inflightWhileDown, acked, again, dropped) = await fixture.run { delivery, transport in
            delivery.enqueue(DeliveryFixture.entry(1))
            delivery.enqueue(DeliveryFixture.entry(2))
            delivery.pump()
            let ids = transport.handedOver.map(\.mid)
            // The connection drops before PUBCOMP: both stay in flight (libmosquitto re-sends them).
            transport.isConnected = false
            delivery.connectionDown()
            let inflightWhileDown = delivery.inflightCount
            transport.isConnected = true
            delivery.connectionUp()
            _ = delivery.didComplete(messageID: ids[0], reasonCode: 0)
            _ = delivery.didComplete(messageID: ids[1], reasonCode: 0)
            // A second completion for the same id (never sent by libmosquitto) counts nothing.
            _ = delivery.didComplete(messageID: ids[1], reasonCode: 0)
            return (inflightWhileDown, delivery.acknowledged, transport.handedOver.count, delivery.dropped)
        }
        #expect(inflightWhileDown == 2 && acked == 2 && again == 2 && dropped == 0)
        await fixture.stop()
    }
}
