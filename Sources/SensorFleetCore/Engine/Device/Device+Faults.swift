import MosquittoKit
extension Device {
    /// Starts fault `kind` on sensor `sensor` (every sensor when nil) at the device's next
    /// reading, for `duration` seconds (a spike: one reading). Each start and end goes to the
    /// fleet's `labels:` file like the faults of `faults:`; the telemetry does not say.
    /// - Parameters:
    ///   - kind: what goes wrong.
    ///   - sensor: a sensor's `name`; nil: all of the device's sensors.
    ///   - duration: seconds from the first faulty reading.
    /// - Returns: the sensors the fault was started on (empty when no sensor has that name).
    @discardableResult
    func startFault(_ kind: FaultSpec.Kind, sensor: String?, duration: Double) -> [String] {
        var started: [String] = []
        let length = FaultSpec.Length.seconds(duration.isFinite ? max(0, duration) : 0)
        for i in sensors.indices where sensor == nil || sensors[i].name == sensor {
            sensors[i].startFault(kind, length: length)
            started.append(sensors[i].name)
        }
        return started
    }

    /// Publishes one fault label record on `labels_topic` (QoS 1, not retained); false when the
    /// device is offline.
    func publishLabel(_ record: ArraySlice<UInt8>) -> Bool {
        guard let topic = spec.faultLabelsTopic, let client = supervisor.client, client.isConnected else { return false }
        let result = record.withUnsafeBytes { client.publish(topic: topic, payload: $0, qos: 1, retain: false) }
        if case .success = result { return true }
        return false
    }
}
