#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// How many times each device has booted: kept in `boot-counts.json` in the state folder with
/// `--state-dir` (so a device's boot count goes on across runs, as on real hardware), else in
/// memory for the run. Written whenever a count changes (a power-on or a reboot: rare).
final class BootCounts: Sendable {
    private let path: String?
    private let counts: Mutex<[String: Int]>

    /// - Parameter directory: the state folder; nil: memory only.
    init(directory: String?) {
        path = directory.map { $0 + "/boot-counts.json" }
        var loaded: [String: Int] = [:]
        if let path, let data = FileManager.default.contents(atPath: path),
           let decoded = try? JSONDecoder().decode([String: Int].self, from: data) {
            loaded = decoded
        }
        counts = Mutex(loaded)
    }

    /// Counts one more boot of `id`; returns the new count (1 at the first boot ever).
    func boot(_ id: String) -> Int {
        let (count, snapshot) = counts.withLock { counts -> (Int, [String: Int]) in
            counts[id, default: 0] += 1
            return (counts[id]!, counts)
        }
        save(snapshot)
        return count
    }

    /// Counts the power-on of every device in `ids` at once (one write).
    func powerOn(_ ids: [String]) -> [String: Int] {
        let snapshot = counts.withLock { counts in
            for id in ids { counts[id, default: 0] += 1 }
            return counts
        }
        save(snapshot)
        return snapshot
    }

    private func save(_ counts: [String: Int]) {
        guard let path, let data = try? JSONEncoder().encode(counts) else { return }
        let temporary = path + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data) {
            _ = rename(temporary, path)
        }
    }
}
