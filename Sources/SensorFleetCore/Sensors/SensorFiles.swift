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
        guard let range = lines[1].firstRange(of: "t="), let value = Double(lines[1][range.upperBound...]) else {
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
        return text.trimmingWhitespace()
    }

    static func readNumber(_ path: String) -> Result<Double, SensorReadError> {
        read(path).flatMap { text in
            let trimmed = text.trimmingWhitespace()
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
