import SwiftProtobuf

/// Sparkplug B payloads of a SensorFleet edge node, made with the code generated from
/// Protos/sparkplug_b.proto (`SparkplugBPayload`).
///
/// Metrics of a node (names in the births, aliases from then on):
///
/// | name                   | alias | datatype | in                      |
/// |------------------------|-------|----------|-------------------------|
/// | `bdSeq`                | –     | Int64    | NBIRTH, NDEATH          |
/// | `Node Control/Rebirth` | 1     | Boolean  | NBIRTH (false)          |
/// | `SensorFleet/seq`      | 2     | UInt64   | NBIRTH, every NDATA     |
/// | each sensor, by name   | 3, 4… | Double   | NBIRTH, NDATA           |
///
/// `SensorFleet/seq` is the device's own 64-bit message number (the JSON payload's `seq`, kept
/// across reconnects and restarts), which the verifier and `bench` check for gaps; the payload's
/// Sparkplug `seq` (0–255, per MQTT session, NBIRTH = 0) is something else and wraps. The
/// payload's `timestamp` is the reading's time in ms since 1970 (the JSON `ts`).
public enum SparkplugPayload {
    public static let bdSeqName = "bdSeq"
    public static let rebirthName = "Node Control/Rebirth"
    public static let rebirthAlias: UInt64 = 1
    public static let seqName = "SensorFleet/seq"
    public static let seqAlias: UInt64 = 2
    /// The alias of the sensor at `index` in the device's `sensors:`.
    public static func sensorAlias(_ index: Int) -> UInt64 { UInt64(index) + 3 }

    /// The NBIRTH: Sparkplug seq 0, the bdSeq of the will now registered, every metric with its
    /// name, alias, datatype and current value (`is_null` for a sensor with no reading yet).
    /// - Parameters:
    ///   - bdSeq: the bdSeq of the NDEATH in the will of this connection.
    ///   - deviceSeq: the device's last message number (`SensorFleet/seq`).
    ///   - sensors: the sensor names, in the order of `sensors:`.
    ///   - values: the last value of each sensor that has one.
    ///   - timestampMillis: now, in ms since 1970.
    public static func birth(
        bdSeq: UInt8, deviceSeq: UInt64, sensors: [String], values: [String: Double], timestampMillis: Int64
    ) -> [UInt8] {
        let ts = UInt64(max(0, timestampMillis))
        var payload = SparkplugBPayload()
        payload.timestamp = ts
        payload.seq = 0
        payload.metrics.reserveCapacity(3 + sensors.count)
        payload.metrics.append(metric(name: bdSeqName, type: .int64, ts: ts) { $0.longValue = UInt64(bdSeq) })
        payload.metrics.append(metric(name: rebirthName, alias: rebirthAlias, type: .boolean, ts: ts) { $0.booleanValue = false })
        payload.metrics.append(metric(name: seqName, alias: seqAlias, type: .uint64, ts: ts) { $0.longValue = deviceSeq })
        for (index, name) in sensors.enumerated() {
            payload.metrics.append(metric(name: name, alias: sensorAlias(index), type: .double, ts: ts) { metric in
                if let value = values[name] { metric.doubleValue = value } else { metric.isNull = true }
            })
        }
        return serialized(payload)
    }

    /// An NDATA without its Sparkplug `seq`, which depends on the session it goes out on and is
    /// appended then (`appendSequence`): aliases only, no names.
    /// - Parameters:
    ///   - deviceSeq: the device's message number (`SensorFleet/seq`).
    ///   - readings: sensor aliases and values.
    ///   - timestampMillis: when the readings were made, in ms since 1970.
    public static func data(deviceSeq: UInt64, readings: [(alias: UInt64, value: Double)], timestampMillis: Int64) -> [UInt8] {
        let ts = UInt64(max(0, timestampMillis))
        var payload = SparkplugBPayload()
        payload.timestamp = ts
        payload.metrics.reserveCapacity(1 + readings.count)
        payload.metrics.append(metric(alias: seqAlias, type: .uint64, ts: ts) { $0.longValue = deviceSeq })
        for reading in readings {
            payload.metrics.append(metric(alias: reading.alias, type: .double, ts: ts) { $0.doubleValue = reading.value })
        }
        return serialized(payload)
    }

