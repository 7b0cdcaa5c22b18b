#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import SensorFleetCore
import ServiceLifecycle

struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one device for real (e.g. on a Raspberry Pi) until SIGINT/SIGTERM; made for systemd.",
        discussion: """
            DEVICE_DIR holds device.yaml, cert.pem and key.pem; the broker and CA come from the \
            fleet.yaml of its parent folder (or --fleet). Under systemd (Type=notify) it sends \
            READY=1 once started and WATCHDOG=1 from its event loop; the key may come from \
            LoadCredential ($CREDENTIALS_DIRECTORY/key.pem). SIGHUP, or a change of the \
            certificate or key files, reloads them and reconnects. Until the clock is set \
            (year < \(CertificateClock.saneYear), a Pi without RTC before NTP) it waits instead \
            of refusing certificates.
            """
    )

    @Argument(help: "The device folder.")
    var deviceDirectory: String = "."

    @Option(help: "The folder with fleet.yaml (default: the device folder's parent).")
    var fleet: String?

    @Option(help: "Private key file (default: $CREDENTIALS_DIRECTORY/key.pem when set, else device.yaml's key).")
    var key: String?

    @Option(help: "Folder of the durable outbox (SQLite): readings survive a crash, a reboot or an outage. Default: $STATE_DIRECTORY (systemd's StateDirectory=); without either, memory only.")
    var stateDir: String?

    @Flag(help: "Move a damaged or emptied outbox in the state folder aside and start afresh (sequence numbers restart at 1).")
    var resetState = false

    @Option(help: "Seconds between checks of the certificate and key files for changes.")
    var watchInterval: Double = 10

    @Option(help: "Seconds to wait at the end for queued messages to be acknowledged.")
    var drainTimeout: Double = 5

    @Option(help: ArgumentHelp("Serve Prometheus metrics (GET /metrics) and readiness (GET /healthz) on this address, e.g. 127.0.0.1:9464.", valueName: "addr:port"))
    var metricsListen: String?

    @Flag(help: .hidden)  // for Scripts/bench-agent's comparison: keep the start's pages mapped
    var keepStartupPages = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        do {
            try OptionRanges.agent.check("--watch-interval", watchInterval)
            try OptionRanges.agent.check("--drain-timeout", drainTimeout)
        } catch { throw ValidationError("\(error)") }
        if let metricsListen { try checkMetricsListen(metricsListen) }
    }

    func run() async throws {
        let logger = try logging.bootstrap()
        var options = AgentOptions(deviceDirectory: deviceDirectory, fleetDirectory: fleet, keyFile: key,
                                   stateDirectory: stateDir, environment: ProcessInfo.processInfo.environment)
        options.watchInterval = watchInterval
        options.drainTimeout = drainTimeout
        let metrics: MetricsService?
        do { metrics = try metricsListen.map { try MetricsService.open(listen: $0) } } catch {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        options.metrics = metrics?.metrics
        let reason = StopReason()
        let agent = AgentService(options: options, notifier: SystemdNotifier(), reason: reason, logger: logger) { line in
            print(line)
        }
        do {
            // One process per state folder, before anything runs (the lock lives as long as we do).
            if let stateDirectory = options.stateDirectory {
                try StateDirectory.claimForAgent(stateDirectory, reset: resetState, logger: logger)?.reportReset(logger)
            }
            // Once started, the code and constants only the start used leave the RSS (issue 15).
            let pages: [ServiceGroupConfiguration.ServiceConfiguration] = keepStartupPages ? [] : [
                .init(service: ExecutablePagesService(logger: logger), successTerminationBehavior: .ignore)]
            try await runServices((metrics.map { [.init(service: $0)] } ?? []) + pages + [
                .init(service: SignalReasonService(signals: stopSignals, reason: reason)),
                .init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup),
            ], logger: logger)
        } catch let error as FleetValidationError {
            printError("\(deviceDirectory): the device cannot run (\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")):")
            for issue in error.issues { printError("  ✗ \(issue)") }
            throw ExitCode(1)
        } catch let error as FleetStartError {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        } catch let error as StateDirectoryError {
            printError("cannot start: \(error)")
            throw ExitCode(1)
        }
        // Stopped before the device started (e.g. while waiting for the clock): nothing to sum up.
        guard let summary = agent.summary else { return }
        let t = summary.totals
        print("summary after \(String(cFormat: "%.1f", summary.durationSeconds)) s: published \(t.accepted), acknowledged \(t.acknowledged), dropped \(t.dropped), errors \(t.errors)")
    }
}

// MARK: The start's pages (issue 15)

