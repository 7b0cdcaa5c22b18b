import Foundation
@testable import MosquittoKit
import SensorFleetTesting
import Testing

/// Records one client's events on its reactor thread.
final class TLSEventRecorder: MQTTClientDelegate {
    var connects = 0
    var closes: [MosquittoError?] = []
    var completed = 0

    func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool) { connects += 1 }
    func clientDidClose(_ client: MQTTClient, error: MosquittoError?) { closes.append(error) }
    func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int) { completed += 1 }
    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer) {}
}

/// Clients of a `TestFleet`'s devices on one real reactor, driven from the test.
final class TLSClients: @unchecked Sendable {
    let reactor: Reactor
    let fleet: TestFleet
    let trust: TrustStore
    private final class Table { var entries: [String: (MQTTClient, TLSEventRecorder)] = [:] }
    private let clients: ReactorBound<Table>

    init(fleet: TestFleet) async throws {
        self.fleet = fleet
        reactor = try Reactor(name: "tls-shared-test")
        reactor.start()
        trust = try TrustStore(caFile: fleet.caFile)
        clients = await reactor.submit { [reactor] in ReactorBound(Table(), on: reactor) }
    }

    /// The identity of `device` (its cert.pem and key.pem), checking the broker as `serverName`.
    func identity(_ device: String, serverName: String = "localhost", resume: Bool = true) throws -> TLSContext {
        try TLSContext(trust: trust, certFile: "\(fleet.path)/\(device)/cert.pem", keyFile: "\(fleet.path)/\(device)/key.pem",
                       settings: TLSSettings(serverName: serverName), resume: resume)
    }

