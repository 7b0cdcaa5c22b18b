import Foundation
import MosquittoKit
import SensorFleetTesting
import Synchronization
import Testing

/// libmosquitto's keep-alive driven by the reactor's housekeeping, which calls `loop_misc` only
/// for clients whose keep-alive could be due (MQTTClient.reactorHousekeeping): pings still go
/// out on an idle connection, and a stalled one is still given up, with or without traffic.
/// A plain-TCP mosquitto of its own (keep-alive is the same over TLS), 5 s keep-alive (the
/// shortest libmosquitto takes).
@Suite("Keep-alive with lazy housekeeping", .serialized)
struct KeepAliveTests {
    private static let keepAlive = 5

    /// One client on its own reactor, the events it saw, and a broker (through a proxy, to stall it).
    final class Rig: MQTTClientDelegate, @unchecked Sendable {
        let reactor: Reactor
        let broker: ChildProcess
        let proxy: TCPProxy
        let dir: TempDir
        let connects = Atomic<Int>(0)
        let closes = Mutex<[String]>([])
        let acknowledged = Atomic<Int>(0)
        private var client: MQTTClient?

        init() async throws {
            dir = try TempDir("keepalive")
            let port = freePort()
            try "listener \(port) 127.0.0.1\nallow_anonymous true\nuser root\n"
                .write(toFile: "\(dir.path)/mosquitto.conf", atomically: true, encoding: .utf8)
            broker = try ChildProcess("/usr/sbin/mosquitto", ["-c", "\(dir.path)/mosquitto.conf"], output: "\(dir.path)/mosquitto.log")
            guard await waitFor(10, { isListening(port) }) else { throw TestFailure("mosquitto did not start") }
            proxy = try TCPProxy(target: port)
            reactor = try Reactor(name: "keepalive-test")
            reactor.start()
        }

        func connect(clientID: String) async {
            let options = MQTTClientOptions(clientID: clientID, host: "127.0.0.1", port: proxy.port,
                                            keepAlive: KeepAliveTests.keepAlive, tls: nil)
            await reactor.submit { [self] in
                let client = try! MQTTClient(reactor: reactor, options: options)
                client.delegate = self
                self.client = client
                client.connect()
            }
        }

        /// Publishes at QoS 1 every `interval` seconds from now on (until the connection closes).
        func publishEvery(_ interval: Duration) async {
            await reactor.submit { [self] in self.publishAndRearm(interval) }
        }

        private func publishAndRearm(_ interval: Duration) {
            guard let client, client.isConnected else { return }
            let payload: [UInt8] = Array("x".utf8)
            _ = payload.withUnsafeBytes { client.publish(topic: "keepalive/test", payload: $0, qos: 1) }
            reactor.schedule(after: interval) { [self] in self.publishAndRearm(interval) }
        }

        func tearDown() async {
            await reactor.submit { [self] in
                client?.abort()
                client?.destroy()
                client = nil
            }
            reactor.stop()
            proxy.close()
            broker.terminate()
            dir.remove()
        }

        func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool) { connects.add(1, ordering: .relaxed) }
        func clientDidClose(_ client: MQTTClient, error: MosquittoError?) {
            closes.withLock { $0.append(error.map { "\($0)" } ?? "clean") }
        }
        func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int) {
            acknowledged.add(1, ordering: .relaxed)
        }
        func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer) {}
    }

    @Test("an idle connection sends its pings: still up after 2 × keep-alive (the broker drops it after 1.5 × without)")
    func idleConnectionStaysUp() async throws {
        let rig = try await Rig()
        await rig.connect(clientID: "idle")
        #expect(await waitFor(10) { rig.connects.load(ordering: .relaxed) == 1 })
        try await Task.sleep(for: .seconds(2 * KeepAliveTests.keepAlive))
        #expect(rig.closes.withLock { $0 } == [])
        await rig.tearDown()
    }

    @Test("a stalled idle connection is given up by keep-alive (PINGREQ unanswered) within 2 × keep-alive + 2 s")
    func stalledIdleConnectionIsGivenUp() async throws {
        let rig = try await Rig()
        await rig.connect(clientID: "stalled-idle")
        #expect(await waitFor(10) { rig.connects.load(ordering: .relaxed) == 1 })
        let stalledAt = Date()
        rig.proxy.stall()
        #expect(await waitFor(Double(4 * KeepAliveTests.keepAlive)) { !rig.closes.withLock { $0 }.isEmpty })
        let took = Date().timeIntervalSince(stalledAt)
        #expect(took <= Double(2 * KeepAliveTests.keepAlive + 2), "given up after \(took) s")
        #expect(rig.closes.withLock { $0 }.first?.lowercased().contains("keep") ?? false, "\(rig.closes.withLock { $0 })")
        await rig.tearDown()
    }

    @Test("a connection publishing QoS 1 faster than its keep-alive stays up; stalled, keep-alive gives it up")
    func busyConnectionStaysUpAndStalledIsGivenUp() async throws {
        let rig = try await Rig()
        await rig.connect(clientID: "busy")
        #expect(await waitFor(10) { rig.connects.load(ordering: .relaxed) == 1 })
        await rig.publishEvery(.milliseconds(500))
        try await Task.sleep(for: .seconds(2 * KeepAliveTests.keepAlive))
        #expect(rig.closes.withLock { $0 } == [])
        #expect(rig.acknowledged.load(ordering: .relaxed) >= 15)
        let stalledAt = Date()
        rig.proxy.stall()
        #expect(await waitFor(Double(4 * KeepAliveTests.keepAlive)) { !rig.closes.withLock { $0 }.isEmpty })
        let took = Date().timeIntervalSince(stalledAt)
        #expect(took <= Double(2 * KeepAliveTests.keepAlive + 2), "given up after \(took) s")
        await rig.tearDown()
    }
}
