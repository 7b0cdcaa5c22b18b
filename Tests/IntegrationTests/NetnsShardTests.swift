import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Shards as three hosts: network namespaces, one mosquitto, a real Prometheus, the Job manifest's arguments", .serialized)
struct NetnsShardTests {
    /// The p99 of one histogram of every shard's samples, built here from the reports' bucket
    /// counts (not through ReportMerge): HDR's rule, the lowest bucket whose cumulative count
    /// reaches ⌈99 % of the total⌉.
    static func p99(_ histograms: [HistogramCounts]) -> UInt64 {
        var counts: [UInt64: UInt64] = [:]
        for histogram in histograms { for bucket in histogram.buckets { counts[bucket[0], default: 0] += bucket[1] } }
        let total = counts.values.reduce(0, +)
        let rank = max(1, (99 * total + 99) / 100)
        var cumulative: UInt64 = 0
        for value in counts.keys.sorted() {
            cumulative += counts[value]!
            if cumulative >= rank { return value }
        }
        return 0
    }

    @Test("3 × the Job's `provision` and `bench` arguments, each shard in its own network namespace, against one mosquitto; merged by the merge Job's command; scraped by Prometheus")
    func threeHostsLikeTheIndexedJob() async throws {
        if let reason = NetworkNamespaces.unavailableReason {
            print("skipped: \(reason)")
            return
        }
        guard let prometheus = findExecutable("prometheus"), findExecutable("promtool") != nil else {
            print("skipped: prometheus is not installed (Debian package prometheus; Scripts/lib/common.sh installs it)")
            return
        }
        // What the cluster would run.
        let manifests = DeployManifests()
        let run = try manifests.configMap("sensorfleet-run")
        let shards = try #require(Int(run["SENSORFLEET_SHARDS"] ?? ""))
        let provisionArguments = try manifests.arguments(job: "sensorfleet-bench", "provision", initContainer: true)
        let benchArguments = try manifests.arguments(job: "sensorfleet-bench", "bench")
        let mergeScript = try #require(try manifests.arguments(job: "sensorfleet-merge", "merge").first)
        let listenFlag = try #require(benchArguments.firstIndex(of: "--metrics-listen"))
        let metricsPort = try #require(Int(benchArguments[listenFlag + 1].split(separator: ":").last ?? ""))

        let hosts = try NetworkNamespaces(count: shards)
        defer { hosts.remove() }
        let brokerAddress = hosts.hosts[0].hostAddress
        let brokerPort = freePort()
        let ids = (1...12).map { String(format: "ns-%02d", $0) }
        // One mosquitto in the root namespace: its loopback listener, and one on the root end of
        // the first veth with a server certificate for that address (signed by the fleet CA).
        let fleet = try TestFleet(devices: ids, brokerSettings: { settings, path in
            try Self.issueServerCertificate(in: path, ip: brokerAddress)
            settings.extra += [
                "listener \(brokerPort) \(brokerAddress)", "cafile \(path)/ca.pem", "certfile \(path)/netns-server.pem",
                "keyfile \(path)/netns-server.key", "require_certificate true", "use_identity_as_username true",
                "tls_version tlsv1.2",
            ]
        })
        defer { fleet.tearDown() }
        let reports = "\(fleet.path)/reports"
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)

        // A real Prometheus in the root namespace scrapes each host's /metrics.
        let prometheusDir = try TempDir("prometheus")
        defer { prometheusDir.remove() }
        let targets = hosts.hosts.map { "\"\($0.address):\(metricsPort)\"" }.joined(separator: ", ")
        try """
        global:
          scrape_interval: 500ms
          scrape_timeout: 400ms
        scrape_configs:
          - job_name: sensorfleet
            static_configs:
              - targets: [\(targets)]
        """.write(toFile: "\(prometheusDir.path)/prometheus.yml", atomically: true, encoding: .utf8)
        let webPort = freePort()
        let prometheusProcess = try ChildProcess(prometheus, [
            "--config.file=\(prometheusDir.path)/prometheus.yml", "--storage.tsdb.path=\(prometheusDir.path)/data",
            "--web.listen-address=127.0.0.1:\(webPort)",
        ], output: "\(prometheusDir.path)/prometheus.out")
        defer { prometheusProcess.terminate() }

