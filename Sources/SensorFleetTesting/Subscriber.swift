import Foundation

/// An independent subscriber: the real `mosquitto_sub` in its own process, with its own
/// identity, writing what it receives to a file we parse.
public final class Subscriber: @unchecked Sendable {
    public let outputPath: String
    public let clientID: String
    private var process: ChildProcess!

    /// - Parameters:
    ///   - topics: patterns to subscribe to (at `qos`).
    ///   - cleanSession: false keeps a persistent session at the broker (with `clientID`).
    ///   - qos: the subscription's QoS (1 by default; 2 to see duplicates the publisher did not make).
    public init(broker: TestBroker, caFile: String, certFile: String, keyFile: String, topics: [String],
         clientID: String = "observer-\(UUID().uuidString.prefix(6))", cleanSession: Bool = true, qos: Int = 1) throws {
        guard let binary = findExecutable("mosquitto_sub") else {
            throw TestFailure("mosquitto_sub is not installed: run Scripts/test, which installs it")
        }
        self.clientID = clientID
        outputPath = "\(broker.directory)/sub-\(clientID).txt"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        var arguments = [
            "-h", "127.0.0.1", "-p", "\(broker.port)", "--cafile", caFile, "--cert", certFile, "--key", keyFile,
            "-q", "\(qos)", "-v", "-i", clientID,
        ]
        if !cleanSession { arguments.append("-c") }
        for topic in topics { arguments += ["-t", topic] }
        process = try ChildProcess(binary, arguments, output: outputPath)
        let subscribed = "Received SUBSCRIBE from \(clientID)"
        let deadline = Date().addingTimeInterval(10)
        while !broker.log().contains(subscribed) {
            guard process.isRunning, Date() < deadline else {
                throw TestFailure("mosquitto_sub did not subscribe: \((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")")
            }
            usleep(20_000)
        }
    }

    /// Lines received so far: (topic, payload).
    public func messages() -> [(topic: String, payload: String)] {
        guard let text = try? String(contentsOfFile: outputPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> (topic: String, payload: String)? in
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            return (String(parts[0]), String(parts[1]))
        }
    }

    /// Telemetry seqs received per device, in arrival order.
    public func sequences() -> [String: [UInt64]] {
        var result: [String: [UInt64]] = [:]
        for message in messages() where message.topic.hasSuffix("/telemetry") {
            guard let data = message.payload.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let device = object["device"] as? String, let seq = (object["seq"] as? NSNumber)?.uint64Value
            else { continue }
            result[device, default: []].append(seq)
        }
        return result
    }

    public func stop() { process?.terminate() }

    deinit { stop() }
}
