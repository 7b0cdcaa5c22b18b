import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// `scenario:`, `status_format:`, `firmware:`, `shadow:` in fleet.yaml and `firmware:`, `tags:`,
/// `battery:` in device.yaml: what loads, and the file/line/field/fix of what does not.
@Suite struct ScenarioConfigTests {
    private func devices(_ n: Int) -> [DeviceSpec] {
        (1...n).map { DeviceSpec(id: String(format: "d-%03d", $0), directory: "/", certFile: "", keyFile: "", interval: 1, sensors: []) }
    }

    @Test func theSameSeedSelectsTheSameDevicesAndAnotherSeedOthers() {
        let fleet = devices(50)
        let selection = ScenarioSelection(amount: .percent(30))
        let a = selection.choose(from: fleet, seed: 7, event: 0)
        #expect(a.count == 15)
        #expect(a == selection.choose(from: fleet, seed: 7, event: 0))
        #expect(a != selection.choose(from: fleet, seed: 8, event: 0))
        #expect(a != selection.choose(from: fleet, seed: 7, event: 1))
        #expect(Set(a).isSubset(of: Set(fleet.map(\.id))))
        #expect(ScenarioSelection(amount: .count(3)).choose(from: fleet, seed: 1, event: 0).count == 3)
        #expect(ScenarioSelection(amount: .percent(0)).choose(from: fleet, seed: 1, event: 0).isEmpty)
    }

    @Test func selectionsByTagTemplateAndIdsNarrowTheFleet() {
        var fleet = devices(10)
        for i in 0..<4 { fleet[i].tags = ["basement"] }
        for i in 5..<10 { fleet[i].template = "t-{00}" }
        #expect(ScenarioSelection(tag: "basement").choose(from: fleet, seed: 1, event: 0) == ["d-001", "d-002", "d-003", "d-004"])
        #expect(ScenarioSelection(template: "t-{00}").choose(from: fleet, seed: 1, event: 0).count == 5)
        #expect(ScenarioSelection(amount: .percent(50), ids: ["d-001", "d-002"]).choose(from: fleet, seed: 1, event: 0).count == 1)
    }

