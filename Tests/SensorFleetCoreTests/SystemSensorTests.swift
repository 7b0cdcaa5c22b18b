import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// A fake sysfs/procfs tree in a temporary folder; the real SystemSensor code reads it.
final class FakeSysfs {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "sysfs-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ relative: String, _ text: String) throws {
        let path = "\(root)/\(relative)"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: "\(root)/\(relative)") }

    /// Replaces a file with a link to /proc/self/mem, whose read at offset 0 fails with EIO.
    func makeEIO(_ relative: String) throws {
        try? remove(relative)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/\(relative)", withDestinationPath: "/proc/self/mem")
    }

    func sensor(_ source: SystemSource, min: Double? = nil, max: Double? = nil, precision: Int? = nil) -> SystemSensor {
        SystemSensor(spec: SensorSpec(name: "s", kind: .system(source, min: min, max: max), precision: precision),
                     source: source, minimum: min, maximum: max, root: root, freshReadWait: 10)
    }
}

private func value(_ result: Result<Double, SensorReadError>) -> Double? {
    if case .success(let v) = result { return v }
    return nil
}

private func error(_ result: Result<Double, SensorReadError>) -> String? {
    if case .failure(let e) = result { return e.description }
    return nil
}

@Suite("Real sensors on a fake sysfs tree")
struct SystemSensorTests {
    @Test("thermal zone found by its type, not its index; re-found after the index changes")
    func thermalZoneByType() throws {
        let fs = try FakeSysfs()
        try fs.write("sys/class/thermal/thermal_zone0/type", "acpitz\n")
        try fs.write("sys/class/thermal/thermal_zone0/temp", "27800\n")
        try fs.write("sys/class/thermal/thermal_zone1/type", "cpu-thermal\n")
        try fs.write("sys/class/thermal/thermal_zone1/temp", "48312\n")
        let sensor = fs.sensor(.thermalZone(type: "cpu-thermal"))
        #expect(value(sensor.read()) == 48.312)
        // After a reboot the same zone is thermal_zone3: the failed read makes it look again.
        try fs.remove("sys/class/thermal/thermal_zone1")
        try fs.write("sys/class/thermal/thermal_zone3/type", "cpu-thermal\n")
        try fs.write("sys/class/thermal/thermal_zone3/temp", "51000\n")
        #expect(error(sensor.read())?.contains("No such file") == true)
        #expect(value(sensor.read()) == 51.0)
        #expect(error(fs.sensor(.thermalZone(type: "gpu")).read())?.contains("no thermal zone of type \"gpu\"") == true)
    }

    @Test("hwmon by chip name and channel label or input name, with sysfs units")
    func hwmonByName() throws {
        let fs = try FakeSysfs()
        try fs.write("sys/class/hwmon/hwmon0/name", "nvme\n")
        try fs.write("sys/class/hwmon/hwmon0/temp1_input", "40000\n")
        try fs.write("sys/class/hwmon/hwmon3/name", "k10temp\n")
        try fs.write("sys/class/hwmon/hwmon3/temp1_label", "Tctl\n")
        try fs.write("sys/class/hwmon/hwmon3/temp1_input", "45125\n")
        try fs.write("sys/class/hwmon/hwmon3/temp2_label", "Tccd1\n")
        try fs.write("sys/class/hwmon/hwmon3/temp2_input", "39000\n")
        try fs.write("sys/class/hwmon/hwmon3/in0_input", "1215\n")
        try fs.write("sys/class/hwmon/hwmon5/name", "sht3x\n")
        try fs.write("sys/class/hwmon/hwmon5/humidity1_input", "41500\n")
        #expect(value(fs.sensor(.hwmon(chip: "k10temp", channel: "Tccd1")).read()) == 39.0)
        #expect(value(fs.sensor(.hwmon(chip: "k10temp", channel: "temp1")).read()) == 45.125)
        #expect(value(fs.sensor(.hwmon(chip: "k10temp", channel: "in0")).read()) == 1.215)
        #expect(value(fs.sensor(.hwmon(chip: "sht3x", channel: "humidity1")).read()) == 41.5)
        #expect(error(fs.sensor(.hwmon(chip: "k10temp", channel: "Tccd9")).read())?.contains("no channel") == true)
        #expect(error(fs.sensor(.hwmon(chip: "lm75", channel: "temp1")).read())?.contains("no hwmon chip named \"lm75\"") == true)
    }

