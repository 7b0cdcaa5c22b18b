import Foundation
import Testing
@testable import SensorFleetCore
import SensorFleetTesting

/// What the agent binary is made of, and what it reports about itself (issue 15): no Foundation
/// or ICU shared library, its own memory and outbox depth on `/metrics` when asked, and no
/// listening socket when not.
@Suite("agent footprint: what the binary links, its own metrics, no socket unasked", .serialized)
struct AgentFootprintTests {
    /// Shared libraries (ELF NEEDED entries) that would bring Foundation or its ICU back:
    /// libFoundation, libFoundationEssentials, libFoundationInternationalization,
    /// lib_FoundationICU, a system libicu*, and the Swift runtime they sit on.
    static func unwanted(_ library: String) -> Bool {
        let name = library.lowercased()
        return name.contains("foundation") || name.hasPrefix("libicu") || name.contains("_foundationicu")
            || name.hasPrefix("libswift") || name.hasPrefix("libdispatch") || name.hasPrefix("libblocksruntime")
    }

    @Test("the sensorfleet binary needs no Foundation, ICU or Swift runtime shared library (readelf -d); the test binary, linked as before, does")
    func binaryLinksNoFoundation() throws {
        let binary = try sensorfleetBinary()
        let needed = try ELF.neededLibraries(binary)
        // The check reads what it should: libmosquitto is there, dynamically, by design.
        #expect(needed.contains { $0.hasPrefix("libmosquitto") }, "readelf -d \(binary): \(needed)")
        #expect(needed.filter(Self.unwanted).isEmpty, "\(binary) links \(needed.filter(Self.unwanted)): the agent must not need them (see docs/raspberry-pi.md § Footprint)")
        // And it can fail: this test process is linked the ordinary way, with libFoundation.
        let ownNeeded = try ELF.neededLibraries(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        #expect(ownNeeded.contains { $0.hasPrefix("libFoundation") }, "the test binary's NEEDED entries: \(ownNeeded)")
        let size = (try? FileManager.default.attributesOfItem(atPath: binary)[.size] as? Int) ?? 0
        print("footprint: \(binary): \(size / 1_048_576) MB, needs \(needed.joined(separator: " "))")
    }

    /// Byte patterns that only Foundation (the module, mangled `10Foundation` — FoundationEssentials
    /// mangles as `20FoundationEssentials`) and ICU (its data package `icudt…`, its collator
    /// `ucol_open`) put into a binary. A static link hides them from `readelf -d`; they are
    /// still in the file, stripped or not (type names, the ICU data itself).
    static let foundationMarks = ["10Foundation", "icudt", "ucol_open"]

    @Test("the sensorfleet binary contains no Foundation and no ICU, statically either; Foundation's and ICU's own libraries do contain the marks the test looks for")
    func binaryContainsNoFoundationOrICU() throws {
        let binary = try sensorfleetBinary()
        let found = try BinaryMarks.count(Self.foundationMarks, in: binary)
        #expect(found.values.allSatisfy { $0 == 0 }, "\(binary) contains \(found.filter { $0.value > 0 }): Foundation or ICU is linked in (some file imports Foundation instead of FoundationEssentials, or a dependency does); see docs/raspberry-pi.md § Footprint")
        // And it can fail: the marks are what Foundation's and ICU's own libraries carry (the
        // ones this test process has mapped, from /proc/self/maps).
        let maps = ProcSockets.procFile("/proc/self/maps")
        func mapped(_ suffix: String) -> String? {
            maps.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }.first { $0.hasSuffix("/" + suffix) }
        }
        let foundation = try #require(mapped("libFoundation.so"), "this test process maps no libFoundation.so")
        let icu = try #require(mapped("lib_FoundationICU.so"), "this test process maps no lib_FoundationICU.so")
        let inFoundation = try BinaryMarks.count(["10Foundation"], in: foundation)
        let inICU = try BinaryMarks.count(["icudt", "ucol_open"], in: icu)
        #expect(inFoundation["10Foundation", default: 0] > 0 && inICU.values.allSatisfy { $0 > 0 }, "the marks are not where they should be: \(foundation) \(inFoundation), \(icu) \(inICU)")
    }

    @Test("Scripts/install-agent refuses a binary that needs libFoundation (here: the test runner's own), naming the libraries and Scripts/build-agent")
    func installRefusesAFatBinary() throws {
        let fleet = try TestFleet(devices: ["pi-1"], startBroker: false)
        defer { fleet.tearDown() }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let fat = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let output = "\(fleet.path)/install.out"
        let process = try ChildProcess("/bin/bash", ["\(repo)/Scripts/install-agent", "--root", "\(fleet.path)/staging", fat, fleet.path, "pi-1"], output: output)
        let said = (process.wait() == 0 ? "exit 0: " : "") + ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        #expect(said.hasPrefix("error: ") && said.contains("libFoundation.so") && said.contains("Scripts/build-agent"), "\(said)")
        #expect(!FileManager.default.fileExists(atPath: "\(fleet.path)/staging/usr/local/bin/sensorfleet"))
    }

