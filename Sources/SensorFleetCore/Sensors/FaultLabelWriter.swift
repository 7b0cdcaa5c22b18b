#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The fleet's fault labels file (`labels:` in fleet.yaml): one JSON object per line for each
/// fault's start and end, appended with one `write(2)` per record (nothing is buffered in the
/// process, so a record is in the file as soon as the fault starts or ends).
///
/// Devices on several reactor threads share one writer per file (``open(path:)``); a lock keeps
/// the records whole. The file is bounded: past ``maximumBytes`` written by this process,
/// records are counted (``dropped``) instead of written.
final class FaultLabelWriter: Sendable {
    /// At most this many bytes are written to one file by one process (256 MiB).
    static let maximumBytes = 256 << 20

    private struct State: ~Copyable {
        var fd: Int32
        var written = 0
        var dropped = 0
        var writeError: Int32 = 0
    }

    private struct WeakWriter: @unchecked Sendable {
        weak var writer: FaultLabelWriter?
    }

    private static let openFiles = Mutex<[String: WeakWriter]>([:])

    let path: String
    private let limit: Int
    private let state: Mutex<State>

    private init(path: String, fd: Int32, limit: Int) {
        self.path = path
        self.limit = limit
        state = Mutex(State(fd: fd))
    }

    deinit {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
        }
    }

    /// The writer of `path`, shared by every device of this process that writes there; the file
    /// is created (mode 644) or appended to.
    /// - Parameters:
    ///   - path: absolute path of the labels file.
    ///   - limit: bytes this writer writes at most (tests lower it).
    /// - Returns: the writer, or why the file cannot be opened.
    static func open(path: String, limit: Int = maximumBytes) -> Result<FaultLabelWriter, SensorReadError> {
        openFiles.withLock { files in
            if let existing = files[path]?.writer { return .success(existing) }
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                let code = errno
                return .failure(SensorReadError("cannot open the fault labels file \(path): \(String(cString: strerror(code)))"))
            }
            let writer = FaultLabelWriter(path: path, fd: fd, limit: limit)
            files = files.filter { $0.value.writer != nil }
            files[path] = WeakWriter(writer: writer)
            return .success(writer)
        }
    }

    /// Appends one record (a whole line).
    func write(_ line: [UInt8]) {
        state.withLock { state in
            guard state.fd >= 0, state.writeError == 0, state.written + line.count <= limit else {
                state.dropped += 1
                return
            }
            var offset = 0
            while offset < line.count {
                let n = line.withUnsafeBytes { raw in
                    Glibc.write(state.fd, raw.baseAddress! + offset, raw.count - offset)
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    state.writeError = errno
                    state.dropped += 1
                    return
                }
                offset += n
            }
            state.written += line.count
        }
    }

    /// Records not written: past the size bound, or after a write error.
    var dropped: Int { state.withLock { $0.dropped } }

    /// The first write error (errno), 0 when none.
    var writeError: Int32 { state.withLock { $0.writeError } }
}

/// Publishes a device's fault label records over MQTT (`labels_topic`), one message each at
/// QoS 1, while the device is connected. Records made while it is offline are counted
/// (``unsent``), not queued: the labels file is the complete record. Confined to the device's
/// reactor, like its sensors.
final class FaultLabelPublisher {
    /// Set by the device when it starts: publishes one record, false when it could not.
    var send: ((ArraySlice<UInt8>) -> Bool)?
    /// Records not published (the device was offline, or not started).
    private(set) var unsent = 0

    func publish(_ record: ArraySlice<UInt8>) {
        if send?(record) != true { unsent += 1 }
    }
}