    @Test("IIO: _input in kernel units (pressure kPa), or (raw + offset) × scale")
    func iio() throws {
        let fs = try FakeSysfs()
        let dev = "sys/bus/iio/devices/iio:device1"
        try fs.write("sys/bus/iio/devices/iio:device0/name", "ads1015\n")
        try fs.write("\(dev)/name", "bme280\n")
        try fs.write("\(dev)/in_temp_input", "23450\n")
        try fs.write("\(dev)/in_humidityrelative_input", "45123\n")
        try fs.write("\(dev)/in_pressure_input", "101.325\n")
        #expect(value(fs.sensor(.iio(device: "bme280", channel: "temp")).read()) == 23.45)
        #expect(value(fs.sensor(.iio(device: "bme280", channel: "humidityrelative")).read()) == 45.123)
        #expect(value(fs.sensor(.iio(device: "bme280", channel: "in_pressure")).read()) == 101.325)
        // A DHT22-like device with only raw values.
        let raw = "sys/bus/iio/devices/iio:device2"
        try fs.write("\(raw)/name", "dht11\n")
        try fs.write("\(raw)/in_temp_raw", "1000\n")
        try fs.write("\(raw)/in_temp_offset", "-500\n")
        try fs.write("\(raw)/in_temp_scale", "40\n")
        let t = try #require(value(fs.sensor(.iio(device: "dht11", channel: "temp")).read()))
        #expect(abs(t - 20.0) < 1e-9)  // (1000 − 500) × 40 m°C
        #expect(error(fs.sensor(.iio(device: "dht11", channel: "pressure")).read())?.contains("neither") == true)
    }

    @Test("DS18B20: temperature file, w1_slave with CRC, 85 °C power-on value is an error")
    func ds18b20() throws {
        let fs = try FakeSysfs()
        let base = "sys/bus/w1/devices"
        try fs.write("\(base)/w1_bus_master1/name", "w1_bus_master1\n")
        try fs.write("\(base)/28-0000000000bb/w1_slave", "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
        try fs.write("\(base)/28-0000000000cc/temperature", "19500\n")
        let first = fs.sensor(.w1DS18B20(id: nil))
        #expect(value(first.read()) == 23.125)
        try fs.write("\(base)/28-0000000000bb/w1_slave", "72 01 4b 46 7f ff 0e 10 57 : crc=12 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
        #expect(error(first.read())?.contains("CRC") == true)
        try fs.write("\(base)/28-0000000000bb/w1_slave", "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n")
        #expect(error(first.read())?.contains("power-on") == true)
        let byID = fs.sensor(.w1DS18B20(id: "28-0000000000cc"))
        #expect(value(byID.read()) == 19.5)
        try fs.write("\(base)/28-0000000000cc/temperature", "85000\n")
        #expect(error(byID.read())?.contains("power-on") == true)
    }

    @Test("loadavg, meminfo, cpufreq and the Pi's under-voltage alarm")
    func procAndPi() throws {
        let fs = try FakeSysfs()
        try fs.write("proc/loadavg", "0.52 0.61 0.70 2/345 6789\n")
        try fs.write("proc/meminfo", "MemTotal:        3884108 kB\nMemFree:          123456 kB\nMemAvailable:    2765432 kB\n")
        try fs.write("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1500000\n")
        try fs.write("sys/class/hwmon/hwmon1/name", "rpi_volt\n")
        try fs.write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "0\n")
        #expect(value(fs.sensor(.loadavg(minutes: 1)).read()) == 0.52)
        #expect(value(fs.sensor(.loadavg(minutes: 15)).read()) == 0.70)
        #expect(value(fs.sensor(.meminfo(field: "MemAvailable")).read()) == 2_765_432)
        #expect(error(fs.sensor(.meminfo(field: "SwapTotal")).read())?.contains("no field SwapTotal") == true)
        #expect(value(fs.sensor(.cpufreq(cpu: 0)).read()) == 1500)
        let volt = fs.sensor(.rpiUndervoltage)
        #expect(value(volt.read()) == 0)
        try fs.write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "1\n")
        #expect(value(volt.read()) == 1)
    }

