#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// An edge node's `bdSeq` (0–255): the number in the NDEATH of each MQTT CONNECT's will and in
/// the NBIRTH that follows, so a host can tell which death belongs to which birth. It goes up by
/// one with every CONNECT, wrapping from 255 to 0; the first CONNECT of a node with no history
/// uses 0.
///
/// With a state folder (`run --state-dir`, the agent) the number survives restarts: it is
/// written to `DIR/sparkplug/<device id>.bdseq` *before* the CONNECT that uses it (atomically:
/// temporary file, fsync, rename), so a crash never lets a restart reuse the number of a will
/// the broker may still hold. Without one it starts at 0 with each run. Reactor-confined.
final class BirthDeathSequence {
    /// The file, or nil (memory only).
    let path: String?
    /// The folder it is in, made on the first write.
    private let folder: String?
    private let logger: Logger
    /// The number the last CONNECT used; nil before the first.
    private(set) var current: UInt8?
    private var reportedWriteError = false

    /// - Parameters:
    ///   - stateDirectory: the claimed state folder, or nil.
    ///   - deviceID: names the file.
    init(stateDirectory: String?, deviceID: String, logger: Logger) {
        self.logger = logger
        guard let stateDirectory else {
            path = nil
            folder = nil
            return
        }
        let folder = Self.joined(stateDirectory, "sparkplug")
        let file = Self.joined(folder, "\(deviceID).bdseq")
        self.folder = folder
        path = file
        guard let data = FileManager.default.contents(atPath: file) else { return }
        let text = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        if let value = UInt8(text) {
            current = value
        } else {
            logger.warning("\(file) does not hold a bdSeq from 0 to 255 (it holds \"\(text.prefix(20))\"); starting the Sparkplug bdSeq again at 0")
        }
    }

    /// The number for the next CONNECT: one more than the last (255 → 0), recorded first.
    func next() -> UInt8 {
        let value: UInt8 = current.map { $0 &+ 1 } ?? 0
        current = value
        if let path, let folder { write(value, to: path, in: folder) }
        return value
    }

    /// `name` inside `folder`, with one slash between them.
    private static func joined(_ folder: String, _ name: String) -> String {
        folder.isEmpty ? name : folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    private func write(_ value: UInt8, to path: String, in folder: String) {
        do {
            if !AtomicFile.isDirectory(folder) { try AtomicFile.makeDirectory(folder) }
            try AtomicFile.write("\(value)\n", to: path, mode: 0o640)
        } catch {
            if !reportedWriteError {
                reportedWriteError = true
                logger.error("cannot record the Sparkplug bdSeq in \(path): \(error); a restart may reuse bdSeq \(value)")
            }
        }
    }
}
