import Foundation
import Logging
import MosquittoKit
import Synchronization
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// Sparkplug B edge nodes against a real mosquitto over mutual TLS. What the broker delivers is
/// captured by `mosquitto_sub` (as hex) and decoded by `protoc --decode` with
/// Protos/sparkplug_b.proto: an independent decoder, not our generated code. Commands to the
/// node are encoded by `protoc --encode`.
@Suite("Sparkplug B edge nodes over a real mosquitto", .serialized)
struct SparkplugIntegrationTests {
    static let deviceYAML = "payload: sparkplug_b\nsparkplug:\n  group_id: plant-1"

    @Test("NBIRTH (seq 0, bdSeq 0, names + aliases + datatypes), then NDATA with aliases only and seq 1…255, 0…, decoded by protoc")
    func birthThenDataWithAliasesAndAWrappingSeq() async throws {
        let fleet = try TestFleet(devices: ["sp-wrap"], interval: 0.005, qos: 0, deviceExtra: { _ in Self.deviceYAML })
        defer { fleet.tearDown() }
        let capture = try SparkplugCapture(fleet)
        defer { capture.stop() }
        let runner = try fleet.makeFleet()
        await runner.start()
        // 270 NDATA take the session's seq past 255 and back through 0.
        #expect(await waitFor(20) { capture.count(topic: "spBv1.0/plant-1/NDATA/sp-wrap") >= 270 })
        _ = await runner.stop()

        let messages = try capture.decoded()
        let births = messages.filter { $0.topic == "spBv1.0/plant-1/NBIRTH/sp-wrap" }
        try #require(births.count == 1, "births: \(births.count)")
        let birth = births[0].payload
        #expect(birth.int("seq") == 0)
        #expect((birth.int("timestamp") ?? 0) > 1_600_000_000_000)
        #expect(birth.metric(named: "bdSeq")?["long_value"] == "0")
        #expect(birth.metric(named: "bdSeq")?["datatype"] == "4")  // Int64
        #expect(birth.metric(named: "Node Control/Rebirth")?["alias"] == "1")
        #expect(birth.metric(named: "Node Control/Rebirth")?["datatype"] == "11")  // Boolean
        #expect(birth.metric(named: "Node Control/Rebirth")?["boolean_value"] == "false")
        #expect(birth.metric(named: "SensorFleet/seq")?["alias"] == "2")
        #expect(birth.metric(named: "SensorFleet/seq")?["datatype"] == "8")  // UInt64
        #expect(birth.metric(named: "temperature")?["alias"] == "3")
        #expect(birth.metric(named: "temperature")?["datatype"] == "10")  // Double

        // Every NDATA after the birth: no names, the aliases from the birth, seq 1, 2 … 255, 0, 1 …
        let data = messages.filter { $0.topic == "spBv1.0/plant-1/NDATA/sp-wrap" }.map(\.payload)
        let birthIndex = try #require(messages.firstIndex { $0.topic.contains("/NBIRTH/") })
        let firstData = try #require(messages.firstIndex { $0.topic.contains("/NDATA/") })
        #expect(birthIndex < firstData, "an NDATA came before the NBIRTH")
        #expect(data.allSatisfy { $0.metrics.allSatisfy { $0["name"] == nil } }, "an NDATA carries metric names")
        #expect(data.allSatisfy { Set($0.metrics.compactMap { $0["alias"] }).isSubset(of: ["2", "3"]) })
        let seqs = data.compactMap { $0.int("seq") }
        #expect(seqs.count == data.count)
        #expect(Array(seqs.prefix(270)) == (1...270).map { $0 % 256 }, "seqs: \(seqs.prefix(270))")
        // Our own 64-bit seq (alias 2) goes on without wrapping: 1, 2, 3 …
        let ours = data.compactMap { $0.metrics.first { $0["alias"] == "2" }?["long_value"].flatMap { UInt64($0) } }
        #expect(Array(ours.prefix(270)) == Array(1...270))
        // Size at the broker, beside the JSON payload of the same reading (a figure, not asserted).
        let sizes = capture.raw().filter { $0.topic.hasSuffix("/NDATA/sp-wrap") }.map(\.bytes.count)
        let json = TelemetryPayload.encode(device: "sp-wrap", seq: 200, timestampMillis: WallClock.millis(), readings: [("temperature", 21.37)])
        let birthSize = capture.raw().first { $0.topic.hasSuffix("/NBIRTH/sp-wrap") }?.bytes.count ?? 0
        print("sparkplug: 1 NBIRTH (\(birthSize) bytes), \(data.count) NDATA decoded by protoc; seq wrapped 255 → 0 at NDATA #256; "
            + "NDATA \(sizes.min() ?? 0)–\(sizes.max() ?? 0) bytes (one sensor) vs \(json.count) bytes of JSON")
    }

