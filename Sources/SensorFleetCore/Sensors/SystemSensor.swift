import Foundation
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

/// The files of one file-based sensor and how to read them. Resolves the files once, by name,
/// and again only after a failure (a driver reloaded, a USB sensor re-plugged), so the usual
/// read is one `open`/`read`/`close` of a small file. Runs on ``FileSensorReader``'s queue.
struct SensorFiles: Sendable {
    let source: SystemSource
    let root: String

    init(source: SystemSource, root: String) {
        self.source = source
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    /// What the sensor reads, for messages: the path of a `file` sensor, else its type.
    var what: String {
        if case .file(let path, _) = source { return path }
        return source.typeName
    }

    /// What a source found on the first read, kept until a read fails.
    enum Resolved: Sendable {
        /// value = number in `path` × `scale`.
        case scaled(path: String, scale: Double)
        /// value = (raw + offset) × scale × unitScale (IIO without `_input`).
        case iioRaw(raw: String, offset: Double, scale: Double, unitScale: Double)
        case w1Temperature(path: String)
        case w1Slave(path: String)
        case loadavg(field: Int)
        case meminfo(path: String, field: String)
    }

    /// One reading (resolving first when `resolved` is nil; forgetting it after a failure).
    func read(_ resolved: inout Resolved?) -> Result<Double, SensorReadError> {
        if resolved == nil {
            switch resolve() {
            case .success(let found): resolved = found
            case .failure(let error): return .failure(error)
            }
        }
        let result = readResolved(resolved!)
        if case .failure = result { resolved = nil }
        return result
    }

    // MARK: Resolution (by name)

    private func path(_ relative: String) -> String { root + "/" + relative }

    private func resolve() -> Result<Resolved, SensorReadError> {
        switch source {
        case .thermalZone(let type):
            let base = path("sys/class/thermal")
            for dir in SysFS.entries(base, prefix: "thermal_zone")
            where SysFS.readText("\(base)/\(dir)/type") == type {
                return .success(.scaled(path: "\(base)/\(dir)/temp", scale: 0.001))
            }
            return .failure(SensorReadError("no thermal zone of type \"\(type)\" in \(base)"))

        case .hwmon(let chip, let channel):
            guard let dir = SysFS.hwmon(named: chip, root: root) else {
                return .failure(SensorReadError("no hwmon chip named \"\(chip)\" in \(path("sys/class/hwmon"))"))
            }
            var prefix: String?
            if SysFS.exists("\(dir)/\(channel)_input") {
                prefix = channel
            } else {
                for file in SysFS.entries(dir, prefix: "") where file.hasSuffix("_label")
                    && SysFS.readText("\(dir)/\(file)") == channel {
                    prefix = String(file.dropLast("_label".count))
                    break
                }
            }
            guard let prefix, SysFS.exists("\(dir)/\(prefix)_input") else {
                return .failure(SensorReadError("hwmon chip \"\(chip)\" (\(dir)) has no channel labelled or named \"\(channel)\""))
            }
            return .success(.scaled(path: "\(dir)/\(prefix)_input", scale: SysFS.hwmonScale(prefix)))

        case .iio(let device, let channel):
            let base = path("sys/bus/iio/devices")
            guard let name = SysFS.entries(base, prefix: "iio:device").first(where: {
                SysFS.readText("\(base)/\($0)/name") == device
            }) else {
                return .failure(SensorReadError("no IIO device named \"\(device)\" in \(base)"))
            }
            let dir = "\(base)/\(name)"
            let channelName = channel.hasPrefix("in_") ? channel : "in_\(channel)"
            // Kernel IIO units: temperature in m°C, relative humidity in m%, pressure in kPa.
            let unitScale = channelName.hasPrefix("in_temp") || channelName.hasPrefix("in_humidityrelative") ? 0.001 : 1
            if SysFS.exists("\(dir)/\(channelName)_input") {
                return .success(.scaled(path: "\(dir)/\(channelName)_input", scale: unitScale))
            }
            guard SysFS.exists("\(dir)/\(channelName)_raw") else {
                return .failure(SensorReadError("IIO device \"\(device)\" (\(dir)) has neither \(channelName)_input nor \(channelName)_raw"))
            }
            var offset = 0.0, scale = 1.0
            if SysFS.exists("\(dir)/\(channelName)_offset") {
                guard case .success(let value) = SysFS.readNumber("\(dir)/\(channelName)_offset") else {
                    return .failure(SensorReadError("cannot read \(dir)/\(channelName)_offset"))
                }
                offset = value
            }
            if SysFS.exists("\(dir)/\(channelName)_scale") {
                guard case .success(let value) = SysFS.readNumber("\(dir)/\(channelName)_scale") else {
                    return .failure(SensorReadError("cannot read \(dir)/\(channelName)_scale"))
                }
                scale = value
            }
            return .success(.iioRaw(raw: "\(dir)/\(channelName)_raw", offset: offset, scale: scale, unitScale: unitScale))

        case .w1DS18B20(let id):
            let base = path("sys/bus/w1/devices")
            let found = id ?? SysFS.entries(base, prefix: "28-").sorted().first
            guard let found, SysFS.exists("\(base)/\(found)") else {
                return .failure(SensorReadError(id.map { "no 1-Wire sensor \($0) in \(base)" } ?? "no DS18B20 (28-*) in \(base)"))
            }
            if SysFS.exists("\(base)/\(found)/temperature") {
                return .success(.w1Temperature(path: "\(base)/\(found)/temperature"))
            }
            return .success(.w1Slave(path: "\(base)/\(found)/w1_slave"))

        case .loadavg(let minutes):
            return .success(.loadavg(field: minutes == 15 ? 2 : minutes == 5 ? 1 : 0))

        case .meminfo(let field):
            return .success(.meminfo(path: path("proc/meminfo"), field: field))

        case .cpufreq(let cpu):
            return .success(.scaled(path: path("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_cur_freq"), scale: 0.001))

        case .rpiUndervoltage:
            guard let dir = SysFS.hwmon(named: "rpi_volt", root: root) else {
                return .failure(SensorReadError("no hwmon chip named \"rpi_volt\" in \(path("sys/class/hwmon")) (not a Raspberry Pi, or the driver is not loaded)"))
            }
            return .success(.scaled(path: "\(dir)/in0_lcrit_alarm", scale: 1))

        case .file(let file, let scale):
            return .success(.scaled(path: file, scale: scale))

        case .command:
            return .failure(SensorReadError("internal: command sensors are run by CommandRunner"))
        }
    }

    // MARK: Reading

    private func readResolved(_ resolved: Resolved) -> Result<Double, SensorReadError> {
        switch resolved {
        case .scaled(let path, let scale):
            return SysFS.readNumber(path).map { $0 * scale }

        case .iioRaw(let raw, let offset, let scale, let unitScale):
            return SysFS.readNumber(raw).map { ($0 + offset) * scale * unitScale }

        case .w1Temperature(let path):
            return SysFS.readNumber(path).flatMap(W1.checkPowerOn)

        case .w1Slave(let path):
            return SysFS.read(path).flatMap { W1.parseSlave($0) }.flatMap(W1.checkPowerOn)

        case .loadavg(let field):
            let file = path("proc/loadavg")
            return SysFS.read(file).flatMap { text in
                let parts = text.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count > field, let value = Double(parts[field]) else {
                    return .failure(SensorReadError("\(file): unexpected content \"\(text.prefix(60))\""))
                }
                return .success(value)
            }

        case .meminfo(let file, let field):
            return SysFS.read(file).flatMap { text in
                let key = field + ":"
                for line in text.split(separator: "\n") where line.hasPrefix(key) {
                    let rest = line.dropFirst(key.count).split(separator: " ", omittingEmptySubsequences: true)
                    if let first = rest.first, let value = Double(first) { return .success(value) }
                }
                return .failure(SensorReadError("\(file) has no field \(field)"))
            }
        }
    }
}

/// The DS18B20's peculiarities.
enum W1 {
    /// `w1_slave`: "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES" then "72 01 … t=23125".
    static func parseSlave(_ text: String) -> Result<Double, SensorReadError> {
        let lines = text.split(separator: "\n")
        guard lines.count >= 2 else { return .failure(SensorReadError("w1_slave: expected two lines, got \(lines.count)")) }
        guard lines[0].hasSuffix("YES") else { return .failure(SensorReadError("w1_slave: CRC check failed (\(lines[0]))")) }
        guard let range = lines[1].range(of: "t="), let value = Double(lines[1][range.upperBound...]) else {
            return .failure(SensorReadError("w1_slave: no t= in \"\(lines[1])\""))
        }
        return .success(value)
    }