    /// Runs the agent on one device with a durable outbox; `body` gets it once telemetry flows.
    static func withAgent(_ fleet: TestFleet, _ extra: [String], _ body: (ChildProcess, () -> String) async throws -> Void) async throws {
        let subscriber = try fleet.subscriber(["devices/pi-1/telemetry"])
        let before = subscriber.sequences()["pi-1"]?.count ?? 0
        let (agent, output) = try launchSensorfleet(
            ["agent", "\(fleet.path)/pi-1", "--state-dir", "\(fleet.path)/state", "--log-level", "warning"] + extra, in: fleet.path)
        defer { agent.signal(SIGKILL) }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        #expect(await waitFor(20) { (subscriber.sequences()["pi-1"]?.count ?? 0) >= before + 3 }, "agent: \(log())")
        try await body(agent, log)
        agent.signal(SIGTERM)
        #expect(agent.wait() == 0, "agent: \(log())")
    }

    @Test("agent without --metrics-listen: no listening socket (its descriptors against /proc/PID/net/tcp, tcp6, udp, udp6), only its broker connection")
    func noSocketUnasked() async throws {
        let fleet = try TestFleet(devices: ["pi-1"], interval: 0.2)
        defer { fleet.tearDown() }
        try await Self.withAgent(fleet, []) { agent, log in
            let sockets = ProcSockets(pid: agent.pid)
            #expect(sockets.listening.isEmpty, "the agent listens on \(sockets.listening); agent: \(log())")
            // The scan finds what is there: the one TLS connection to the broker.
            #expect(sockets.connectedPorts == [fleet.broker.port], "sockets: \(sockets)")
        }
    }

    @Test("once started, the agent pages out its executable's start-up pages (MADV_PAGEOUT, logged at debug): its file-backed RSS falls")
    func startupPagesGoBack() async throws {
        let fleet = try TestFleet(devices: ["pi-1"], interval: 0.2)
        defer { fleet.tearDown() }
        let (agent, output) = try launchSensorfleet(["agent", "\(fleet.path)/pi-1", "--log-level", "debug"], in: fleet.path)
        defer { agent.signal(SIGKILL) }
        func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        let subscriber = try fleet.subscriber(["devices/pi-1/telemetry"])
        #expect(await waitFor(10) { (subscriber.sequences()["pi-1"]?.count ?? 0) >= 2 }, "agent: \(log())")
        let before = ProcSockets.rssFileKB(agent.pid)
        #expect(await waitFor(20) { log().contains("start-up over: paged out") }, "agent: \(log())")
        let after = ProcSockets.rssFileKB(agent.pid)
        let line = log().split(separator: "\n").first { $0.contains("start-up over: paged out") } ?? ""
        let advisedKB = Int(line.split(separator: "paged out ").last?.split(separator: " ").first ?? "") ?? 0
        #expect(advisedKB > 1024, "\(line)")
        #expect(after < before, "RssFile before \(before) KB, after \(after) KB")
        print("footprint: start-up pages: RssFile \(before) KB before, \(after) KB just after (advised \(advisedKB) KB)")
        // The code, libraries and constants it gave back come back when used: it goes on
        // publishing, every seq in order, and stops cleanly.
        let published = subscriber.sequences()["pi-1"]?.count ?? 0
        #expect(await waitFor(10) { (subscriber.sequences()["pi-1"]?.count ?? 0) >= published + 10 }, "agent: \(log())")
        let seqs = subscriber.sequences()["pi-1"] ?? []
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 + 1 }, "seqs around the page-out: \(seqs)")
        agent.signal(SIGTERM)
        #expect(agent.wait() == 0, "agent: \(log())")
    }

    @Test("agent --metrics-listen: /metrics has process_resident_memory_bytes (= VmRSS) and the outbox depth, which grows on disk while the broker is down and drains after")
    func metricsReportMemoryAndOutbox() async throws {
        let fleet = try TestFleet(devices: ["pi-1"], interval: 0.1)
        defer { fleet.tearDown() }
        let port = freePort()
        try await Self.withAgent(fleet, ["--metrics-listen", "127.0.0.1:\(port)"]) { agent, log in
            #expect(ProcSockets(pid: agent.pid).listening == [port])
            func scrape() throws -> PrometheusText {
                let answer = try #require(httpGet(port: port, "/metrics", timeout: 2))
                #expect(answer.status == 200)
                return try PrometheusText(answer.body)
            }
            let text = try scrape()
            let rss = try #require(text.value("process_resident_memory_bytes"))
            let vmRSS = Double(ProcSockets.vmRSSKB(agent.pid) * 1024)
            // The same figure as /proc/PID/status, taken a moment apart.
            #expect(rss > 0.7 * vmRSS && rss < 1.3 * vmRSS, "process_resident_memory_bytes \(rss), VmRSS \(vmRSS)")
            #expect(text.value("sensorfleet_outbox_messages") != nil)
            #expect(text.value("sensorfleet_outbox_disk_messages") != nil)

            // Broker down: readings (10 a second) wait in the durable outbox, and /metrics says so.
            fleet.broker.stop()
            var backlog = 0.0
            #expect(await waitFor(15) {
                backlog = (try? scrape().value("sensorfleet_outbox_disk_messages")) ?? 0
                return backlog >= 10
            }, "outbox on disk: \(backlog); agent: \(log())")
            let depth = try scrape()
            #expect((depth.value("sensorfleet_outbox_messages") ?? 0) >= (depth.value("sensorfleet_outbox_disk_messages") ?? .infinity))
            // Broker back: the backlog goes out and the depth returns to 0.
            try fleet.broker.start()
            #expect(await waitFor(30) { (try? scrape().value("sensorfleet_outbox_messages")) == 0 }, "agent: \(log())")
            print("footprint: agent --metrics-listen: RSS \(Int(rss) / 1024) KB; outbox on disk during the outage reached ≥ \(Int(backlog))")
        }
    }
}

