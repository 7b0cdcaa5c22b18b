import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// YAML and value checks: each test writes one mistake and checks the issue's file, field, line,
/// problem and fix. These use `loadWithoutCredentials`, so no certificates are needed.
@Suite struct ValidationTests {
    /// Writes a fleet with `fleetYAML` and one device `dev-1` whose device.yaml is `deviceYAML`,
    /// and returns the issues and the two files' paths.
    private func check(fleetYAML: String = "seed: 1\n", deviceYAML: String = TempFleet.deviceYAML(),
                       _ body: ([FleetIssue], _ fleetFile: String, _ deviceFile: String) throws -> Void) throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", fleetYAML)
            try fleet.write("dev-1/device.yaml", deviceYAML)
            try body(parseIssues(fleet), fleet.path("fleet.yaml"), fleet.path("dev-1/device.yaml"))
        }
    }

    // MARK: YAML structure

    @Test func yamlSyntaxErrorReportsLineAndColumn() throws {
        try check(fleetYAML: "broker:\n  host: localhost\n  port: [8883\nseed: 1\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: nil)
            #expect(found.line != nil)
            #expect(found.problem.contains("YAML syntax error at line"))
            #expect(found.problem.contains("column"))
            #expect(found.fix.contains("indentation"))
        }
    }

    @Test func tabIndentationIsASyntaxErrorOnItsLine() throws {
        try check(deviceYAML: "interval: 5\nsensors:\n\t- name: x\n") { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: nil)
            #expect(found.line == 3)
            #expect(found.problem.contains("line 3"))
        }
    }

    @Test func topLevelThatIsNotAMappingIsRefused() throws {
        try check(deviceYAML: "- name: x\n  type: constant\n") { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: nil)
            #expect(found.line == 1)
            #expect(found.problem.contains("expected a mapping"))
            #expect(found.problem.contains("got a list"))
        }
    }

    @Test func emptyDeviceFileIsRefused() throws {
        try check(deviceYAML: "# nothing here\n") { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: nil)
            #expect(found.problem.contains("empty"))
        }
    }

    @Test func duplicateKeyIsReported() throws {
        try check(deviceYAML: TempFleet.deviceYAML("interval: 5\ninterval: 6")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "interval")
            #expect(found.problem.contains("more than once"))
        }
    }

    @Test func unknownKeySuggestsTheClosestKnownKey() throws {
        try check(deviceYAML: TempFleet.deviceYAML("intervall: 5")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "intervall")
            #expect(found.line == 1)
            #expect(found.problem.contains("did you mean `interval`?"))
            #expect(found.fix.contains("rename `intervall` to `interval`"))
        }
    }

    @Test func unknownNestedKeyWithoutCloseMatchListsTheAllowedKeys() throws {
        try check(fleetYAML: "broker:\n  host: localhost\n  username: bob\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.username")
            #expect(found.line == 3)
            #expect(found.problem.contains("unknown key `username`"))
            #expect(found.fix.contains("`host`") && found.fix.contains("`port`"))
        }
    }

    // MARK: Types and ranges

    @Test func textWhereANumberIsExpected() throws {
        try check(fleetYAML: "broker:\n  host: localhost\n  port: abc\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.port")
            #expect(found.line == 3)
            #expect(found.problem == "expected a whole number from 1 to 65535, got \"abc\"")
            #expect(found.fix == "set broker.port to the broker's TLS port, e.g. 8883")
        }
    }

    @Test func quotedNumberIsTextAndTheFixSaysSo() throws {
        try check(deviceYAML: TempFleet.deviceYAML("interval: \"5\"")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "interval")
            #expect(found.problem.contains("got the quoted text \"5\""))
            #expect(found.fix.contains("remove the quotes"))
        }
    }

    @Test func mappingWhereAScalarIsExpected() throws {
        try check(fleetYAML: "broker:\n  host:\n    name: x\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.host")
            #expect(found.problem.contains("got a mapping"))
        }
    }

    @Test(arguments: [
        ("70000", "got 70000"), ("0", "got 0"), ("-1", "got -1"), ("8883.5", "got 8883.5"),
    ])
    func portOutOfRange(value: String, got: String) throws {
        try check(fleetYAML: "broker:\n  port: \(value)\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.port")
            #expect(found.line == 2)
            #expect(found.problem.contains("from 1 to 65535"))
            #expect(found.problem.contains(got))
            #expect(found.fix.contains("8883"))
        }
    }

    @Test(arguments: ["0", "-2", "abc", "", ".nan", ".inf", "[1]"])
    func intervalMustBeAPositiveNumber(value: String) throws {
        try check(deviceYAML: TempFleet.deviceYAML("interval: \(value)")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "interval")
            #expect(found.line == 1)
            #expect(found.problem.contains("expected a number of seconds from 0.001 to 86400 (1 day)"))
            #expect(found.fix.contains("interval"))
        }
    }

    @Test func intervalInDefaultsIsCheckedToo() throws {
        try check(fleetYAML: "defaults:\n  interval: never\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "defaults.interval")
            #expect(found.line == 2)
            #expect(found.problem.contains("got \"never\""))
        }
    }

    @Test(arguments: ["3", "-1", "1.5", "yes"])
    func qosMustBeZeroOneOrTwo(value: String) throws {
        try check(deviceYAML: TempFleet.deviceYAML("qos: \(value)")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "qos")
            #expect(found.problem.contains("expected a whole number from 0 to 2"))
            #expect(found.fix.contains("0") && found.fix.contains("1") && found.fix.contains("2"))
        }
    }

    @Test func fleetLevelNumbersAreChecked() throws {
        try check(fleetYAML: "seed: -3\nconnect_rate: 0\noutbox_limit: 0\nbroker:\n  keepalive: 2\n") { issues, fleetFile, _ in
            for field in ["seed", "connect_rate", "outbox_limit", "broker.keepalive"] {
                _ = try issue(in: issues, file: fleetFile, field: field)
            }
        }
    }

    @Test func booleanMustBeTrueOrFalse() throws {
        try check(deviceYAML: TempFleet.deviceYAML("clean_session: maybe")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "clean_session")
            #expect(found.problem.contains("expected true or false"))
        }
    }

    @Test func protocolAcceptsTheNumberFiveAndRefusesOthers() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  protocol: 5\n")
            try fleet.write("d/device.yaml", TempFleet.deviceYAML())
            #expect(try FleetLoader.loadWithoutCredentials(directory: fleet.root).broker.protocolVersion == .v5)
        }
        try check(fleetYAML: "broker:\n  protocol: \"4\"\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.protocol")
            #expect(found.problem.contains("\"3.1.1\" or \"5\""))
        }
    }

    @Test(arguments: ["1.0", "1.1", "\"1.1\""])
    func obsoleteTLSVersionsAreRefused(value: String) throws {
        try check(fleetYAML: "broker:\n  tls_min_version: \(value)\n") { issues, fleetFile, _ in
            let found = try issue(in: issues, file: fleetFile, field: "broker.tls_min_version")
            #expect(found.problem.contains("refused"))
            #expect(found.fix.contains("\"1.2\""))
        }
    }

    @Test func insecureHostnameVerificationLoadsWithALoudWarning() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["d1"], fleetYAML: "broker:\n  insecure_skip_hostname_verification: true\n")
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.spec.broker.insecureSkipHostnameVerification)
            let warning = try #require(loaded.warnings.first)
            #expect(warning.file == fleet.path("fleet.yaml"))
            #expect(warning.field == "broker.insecure_skip_hostname_verification")
            #expect(warning.line == 2)
            #expect(warning.problem.hasPrefix("WARNING"))
        }
    }

    // MARK: Ids and topics

    @Test(arguments: ["bad id", "-leading", "ümlaut", String(repeating: "a", count: 65)])
    func invalidDeviceIDIsRefused(id: String) throws {
        try check(deviceYAML: TempFleet.deviceYAML("id: \"\(id)\"")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "id")
            #expect(found.line == 1)
            #expect(found.problem.contains(id))
            #expect(found.fix.contains("letters, digits"))
        }
    }

    @Test func invalidFolderNameUsedAsIDIsRefused() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("my device/device.yaml", TempFleet.deviceYAML())
            let found = try issue(in: parseIssues(fleet), file: fleet.path("my device/device.yaml"), field: "id")
            #expect(found.problem.contains("folder name"))
            #expect(found.fix.contains("rename the folder"))
        }
    }

    @Test(arguments: ["devices/+/telemetry", "devices/#", "$SYS/x", "/devices/{id}", "devices/{name}", ""])
    func badTopicsAreRefused(topic: String) throws {
        try check(deviceYAML: TempFleet.deviceYAML("topic: \"\(topic)\"")) { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "topic")
            #expect(found.fix.contains("devices/{id}/telemetry"))
        }
    }

    // MARK: Sensors

    @Test func sensorsMustNotBeEmpty() throws {
        try check(deviceYAML: "sensors: []\n") { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "sensors")
            #expect(found.problem.contains("no sensors"))
        }
        try check(deviceYAML: "interval: 5\n") { issues, _, deviceFile in
            let found = try issue(in: issues, file: deviceFile, field: "sensors")
            #expect(found.problem.contains("missing"))
        }
    }

    private func sensorIssue(_ sensor: String, field: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> FleetIssue {
        var result: FleetIssue?
        try check(deviceYAML: "sensors:\n  - name: ok\n    type: constant\n    value: 1\n" + sensor) { issues, _, deviceFile in
            result = try issue(in: issues, file: deviceFile, field: field, sourceLocation: sourceLocation)
        }
        return try #require(result, sourceLocation: sourceLocation)
    }

    @Test func uniformNeedsMinBelowMax() throws {
        let found = try sensorIssue("  - name: u\n    type: uniform\n    min: 5\n    max: 5\n", field: "sensors[1].min")
        #expect(found.line == 7)
        #expect(found.problem.contains("min (5) must be less than max (5)"))
    }

    @Test func gaussianNeedsNonNegativeStddev() throws {
        let found = try sensorIssue("  - name: g\n    type: gaussian\n    mean: 1\n    stddev: -1\n", field: "sensors[1].stddev")
        #expect(found.line == 8)
        #expect(found.problem.contains("expected a number from 0 to 1e15, got -1"))
    }

    @Test func gaussianClampNeedsMinBelowMax() throws {
        let found = try sensorIssue("  - name: g\n    type: gaussian\n    mean: 1\n    stddev: 1\n    min: 9\n    max: 2\n",
                                    field: "sensors[1].min")
        #expect(found.problem.contains("less than max"))
    }

    @Test func randomWalkStartMustLieWithinBounds() throws {
        let found = try sensorIssue(
            "  - name: w\n    type: random_walk\n    start: 40\n    step: 1\n    min: 0\n    max: 30\n", field: "sensors[1].start")
        #expect(found.problem.contains("between min (0) and max (30)"))
        #expect(found.fix.contains("from 0 to 30"))
    }

    @Test func randomWalkStepMustBePositive() throws {
        let found = try sensorIssue(
            "  - name: w\n    type: random_walk\n    start: 1\n    step: 0\n    min: 0\n    max: 30\n", field: "sensors[1].step")
        #expect(found.problem.contains("expected a number from 1e-09 to 1e15, got 0"))
    }

    @Test func randomWalkNeedsEveryParameter() throws {
        let found = try sensorIssue("  - name: w\n    type: random_walk\n    start: 1\n    step: 1\n    min: 0\n",
                                    field: "sensors[1].max")
        #expect(found.problem.contains("`max` is missing"))
    }

    @Test func sinePeriodMustBePositive() throws {
        let found = try sensorIssue("  - name: s\n    type: sine\n    period: 0\n    amplitude: 1\n", field: "sensors[1].period")
        #expect(found.problem.contains("expected a number of seconds from 0.001 to 31622400 (366 days), got 0"))
    }

    @Test func sineNoiseMustNotBeNegative() throws {
        let found = try sensorIssue("  - name: s\n    type: sine\n    period: 5\n    amplitude: 1\n    noise: -0.1\n",
                                    field: "sensors[1].noise")
        #expect(found.problem.contains("expected a number from 0 to 1e15, got -0.1"))
    }

    @Test func parameterOfAnotherTypeIsNamedAsSuch() throws {
        let found = try sensorIssue("  - name: s\n    type: sine\n    period: 5\n    amplitude: 1\n    foo: 2\n",
                                    field: "sensors[1].foo")
        #expect(found.line == 9)
        #expect(found.problem.hasPrefix("`foo` is not a parameter of a `sine` sensor; it takes period, amplitude, offset, noise"))
    }

    @Test func misspeltParameterGetsASuggestion() throws {
        let found = try sensorIssue("  - name: s\n    type: sine\n    period: 5\n    amplitude: 1\n    ofset: 2\n",
                                    field: "sensors[1].ofset")
        #expect(found.problem.contains("did you mean `offset`?"))
    }

    @Test func unknownSensorTypeGetsASuggestion() throws {
        let found = try sensorIssue("  - name: s\n    type: randomwalk\n", field: "sensors[1].type")
        #expect(found.problem.contains("did you mean `random_walk`?"))
        #expect(found.fix == "set sensors[1].type to random_walk")
    }

    @Test func sensorNamesMustBeValidAndUnique() throws {
        let duplicate = try sensorIssue("  - name: ok\n    type: counter\n", field: "sensors[1].name")
        #expect(duplicate.problem.contains("already used by sensors[0]"))
        let invalid = try sensorIssue("  - name: \"two words\"\n    type: counter\n", field: "sensors[1].name")
        #expect(invalid.problem.contains("letters, digits"))
    }

    @Test func precisionMustBeFromZeroToTen() throws {
        let found = try sensorIssue("  - name: c\n    type: counter\n    precision: 11\n", field: "sensors[1].precision")
        #expect(found.problem.contains("from 0 to 10"))
    }

    @Test func sensorDefaultsAreApplied() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "seed: 1\n")
            try fleet.write("d/device.yaml", """
                sensors:
                  - {name: c, type: counter}
                  - {name: s, type: sine, period: 10, amplitude: 2}
                  - {name: g, type: gaussian, mean: 1, stddev: 0.5}
                  - {name: u, type: uniform, min: -1, max: 1, unit: V, precision: 0}
                """)
            let sensors = try #require(try FleetLoader.loadWithoutCredentials(directory: fleet.root).devices.first).sensors
            #expect(sensors == [
                SensorSpec(name: "c", kind: .counter(start: 0, step: 1)),
                SensorSpec(name: "s", kind: .sine(period: 10, amplitude: 2, offset: 0, noise: 0)),
                SensorSpec(name: "g", kind: .gaussian(mean: 1, stddev: 0.5, min: nil, max: nil)),
                SensorSpec(name: "u", unit: "V", kind: .uniform(min: -1, max: 1), precision: 0),
            ])
        }
    }

    // MARK: Suggestions

    @Test func suggestionsOnlyForNearMisses() {
        #expect(Suggestion.closest(to: "intervall", in: ["interval", "qos"]) == "interval")
        #expect(Suggestion.closest(to: "qso", in: ["interval", "qos"]) == "qos")
        #expect(Suggestion.closest(to: "clean-session", in: ["clean_session"]) == "clean_session")
        #expect(Suggestion.closest(to: "username", in: ["host", "port"]) == nil)
        #expect(Suggestion.editDistance("kitten", "sitting") == 3)
    }
}