    /// Milli-°C to °C; 85000 is what the chip reports before its first conversion.
    static func checkPowerOn(_ milli: Double) -> Result<Double, SensorReadError> {
        if milli == 85000 { return .failure(SensorReadError("DS18B20 reports 85 °C, its power-on value: no conversion yet")) }
        return .success(milli / 1000)
    }
}

/// Small, fast reads of sysfs and procfs files with POSIX calls.
enum SysFS {
    /// The whole of a small file (≤ 64 KiB), or why not (errno text: EIO, ETIMEDOUT, ENODATA, ENOENT…).
    static func read(_ path: String) -> Result<String, SensorReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(SensorReadError("\(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(SensorReadError("\(path): \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    static func readText(_ path: String) -> String? {
        guard case .success(let text) = read(path) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func readNumber(_ path: String) -> Result<Double, SensorReadError> {
        read(path).flatMap { text in
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let value = Double(trimmed) else {
                return .failure(SensorReadError("\(path): expected a number, got \"\(trimmed.prefix(40))\""))
            }
            return .success(value)
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Names in `dir` starting with `prefix`, sorted (so "the first found" is stable).
    static func entries(_ dir: String, prefix: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// `/sys/class/hwmon/hwmonN` whose `name` file says `name`.
    static func hwmon(named name: String, root: String) -> String? {
        let base = root + "/sys/class/hwmon"
        for dir in entries(base, prefix: "") where readText("\(base)/\(dir)/name") == name {
            return "\(base)/\(dir)"
        }
        return nil
    }

    /// hwmon sysfs units: m°C, mV, mA, m%RH, µW, µJ; fans in rpm.
    static func hwmonScale(_ prefix: String) -> Double {
        if prefix.hasPrefix("power") || prefix.hasPrefix("energy") { return 1e-6 }
        if prefix.hasPrefix("fan") || prefix.hasPrefix("pwm") { return 1 }
        return 0.001
    }
}

/// Runs a sensor command off the reactor thread, one run at a time; a reading takes the latest
/// finished result. The process is killed after the time-out.
final class CommandRunner: Sendable {
    let arguments: [String]
    let jsonField: String?
    let timeout: Double
    let scale: Double
    private struct State {
        var running = false
        var latest: Result<Double, SensorReadError>? = nil
    }
    private let state = Mutex(State())

    init(arguments: [String], jsonField: String?, timeout: Double, scale: Double) {
        self.arguments = arguments
        self.jsonField = jsonField
        self.timeout = timeout
        self.scale = scale
    }

    /// The latest result, once: a second read before the next run finishes is an error
    /// ("no new result") rather than a repeated old value.
    func takeLatest() -> Result<Double, SensorReadError> {
        state.withLock { state in
            defer { state.latest = nil }
            return state.latest ?? .failure(SensorReadError("`\(arguments.joined(separator: " "))` has not finished yet"))
        }
    }

    func startIfIdle() {
        let start = state.withLock { state -> Bool in
            if state.running { return false }
            state.running = true
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            let result = self.runOnce()
            self.state.withLock {
                $0.latest = result
                $0.running = false
            }
        }
    }

    func runOnce() -> Result<Double, SensorReadError> {
        let display = arguments.joined(separator: " ")
        switch ProcessRunner.run(arguments, timeout: timeout) {
        case .failure(let error):
            return .failure(SensorReadError("`\(display)`: \(error.description)"))
        case .success(let output):
            let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
            if let jsonField {
                guard let data = text.data(using: .utf8),
                      let object = try? JSONSerialization.jsonObject(with: data) else {
                    return .failure(SensorReadError("`\(display)`: output is not JSON: \"\(text.prefix(60))\""))
                }
                var current: Any? = object
                for key in jsonField.split(separator: ".") {
                    current = (current as? [String: Any])?[String(key)]
                }
                guard let number = current as? NSNumber else {
                    return .failure(SensorReadError("`\(display)`: no number at \(jsonField) in its JSON output"))
                }
                return .success(number.doubleValue * scale)
            }
            guard let value = Double(text) else {
                return .failure(SensorReadError("`\(display)`: expected a number, got \"\(text.prefix(60))\""))
            }
            return .success(value * scale)
        }
    }
}

/// posix_spawn with a pipe on stdout, read with poll() until the deadline, then SIGKILL.
enum ProcessRunner {
    static func run(_ arguments: [String], timeout: Double) -> Result<String, SensorReadError> {
        guard let executable = arguments.first else { return .failure(SensorReadError("empty command")) }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { return .failure(SensorReadError("pipe: \(String(cString: strerror(errno)))")) }
        // Not inherited by other children spawned meanwhile (dup2 onto stdout clears it on the copy).
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let rc = executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, nil, &cArgs, environ)
            : posix_spawnp(&pid, executable, &actions, nil, &cArgs, environ)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            return .failure(SensorReadError("cannot start: \(String(cString: strerror(rc)))"))
        }
        let deadline = Date().addingTimeInterval(timeout)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; break }
            var pfd = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left * 1000 + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            if output.count < 65536 { output.append(contentsOf: buffer[0..<n]) }
        }
        close(pipeFDs[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if timedOut { return .failure(SensorReadError("timed out after \(timeout) s (killed)")) }
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            return .failure(SensorReadError(exited ? "exited with status \(code)" : "killed by signal \(status & 0x7f)"))
        }
        return .success(String(decoding: output, as: UTF8.self))
    }
}