        // The pods: each its own fleet folder (fleet.yaml and the CA, as the ConfigMap and the
        // Secret mount them, plus the device folders a fleet without templates has), its shard's
        // credentials made by the init container's arguments.
        let runID = "netns-\(hosts.tag)"
        let messages = 20
        var variables = run
        variables.merge([
            "BROKER": "\(brokerAddress):\(brokerPort)", "RUN_ID": runID,
            "RATE": "10", "MESSAGES": "\(messages)", "DURATION": "30", "WARMUP": "0", "METRICS_LINGER": "3",
        ]) { _, test in test }
        let binary = try sensorfleetBinary()
        var pods: [(arguments: [String], environment: [String: String], output: String)] = []
        for i in 0..<shards {
            let pod = "\(fleet.path)/pod-\(i)"
            try FileManager.default.createDirectory(atPath: pod, withIntermediateDirectories: true)
            for file in ["fleet.yaml", "ca.pem", "ca.key"] {
                try FileManager.default.copyItem(atPath: "\(fleet.path)/\(file)", toPath: "\(pod)/\(file)")
            }
            for id in ids {
                try FileManager.default.createDirectory(atPath: "\(pod)/\(id)", withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: "\(fleet.path)/\(id)/device.yaml", toPath: "\(pod)/\(id)/device.yaml")
            }
            var environment = ["JOB_COMPLETION_INDEX": "\(i)", "SENSORFLEET_SHARDS": "\(shards)"]
            variables["JOB_COMPLETION_INDEX"] = "\(i)"
            let paths = ["/fleet": pod, "/reports": reports]
            let provision = try hosts.launch(i, binary, try DeployManifests.expand(provisionArguments, variables: variables, paths: paths),
                                             environment: environment, output: "\(pod)/provision.out")
            #expect(provision.wait(timeout: 60) == 0, "provision: \((try? String(contentsOfFile: "\(pod)/provision.out", encoding: .utf8)) ?? "")")
            let mine = try Shard(index: i, count: shards).range(of: ids.count)
            for (position, id) in ids.enumerated() {
                #expect(FileManager.default.fileExists(atPath: "\(pod)/\(id)/key.pem") == mine.contains(position),
                        "pod \(i): \(id)'s key (shard owns \(mine))")
            }
            environment.merge(run) { mine, _ in mine }
            pods.append((benchArguments, environment, "\(pod)/bench.out"))
        }
        // All start together, a few seconds from now.
        variables["START_AT"] = "\(Int(Date().timeIntervalSince1970) + 4)"
        var benches: [(ChildProcess, String)] = []
        defer { for (process, _) in benches { process.signal(SIGKILL) } }
        for (i, pod) in pods.enumerated() {
            variables["JOB_COMPLETION_INDEX"] = "\(i)"
            let paths = ["/fleet": "\(fleet.path)/pod-\(i)", "/reports": reports]
            let arguments = try DeployManifests.expand(pod.arguments, variables: variables, paths: paths)
            benches.append((try hosts.launch(i, binary, arguments, environment: pod.environment, output: pod.output), pod.output))
        }
        func said(_ i: Int) -> String { (try? String(contentsOfFile: benches[i].1, encoding: .utf8)) ?? "" }

        // Each shard's exposition once its run is complete (all its messages sent and received; it
        // lingers 5 s serving them), as promtool sees it. (Its output is buffered until it exits.)
        var scraped: [PrometheusText] = []
        for (i, host) in hosts.hosts.enumerated() {
            let expected = Double(try Shard(index: i, count: shards).range(of: ids.count).count * messages)
            var last: (body: String, text: PrometheusText)?
            let complete = await waitFor(60) {
                guard let answer = httpGet(address: host.address, port: metricsPort, "/metrics", timeout: 1),
                      let text = try? PrometheusText(answer.body) else { return false }
                last = (answer.body, text)
                return text.value("sensorfleet_messages_sent_total") == expected && text.value("sensorfleet_messages_received_total") == expected
            }
            #expect(complete, "shard \(i) at \(host.address): \(last?.body.prefix(400) ?? "no answer"); \(said(i))")
            let final = try #require(last)
            #expect(try promtoolProblems(final.body, in: fleet.path) == nil)
            scraped.append(final.text)
        }
        var shardReports: [BenchReport] = []
        for i in 0..<shards {
            #expect(benches[i].0.wait(timeout: 60) == 0, "shard \(i): \(said(i))")
            shardReports.append(try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: "\(reports)/\(runID)-shard-\(i).json"))))
        }
        for (i, report) in shardReports.enumerated() {
            #expect(report.shard == "\(i)/\(shards)" && report.runId == runID)
            #expect(scraped[i].value("sensorfleet_messages_sent_total", ["run_id": runID, "shard": "\(i)/\(shards)"]) == Double(report.sent))
            #expect(scraped[i].value("sensorfleet_messages_received_total") == Double(report.received))
        }

        // The merge Job's command, its /reports on this machine.
        let mergeOutput = "\(fleet.path)/merge.out"
        let binDirectory = URL(fileURLWithPath: binary).deletingLastPathComponent().path
        let merge = try ChildProcess("/usr/bin/env", [
            "RUN_ID=\(runID)", "PATH=\(binDirectory):/usr/bin:/bin", "/bin/sh", "-c",
            mergeScript.replacingOccurrences(of: "/reports/", with: "\(reports)/"),
        ], output: mergeOutput)
        #expect(merge.wait(timeout: 60) == 0, "merge: \((try? String(contentsOfFile: mergeOutput, encoding: .utf8)) ?? "")")
        let merged = try BenchReport.decode(Data(contentsOf: URL(fileURLWithPath: "\(reports)/\(runID).json")))
        #expect(FileManager.default.fileExists(atPath: "\(reports)/\(runID).html"))

        // Counts are the sums; every seq of every device arrived exactly once.
        func sum(_ key: (BenchReport) -> Int) -> Int { shardReports.reduce(0) { $0 + key($1) } }
        #expect(merged.sent == sum(\.sent) && merged.sent == ids.count * messages)
        #expect(merged.acknowledged == sum(\.acknowledged))
        #expect(merged.received == sum(\.received))
        #expect(merged.gaps == sum(\.gaps) && merged.duplicates == sum(\.duplicates) && merged.dropped == sum(\.dropped))
        #expect(merged.devices?.map(\.id) == ids)
        for device in merged.devices ?? [] {
            #expect(device.sent == messages && device.received == messages && device.gaps == 0 && device.duplicates == 0,
                    "\(device.id): sent \(device.sent) received \(device.received) gaps \(device.gaps) duplicates \(device.duplicates)")
        }
        #expect(merged.gaps == 0 && merged.duplicates == 0 && merged.verified)
        #expect(merged.shards?.map(\.shard) == (0..<shards).map { "\($0)/\(shards)" })

        // The merged p99 is the p99 of one histogram of all samples.
        let histograms = shardReports.compactMap { $0.histograms?.endToEnd }
        #expect(histograms.count == shards)
        let allSamples = Self.p99(histograms)
        #expect(histograms.reduce(0) { $0 + $1.totalCount } == merged.latencyMs.endToEnd.count)
        #expect(merged.latencyMs.endToEnd.p99 == Double(allSamples) / 1000,
                "merged p99 \(merged.latencyMs.endToEnd.p99) ms, one histogram of all samples \(Double(allSamples) / 1000) ms")

        // Prometheus, from its HTTP API: the shards' last values summed equal the merged report.
        // (max_over_time: the shards have exited and their series are stale; a counter's maximum
        // is its last value.)
        func query(_ metric: String) -> String { "sum(max_over_time(\(metric){run_id=\"\(runID)\"}[10m]))" }
        for (metric, expected) in [
            ("sensorfleet_messages_sent_total", merged.sent), ("sensorfleet_messages_acknowledged_total", merged.acknowledged),
            ("sensorfleet_messages_received_total", merged.received), ("sensorfleet_devices_targeted", ids.count),
        ] {
            var seen: Double?
            let agreed = await waitFor(20) {
                seen = prometheusValue(port: webPort, query(metric))
                return seen == Double(expected)
            }
            #expect(agreed, "Prometheus: \(query(metric)) = \(seen.map { "\($0)" } ?? "nothing"), merged report \(expected)")
        }
        #expect(prometheusValue(port: webPort, "count(max_over_time(sensorfleet_devices_targeted{run_id=\"\(runID)\"}[10m]))") == Double(shards))
        print("netns shards: \(shards) hosts \(hosts.hosts.map(\.address)), broker \(brokerAddress):\(brokerPort), merged sent \(merged.sent), p99 \(merged.latencyMs.endToEnd.p99) ms, rss before connecting \(shardReports.map(\.resources.rssBeforeKb)) KB")
    }

    /// A broker certificate for `ip`, signed by the fleet CA (the `openssl` CLI: the fleet's own
    /// `provision` names only localhost).
    static func issueServerCertificate(in dir: String, ip: String) throws {
        guard let openssl = findExecutable("openssl") else { throw TestFailure("openssl is not installed") }
        try "subjectAltName = IP:\(ip)\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
            .write(toFile: "\(dir)/netns-server.ext", atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/netns-server.key",
             "-subj", "/CN=\(ip)", "-out", "\(dir)/netns-server.csr"],
            ["x509", "-req", "-in", "\(dir)/netns-server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "\(dir)/netns-server.ext", "-out", "\(dir)/netns-server.pem"],
        ] {
            let output = "\(dir)/openssl.out"
            let code = try ChildProcess(openssl, arguments, output: output).wait(timeout: 30)
            if code != 0 { throw TestFailure("openssl \(arguments[0]) exited \(code): \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")") }
        }
    }
}
