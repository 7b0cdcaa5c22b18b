import Foundation
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

@Suite("Huge values: clipped in messages, no quadratic suggestion work")
struct HugeValueTests {
    @Test("a 1 MB key and a 1 MB value are shown by their start, an ellipsis and their length, quickly")
    func hugeKeyAndValue() throws {
        try withTempFleet { fleet in
            let huge = String(repeating: "x", count: 1_048_576)
            // An explicit key (`? key`): YAML caps implicit keys at 1024 characters.
            try fleet.write("fleet.yaml", "broker:\n  host: \"a \(huge)\"\nconnect_rate: \"\(huge)\"\n? \(huge)\n: 1\n")
            try fleet.write("dev/device.yaml", TempFleet.deviceYAML())
            let clock = ContinuousClock()
            var issues: [FleetIssue] = []
            let elapsed = clock.measure { issues = parseIssues(fleet) }
            #expect(elapsed < .seconds(5), "loading took \(elapsed)")
            #expect(issues.count == 3, "\(issues.map { String($0.description.prefix(300)) })")
            for issue in issues {
                #expect(issue.description.utf8.count < 2_000, "\(issue.description.prefix(300))…")
            }
            #expect(issues.contains { $0.problem.contains("… (1048578 characters)") }, "host: \(issues.map { $0.problem.prefix(200) })")
            #expect(issues.contains { $0.problem.contains("unknown key `xxxx") && $0.problem.contains("… (1048576 characters)") })
        }
    }

    @Test("did you mean: long words get no suggestion (bounded work), short typos still do")
    func suggestionBound() {
        let clock = ContinuousClock()
        let long = String(repeating: "k", count: 1_000_000)
        let elapsed = clock.measure {
            #expect(Suggestion.closest(to: long, in: FleetSettings.fleetKeys) == nil)
        }
        #expect(elapsed < .milliseconds(200), "\(elapsed)")
        #expect(Suggestion.closest(to: "conect_rate", in: FleetSettings.fleetKeys) == "connect_rate")
        #expect(SettingText.clipped("short") == "short")
        #expect(SettingText.clipped(String(repeating: "é", count: 100), limit: 10) == String(repeating: "é", count: 10) + "… (100 characters)")
    }
}
