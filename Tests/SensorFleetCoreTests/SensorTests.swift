import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// Straightforward re-statement of the documented seed algorithm, to pin the implementation.
private func referenceSeed(fleetSeed: UInt64, deviceID: String, sensorName: String) -> UInt64 {
    var bytes: [UInt8] = []
    for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8((fleetSeed >> UInt64(shift)) & 0xFF)) }
    bytes += Array(deviceID.utf8)
    bytes.append(0)
    bytes += Array(sensorName.utf8)
    var hash: UInt64 = 14_695_981_039_346_656_037  // FNV-1a 64 offset basis
    for b in bytes {
        hash = hash ^ UInt64(b)
        hash = hash &* 1_099_511_628_211  // FNV-1a 64 prime
    }
    var z = hash &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

private func readings(_ kind: SensorKind, seed: UInt64 = 42, precision: Int? = nil, count: Int) -> [Double] {
    var sensor = SimulatedSensor(spec: SensorSpec(name: "s", kind: kind, precision: precision), seed: seed)
    return (0..<count).map { sensor.read(elapsed: Double($0)) }
}

@Suite("Sensors: seeds and simulated readings")
struct SensorTests {
    @Test func seedMatchesFNV1aPlusSplitmixReference() {
        for (fleet, device, sensor) in [
            (UInt64(1), "sensor-0001", "temperature"), (0, "", ""), (UInt64.max, "a.b_c-d", "humidity"),
            (12_345, "thermostat-001", "°C-name"),
        ] {
            #expect(
                SensorSeed.derive(fleetSeed: fleet, deviceID: device, sensorName: sensor)
                    == referenceSeed(fleetSeed: fleet, deviceID: device, sensorName: sensor))
        }
    }

    @Test func seedIsStableAcrossRunsAndMachines() {
        // Computed once (with a Python FNV-1a + splitmix64); a change here changes every fleet's readings.
        #expect(SensorSeed.derive(fleetSeed: 1, deviceID: "sensor-0001", sensorName: "temperature") == 0x6973_AC09_231D_D1CC)
    }

    @Test func seedSeparatesDeviceAndSensorNames() {
        let a = SensorSeed.derive(fleetSeed: 1, deviceID: "ab", sensorName: "c")
        let b = SensorSeed.derive(fleetSeed: 1, deviceID: "a", sensorName: "bc")
        let c = SensorSeed.derive(fleetSeed: 2, deviceID: "ab", sensorName: "c")
        #expect(a != b)
        #expect(a != c)
    }

    @Test func sameSeedGivesSameSequence() {
        let kind = SensorKind.gaussian(mean: 20, stddev: 3, min: nil, max: nil)
        #expect(readings(kind, seed: 7, count: 1000) == readings(kind, seed: 7, count: 1000))
        let walk = SensorKind.randomWalk(start: 50, step: 1, min: 0, max: 100)
        #expect(readings(walk, seed: 7, count: 1000) == readings(walk, seed: 7, count: 1000))
    }

    @Test func differentDeviceOrSensorGivesDifferentSequence() {
        let kind = SensorKind.uniform(min: 0, max: 1)
        let base = readings(kind, seed: SensorSeed.derive(fleetSeed: 1, deviceID: "d1", sensorName: "t"), count: 20)
        let otherDevice = readings(
            kind, seed: SensorSeed.derive(fleetSeed: 1, deviceID: "d2", sensorName: "t"), count: 20)
        let otherSensor = readings(
            kind, seed: SensorSeed.derive(fleetSeed: 1, deviceID: "d1", sensorName: "u"), count: 20)
        #expect(base != otherDevice)
        #expect(base != otherSensor)
    }

    @Test func uniformStaysInBounds() {
        let values = readings(.uniform(min: -5, max: 5), count: 10_000)
        #expect(values.allSatisfy { $0.isFinite && $0 >= -5 && $0 <= 5 })
        #expect(values.min()! < -4.9 && values.max()! > 4.9)
    }

    @Test func gaussianIsClampedToItsBounds() {
        let values = readings(.gaussian(mean: 50, stddev: 30, min: 20, max: 80), count: 10_000)
        #expect(values.allSatisfy { $0.isFinite && $0 >= 20 && $0 <= 80 })
        #expect(values.contains(20) && values.contains(80))
    }

    @Test func gaussianHasItsMeanAndSpread() {
        let values = readings(.gaussian(mean: 10, stddev: 2, min: nil, max: nil), count: 10_000)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        #expect(abs(mean - 10) < 0.1)
        #expect(abs(variance.squareRoot() - 2) < 0.1)
    }

    @Test func randomWalkReflectsAtBoundsAndMovesAtMostOneStep() {
        let values = readings(.randomWalk(start: 1, step: 0.5, min: 0, max: 3), count: 10_000)
        #expect(values[0] == 1)
        #expect(values.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 3 })
        for (a, b) in zip(values, values.dropFirst()) { #expect(abs(b - a) <= 0.5 + 1e-12) }
        #expect(values.min()! < 0.1 && values.max()! > 2.9)
    }

    @Test func randomWalkWithStepWiderThanRangeStaysInBounds() {
        let values = readings(.randomWalk(start: 5, step: 100, min: 0, max: 10), count: 10_000)
        #expect(values.allSatisfy { $0 >= 0 && $0 <= 10 })
    }

    @Test func sineHitsKnownPhasesWithoutNoise() {
        var sensor = SimulatedSensor(
            spec: SensorSpec(name: "s", kind: .sine(period: 60, amplitude: 5, offset: 20, noise: 0)), seed: 1)
        #expect(abs(sensor.read(elapsed: 0) - 20) < 1e-9)
        #expect(abs(sensor.read(elapsed: 15) - 25) < 1e-9)
        #expect(abs(sensor.read(elapsed: 30) - 20) < 1e-9)
        #expect(abs(sensor.read(elapsed: 45) - 15) < 1e-9)
        #expect(abs(sensor.read(elapsed: 60) - 20) < 1e-9)
    }

    @Test func sineWithNoiseStaysNearTheCurve() {
        var sensor = SimulatedSensor(
            spec: SensorSpec(name: "s", kind: .sine(period: 10, amplitude: 1, offset: 0, noise: 0.01)), seed: 3)
        for t in 0..<1000 {
            let v = sensor.read(elapsed: Double(t) * 0.1)
            #expect(abs(v - sin(2 * Double.pi * Double(t) * 0.1 / 10)) < 0.1)
        }
    }

    @Test func counterCountsFromStartByStep() {
        #expect(readings(.counter(start: 10, step: 2.5), count: 5) == [10, 12.5, 15, 17.5, 20])
        #expect(readings(.constant(value: 3.25), count: 3) == [3.25, 3.25, 3.25])
    }

    @Test func precisionRoundsReadings() {
        for v in readings(.uniform(min: 0, max: 100), precision: 2, count: 1000) {
            #expect(abs(v * 100 - (v * 100).rounded()) < 1e-6)
            #expect(v.description.split(separator: ".").last!.count <= 2)
        }
        #expect(readings(.constant(value: 21.456), precision: 1, count: 1) == [21.5])
        #expect(readings(.constant(value: -2.5), precision: 0, count: 1) == [-3])
        #expect(readings(.constant(value: 1.23456), precision: nil, count: 1) == [1.23456])
    }

    @Test func roundingNeverLeavesTheBounds() {
        let values = readings(.uniform(min: 0.004, max: 0.996), precision: 2, count: 10_000)
        #expect(values.allSatisfy { $0 >= 0.004 && $0 <= 0.996 })
    }
}