/// Counts of byte patterns in a file, read in chunks (a debug binary is over 100 MB).
enum BinaryMarks {
    static func count(_ marks: [String], in path: String) throws -> [String: Int] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TestFailure("cannot open \(path)") }
        defer { try? handle.close() }
        let patterns = marks.map { Array($0.utf8) }
        let overlap = (patterns.map(\.count).max() ?? 1) - 1
        var counts = [String: Int]()
        var carry = [UInt8]()
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
            let bytes = carry + [UInt8](chunk)
            for (mark, pattern) in zip(marks, patterns) {
                // memchr for the first byte, memcmp for the rest, since a debug build's byte-by-byte
                // search would be slow; a match must end past the carried-over bytes, so none is
                // counted twice.
                bytes.withUnsafeBytes { raw in
                    pattern.withUnsafeBytes { needle in
                        let base = raw.baseAddress!
                        var offset = 0
                        while offset + needle.count <= raw.count,
                              let hit = memchr(base + offset, Int32(pattern[0]), raw.count - offset - needle.count + 1) {
                            let at = base.distance(to: UnsafeRawPointer(hit))
                            if memcmp(hit, needle.baseAddress!, needle.count) == 0, at + needle.count > carry.count {
                                counts[mark, default: 0] += 1
                            }
                            offset = at + 1
                        }
                    }
                }
            }
            carry = Array(bytes.suffix(overlap))
        }
        return counts.merging(marks.map { ($0, 0) }) { a, _ in a }
    }
}

/// ELF facts through binutils' `readelf`.
enum ELF {
    /// The NEEDED entries of the dynamic section: the shared libraries the loader maps.
    static func neededLibraries(_ path: String) throws -> [String] {
        guard let readelf = findExecutable("readelf") else {
            throw TestFailure("readelf is missing: install binutils (the Swift toolchain needs it too)")
        }
        let dir = try TempDir("readelf")
        defer { dir.remove() }
        let output = "\(dir.path)/readelf.out"
        let process = try ChildProcess(readelf, ["-d", "-W", path], output: output)
        #expect(process.wait() == 0)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        // "0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]"
        return text.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }
}

/// The sockets a process holds, found by the inodes of its descriptors (`/proc/PID/fd`) in
/// its network namespace's tables (`/proc/PID/net/{tcp,tcp6,udp,udp6}`).
struct ProcSockets: CustomStringConvertible {
    /// Local ports of its TCP sockets in LISTEN state and of its UDP sockets (bound: they receive).
    var listening: [Int] = []
    /// Remote ports of its established TCP connections.
    var connectedPorts: [Int] = []
    var socketInodes = 0

    /// Inodes of the sockets behind a process's descriptors.
    static func socketInodes(_ pid: String) -> Set<String> {
        let fdDir = "/proc/\(pid)/fd"
        var inodes = Set<String>()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(entry)"),
                  target.hasPrefix("socket:[") else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        return inodes
    }

    /// A /proc file read to its end (they report a size of 0, and a table longer than a page
    /// comes in several reads).
    static func procFile(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    init(pid: pid_t) {
        // Descriptors the test process holds too were inherited through the spawn, not opened
        // by the child.
        let inodes = Self.socketInodes("\(pid)").subtracting(Self.socketInodes("self"))
        socketInodes = inodes.count
        for table in ["tcp", "tcp6", "udp", "udp6"] {
            let text = Self.procFile("/proc/\(pid)/net/\(table)")
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, inodes.contains(String(fields[9])) else { continue }
                let local = Self.port(fields[1]), remote = Self.port(fields[2])
                if table.hasPrefix("udp") {
                    listening.append(local)
                } else if fields[3] == "0A" {
                    listening.append(local)
                } else if fields[3] == "01" {
                    connectedPorts.append(remote)
                }
            }
        }
    }

    private static func port(_ address: Substring) -> Int {
        Int(address.split(separator: ":").last ?? "", radix: 16) ?? -1
    }

    var description: String { "\(socketInodes) socket descriptors, listening \(listening), connected to \(connectedPorts)" }

    /// RssFile of a process (file-backed resident pages: its executable and libraries), in KB.
    static func rssFileKB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// VmRSS of a process, in KB.
    static func vmRSSKB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
