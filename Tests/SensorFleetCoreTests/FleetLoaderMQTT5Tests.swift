import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// The settings of MQTT 5 sessions, QoS 2 and the other ways in: user name and password, plain TCP.
@Suite struct FleetLoaderMQTT5Tests {
    @Test func qos2AndSessionExpiryLoadFromDefaultsAndDevices() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                broker:
                  host: localhost
                  protocol: "5"
                defaults:
                  qos: 2
                  clean_session: false
                  session_expiry: 3600
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("session_expiry: 4294967295\nqos: 1"))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.devices.map(\.qos) == [2, 1])
            #expect(spec.devices.map(\.sessionExpiry) == [3600, 4_294_967_295])
        }
    }

    @Test func qos3AndANegativeSessionExpiryAreRefusedWithTheirRange() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"])
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("qos: 3\nsession_expiry: -1"))
            let issues = loadIssues(fleet)
            let qos = try issue(in: issues, file: fleet.root + "/a/device.yaml", field: "qos")
            #expect(qos.problem.contains("2") && qos.fix.contains("exactly once"))
            #expect(qos.line != nil)
            let expiry = try issue(in: issues, file: fleet.root + "/a/device.yaml", field: "session_expiry")
            #expect(expiry.problem.contains("4294967295") || expiry.problem.contains("4,294,967,295"), "\(expiry.problem)")
        }
    }

    @Test func usernameIsTemplatedAndThePasswordComesFromItsFileAndNeverShows() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                broker:
                  host: localhost
                defaults:
                  username: "user-{id}"
                  password_file: secret.txt
                """)
            try fleet.write("secret.txt", "s3cret-pw\n", mode: 0o600)
            try fleet.write("b/pw.txt", "other\r\n", mode: 0o600)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("password_file: pw.txt"))
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
            let a = try #require(loaded.spec.devices.first)
            #expect(a.username == "user-a" && a.password?.value == "s3cret-pw")
            #expect(loaded.spec.devices.last?.password?.value == "other")
            #expect(!"\(a)".contains("s3cret") && !String(reflecting: a).contains("s3cret"))
        }
    }

    @Test func aPasswordInClearWarnsAndAMissingFileOrAMissingUserNameIsAnError() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b", "c"])
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("username: \"{id}\"\npassword: hunter2"))
            let warned = try FleetLoader.load(directory: fleet.root)
            let warning = try #require(warned.warnings.first { $0.field == "password" })
            #expect(warning.problem.contains("in clear") && warning.fix.contains("password_file"))
            #expect(!warning.description.contains("hunter2"))

            try fleet.write("b/device.yaml", TempFleet.deviceYAML("username: \"{id}\"\npassword_file: nowhere.txt"))
            try fleet.write("c/device.yaml", TempFleet.deviceYAML("password: x"))
            let issues = loadIssues(fleet)
            let missing = try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "password_file")
            #expect(missing.problem.contains("does not exist") && missing.line != nil)
            let noUser = try issue(in: issues, file: fleet.root + "/c/device.yaml", field: "username")
            #expect(noUser.problem.contains("no user name"))
        }
    }

    @Test func aPasswordFileOthersCanReadIsWarnedAbout() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"])
            try fleet.write("a/pw.txt", "pw\n", mode: 0o644)
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("username: a\npassword_file: pw.txt"))
            let warning = try #require(try FleetLoader.load(directory: fleet.root).warnings.first { $0.field == "password_file" })
            #expect(warning.fix.contains("chmod 600"))
        }
    }

    @Test func plainTCPWarnsLoudlyAndNeedsNoCredentials() throws {
        try withTempFleet { fleet in
            try fleet.write("fleet.yaml", "broker:\n  host: localhost\n  port: 1883\n  tls: false\n")
            try fleet.write("a/device.yaml", TempFleet.deviceYAML("username: \"{id}\"\npassword: x"))
            // No CA, no certificate, no key: nothing to check over plain TCP.
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(!loaded.spec.broker.tls && !loaded.spec.broker.allowPlaintext)
            let warning = try #require(loaded.warnings.first { $0.field == "broker.tls" })
            #expect(warning.problem.contains("WARNING: TLS is OFF"))
        }
    }

    @Test func mqtt5TelemetryPropertiesLoadWithIDReplacedAndAnAliasAtQoS1IsRefused() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                broker:
                  host: localhost
                  protocol: "5"
                defaults:
                  qos: 0
                  mqtt5:
                    message_expiry: 60
                    content_type: application/json
                    user_properties:
                      site: "{id}-site"
                      line: "4"
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("mqtt5:\n  topic_alias: true"))
            let spec = try FleetLoader.load(directory: fleet.root).spec
            let a = try #require(spec.devices.first)
            #expect(a.telemetryProperties == TelemetryProperties(
                messageExpiry: 60, contentType: "application/json",
                userProperties: [.init(name: "site", value: "a-site"), .init(name: "line", value: "4")]))
            // device.yaml's mqtt5 over the defaults key by key.
            #expect(spec.devices.last?.telemetryProperties.topicAlias == true)
            #expect(spec.devices.last?.telemetryProperties.messageExpiry == 60)

            try fleet.write("b/device.yaml", TempFleet.deviceYAML("qos: 1\nmqtt5:\n  topic_alias: true\n  message_expiry: 0\n  colour: red"))
            let issues = loadIssues(fleet)
            let alias = try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "mqtt5.topic_alias")
            #expect(alias.problem.contains("only used at qos 0"))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "mqtt5.message_expiry").line != nil)
            _ = try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "mqtt5.colour")
        }
    }
}
