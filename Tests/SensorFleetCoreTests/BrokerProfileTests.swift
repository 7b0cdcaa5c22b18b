import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

@Suite("Profiles (profile: in fleet.yaml): what they set, what they refuse")
struct BrokerProfileTests {
    @Test func awsOnPort443SetsTheALPNAndRefusesQoS2KeepAliveAndDeepTopics() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                profile: aws-iot-core
                broker:
                  host: abc-ats.iot.eu-west-1.amazonaws.com
                  port: 443
                """)
            let spec = try FleetLoader.load(directory: fleet.root).spec
            #expect(spec.profile == .awsIoTCore)
            #expect(spec.broker.alpn == "x-amzn-mqtt-ca" && spec.broker.port == 443 && spec.broker.protocolVersion == .v311)

            try fleet.write("fleet.yaml", """
                profile: aws-iot-core
                broker:
                  host: localhost
                  port: 1883
                  keepalive: 1500
                  alpn: h2
                defaults:
                  qos: 2
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("qos: 1\ntopic: a/b/c/d/e/f/g/h/{id}"))
            let issues = loadIssues(fleet)
            let fleetFile = fleet.root + "/fleet.yaml"
            #expect(try issue(in: issues, file: fleetFile, field: "broker.port").problem.contains("8883 or 443"))
            let keepAlive = try issue(in: issues, file: fleetFile, field: "broker.keepalive")
            #expect(keepAlive.problem.contains("30 to 1200") && keepAlive.line == 5)
            let qos = try issue(in: issues, file: fleet.root + "/a/device.yaml", field: "qos")
            #expect(qos.problem.contains("aws-iot-core") && qos.fix.contains("set qos to 1"))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "topic").problem.contains("8 slashes"))
            #expect(!issues.contains { $0.file == fleet.root + "/b/device.yaml" && $0.field == "qos" })
        }
    }

    @Test func azureSetsUserNameTopicAndProtocolAndRefusesWhatContradictsThem() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: """
                profile: azure-iot-hub
                broker:
                  host: myhub.azure-devices.net
                """)
            let spec = try FleetLoader.load(directory: fleet.root).spec
            let a = try #require(spec.devices.first)
            #expect(a.username == "myhub.azure-devices.net/a/?api-version=2021-04-12")
            #expect(a.topic == "devices/a/messages/events/")
            #expect(spec.broker.protocolVersion == .v311 && spec.broker.port == 8883)

            try fleet.write("fleet.yaml", """
                profile: azure-iot-hub
                broker:
                  host: myhub.azure-devices.net
                  protocol: "5"
                """)
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("username: someone\ntopic: devices/{id}/telemetry"))
            let issues = loadIssues(fleet)
            #expect(try issue(in: issues, file: fleet.root + "/fleet.yaml", field: "broker.protocol").problem.contains("3.1.1"))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "username").problem.contains("myhub.azure-devices.net/b/?api-version="))
            #expect(try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "topic").problem.contains("devices/b/messages/events/"))
        }
    }

    @Test func azureUsesIoTHubTopicsOnlyAndRefusesShadowLabelsTopicAndSparkplug() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a", "b"], fleetYAML: "profile: azure-iot-hub\nbroker:\n  host: myhub.azure-devices.net\n")
            let a = try #require(try FleetLoader.load(directory: fleet.root).spec.devices.first)
            // No retained status, no will; commands from C2D messages; replies and OTA progress as D2C events.
            #expect(a.statusTopic == nil)
            #expect(a.commandsTopic == "devices/a/messages/devicebound/#")
            #expect(a.repliesTopic == "devices/a/messages/events/" && a.otaTopic == "devices/a/messages/events/")
            #expect(a.isCommand("devices/a/messages/devicebound/%24.to=%2Fdevices%2Fa%2Fmessages%2FdeviceBound"))
            #expect(!a.isCommand("devices/a/messages/deviceboundx") && !a.isCommand("devices/b/messages/devicebound/x"))

            // Other profiles keep the device's own topics.
            try fleet.write("fleet.yaml", "profile: emqx\nbroker:\n  host: localhost\n")
            let e = try #require(try FleetLoader.load(directory: fleet.root).spec.devices.first)
            #expect(e.statusTopic == "devices/a/status" && e.commandsTopic == "devices/a/commands" && e.repliesTopic == "devices/a/replies")
            #expect(e.isCommand("devices/a/commands") && !e.isCommand("devices/a/commands/x"))

            try fleet.write("fleet.yaml", """
                profile: azure-iot-hub
                broker:
                  host: myhub.azure-devices.net
                labels_topic: devices/{id}/faults
                shadow:
                  preset: generic
                """)
            let fleetFile = fleet.root + "/fleet.yaml"
            let fleetIssues = loadIssues(fleet)
            let labels = try issue(in: fleetIssues, file: fleetFile, field: "labels_topic")
            #expect(labels.line == 4 && labels.problem.contains("azure-iot-hub") && labels.fix.contains("remove labels_topic"))
            let shadow = try issue(in: fleetIssues, file: fleetFile, field: "shadow")
            #expect(shadow.line != nil && shadow.fix.contains("remove shadow"))

            try fleet.write("fleet.yaml", "profile: azure-iot-hub\nbroker:\n  host: myhub.azure-devices.net\n")
            try fleet.write("b/device.yaml", TempFleet.deviceYAML("payload: sparkplug_b\nsparkplug:\n  group_id: plant-1"))
            let issues = loadIssues(fleet)
            let sparkplug = try issue(in: issues, file: fleet.root + "/b/device.yaml", field: "payload")
            #expect(sparkplug.problem.contains("spBv1.0") && sparkplug.fix.contains("sparkplug_b"))
            // Sparkplug is refused as such, not as a wrong topic.
            #expect(!issues.contains { $0.file == fleet.root + "/b/device.yaml" && $0.field == "topic" })
            #expect(!issues.contains { $0.file == fleet.root + "/a/device.yaml" })
        }
    }

    @Test func hivemqAndEmqxDefaultToMQTT5AndAnUnknownProfileIsNamed() throws {
        let ca = try TestCA.make()
        try withTempFleet { fleet in
            try fleet.writeValidFleet(ca: ca, ids: ["a"], fleetYAML: "profile: emqx\nbroker:\n  host: localhost\n")
            #expect(try FleetLoader.load(directory: fleet.root).spec.broker.protocolVersion == .v5)
            try fleet.write("fleet.yaml", "profile: hivemq\nbroker:\n  host: localhost\n  protocol: \"3.1.1\"\n")
            #expect(try FleetLoader.load(directory: fleet.root).spec.broker.protocolVersion == .v311)
            try fleet.write("fleet.yaml", "profile: aws-iot\nbroker:\n  host: localhost\n")
            let unknown = try issue(in: loadIssues(fleet), file: fleet.root + "/fleet.yaml", field: "profile")
            #expect(unknown.problem.contains("did you mean `aws-iot-core`"))
        }
        #expect(BrokerProfile.awsIoTCore.explanation.contains { $0.contains("x-amzn-mqtt-ca") })
        #expect(BrokerProfile.azureIoTHub.explanation.last?.contains("refused by validate: protocol 5") == true)
    }
}