    @Test("file: a number, scaled; EIO, a missing file, garbage and out-of-range are errors, not crashes")
    func fileAndFailures() throws {
        let fs = try FakeSysfs()
        try fs.write("run/level", "1234\n")
        let sensor = fs.sensor(.file(path: "\(fs.root)/run/level", scale: 0.01), min: 0, max: 100)
        #expect(value(sensor.read()) == 12.34)
        try fs.write("run/level", "12345\n")
        #expect(error(sensor.read())?.contains("above max 100") == true)
        try fs.write("run/level", "n/a\n")
        #expect(error(sensor.read())?.contains("expected a number") == true)
        try fs.makeEIO("run/level")
        #expect(error(sensor.read())?.contains("Input/output error") == true)
        try fs.remove("run/level")
        #expect(error(sensor.read())?.contains("No such file") == true)
        try fs.write("run/level", "50\n")
        #expect(value(sensor.read()) == 0.5)
    }

    @Test("precision rounds real readings")
    func precision() throws {
        let fs = try FakeSysfs()
        try fs.write("proc/loadavg", "0.5678 0.61 0.70 2/345 6789\n")
        #expect(value(fs.sensor(.loadavg(minutes: 1), precision: 1).read()) == 0.6)
    }

    @Test("command: a number, a JSON field, a time-out and a failure; runs off the caller's thread")
    func command() async throws {
        let number = CommandRunner(arguments: ["/bin/sh", "-c", "echo 42.5"], jsonField: nil, timeout: 2, scale: 1)
        #expect(value(number.runOnce()) == 42.5)
        let json = CommandRunner(arguments: ["/bin/sh", "-c", #"echo '{"sensors": {"temp": 21.5}}'"#], jsonField: "sensors.temp", timeout: 2, scale: 2)
        #expect(value(json.runOnce()) == 43)
        let missing = CommandRunner(arguments: ["/bin/sh", "-c", #"echo '{"a": 1}'"#], jsonField: "b", timeout: 2, scale: 1)
        #expect(error(missing.runOnce())?.contains("no number at b") == true)
        let started = Date()
        let slow = CommandRunner(arguments: ["/bin/sleep", "30"], jsonField: nil, timeout: 0.3, scale: 1)
        #expect(error(slow.runOnce())?.contains("timed out") == true)
        #expect(Date().timeIntervalSince(started) < 10)
        let failing = CommandRunner(arguments: ["/bin/sh", "-c", "exit 3"], jsonField: nil, timeout: 2, scale: 1)
        #expect(error(failing.runOnce())?.contains("status 3") == true)
        let absent = CommandRunner(arguments: ["/nonexistent/tool"], jsonField: nil, timeout: 2, scale: 1)
        #expect(error(absent.runOnce())?.contains("cannot start") == true)

        // Through SystemSensor: the first run starts at creation; a read takes its result.
        let fs = try FakeSysfs()
        let sensor = fs.sensor(.command(arguments: ["/bin/sh", "-c", "echo 7"], jsonField: nil, timeout: 2, scale: 1))
        var got: Double?
        let deadline = Date().addingTimeInterval(10)
        while got == nil, Date() < deadline {
            got = value(sensor.read())
            if got == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(got == 7)
    }

    @Test("this machine's real /proc: loadavg and meminfo")
    func realProc() throws {
        let load = SystemSensor(spec: SensorSpec(name: "load", kind: .system(.loadavg(minutes: 1))),
                                source: .loadavg(minutes: 1), minimum: 0, maximum: 10_000, root: "/", freshReadWait: 10)
        let reading = try #require(value(load.read()))
        #expect(reading >= 0)
        let memory = SystemSensor(spec: SensorSpec(name: "mem", kind: .system(.meminfo(field: "MemTotal"))),
                                  source: .meminfo(field: "MemTotal"), minimum: nil, maximum: nil, root: "/", freshReadWait: 10)
        let total = try #require(value(memory.read()))
        // Compare with an independent source: sysconf's physical pages.
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE))) / 1024
        #expect(abs(total - physical) / physical < 0.1)
    }
}
