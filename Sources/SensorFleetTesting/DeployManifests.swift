import Foundation
import SensorFleetCore

/// The repository this test kit was built from (its `deploy/`, `Dockerfile`, `Scripts/`).
public func repositoryRoot() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// The Kubernetes manifests in `deploy/kubernetes`, read as plain YAML (`YAML.compose`), for the tests that
/// validate them and run their arguments on this machine.
public struct DeployManifests: @unchecked Sendable {
    public let directory: String

    public init(directory: String = repositoryRoot() + "/deploy/kubernetes") {
        self.directory = directory
    }

    /// The manifest files (`*.yaml`), sorted.
    public func files() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// A YAML text as Foundation values (maps, lists, strings, numbers).
    public static func loadYAML(_ text: String) throws -> Any? { try YAML.compose(yaml: text).map(value(of:)) }

    /// Every document of `file`.
    public func documents(_ file: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
        return try YAML.composeAll(yaml: text).compactMap { Self.value(of: $0) as? [String: Any] }
    }

    /// A node as the Swift values Yams' `load` made of it: `[String: Any]` (merge keys `<<`
    /// applied, a later key winning), `[Any]`, and for scalars by their tag Int, Double, Bool,
    /// NSNull (plain only) or else the text. Timestamps stay text (Yams made a Date).
    static func value(of node: YAML.Node) -> Any {
        switch node {
        case .scalar(let scalar):
            let value: Any? = switch scalar.tag {
            case .int: Int.construct(from: scalar)
            case .float: Double.construct(from: scalar)
            case .bool: Bool.construct(from: scalar)
            case .null: scalar.style == .plain ? NSNull() : nil
            default: nil
            }
            return value ?? scalar.string
        case .sequence(let sequence):
            return sequence.map(value(of:))
        case .mapping(let mapping):
            var pairs: [(String, Any)] = []
            var merged: [(String, Any)] = []
            for (key, item) in mapping {
                if key.tag == .merge {
                    let sources: [YAML.Node] = switch item {
                    case .mapping: [item]
                    case .sequence(let list): list.reversed()
                    case .scalar: []
                    }
                    for source in sources {
                        guard case .mapping = source, let fields = value(of: source) as? [String: Any] else { continue }
                        merged.append(contentsOf: fields.map { ($0.key, $0.value) })
                    }
                } else {
                    pairs.append((key.scalar?.string ?? "\(key)", value(of: item)))
                }
            }
            return [String: Any](merged + pairs, uniquingKeysWith: { _, later in later })
        }
    }

    /// The one object of `kind` named `name` in any manifest.
    public func object(kind: String, name: String) throws -> [String: Any] {
        for file in try files() {
            for document in try documents(file) where document["kind"] as? String == kind {
                if (document["metadata"] as? [String: Any])?["name"] as? String == name { return document }
            }
        }
        throw TestFailure("no \(kind) \(name) in \(directory)")
    }

    /// The pod spec of a Job.
    public func podSpec(job: String) throws -> [String: Any] {
        let object = try object(kind: "Job", name: job)
        guard let spec = object["spec"] as? [String: Any], let template = spec["template"] as? [String: Any],
              let pod = template["spec"] as? [String: Any] else { throw TestFailure("Job \(job) has no pod template") }
        return pod
    }

    /// A container (or init container) of a Job's pod.
    public func container(job: String, _ name: String, initContainer: Bool = false) throws -> [String: Any] {
        let pod = try podSpec(job: job)
        let list = pod[initContainer ? "initContainers" : "containers"] as? [[String: Any]] ?? []
        guard let container = list.first(where: { $0["name"] as? String == name }) else {
            throw TestFailure("Job \(job) has no \(initContainer ? "init " : "")container \(name)")
        }
        return container
    }

    /// A container's `args`, as strings.
    public func arguments(job: String, _ name: String, initContainer: Bool = false) throws -> [String] {
        let container = try container(job: job, name, initContainer: initContainer)
        return (container["args"] as? [Any] ?? []).map { "\($0)" }
    }

    /// The `data` of a ConfigMap.
    public func configMap(_ name: String) throws -> [String: String] {
        let object = try object(kind: "ConfigMap", name: name)
        return (object["data"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
    }

    /// The `$(NAME)` references in `text`, as Kubernetes expands them in args.
    public static func variables(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "$(") {
            guard let close = rest[open.upperBound...].firstIndex(of: ")") else { break }
            names.append(String(rest[open.upperBound..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// What Kubernetes does to a container's args — `$(NAME)` replaced by the variable's value —
    /// and then the pod's paths replaced by this machine's (`/fleet` → a fleet folder, …): the only
    /// changes a test makes to a manifest's arguments. A reference without a value is an error.
    public static func expand(_ arguments: [String], variables: [String: String], paths: [String: String]) throws -> [String] {
        try arguments.map { argument in
            var text = argument
            for name in Self.variables(in: argument) {
                guard let value = variables[name] else { throw TestFailure("no value for $(\(name)) in \(argument)") }
                text = text.replacingOccurrences(of: "$(\(name))", with: value)
            }
            for (pod, local) in paths where text == pod || text.hasPrefix(pod + "/") {
                text = local + text.dropFirst(pod.count)
            }
            return text
        }
    }
}

/// `GET path` on an IPv4 address (not only loopback), over a plain blocking socket; nil when it
/// could not connect or no whole answer came within `timeout` seconds.
public func httpGet(address: String, port: Int, _ path: String, timeout: Double = 5) -> HTTPAnswer? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = in_port_t(UInt16(port).bigEndian)
    guard inet_pton(AF_INET, address, &sa.sin_addr) == 1 else { return nil }
    let connected = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    return exchange(fd, "GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n", timeout: timeout)
}

/// Runs `promtool check metrics` on an exposition; nil when promtool accepts it (and says
/// nothing), else what it said.
public func promtoolProblems(_ exposition: String, in dir: String) throws -> String? {
    guard let promtool = findExecutable("promtool") else { throw TestFailure("promtool is not installed (Debian package prometheus)") }
    let input = "\(dir)/exposition-\(UUID().uuidString.prefix(6)).txt"
    try exposition.write(toFile: input, atomically: true, encoding: .utf8)
    let output = input + ".out"
    let process = try ChildProcess("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, input], output: output)
    let code = process.wait(timeout: 30)
    let said = ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    return code == 0 && said.isEmpty ? nil : "exit \(code): \(said)"
}

/// Asks a Prometheus's HTTP API for an instant query; the value of its single result, or nil.
public func prometheusValue(port: Int, _ query: String) -> Double? {
    let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
    guard let answer = httpGet(port: port, "/api/v1/query?query=\(encoded)", timeout: 2), answer.status == 200,
          let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
          let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]], result.count == 1,
          let value = result[0]["value"] as? [Any], let text = value.last as? String else { return nil }
    return Double(text)
}
