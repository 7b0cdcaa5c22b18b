import Dispatch
import Synchronization

/// Reads a sensor's files on a background queue, one read at a time. `read()` starts a read
/// and waits for it at most `freshReadWait`; a read that takes longer is left to finish in the
/// background and its result is the one the next `read()` takes when no fresher one comes in
/// time. While a read is unfinished no other starts (one thread per hung sensor at most), and
/// after `hangAfter` seconds it is reported as hung (the same text every time, so the device
/// logs it once and counts each skipped reading).
final class FileSensorReader: Sendable {
    let files: SensorFiles
    let freshReadWait: Double
    let hangAfter: Double
    private struct State {
        var running = false
        var startedAt = ContinuousClock.now
        var latest: Result<Double, SensorReadError>?
        var resolved: SensorFiles.Resolved?
    }
    private let state = Mutex(State())

    init(files: SensorFiles, freshReadWait: Double, hangAfter: Double) {
        self.files = files
        self.freshReadWait = freshReadWait
        self.hangAfter = hangAfter
    }

    func read() -> Result<Double, SensorReadError> {
        let now = ContinuousClock.now
        let busy: Result<Double, SensorReadError>? = state.withLock { state in
            guard state.running else {
                state.running = true
                state.startedAt = now
                return nil
            }
            if now - state.startedAt >= .seconds(hangAfter) {
                return .failure(SensorReadError("\(files.what): a read has not returned for over \(SensorParser.format(hangAfter)) s "
                    + "(a FIFO nobody writes to, a hung mount or a stuck driver?); readings skipped until it returns"))
            }
            return state.latest.take() ?? .failure(SensorReadError("\(files.what): the previous read has not finished yet"))
        }
        if let busy { return busy }

        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .utility).async { [self] in
            var resolved = state.withLock { $0.resolved }
            let result = files.read(&resolved)
            state.withLock {
                $0.resolved = resolved
                $0.latest = result
                $0.running = false
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + freshReadWait)
        return state.withLock { state in
            state.latest.take() ?? .failure(SensorReadError("\(files.what): the read did not finish within "
                + "\(SensorParser.format(freshReadWait * 1000)) ms; its value is taken by a later reading"))
        }
    }
}