    @Test func aFleetWithScenarioShadowFirmwareAndBatteryLoads() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                broker:
                  host: localhost
                status_format: plain
                shadow:
                  preset: aws
                firmware:
                  reboot_seconds: 3
                  failure_probability: 0.25
                scenario:
                  - {at: 10, select: 50%, action: disconnect, duration: 30}
                  - {at: 20, tag: cellar, action: reboot}
                  - {at: 30, ids: [a], action: rate, factor: 4, duration: 60}
                  - {at: 40, select: 1, action: ota, version: "2.1.0"}
                  - {at: 50, action: rotate_certificate}
                  - {at: 60, action: clock_skew, offset: -90}
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("""
                firmware: "1.4.2"
                tags: [cellar]
                battery:
                  capacity_mah: 2000
                  publish_mah: 0.02
                  recharge: {peak_mah_per_hour: 40, sunrise: 7, sunset: 19}
                """))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.behaviour.statusFormat == .plain)
            #expect(spec.behaviour.shadow?.preset == .aws)
            #expect(spec.behaviour.firmware.rebootSeconds == 3)
            #expect(spec.devices.map(\.firmware) == ["1.0.0", "1.4.2"])
            #expect(spec.devices[1].tags == ["cellar"])
            #expect(spec.devices[1].battery?.recharge?.sunset == 19)
            let actions = spec.scenario?.events.map(\.action)
            #expect(actions == [.disconnect(seconds: 30), .reboot(seconds: nil), .rate(factor: 4, seconds: 60),
                                .ota(version: "2.1.0"), .rotateCertificate, .clockSkew(seconds: -90)])
            #expect(BehaviourSummary.lines(spec).contains { $0.hasPrefix("battery b: 2000 mAh") })
        }
    }

    @Test func malformedEventsAreRefusedWithFileLineFieldAndFix() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"], fleetYAML: """
                broker:
                  host: localhost
                scenario:
                  - at: -5
                    action: disconect
                  - at: 10
                    select: 130%
                    action: disconnect
                  - at: 10
                    action: rate
                    factor: 2
                    version: "1"
                  - at: 10
                    ids: [a, zz]
                    tag: nowhere
                    action: reboot
                  - at: 10
                    action: fault
                    kind: drfit
                    sensor: level
                    rate: 0.1
                """)
            let issues = loadIssues(fleet)
            let file = fleet.root + "/fleet.yaml"
            let at = try issue(in: issues, file: file, field: "scenario[0].at")
            #expect(at.line == 4 && at.problem.contains("0 to 31622400"))
            let action = try issue(in: issues, file: file, field: "scenario[0].action")
            #expect(action.problem.contains("did you mean `disconnect`"))
            #expect(try issue(in: issues, file: file, field: "scenario[1].select").problem.contains("130%"))
            #expect(try issue(in: issues, file: file, field: "scenario[1].duration").problem.contains("missing"))
            #expect(try issue(in: issues, file: file, field: "scenario[2].version").problem.contains("not a setting of the `rate` action"))
            #expect(try issue(in: issues, file: file, field: "scenario[3].ids").problem.contains("`zz`"))
            #expect(try issue(in: issues, file: file, field: "scenario[3].tag").fix.contains("tags: [nowhere]"))
            #expect(try issue(in: issues, file: file, field: "scenario[4].kind").problem.contains("did you mean `drift`"))
        }
    }

    @Test func malformedBehaviourSettingsAreRefused() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"], fleetYAML: """
                broker:
                  host: localhost
                status_format: xml
                shadow:
                  preset: azure
                firmware:
                  failure_probability: 2
                  reboot_secs: 1
                """)
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("""
                firmware: "1 0"
                battery:
                  capacity_mah: 0
                  curve: [[0, 3.0], [0, 4.2]]
                """))
            let issues = loadIssues(fleet)
            let file = fleet.root + "/fleet.yaml", device = fleet.root + "/a/device.yaml"
            #expect(try issue(in: issues, file: file, field: "status_format").fix.contains("json or plain"))
            #expect(try issue(in: issues, file: file, field: "shadow.preset").problem.contains("generic or aws"))
            #expect(try issue(in: issues, file: file, field: "firmware.failure_probability").problem.contains("0 to 1"))
            #expect(try issue(in: issues, file: file, field: "firmware.reboot_secs").problem.contains("did you mean `reboot_seconds`"))
            #expect(try issue(in: issues, file: device, field: "firmware").line == 1)
            #expect(try issue(in: issues, file: device, field: "battery.capacity_mah").problem.contains("0.001"))
            #expect(try issue(in: issues, file: device, field: "battery.curve").problem.contains("rising"))
        }
    }

    @Test func batteryLifeFollowsFromCapacityAndCosts() {
        var battery = BatterySpec(capacityMAh: 1)
        battery.publishMAh = 0.1
        battery.connectMAh = 0.25
        battery.idleMAhPerHour = 0
        #expect(battery.publishesUntilEmpty(interval: 1) == 7)
        battery.idleMAhPerHour = 360  // 0.1 mAh per second
        #expect(battery.publishesUntilEmpty(interval: 1) == 3)
        #expect(battery.volts(atPercent: 100) == 4.2 && battery.volts(atPercent: 0) == 3.0)
        #expect(battery.volts(atPercent: 50) > 3.75 && battery.volts(atPercent: 50) < 3.9)
        let sun = BatterySpec.Recharge(peakMAhPerHour: 100, sunrise: 6, sunset: 18)
        #expect(sun.rate(atHour: 12) == 100 && sun.rate(atHour: 3) == 0)
    }
}
