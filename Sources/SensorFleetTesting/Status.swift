import Foundation

/// The status word of a message on `devices/{id}/status`: the payload itself with
/// `status_format: plain`, or its `status` field with the JSON birth (the default).
public func statusWord(_ payload: String) -> String {
    guard payload.hasPrefix("{"),
          let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any],
          let status = object["status"] as? String
    else { return payload }
    return status
}

/// The decoded JSON status messages per device id, in arrival order (plain ones as `{"status": word}`).
public func statusMessages(_ messages: [(topic: String, payload: String)]) -> [String: [[String: Any]]] {
    var result: [String: [[String: Any]]] = [:]
    for message in messages where message.topic.hasPrefix("devices/") && message.topic.hasSuffix("/status") {
        let id = String(message.topic.split(separator: "/")[1])
        let object = (try? JSONSerialization.jsonObject(with: Data(message.payload.utf8))) as? [String: Any]
        result[id, default: []].append(object ?? ["status": message.payload])
    }
    return result
}
