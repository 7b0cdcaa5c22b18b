import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("deploy/: the Kubernetes manifests, the Dockerfile and the Grafana dashboard", .serialized)
struct DeployManifestTests {
    static let manifests = DeployManifests()
    static let root = repositoryRoot()

    /// Runs a program and returns its exit status and output.
    static func run(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        let dir = NSTemporaryDirectory()
        let output = "\(dir)/deploy-test-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let code = try ChildProcess(path, arguments, output: output).wait(timeout: 120)
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test("kubernetes-validate --strict accepts every manifest against the API schemas of Kubernetes 1.29 (the first with backoffLimitPerIndex on by default) and 1.37, and refuses a broken copy")
    func schemaValidation() throws {
        let validator = "\(Self.root)/.build/venv/bin/kubernetes-validate"
        guard FileManager.default.isExecutableFile(atPath: validator) else {
            print("skipped: \(validator) is missing (Scripts/test installs kubernetes-validate from PyPI into .build/venv)")
            return
        }
        // No schema here for the PodMonitor (a CRD of the Prometheus Operator) nor for the
        // kustomization (not an API object): checked field by field in podMonitorMatchesTheJob.
        let files = try Self.manifests.files().filter { !["podmonitor.yaml", "kustomization.yaml"].contains($0) }
        #expect(files.count == 6, "\(files)")
        for version in ["1.29.0", "1.37.0"] {
            let (code, said) = try Self.run(validator, ["--strict", "-k", version] + files.map { "\(Self.manifests.directory)/\($0)" })
            #expect(code == 0, "kubernetes \(version): \(said)")
            #expect(said.components(separatedBy: "passed for resource").count - 1 == files.count, "\(said)")
        }
        // The validator does refuse: a field the Job API does not have.
        let broken = NSTemporaryDirectory() + "bench-job-broken-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let text = try String(contentsOfFile: "\(Self.manifests.directory)/bench-job.yaml", encoding: .utf8)
        try text.replacingOccurrences(of: "  completionMode: Indexed", with: "  completionMode: Indexed\n  completionsPerIndex: 2")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let (code, said) = try Self.run(validator, ["--strict", broken])
        #expect(code != 0 && said.contains("completionsPerIndex"), "\(said)")
    }

    @Test("the Indexed Job: completions = parallelism = SENSORFLEET_SHARDS, per-index retries, provision --shard auto first, bench --shard auto with every $(…) defined, memory from the measured 53 KB per device")
    func indexedJob() throws {
        let job = try Self.manifests.object(kind: "Job", name: "sensorfleet-bench")
        let spec = try #require(job["spec"] as? [String: Any])
        let run = try Self.manifests.configMap("sensorfleet-run")
        let shards = try #require(Int(run["SENSORFLEET_SHARDS"] ?? ""))
        #expect(spec["completionMode"] as? String == "Indexed")
        #expect(spec["completions"] as? Int == shards && spec["parallelism"] as? Int == shards)
        #expect((spec["backoffLimitPerIndex"] as? Int ?? 0) >= 1)
        let pod = try Self.manifests.podSpec(job: "sensorfleet-bench")
        #expect(pod["restartPolicy"] as? String == "Never")
        #expect(try Self.manifests.arguments(job: "sensorfleet-bench", "provision", initContainer: true)
                == ["provision", "/fleet", "--shard", "auto"])
        let arguments = try Self.manifests.arguments(job: "sensorfleet-bench", "bench")
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(arguments.first == "bench" && value("--shard") == "auto")
        #expect(value("--start-at") == "$(START_AT)" && value("--run-id") == "$(RUN_ID)")
        #expect(value("--report") == "/reports/$(RUN_ID)-shard-$(JOB_COMPLETION_INDEX).json")
        // Every $(NAME) is a key of the run ConfigMap (envFrom) or the Job's own index.
        let referenced = Set(arguments.flatMap(DeployManifests.variables(in:)))
        #expect(referenced.subtracting(run.keys).subtracting(["JOB_COMPLETION_INDEX"]).isEmpty, "\(referenced.subtracting(run.keys))")
        // The metrics port: the one --metrics-listen binds, the container's named port, the annotation.
        let container = try Self.manifests.container(job: "sensorfleet-bench", "bench")
        let port = try #require((container["ports"] as? [[String: Any]])?.first { $0["name"] as? String == "metrics" }?["containerPort"] as? Int)
        #expect(value("--metrics-listen") == "0.0.0.0:\(port)")
        let template = try #require((job["spec"] as? [String: Any])?["template"] as? [String: Any])
        let annotations = try #require((template["metadata"] as? [String: Any])?["annotations"] as? [String: Any])
        #expect(annotations["prometheus.io/scrape"] as? String == "true" && annotations["prometheus.io/port"] as? String == "\(port)")
        // Non-root, as the Dockerfile's USER.
        let security = try #require(pod["securityContext"] as? [String: Any])
        #expect(security["runAsNonRoot"] as? Bool == true)
        let dockerfile = try String(contentsOfFile: "\(Self.root)/Dockerfile", encoding: .utf8)
        #expect(dockerfile.contains("USER \(security["runAsUser"] as? Int ?? -1):"))

        // Memory: 64 MiB + 53 KB per device of a shard (the fleet ConfigMap's templates / shards).
        let fleetYAML = try #require(try Self.manifests.configMap("sensorfleet-fleet")["fleet.yaml"])
        let fleet = try #require(try DeployManifests.loadYAML(fleetYAML) as? [String: Any])
        let devices = (fleet["templates"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        #expect(devices > 0)
        let perShard = (devices + shards - 1) / shards
        let resources = try #require(container["resources"] as? [String: Any])
        let request = try Self.mebibytes(try #require((resources["requests"] as? [String: Any])?["memory"] as? String))
        let limit = try Self.mebibytes(try #require((resources["limits"] as? [String: Any])?["memory"] as? String))
        let formula = 64 + Double(perShard) * 53 * 1000 / 1_048_576
        #expect(request >= formula.rounded(.down) && request < formula + 16, "request \(request) MiB, formula \(formula) MiB for \(perShard) devices")
        #expect(limit >= 1.3 * formula - 1, "limit \(limit) MiB")
    }

    static func mebibytes(_ quantity: String) throws -> Double {
        if quantity.hasSuffix("Mi"), let n = Double(quantity.dropLast(2)) { return n }
        if quantity.hasSuffix("Gi"), let n = Double(quantity.dropLast(2)) { return n * 1024 }
        throw TestFailure("memory quantity \(quantity): expected Mi or Gi")
    }

    @Test("the PodMonitor (no schema here: a CRD) selects the bench pods and scrapes their metrics port; the linger covers two scrapes; the kustomization lists every manifest but the merge Job")
    func podMonitorMatchesTheJob() throws {
        let monitor = try Self.manifests.object(kind: "PodMonitor", name: "sensorfleet")
        #expect(monitor["apiVersion"] as? String == "monitoring.coreos.com/v1")
        let spec = try #require(monitor["spec"] as? [String: Any])
        let selector = try #require((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
        let job = try Self.manifests.object(kind: "Job", name: "sensorfleet-bench")
        let template = try #require((job["spec"] as? [String: Any])?["template"] as? [String: Any])
        let labels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
        #expect(!selector.isEmpty && selector.allSatisfy { labels[$0.key] == $0.value }, "selector \(selector), pod labels \(labels)")
        let merge = try Self.manifests.object(kind: "Job", name: "sensorfleet-merge")
        let mergeLabels = (((merge["spec"] as? [String: Any])?["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        #expect(!selector.allSatisfy { mergeLabels[$0.key] == $0.value }, "the merge pod serves no metrics")
        let endpoints = try #require(spec["podMetricsEndpoints"] as? [[String: Any]])
        #expect(endpoints.count == 1 && endpoints[0]["port"] as? String == "metrics" && endpoints[0]["path"] as? String == "/metrics")
        let interval = try #require(Double((endpoints[0]["interval"] as? String ?? "").dropLast()))
        let linger = try #require(Double(try Self.manifests.configMap("sensorfleet-run")["METRICS_LINGER"] ?? ""))
        #expect(linger >= 2 * interval)

        let kustomization = try #require(try Self.manifests.documents("kustomization.yaml").first)
        let listed = Set(kustomization["resources"] as? [String] ?? [])
        let expected = Set(try Self.manifests.files()).subtracting(["kustomization.yaml", "merge-job.yaml"])
        #expect(listed == expected)
    }

    @Test("the Dockerfile builds as Scripts/demo does (plus --static-swift-stdlib); its runtime packages hold every shared library the binary needs; no Docker engine here to build it")
    func dockerfile() throws {
        let dockerfile = try String(contentsOfFile: "\(Self.root)/Dockerfile", encoding: .utf8)
        let demo = try String(contentsOfFile: "\(Self.root)/Scripts/demo", encoding: .utf8)
        func buildCommand(_ text: String) -> String? {
            // `swift build` and its options (flags and their word values), up to a redirection or `\`.
            guard let range = text.range(of: #"swift build(?: --?[a-z-]+(?: [a-z][a-z0-9-]*)?)*"#, options: .regularExpression) else { return nil }
            return text[range].trimmingCharacters(in: .whitespaces)
        }
        let scripts = try #require(buildCommand(demo))
        let image = try #require(buildCommand(dockerfile))
        #expect(image == scripts + " --static-swift-stdlib", "Dockerfile: \(image); Scripts/demo: \(scripts)")
        let stages = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2 && stages[1] == "FROM debian:bookworm-slim", "\(stages)")
        // The runtime stage's apt-get install list.
        let runtime = String(dockerfile[try #require(dockerfile.range(of: "FROM debian:bookworm-slim")).upperBound...])
        let install = try #require(runtime.range(of: #"--no-install-recommends[^&]*"#, options: .regularExpression))
        let packages = Set(runtime[install].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\\" }).map(String.init).dropFirst())
        #expect(packages.contains("libmosquitto1") && packages.contains("libssl3"), "\(packages)")
        // Every library the binary links, but the Swift runtime (inside it with
        // --static-swift-stdlib), comes from those packages or the base image's.
        let binary = try sensorfleetBinary()
        let (code, ldd) = try Self.run("/usr/bin/ldd", [binary])
        #expect(code == 0, "\(ldd)")
        let base: Set<String> = ["libc6", "libgcc-s1", "libstdc++6"]
        var needed: Set<String> = []
        for line in ldd.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 3, parts[1] == "=>", !parts[2].contains("swift") else { continue }
            // Debian 12 merged /usr: dpkg knows a library by one of the two paths.
            let path = String(parts[2])
            let other = path.hasPrefix("/usr/") ? String(path.dropFirst(4)) : "/usr" + path
            var ownerPackage = ""
            for candidate in [path, other] where ownerPackage.isEmpty {
                let (found, said) = try Self.run("/usr/bin/dpkg", ["-S", candidate])
                if found == 0, let line = said.split(separator: "\n").first(where: { $0.hasSuffix(": \(candidate)") }) {
                    ownerPackage = String(line.split(separator: ":").first ?? "")
                }
            }
            #expect(!ownerPackage.isEmpty, "no Debian package owns \(path)")
            needed.insert(ownerPackage)
        }
        #expect(needed.contains("libmosquitto1"))
        #expect(needed.subtracting(packages).subtracting(base).isEmpty, "linked, not installed: \(needed.subtracting(packages).subtracting(base))")
        #expect(packages.subtracting(needed).isEmpty, "installed, not linked: \(packages.subtracting(needed))")
        print("dockerfile: runtime packages \(packages.sorted()), the binary links \(needed.sorted()); `docker build` not run (no Docker engine on this machine)")
    }

    @Test("the Grafana dashboard parses, and every metric its PromQL uses is in the exposition of a running bench")
    func grafanaDashboard() async throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.root)/deploy/grafana/sensorfleet.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= 15)
        let variables = ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(variables.contains("run_id") && variables.contains("shard"))
        let pattern = try NSRegularExpression(pattern: #"\b(sensorfleet_[a-z_]+|process_[a-z_]+)\b"#)
        var names: Set<String> = []
        for expression in expressions {
            for match in pattern.matches(in: expression, range: NSRange(expression.startIndex..., in: expression)) {
                names.insert(String(expression[Range(match.range, in: expression)!]))
            }
            #expect(!expression.contains("histogram_quantile") || expression.contains("_bucket"), "\(expression)")
        }
        #expect(names.contains("sensorfleet_end_to_end_latency_seconds_bucket") && names.contains("sensorfleet_messages_dropped_total"))

        // A real bench's exposition.
        let fleet = try TestFleet(devices: ["gf-1", "gf-2"], interval: 0.05)
        defer { fleet.tearDown() }
        let port = freePort()
        let (bench, output) = try launchSensorfleet(
            ["bench", fleet.path, "--rate", "20", "--duration", "3", "--metrics-listen", "127.0.0.1:\(port)", "--run-id", "grafana"], in: fleet.path)
        defer { bench.signal(SIGKILL) }
        var exposition: PrometheusText?
        #expect(await waitFor(20) {
            guard let answer = httpGet(port: port, "/metrics", timeout: 1), let text = try? PrometheusText(answer.body) else { return false }
            exposition = text
            return (text.value("sensorfleet_end_to_end_latency_seconds_count") ?? 0) > 0
        }, "bench: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        let text = try #require(exposition)
        let exposed = Set(text.samples.map(\.name))
        #expect(names.subtracting(exposed).isEmpty, "not in the exposition: \(names.subtracting(exposed).sorted())")
        // The labels the dashboard groups and filters by.
        for label in ["run_id", "shard"] { #expect(text.samples.allSatisfy { $0.labels[label] != nil }, "\(label)") }
        #expect(text.samples.contains { $0.name == "sensorfleet_messages_dropped_total" && $0.labels["reason"] != nil })
        #expect(text.samples.contains { $0.name == "sensorfleet_connect_failures_total" && $0.labels["reason"] != nil })
        #expect(bench.wait(timeout: 30) == 0)
    }
}
