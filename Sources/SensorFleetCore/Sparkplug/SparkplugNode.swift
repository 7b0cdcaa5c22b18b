import Logging
import MosquittoKit

/// The Sparkplug B side of one device, which is an edge node: its topics, the NDEATH of each
/// connection's will (a new `bdSeq` per CONNECT), the births, and the session's Sparkplug `seq`
/// (NBIRTH 0, then 1, 2 … 255, 0 … on every NDATA as it goes out). Confined to the device's
/// reactor.
///
/// Messages wait in the outbox without a Sparkplug seq; `Delivery` asks this node to stamp each
/// one as it hands it to a connection (`PayloadStamp`), so a reading queued while offline goes
/// out after the new NBIRTH with the new session's numbers.
final class SparkplugNode: PayloadStamp {
    let settings: SparkplugSettings
    let birthTopic: String
    let dataTopic: String
    let deathTopic: String
    let commandTopic: String
    private let sensorNames: [String]
    private let aliasByName: [String: UInt64]
    private let logger: Logger
    private var bdSeq: BirthDeathSequence
    /// The seq of the next message of this session.
    private var nextSeq: UInt8 = 0
    /// Each sensor's last value, for the next birth.
    private var lastValues: [String: Double] = [:]
    private var scratch: [(alias: UInt64, value: Double)] = []
    private(set) var births = 0
    private(set) var rebirths = 0

    init(settings: SparkplugSettings, deviceID: String, sensors: [SensorSpec], logger: Logger) {
        self.settings = settings
        birthTopic = settings.topic(.nbirth)
        dataTopic = settings.topic(.ndata)
        deathTopic = settings.topic(.ndeath)
        commandTopic = settings.topic(.ncmd)
        sensorNames = sensors.map(\.name)
        var aliases: [String: UInt64] = [:]
        for (index, name) in sensorNames.enumerated() { aliases[name] = SparkplugPayload.sensorAlias(index) }
        aliasByName = aliases
        self.logger = logger
        bdSeq = BirthDeathSequence(stateDirectory: nil, deviceID: deviceID, logger: logger)
    }

    /// Keeps `bdSeq` in the state folder from now on (before the first connect).
    func useStateDirectory(_ path: String?, deviceID: String) {
        guard let path else { return }
        bdSeq = BirthDeathSequence(stateDirectory: path, deviceID: deviceID, logger: logger)
    }

    /// The will of the next CONNECT: an NDEATH with the next `bdSeq`, QoS 1, not retained.
    func nextWill() -> MQTTWill {
        let value = bdSeq.next()
        return MQTTWill(topic: deathTopic, payload: SparkplugPayload.death(bdSeq: value, timestampMillis: WallClock.millis()),
                        qos: 1, retain: false)
    }

    /// The NDEATH for a clean disconnect (DISCONNECT suppresses the will): the current `bdSeq`.
    func deathPayload() -> [UInt8] {
        SparkplugPayload.death(bdSeq: bdSeq.current ?? 0, timestampMillis: WallClock.millis())
    }

    /// The NBIRTH of this connection (or a rebirth): Sparkplug seq 0; the next message gets 1.
    func birthPayload(deviceSeq: UInt64) -> [UInt8] {
        births += 1
        nextSeq = 1
        return SparkplugPayload.birth(bdSeq: bdSeq.current ?? 0, deviceSeq: deviceSeq, sensors: sensorNames,
                                      values: lastValues, timestampMillis: WallClock.millis())
    }

    /// An NDATA for one reading (without its Sparkplug seq, see `stamp`).
    func dataPayload(deviceSeq: UInt64, readings: [(name: String, value: Double)], timestampMillis: Int64) -> [UInt8] {
        scratch.removeAll(keepingCapacity: true)
        for reading in readings {
            guard let alias = aliasByName[reading.name] else { continue }
            scratch.append((alias, reading.value))
            lastValues[reading.name] = reading.value
        }
        return SparkplugPayload.data(deviceSeq: deviceSeq, readings: scratch, timestampMillis: timestampMillis)
    }

    /// A rebirth was asked for (NCMD `Node Control/Rebirth`).
    func noteRebirth() { rebirths += 1 }

    // MARK: PayloadStamp

    func stamp(_ payload: [UInt8], into buffer: inout [UInt8]) {
        SparkplugPayload.appendSequence(nextSeq, to: payload, into: &buffer)
    }

    func stamped() { nextSeq &+= 1 }
}
