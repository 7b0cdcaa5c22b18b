import Synchronization

/// Why a real sensor gave no reading this time. The reading is skipped and counted; the device
/// carries on.
public struct SensorReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One real sensor of this machine, as the device's reactor thread sees it. No read happens on
/// that thread: files are read by a ``FileSensorReader`` and commands run by a
/// ``CommandRunner``, both on a background queue, so a read that blocks (a FIFO nobody writes
/// to, a hung mount, a slow sysfs attribute) never stalls the event loop.
final class SystemSensor {
    /// How long `read()` waits for a fresh file read before it takes the last finished one.
    static let defaultFreshReadWait = 0.025
    /// A file read that has not returned after this long is reported as hung.
    static let defaultHangAfter = 5.0

    let spec: SensorSpec
    let source: SystemSource
    private let minimum: Double?
    private let maximum: Double?
    private let runner: CommandRunner?
    private let reader: FileSensorReader?

    /// - Parameters:
    ///   - root: `sysfs_root` of the device, an absolute folder.
    ///   - freshReadWait: seconds `read()` waits for a fresh file read.
    ///   - hangAfter: seconds after which an unfinished file read is reported as hung.
    init(spec: SensorSpec, source: SystemSource, minimum: Double?, maximum: Double?, root: String,
         freshReadWait: Double = SystemSensor.defaultFreshReadWait, hangAfter: Double = SystemSensor.defaultHangAfter) {
        self.spec = spec
        self.source = source
        self.minimum = minimum
        self.maximum = maximum
        if case .command(let arguments, let field, let timeout, let scale) = source {
            runner = CommandRunner(arguments: arguments, jsonField: field, timeout: timeout, scale: scale)
            runner?.startIfIdle()
            reader = nil
        } else {
            runner = nil
            reader = FileSensorReader(files: SensorFiles(source: source, root: root),
                                      freshReadWait: freshReadWait, hangAfter: hangAfter)
        }
    }

    /// One reading, rounded to `spec.precision`, or why there is none. Never blocks for longer
    /// than `freshReadWait`.
    func read() -> Result<Double, SensorReadError> {
        let result: Result<Double, SensorReadError>
        if let runner {
            result = runner.takeLatest()
            runner.startIfIdle()
        } else if let reader {
            result = reader.read()
        } else {
            result = .failure(SensorReadError("internal: no reader"))
        }
        return result.flatMap(check)
    }

    private func check(_ raw: Double) -> Result<Double, SensorReadError> {
        guard raw.isFinite else { return .failure(SensorReadError("not a finite number")) }
        var value = raw
        if let precision = spec.precision {
            var scale = 1.0
            for _ in 0..<precision { scale *= 10 }
            value = (value * scale).rounded(.toNearestOrAwayFromZero) / scale
        }
        if let minimum, value < minimum {
            return .failure(SensorReadError("\(value) is below min \(minimum)"))
        }
        if let maximum, value > maximum {
            return .failure(SensorReadError("\(value) is above max \(maximum)"))
        }
        return .success(value)
    }
}