    @Test("NCMD `Node Control/Rebirth` = true (encoded by protoc): a new NBIRTH with seq 0 and the same bdSeq, NDATA from seq 1 again")
    func rebirthOnCommand() async throws {
        let fleet = try TestFleet(devices: ["sp-re"], interval: 0.05, qos: 0, deviceExtra: { _ in Self.deviceYAML })
        defer { fleet.tearDown() }
        let capture = try SparkplugCapture(fleet)
        defer { capture.stop() }
        let runner = try fleet.makeFleet()
        await runner.start()
        #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NDATA/sp-re") >= 5 })
        let request = try protoc(["--encode=org.eclipse.tahu.protobuf.Payload"], input: Array("""
            timestamp: 1700000000000
            metrics { name: "Node Control/Rebirth" datatype: 11 boolean_value: true }
            """.utf8))
        try publishBinaryAsObserver(fleet, topic: "spBv1.0/plant-1/NCMD/sp-re", request)
        #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NBIRTH/sp-re") >= 2 })
        #expect(await waitFor(15) {
            guard let messages = try? capture.decoded(),
                  let second = messages.indices.filter({ messages[$0].topic.hasSuffix("/NBIRTH/sp-re") }).dropFirst().first
            else { return false }
            return messages[(second + 1)...].contains { $0.topic.hasSuffix("/NDATA/sp-re") }
        })
        _ = await runner.stop()

        let messages = try capture.decoded()
        let birthIndices = messages.indices.filter { messages[$0].topic.hasSuffix("/NBIRTH/sp-re") }
        try #require(birthIndices.count == 2)
        let (first, second) = (messages[birthIndices[0]].payload, messages[birthIndices[1]].payload)
        #expect(second.int("seq") == 0)
        #expect(second.metric(named: "bdSeq")?["long_value"] == first.metric(named: "bdSeq")?["long_value"])
        let after = try #require(messages[(birthIndices[1] + 1)...].first { $0.topic.hasSuffix("/NDATA/sp-re") })
        #expect(after.payload.int("seq") == 1)
        // The birth reports our seq reached so far; the NDATA after it goes on from there.
        let birthSeq = try #require(second.metric(named: "SensorFleet/seq")?["long_value"].flatMap { UInt64($0) })
        let nextSeq = try #require(after.payload.metrics.first { $0["alias"] == "2" }?["long_value"].flatMap { UInt64($0) })
        #expect(nextSeq == birthSeq + 1)
    }

    @Test("connection cut without DISCONNECT: the broker publishes the NDEATH will with the birth's bdSeq; the next CONNECT's birth has bdSeq + 1")
    func deathCertificateIsTheWill() async throws {
        let fleet = try TestFleet(devices: ["sp-cut"], interval: 0.05, qos: 0, deviceExtra: { _ in Self.deviceYAML })
        defer { fleet.tearDown() }
        let capture = try SparkplugCapture(fleet)
        defer { capture.stop() }
        let proxy = try TCPProxy(target: fleet.broker.port)
        defer { proxy.close() }
        let runner = try fleet.makeFleet(RunOptions(backoff: BackoffPolicy(base: 0.1, cap: 1)), broker: (nil, proxy.port))
        await runner.start()
        #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NDATA/sp-cut") >= 3 })
        #expect(capture.count(topic: "spBv1.0/plant-1/NDEATH/sp-cut") == 0)
        proxy.reset()
        #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NDEATH/sp-cut") >= 1 })
        #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NBIRTH/sp-cut") >= 2 })
        _ = await runner.stop()

        let messages = try capture.decoded()
        let births = messages.filter { $0.topic.hasSuffix("/NBIRTH/sp-cut") }.map(\.payload)
        let deaths = messages.filter { $0.topic.hasSuffix("/NDEATH/sp-cut") }.map(\.payload)
        #expect(births.first?.metric(named: "bdSeq")?["long_value"] == "0")
        #expect(deaths.first?.metric(named: "bdSeq")?["long_value"] == "0", "the will's bdSeq must match the first birth's")
        #expect(deaths.first?.int("seq") == nil, "an NDEATH carries no seq")
        #expect(births.dropFirst().first?.metric(named: "bdSeq")?["long_value"] == "1")
        #expect(births.dropFirst().first?.int("seq") == 0)
        // The clean stop published the second connection's NDEATH itself (DISCONNECT drops the will).
        #expect(await waitFor(10) { capture.count(topic: "spBv1.0/plant-1/NDEATH/sp-cut") >= 2 })
        #expect(try capture.decoded().filter { $0.topic.hasSuffix("/NDEATH/sp-cut") }.last?.payload.metric(named: "bdSeq")?["long_value"] == "1")
    }

    @Test("bdSeq is kept across restarts in --state-dir: the second run's NBIRTH has bdSeq 1, and our seq goes on")
    func bdSeqSurvivesARestart() async throws {
        let fleet = try TestFleet(devices: ["sp-keep"], interval: 0.05, qos: 0, deviceExtra: { _ in Self.deviceYAML })
        defer { fleet.tearDown() }
        let capture = try SparkplugCapture(fleet)
        defer { capture.stop() }
        var options = RunOptions()
        options.stateDirectory = "\(fleet.path)/state"
        for run in 1...2 {
            let runner = try fleet.makeFleet(options)
            await runner.start()
            #expect(await waitFor(15) { capture.count(topic: "spBv1.0/plant-1/NDATA/sp-keep") >= 3 * run })
            _ = await runner.stop()
            #expect(await waitFor(10) { capture.count(topic: "spBv1.0/plant-1/NDEATH/sp-keep") >= run })
        }
        #expect(try String(contentsOfFile: "\(fleet.path)/state/sparkplug/sp-keep.bdseq", encoding: .utf8) == "1\n")
        let messages = try capture.decoded()
        let births = messages.filter { $0.topic.hasSuffix("/NBIRTH/sp-keep") }.map(\.payload)
        let deaths = messages.filter { $0.topic.hasSuffix("/NDEATH/sp-keep") }.map(\.payload)
        #expect(births.map { $0.metric(named: "bdSeq")?["long_value"] } == ["0", "1"])
        #expect(deaths.map { $0.metric(named: "bdSeq")?["long_value"] } == ["0", "1"])
        let ours = messages.filter { $0.topic.hasSuffix("/NDATA/sp-keep") }
            .compactMap { $0.payload.metrics.first { $0["alias"] == "2" }?["long_value"].flatMap { UInt64($0) } }
        #expect(ours == Array(1...UInt64(ours.count)), "our seq restarted or skipped: \(ours)")
    }

    @Test("the load-test verifier counts every NDATA by SensorFleet/seq: 2 nodes × 40 messages, no gaps")
    func verifierReadsSparkplug() async throws {
        let fleet = try TestFleet(devices: ["sp-v1", "sp-v2"], interval: 0.01, qos: 0, deviceExtra: { _ in Self.deviceYAML })
        defer { fleet.tearDown() }
        let spec = try fleet.load()
        #expect(spec.devices.map(\.topic) == ["spBv1.0/plant-1/NDATA/sp-v1", "spBv1.0/plant-1/NDATA/sp-v2"])
        var logger = Logger(label: "verifier")
        logger.logLevel = .critical
        let verifier = try Verifier(
            settings: .init(host: "127.0.0.1", port: fleet.broker.port, caFile: fleet.caFile, certFile: fleet.observerCert,
                            keyFile: fleet.observerKey, tls: TLSSettings(serverName: "localhost"), connections: 1),
            topics: spec.devices.map { ($0.id, $0.topic) }, logger: logger)
        try await verifier.start(timeout: 10)
        var options = RunOptions()
        options.publishing = PublishSettings(messagesPerDevice: 40)
        let runner = try fleet.makeFleet(options)
        await runner.start()
        #expect(await waitFor(15) { await verifier.counts().values.allSatisfy { $0.unique >= 40 } })
        _ = await runner.stop()
        let counts = await verifier.counts()
        await verifier.stop()
        for id in ["sp-v1", "sp-v2"] {
            #expect(counts[id]?.unique == 40 && counts[id]?.highest == 40 && counts[id]?.gaps() == 0, "\(id): \(String(describing: counts[id]))")
        }
        #expect(verifier.errors.load(ordering: .relaxed) == 0)
        #expect(verifier.latency.total.totalCount >= 80)  // a latency from every NDATA's timestamp
    }
}