    /// Makes client `clientID` with `tls` (to 127.0.0.1: the name is checked as `tls`'s server name).
    func add(_ clientID: String, tls: TLSContext) async throws {
        let options = MQTTClientOptions(clientID: clientID, host: "127.0.0.1", port: fleet.broker.port, keepAlive: 10, tls: tls)
        let clients = self.clients
        let made: Result<Void, MosquittoError> = await reactor.submit {
            do throws(MosquittoError) {
                let client = try MQTTClient(reactor: clients.reactor, options: options)
                let recorder = TLSEventRecorder()
                client.delegate = recorder
                clients.value.entries[clientID] = (client, recorder)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try made.get()
    }

    func run<T: Sendable>(_ clientID: String, _ body: @escaping @Sendable (MQTTClient, TLSEventRecorder) -> T) async -> T {
        let clients = self.clients
        return await reactor.submit {
            let (client, recorder) = clients.value.entries[clientID]!
            return body(client, recorder)
        }
    }

    func connect(_ ids: [String]) async {
        let clients = self.clients
        await reactor.submit { for id in ids { clients.value.entries[id]!.0.connect() } }
    }

    /// Waits until every client in `ids` has connected `count` times in all.
    func waitConnected(_ ids: [String], count: Int = 1, timeout: Double = 15) async -> Bool {
        await waitFor(timeout) {
            var all = true
            for id in ids { all = await run(id) { _, recorder in recorder.connects >= count } && all }
            return all
        }
    }

    func waitClosed(_ id: String, count: Int, timeout: Double = 15) async -> Bool {
        await waitFor(timeout) { await run(id) { _, recorder in recorder.closes.count >= count } }
    }

    /// Publishes `payload` at QoS 1 to each topic and waits for the PUBACKs.
    func publish(_ id: String, _ topics: [String], payload: String) async -> Bool {
        let before = await run(id) { _, recorder in recorder.completed }
        await run(id) { client, _ in
            for topic in topics {
                _ = Array(payload.utf8).withUnsafeBytes { client.publish(topic: topic, payload: $0, qos: 1) }
            }
        }
        return await waitFor(10) { await run(id) { _, recorder in recorder.completed >= before + topics.count } }
    }

    /// Disconnects cleanly and waits for the close.
    func disconnect(_ id: String) async -> Bool {
        let closes = await run(id) { client, recorder in
            client.disconnect()
            return recorder.closes.count
        }
        return await waitClosed(id, count: closes + 1)
    }

    func stop() async {
        let clients = self.clients
        await reactor.submit {
            for (client, _) in clients.value.entries.values { client.destroy() }
            clients.value.entries.removeAll()
        }
        reactor.stop()
        let reactor = self.reactor
        await Task.detached { reactor.join() }.value
    }
}

@Suite("One shared SSL_CTX, each device its own identity, TLS session resumption", .serialized)
struct TLSSharedContextTests {
    @Test("devices sharing one context each present their own certificate: the broker's ACL (user name = CN) lets each write only its own topics")
    func eachDevicePresentsItsOwnIdentity() async throws {
        let ids = ["dev-1", "dev-2", "dev-3", "dev-4"]
        let fleet = try TestFleet(devices: ids)
        defer { fleet.tearDown() }
        let observer = try fleet.subscriber()
        defer { observer.stop() }
        let clients = try await TLSClients(fleet: fleet)
        let identities = try ids.map { try clients.identity($0) }
        #expect(Set(identities.map { UInt(bitPattern: $0.ctx) }).count == 1, "one SSL_CTX for the same trust store and settings")
        // Client ids that are not the CN: the broker's user name can only come from the certificate.
        for (n, tls) in identities.enumerated() { try await clients.add("client-\(n)", tls: tls) }
        let clientIDs = ids.indices.map { "client-\($0)" }
        await clients.connect(clientIDs)
        #expect(await clients.waitConnected(clientIDs))
        for (n, id) in ids.enumerated() {
            let other = ids[(n + 1) % ids.count]
            #expect(await clients.publish("client-\(n)", ["devices/\(id)/t", "devices/\(other)/t"], payload: "from-\(id)"))
        }
        #expect(await waitFor(10) { observer.messages().count >= ids.count })
        try await Task.sleep(for: .milliseconds(300))
        let received = observer.messages().map { "\($0.topic) \($0.payload)" }.sorted()
        #expect(received == ids.map { "devices/\($0)/t from-\($0)" }.sorted(), "\(received)")
        let log = fleet.broker.log()
        for (n, id) in ids.enumerated() { #expect(log.contains("as client-\(n) (p2, c1, k10, u'\(id)')"), "\(log.suffix(1500))") }
        await clients.stop()
    }

    @Test("a broker name the certificate does not carry is refused with a shared context, while the right name connects")
    func wrongNameIsStillRefused() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"])
        defer { fleet.tearDown() }
        let clients = try await TLSClients(fleet: fleet)
        let right = try clients.identity("dev-1")
        let wrong = try clients.identity("dev-2", serverName: "wrong.example")
        #expect(right.ctx != wrong.ctx)
        try await clients.add("right", tls: right)
        try await clients.add("wrong", tls: wrong)
        await clients.connect(["right", "wrong"])
        #expect(await clients.waitConnected(["right"]))
        #expect(await clients.waitClosed("wrong", count: 1))
        let error = await clients.run("wrong") { _, recorder in recorder.closes.first.flatMap { $0 }.map { "\($0)" } }
        #expect(error?.contains("hostname mismatch") == true, "\(error ?? "nil")")
        #expect(await clients.run("wrong") { _, recorder in recorder.connects } == 0)
        await clients.stop()
    }

    @Test("a reconnect resumes the device's session (and its identity still counts); without resumption, or after a broker restart, a full handshake")
    func reconnectResumes() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"])
        defer { fleet.tearDown() }
        let observer = try fleet.subscriber()
        defer { observer.stop() }
        let clients = try await TLSClients(fleet: fleet)
        let resuming = try clients.identity("dev-1")
        let notResuming = try clients.identity("dev-2", resume: false)
        try await clients.add("a", tls: resuming)
        try await clients.add("b", tls: notResuming)
        await clients.connect(["a", "b"])
        #expect(await clients.waitConnected(["a", "b"]))
        #expect(await clients.disconnect("a"))
        #expect(await clients.disconnect("b"))
        await clients.connect(["a", "b"])
        #expect(await clients.waitConnected(["a", "b"], count: 2))
        let a = await clients.run("a") { _, _ in (resuming.fullHandshakes, resuming.resumedHandshakes, resuming.lastHandshakeResumed) }
        #expect(a == (1, 1, true))
        let b = await clients.run("b") { _, _ in (notResuming.fullHandshakes, notResuming.resumedHandshakes) }
        #expect(b == (2, 0))
        // The resumed connection is still dev-1 to the broker: it may write its own topics only.
        #expect(await clients.publish("a", ["devices/dev-1/t", "devices/dev-2/t"], payload: "resumed"))
        #expect(await waitFor(10) { observer.messages().contains { $0.topic == "devices/dev-1/t" && $0.payload == "resumed" } })
        #expect(!observer.messages().contains { $0.topic == "devices/dev-2/t" })

        // A restarted broker has a new ticket key: the offered session is refused, and the
        // reconnect falls back to a full, verified handshake. The new broker listens on a new
        // port (the old one, freed, could be taken by another test's broker meanwhile); the
        // session belongs to the identity, so a client of the same identity offers it.
        fleet.broker.kill()
        #expect(await clients.waitClosed("a", count: 2))
        fleet.broker = try TestBroker(
            settings: .init(caFile: fleet.caFile, certFile: "\(fleet.path)/broker/server.pem", keyFile: "\(fleet.path)/broker/server.key",
                            aclFile: "\(fleet.path)/broker/acl"),
            directory: fleet.path)
        let resubscribed = try fleet.subscriber()
        defer { resubscribed.stop() }
        try await clients.add("a-again", tls: resuming)
        await clients.connect(["a-again"])
        #expect(await clients.waitConnected(["a-again"]))
        let afterRestart = await clients.run("a-again") { _, _ in (resuming.fullHandshakes, resuming.resumedHandshakes, resuming.lastHandshakeResumed) }
        #expect(afterRestart == (2, 1, false))
        #expect(await clients.publish("a-again", ["devices/dev-1/t"], payload: "after-restart"))
        #expect(await waitFor(10) { resubscribed.messages().contains { $0.payload == "after-restart" } })
        await clients.stop()
    }

    @Test("a credential reload switches the identity on the next connect, with a full handshake (no session of the old identity)")
    func reloadSwitchesIdentity() async throws {
        let fleet = try TestFleet(devices: ["dev-1", "dev-2"])
        defer { fleet.tearDown() }
        let clients = try await TLSClients(fleet: fleet)
        let first = try clients.identity("dev-1")
        try await clients.add("c", tls: first)
        await clients.connect(["c"])
        #expect(await clients.waitConnected(["c"]))
        let second = try clients.identity("dev-2")
        let replaced = await clients.run("c") { client, _ in client.replaceTLS(second).map { "\($0)" } }
        #expect(replaced == nil)
        #expect(await clients.disconnect("c"))
        await clients.connect(["c"])
        #expect(await clients.waitConnected(["c"], count: 2))
        let counts = await clients.run("c") { _, _ in (first.fullHandshakes, first.resumedHandshakes, second.fullHandshakes, second.resumedHandshakes) }
        #expect(counts == (1, 0, 1, 0))
        let log = fleet.broker.log()
        #expect(log.contains("as c (p2, c1, k10, u'dev-1')"))
        #expect(log.contains("as c (p2, c1, k10, u'dev-2')"), "\(log.suffix(1500))")
        await clients.stop()
    }

    /// Runs `openssl` with `arguments` in the fleet's folder; true when it exits 0.
    func openssl(_ fleet: TestFleet, _ arguments: [String]) throws -> Bool {
        try ChildProcess("/usr/bin/openssl", arguments, output: "\(fleet.path)/openssl-\(UUID().uuidString.prefix(6)).out").wait(timeout: 30) == 0
    }

    @Test("a device key in any form connects as that device: PKCS#8 and traditional EC, EC with explicit parameters, RSA")
    func keyFormsLoad() async throws {
        let fleet = try TestFleet(devices: ["dev-1"])
        defer { fleet.tearDown() }
        let dir = "\(fleet.path)/dev-1"
        #expect(try openssl(fleet, ["ec", "-in", "\(dir)/key.pem", "-out", "\(dir)/key-traditional.pem"]))
        #expect(try openssl(fleet, ["ec", "-in", "\(dir)/key.pem", "-param_enc", "explicit", "-out", "\(dir)/key-explicit.pem"]))
        // An RSA identity for dev-1 from the fleet's CA.
        #expect(try openssl(fleet, ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/rsa.key", "-subj", "/CN=dev-1",
                                    "-out", "\(dir)/rsa.csr"]))
        #expect(try openssl(fleet, ["x509", "-req", "-in", "\(dir)/rsa.csr", "-CA", fleet.caFile, "-CAkey", "\(fleet.path)/ca.key",
                                    "-CAcreateserial", "-days", "1", "-out", "\(dir)/rsa.pem"]))
        let clients = try await TLSClients(fleet: fleet)
        let forms = [("pkcs8", "cert.pem", "key.pem"), ("traditional", "cert.pem", "key-traditional.pem"),
                     ("explicit", "cert.pem", "key-explicit.pem"), ("rsa", "rsa.pem", "rsa.key")]
        for (name, cert, key) in forms {
            let tls = try TLSContext(trust: clients.trust, certFile: "\(dir)/\(cert)", keyFile: "\(dir)/\(key)",
                                     settings: TLSSettings(serverName: "localhost"))
            try await clients.add(name, tls: tls)
        }
        let names = forms.map(\.0)
        await clients.connect(names)
        #expect(await clients.waitConnected(names))
        let log = fleet.broker.log()
        for name in names { #expect(log.contains("as \(name) (p2, c1, k10, u'dev-1')"), "\(log.suffix(1500))") }
        // Another device's key with dev-1's certificate is refused at load, as before.
        let other = try TestFleet(devices: ["dev-2"], startBroker: false)
        defer { other.tearDown() }
        #expect(throws: MosquittoError.self) {
            _ = try TLSContext(trust: clients.trust, certFile: "\(dir)/cert.pem", keyFile: "\(other.path)/dev-2/key.pem",
                               settings: TLSSettings(serverName: "localhost"))
        }
        await clients.stop()
    }
}
