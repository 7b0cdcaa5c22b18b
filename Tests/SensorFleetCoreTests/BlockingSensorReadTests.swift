import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

@Suite("Sensor reads that block never block the caller")
struct BlockingSensorReadTests {
    @Test("a file sensor on a FIFO nobody writes to: reads return at once, the hang is reported, a later value is taken")
    func fifoFileSensor() throws {
        try withTempFleet { fleet in
            let fifo = fleet.path("level")
            #expect(mkfifo(fifo, 0o644) == 0)
            let source = SystemSource.file(path: fifo, scale: 1)
            let sensor = SystemSensor(spec: SensorSpec(name: "fifo", kind: .system(source)), source: source,
                                      minimum: nil, maximum: nil, root: "/", freshReadWait: 0.02, hangAfter: 0.3)
            let clock = ContinuousClock()
            var first: Result<Double, SensorReadError>!
            let elapsed = clock.measure { first = sensor.read() }
            #expect(elapsed < .milliseconds(500), "\(elapsed)")
            guard case .failure(let error) = first else { Issue.record("a FIFO without a writer gave \(String(describing: first))"); return }
            #expect(error.description.contains("did not finish within 20 ms"), "\(error)")
            let deadline = Date().addingTimeInterval(5)
            var hung: String?
            while Date() < deadline {
                let start = clock.now
                if case .failure(let e) = sensor.read(), e.description.contains("has not returned for over 0.3 s") { hung = e.description }
                #expect(clock.now - start < .milliseconds(100), "a read while another hangs must not wait")
                if hung != nil { break }
                usleep(20_000)
            }
            #expect(hung?.contains(fifo) == true, "the hang was never reported")
            // A writer comes: the hung read returns, and its value is taken by a later reading.
            let fd = open(fifo, O_WRONLY)
            #expect(fd >= 0)
            _ = "42\n".withCString { write(fd, $0, 3) }
            close(fd)
            var value: Double?
            while Date() < deadline.addingTimeInterval(5), value == nil {
                if case .success(let v) = sensor.read() { value = v }
                usleep(20_000)
            }
            #expect(value == 42)
        }
    }

    @Test("through the engine's API (DeviceSensor.read(elapsed:)): a sysfs attribute that is a FIFO does not block")
    func sysfsFIFOThroughDeviceSensor() throws {
        try withTempFleet { fleet in
            try fleet.write("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
            #expect(mkfifo(fleet.path("sys/class/thermal/thermal_zone0/temp"), 0o644) == 0)
            var sensor = DeviceSensor(spec: SensorSpec(name: "cpu", kind: .system(.thermalZone(type: "cpu-thermal"))),
                                      fleetSeed: 1, deviceID: "d", sysfsRoot: fleet.root)
            let clock = ContinuousClock()
            for _ in 0..<5 {
                var result: Result<Double, SensorReadError>!
                let elapsed = clock.measure { result = sensor.read(elapsed: 0) }
                #expect(elapsed < .milliseconds(300), "\(elapsed)")
                if case .success(let value) = result { Issue.record("a FIFO gave \(value)") }
            }
            // Unblock the reader thread so it does not outlive the test.
            let fd = open(fleet.path("sys/class/thermal/thermal_zone0/temp"), O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
    }
}
