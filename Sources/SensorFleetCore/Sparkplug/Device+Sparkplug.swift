import MosquittoKit
import Logging

/// A device that is a Sparkplug B edge node (`payload: sparkplug_b`): births, deaths, NCMD.
extension Device {
    /// NBIRTH (QoS 0, not retained, Sparkplug seq 0) on the connection that just came up or
    /// that a host asked to rebirth; before any NDATA of the session.
    func publishSparkplugBirth() {
        guard let sparkplug, let client = supervisor.client else { return }
        let payload = sparkplug.birthPayload(deviceSeq: seq)
        let result = payload.withUnsafeBytes { raw in
            client.publish(topic: sparkplug.birthTopic, payload: raw, qos: 0, retain: false)
        }
        if case .failure(let error) = result { logger.warning("cannot publish the Sparkplug NBIRTH on \(sparkplug.birthTopic): \(error)") }
    }

    /// NDEATH before a clean DISCONNECT (which makes the broker drop the will), QoS 1.
    func publishSparkplugDeath() {
        guard let sparkplug, let client = supervisor.client else { return }
        _ = sparkplug.deathPayload().withUnsafeBytes { raw in
            client.publish(topic: sparkplug.deathTopic, payload: raw, qos: 1, retain: false)
        }
    }

    /// NCMD: `Node Control/Rebirth` = true → a new NBIRTH on the same connection (same bdSeq,
    /// seq back to 0). Other node commands are ignored (the node has no writable metrics).
    func didReceiveSparkplugCommand(_ payload: [UInt8]) {
        guard let sparkplug else { return }
        commandsReceived += 1
        guard SparkplugPayload.isRebirthRequest(payload) else {
            logger.debug("Sparkplug NCMD ignored: no `Node Control/Rebirth` = true in it")
            return
        }
        sparkplug.noteRebirth()
        logger.info("Sparkplug rebirth asked for: publishing NBIRTH again")
        publishSparkplugBirth()
        pump()
    }
}
