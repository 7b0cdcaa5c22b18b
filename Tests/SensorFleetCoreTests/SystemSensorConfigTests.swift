import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Real sensors in device.yaml")
struct SystemSensorConfigTests {
    @Test("every real sensor type parses beside a simulated one, with sysfs_root relative to the device folder")
    func everyTypeParses() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("pi-1/device.yaml", """
                sysfs_root: fake-root
                sensors:
                  - {name: sim, type: constant, value: 1}
                  - {name: cpu, type: thermal_zone, zone: cpu-thermal, min: -40, max: 125}
                  - {name: chip, type: hwmon, chip: k10temp, channel: Tctl}
                  - {name: pressure, type: iio, device: bme280, channel: pressure}
                  - {name: probe, type: w1_ds18b20, id: 28-0000000000bb}
                  - {name: anyprobe, type: w1_ds18b20}
                  - {name: load5, type: loadavg, minutes: 5}
                  - {name: mem, type: meminfo, field: MemAvailable}
                  - {name: freq, type: cpufreq, cpu: 1}
                  - {name: volt, type: rpi_undervoltage}
                  - {name: level, type: file, path: level.txt, scale: 0.1}
                  - {name: cmd, type: command, run: "echo 1", timeout: 1}
                  - {name: cmdjson, type: command, run: [/usr/bin/tool, --json], json_field: a.b}
                """)
            let spec = try FleetLoader.loadWithoutCredentials(directory: fleet.root)
            let device = try #require(spec.devices.first)
            #expect(device.sysfsRoot == fleet.path("pi-1/fake-root"))
            let kinds = Dictionary(uniqueKeysWithValues: device.sensors.map { ($0.name, $0.kind) })
            #expect(kinds["cpu"] == .system(.thermalZone(type: "cpu-thermal"), min: -40, max: 125))
            #expect(kinds["chip"] == .system(.hwmon(chip: "k10temp", channel: "Tctl")))
            #expect(kinds["pressure"] == .system(.iio(device: "bme280", channel: "pressure")))
            #expect(kinds["probe"] == .system(.w1DS18B20(id: "28-0000000000bb")))
            #expect(kinds["anyprobe"] == .system(.w1DS18B20(id: nil)))
            #expect(kinds["load5"] == .system(.loadavg(minutes: 5)))
            #expect(kinds["mem"] == .system(.meminfo(field: "MemAvailable")))
            #expect(kinds["freq"] == .system(.cpufreq(cpu: 1)))
            #expect(kinds["volt"] == .system(.rpiUndervoltage))
            #expect(kinds["level"] == .system(.file(path: fleet.path("pi-1/level.txt"), scale: 0.1)))
            #expect(kinds["cmd"] == .system(.command(arguments: ["/bin/sh", "-c", "echo 1"], jsonField: nil, timeout: 1, scale: 1)))
            #expect(kinds["cmdjson"] == .system(.command(arguments: ["/usr/bin/tool", "--json"], jsonField: "a.b", timeout: 2, scale: 1)))
        }
    }

    @Test("mistakes in real sensors name file, field, what was expected and a fix")
    func mistakesAreReported() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
            try fleet.write("pi-1/device.yaml", """
                sensors:
                  - {name: a, type: thermal_zone}
                  - {name: b, type: loadavg, minutes: 3}
                  - {name: c, type: w1_ds18b20, id: 10-abc}
                  - {name: d, type: hwmon, chip: x, channel: y, min: 5, max: 1}
                  - {name: e, type: command, run: "true", timeout: 600}
                  - {name: f, type: meminfo, field: MemFree, zone: x}
                  - {name: g, type: thermal_zon, zone: x}
                """)
            let issues = parseIssues(fleet)
            let file = fleet.path("pi-1/device.yaml")
            #expect(try issue(in: issues, file: file, field: "sensors[0].zone").problem.contains("missing"))
            #expect(try issue(in: issues, file: file, field: "sensors[1].minutes").problem.contains("1, 5 or 15"))
            #expect(try issue(in: issues, file: file, field: "sensors[2].id").problem.contains("28-"))
            #expect(try issue(in: issues, file: file, field: "sensors[3].min").problem.contains("less than max"))
            #expect(try issue(in: issues, file: file, field: "sensors[4].timeout").fix.contains("e.g. 2"))
            #expect(try issue(in: issues, file: file, field: "sensors[5].zone").problem.contains("not a parameter of a `meminfo`"))
            #expect(try issue(in: issues, file: file, field: "sensors[6].type").problem.contains("did you mean `thermal_zone`"))
        }
    }
}