// MARK: - Capture and decoding with protoc

/// Where Protos/sparkplug_b.proto is.
private let protoDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Protos").path

/// Runs protoc with the Sparkplug proto, `input` on stdin; returns stdout.
private func protoc(_ arguments: [String], input: [UInt8], extraProto: String? = nil) throws -> [UInt8] {
    guard let binary = findExecutable("protoc") else {
        throw TestFailure("protoc is not installed: run Scripts/test, which installs protobuf-compiler")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    var protoArguments = ["--proto_path=\(protoDirectory)"]
    if let extraProto {
        protoArguments += ["--proto_path=\((extraProto as NSString).deletingLastPathComponent)", extraProto]
    } else {
        protoArguments.append("\(protoDirectory)/sparkplug_b.proto")
    }
    process.arguments = arguments + protoArguments
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    let errors = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure("protoc \(arguments) exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
    }
    return [UInt8](output)
}

private func publishBinaryAsObserver(_ fleet: TestFleet, topic: String, _ payload: [UInt8]) throws {
    let binary = try #require(findExecutable("mosquitto_pub"))
    let file = "\(fleet.path)/ncmd-\(UUID().uuidString.prefix(6)).bin"
    try Data(payload).write(to: URL(fileURLWithPath: file))
    let process = try ChildProcess(binary, [
        "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
        "--key", fleet.observerKey, "-q", "1", "-t", topic, "-f", file,
    ], output: file + ".out")
    #expect(process.wait() == 0)
}

/// One message as protoc printed it: the payload's scalar fields and each metric's fields.
struct DecodedPayload {
    var fields: [String: String] = [:]
    var metrics: [[String: String]] = []

    func int(_ key: String) -> Int? { fields[key].flatMap { Int($0) } }
    func metric(named name: String) -> [String: String]? { metrics.first { $0["name"] == name } }
}

/// `mosquitto_sub` as the observer on spBv1.0/#, printing `topic hex-payload` per message.
final class SparkplugCapture: @unchecked Sendable {
    let process: ChildProcess
    let output: String
    let directory: String

    init(_ fleet: TestFleet) throws {
        let binary = try #require(findExecutable("mosquitto_sub"))
        directory = fleet.path
        output = "\(fleet.path)/sparkplug-capture.txt"
        let clientID = "sp-capture-\(UUID().uuidString.prefix(6))"
        process = try ChildProcess(binary, [
            "-h", "127.0.0.1", "-p", "\(fleet.broker.port)", "--cafile", fleet.caFile, "--cert", fleet.observerCert,
            "--key", fleet.observerKey, "-q", "1", "-i", clientID, "-t", "spBv1.0/#", "-F", "%t %x",
        ], output: output)
        let subscribed = await_(10) { fleet.broker.log().contains("Received SUBSCRIBE from \(clientID)") }
        if !subscribed { throw TestFailure("mosquitto_sub did not subscribe to spBv1.0/#") }
    }

    func stop() { process.terminate() }

    /// (topic, payload bytes) of every complete line so far.
    func raw() -> [(topic: String, bytes: [UInt8])] {
        guard let text = try? String(contentsOfFile: output, encoding: .utf8) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if !text.hasSuffix("\n") { lines.removeLast() }  // still being written
        return lines.compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count >= 1 else { return nil }
            let hex = parts.count == 2 ? Array(parts[1].utf8) : []
            guard hex.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(hex.count / 2)
            var i = 0
            while i < hex.count {
                guard let byte = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(byte)
                i += 2
            }
            return (String(parts[0]), bytes)
        }
    }

    func count(topic: String) -> Int { raw().lazy.filter { $0.topic == topic }.count }

    /// Every message so far, decoded by one `protoc --decode` run: the payloads are wrapped as
    /// the repeated field 1 of a `Capture` message that imports sparkplug_b.proto.
    func decoded() throws -> [(topic: String, payload: DecodedPayload)] {
        let messages = raw()
        let wrapper = "\(directory)/capture.proto"
        try """
        syntax = "proto2";
        import "sparkplug_b.proto";
        message Capture { repeated org.eclipse.tahu.protobuf.Payload payloads = 1; }
        """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        var stream: [UInt8] = []
        for message in messages {
            stream.append(0x0A)  // field 1, length-delimited
            var length = UInt64(message.bytes.count)
            repeat {
                let low = UInt8(length & 0x7F)
                length >>= 7
                stream.append(length > 0 ? low | 0x80 : low)
            } while length > 0
            stream += message.bytes
        }
        let text = String(decoding: try protoc(["--decode=Capture"], input: stream, extraProto: wrapper), as: UTF8.self)
        let payloads = Self.parse(text)
        guard payloads.count == messages.count else {
            throw TestFailure("protoc printed \(payloads.count) payloads for \(messages.count) messages")
        }
        return zip(messages, payloads).map { ($0.topic, $1) }
    }

    /// protoc's text format, as far as Sparkplug payloads go: `payloads { … metrics { … } … }`.
    static func parse(_ text: String) -> [DecodedPayload] {
        var result: [DecodedPayload] = []
        var current: DecodedPayload?
        var metric: [String: String]?
        var depth = 0
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("{") {
                depth += 1
                if depth == 1 { current = DecodedPayload() }
                if depth == 2 && line.hasPrefix("metrics ") { metric = [:] }
                continue
            }
            if line == "}" {
                if depth == 2, let done = metric { current?.metrics.append(done); metric = nil }
                if depth == 1, let done = current { result.append(done); current = nil }
                depth -= 1
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            if depth == 2, metric != nil { metric?[key] = value } else if depth == 1 { current?.fields[key] = value }
        }
        return result
    }
}

/// A synchronous wait with a deadline (for an initializer).
private func await_(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() >= deadline { return false }
        usleep(20_000)
    }
    return true
}