    /// The NDEATH: the bdSeq metric only (no Sparkplug seq).
    public static func death(bdSeq: UInt8, timestampMillis: Int64) -> [UInt8] {
        let ts = UInt64(max(0, timestampMillis))
        var payload = SparkplugBPayload()
        payload.timestamp = ts
        payload.metrics.append(metric(name: bdSeqName, type: .int64, ts: ts) { $0.longValue = UInt64(bdSeq) })
        return serialized(payload)
    }

    /// `payload` followed by its Sparkplug `seq` (field 3, a varint: two or three bytes). A
    /// protobuf message may carry its fields in any order, so appending is as good as
    /// re-encoding, without decoding the message again.
    public static func appendSequence(_ seq: UInt8, to payload: [UInt8], into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(payload.count + 3)
        buffer.append(contentsOf: payload)
        buffer.append(0x18)  // field 3, wire type 0 (varint)
        if seq < 0x80 {
            buffer.append(seq)
        } else {
            buffer.append(seq | 0x80)
            buffer.append(0x01)
        }
    }

    /// What the verifier needs from an NDATA: the device's message number (`SensorFleet/seq`),
    /// the payload's timestamp, and the edge node id (the topic's last level) as the device.
    /// nil when the bytes are not a Sparkplug payload with both.
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, topic: String) -> TelemetryHeader? {
        guard let payload = try? SparkplugBPayload(serializedBytes: bytes), payload.hasTimestamp,
              let seq = payload.metrics.first(where: { $0.hasAlias ? $0.alias == seqAlias : $0.name == seqName }),
              case .longValue(let deviceSeq)? = seq.value
        else { return nil }
        let edge = topic.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return TelemetryHeader(device: edge, seq: deviceSeq, timestampMillis: Int64(clamping: payload.timestamp))
    }

    /// Whether an NCMD asks for a rebirth: a metric `Node Control/Rebirth` (by name, or by its
    /// alias from our birth) with the value true.
    public static func isRebirthRequest(_ bytes: [UInt8]) -> Bool {
        guard let payload = try? SparkplugBPayload(serializedBytes: bytes) else { return false }
        return payload.metrics.contains { metric in
            let named = metric.hasName ? metric.name == rebirthName : (metric.hasAlias && metric.alias == rebirthAlias)
            guard named, case .booleanValue(true)? = metric.value else { return false }
            return true
        }
    }

    /// An NCMD that asks for a rebirth, as a Sparkplug host sends it.
    public static func rebirthRequest(timestampMillis: Int64) -> [UInt8] {
        var payload = SparkplugBPayload()
        payload.timestamp = UInt64(max(0, timestampMillis))
        payload.metrics.append(metric(name: rebirthName, type: .boolean, ts: payload.timestamp) { $0.booleanValue = true })
        return serialized(payload)
    }

    // MARK: Building

    private static func metric(
        name: String? = nil, alias: UInt64? = nil, type: SparkplugBDataType, ts: UInt64,
        _ fill: (inout SparkplugBPayload.Metric) -> Void
    ) -> SparkplugBPayload.Metric {
        var metric = SparkplugBPayload.Metric()
        if let name { metric.name = name }
        if let alias { metric.alias = alias }
        metric.timestamp = ts
        metric.datatype = UInt32(type.rawValue)
        fill(&metric)
        return metric
    }

    private static func serialized(_ payload: SparkplugBPayload) -> [UInt8] {
        // Only fails for a message missing required fields, and this proto has none.
        (try? payload.serializedBytes()) ?? []
    }
}
