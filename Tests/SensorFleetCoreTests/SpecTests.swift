import SensorFleetTesting
import Testing
@testable import SensorFleetCore

@Suite struct SpecTests {
    @Test func defaultTelemetryTopicUsesDeviceID() {
        let d = DeviceSpec(id: "t-1", directory: "/x", certFile: "/x/c", keyFile: "/x/k", interval: 1, sensors: [])
        #expect(d.topic == "devices/t-1/telemetry")
        #expect(d.statusTopic == "devices/t-1/status")
    }
}
