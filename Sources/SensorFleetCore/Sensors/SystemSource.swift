/// Where a real (non-simulated) sensor reads from. Every source is found by a *name* the
/// hardware reports (a thermal zone's `type`, a hwmon chip's `name`, an IIO device's `name`, a
/// 1-Wire id), never by a kernel index such as `hwmon3`, which changes between boots.
///
/// All paths are relative to the device's `sysfs_root` (default `/`), so tests run the real code
/// on a fake tree in a temporary folder.
public enum SystemSource: Sendable, Equatable {
    /// `/sys/class/thermal/thermal_zone*/temp` of the zone whose `type` is `type`; °C.
    case thermalZone(type: String)
    /// `/sys/class/hwmon/*` whose `name` is `chip`; `channel` is a label (the content of a
    /// `*_label` file, e.g. `Tctl`) or an input prefix (`temp1`, `in0`, `humidity1`). °C, V, %, A, W, rpm.
    case hwmon(chip: String, channel: String)
    /// `/sys/bus/iio/devices/iio:device*` whose `name` is `device`; `channel` e.g. `temp`,
    /// `humidityrelative`, `pressure` (`in_` is added). `_input`, or `(raw + offset) × scale`.
    /// °C, %RH, kPa.
    case iio(device: String, channel: String)
    /// `/sys/bus/w1/devices/28-*` (`id`, or the first one found): `temperature`, or `w1_slave`
    /// with its CRC line. 85 °C exactly is the power-on value, an error. °C.
    case w1DS18B20(id: String?)
    /// `/proc/loadavg`, over 1, 5 or 15 minutes.
    case loadavg(minutes: Int)
    /// A field of `/proc/meminfo` (e.g. `MemAvailable`), in kB as the file gives it.
    case meminfo(field: String)
    /// `/sys/devices/system/cpu/cpu<N>/cpufreq/scaling_cur_freq`, in MHz.
    case cpufreq(cpu: Int)
    /// The Raspberry Pi's under-voltage alarm: hwmon chip `rpi_volt`, `in0_lcrit_alarm`; 0 or 1.
    case rpiUndervoltage
    /// A number in a file (absolute path, not under `sysfs_root`), multiplied by `scale`.
    case file(path: String, scale: Double)
    /// A command's standard output: a number, or the number at `jsonField` (dotted path) of a
    /// JSON object; killed after `timeout` seconds. Runs off the reactor thread; each reading
    /// takes the latest finished result.
    case command(arguments: [String], jsonField: String?, timeout: Double, scale: Double)

    /// The `type:` of this source in device.yaml.
    public var typeName: String {
        switch self {
        case .thermalZone: "thermal_zone"
        case .hwmon: "hwmon"
        case .iio: "iio"
        case .w1DS18B20: "w1_ds18b20"
        case .loadavg: "loadavg"
        case .meminfo: "meminfo"
        case .cpufreq: "cpufreq"
        case .rpiUndervoltage: "rpi_undervoltage"
        case .file: "file"
        case .command: "command"
        }
    }
}