/// Hands the kernel back the pages of our own executable that only the start touched.
///
/// Linux maps a file-backed page together with its neighbours (fault-around, 64 KB; whole
/// large folios on recent kernels), so a start that runs scattered code — argument parsing,
/// YAML, X.509, the SQLite store — leaves tens of MB of the binary's code and constants in the
/// agent's RSS that its once-a-second loop never uses again (issue 15: 47 MB RSS of a debug
/// build, 29 MB once they were paged out). `MADV_PAGEOUT` on the executable's read-only
/// mappings drops them from this process; what the loop uses comes back at once from the page
/// cache (clean file pages: nothing is written, nothing lost). Memory pressure would reclaim
/// the same pages; this does it without waiting for pressure, so RSS and PSS show the agent's
/// working set. Linux 5.4 or later; elsewhere a no-op.
enum ExecutablePages {
    /// `MADV_PAGEOUT` (linux/mman.h); Glibc's Swift module does not export it.
    static let pageOut: Int32 = 21

    /// `MADV_DONTNEED` (bits/mman-linux.h).
    static let dontNeed: Int32 = 4

    /// One read-only file mapping of this process (its executable or a shared library), from
    /// /proc/self/smaps.
    struct Mapping {
        var start: UInt
        var length: Int
        /// KB of private anonymous pages in it: copies the loader wrote (relocations in the
        /// RELRO segment, made read-only after). Only a mapping with none may be unmapped.
        var anonymousKB: Int
    }

    /// The read-only file mappings of this process — its executable's and its shared libraries'
    /// (libcrypto's start-up code, X.509 and key parsing, is the next largest) — from
    /// /proc/self/smaps. Not the kernel's `[vdso]` and the like, not anonymous memory.
    static func readOnlyMappings() -> [Mapping] {
        guard let smaps = readWholeFile("/proc/self/smaps") else { return [] }
        var result: [Mapping] = []
        var current: Mapping?
        // "55869c6b6000-55869f362000 r-xp 00000000 fe:00 16384896   /path/to/sensorfleet",
        // then "Key:   value kB" lines until the next mapping.
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), !first.hasSuffix(":") {
                if let done = current { result.append(done) }
                current = nil
                guard fields.count == 6, fields[5].trimmingSpaces.hasPrefix("/"), !fields[1].contains("w") else { continue }
                let bounds = first.split(separator: "-")
                guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), high > low else { continue }
                current = Mapping(start: low, length: Int(high - low), anonymousKB: 0)
            } else if current != nil, fields.first == "Anonymous:", fields.count >= 2, let kb = Int(fields[1]) {
                current?.anonymousKB = kb
            }
        }
        if let done = current { result.append(done) }
        return result
    }

    /// Gives back this process's read-only file mappings: `MADV_PAGEOUT` first
    /// (the kernel reclaims the pages no other process maps), then `MADV_DONTNEED` on each
    /// mapping that holds no private copy (`Anonymous: 0`), which unmaps what the page-out
    /// skipped — on Linux 6.16 and later ext4 caches a file in large folios, which the page-out
    /// does not split: it left 24 of 29 MB mapped here. For a private file mapping never
    /// written, `MADV_DONTNEED` only drops the page-table entries: the pages stay in the page
    /// cache, and a later access maps them again (64 KB around the access), so nothing is lost.
    /// The RELRO mapping (relocated by the loader, then made read-only) holds private copies
    /// and is never unmapped: that would undo the relocations.
    /// - Returns: the bytes advised (0 when the kernel refused or there was nothing to do).
    @discardableResult
    static func release() -> Int {
        #if os(Linux)
        var advised = 0
        for mapping in readOnlyMappings() {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, mapping.length, pageOut) == 0 { advised += mapping.length }
            if mapping.anonymousKB == 0, getenv("SENSORFLEET_PAGES_DONTNEED_OFF") == nil {
                _ = madvise(address, mapping.length, dontNeed)
            }
        }
        return advised
        #else
        return 0
        #endif
    }

    static func readWholeFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

private extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}

/// Runs ``ExecutablePages/release()`` once, `delay` after the agent started (by then the start
/// is over: the device loaded, the store opened, the first connection made or being retried),
/// then returns: run it with `successTerminationBehavior: .ignore`.
struct ExecutablePagesService: Service, CustomStringConvertible {
    let delay: Duration
    let logger: Logger

    /// - Parameters:
    ///   - delay: how long after the start.
    ///   - logger: logs the bytes advised at debug level.
    init(delay: Duration = .seconds(10), logger: Logger) {
        self.delay = delay
        self.logger = logger
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        } catch {
            return
        }
        if Task.isShuttingDownGracefully { return }
        let advised = ExecutablePages.release()
        logger.debug("start-up over: paged out \(advised / 1024) KB of read-only file mappings (MADV_PAGEOUT, then MADV_DONTNEED where they hold no private copy)")
    }

    var description: String { "ExecutablePagesService" }
}
