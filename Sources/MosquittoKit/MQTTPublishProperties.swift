internal import CMosquitto

/// MQTT 5 PUBLISH properties (message expiry, content type, user properties), built once into
/// libmosquitto's property list and reused for every publish: libmosquitto only reads the list,
/// and copies what it keeps for a re-send. Immutable after `init`, hence Sendable.
public final class MQTTPublishProperties: @unchecked Sendable {
    /// Seconds the broker keeps the message for a subscriber that is not there; nil: for ever.
    public let messageExpiry: UInt32?
    public let contentType: String?
    /// Name/value pairs, in order (a name may repeat).
    public let userProperties: [(name: String, value: String)]
    /// libmosquitto's list (`mosquitto_property *`), nil when empty.
    var list: OpaquePointer?

    /// - Throws: when libmosquitto refuses a property (a text that is not valid UTF-8).
    public init(messageExpiry: UInt32? = nil, contentType: String? = nil,
                userProperties: [(name: String, value: String)] = []) throws(MosquittoError) {
        self.messageExpiry = messageExpiry
        self.contentType = contentType
        self.userProperties = userProperties
        var list: OpaquePointer?
        func check(_ rc: Int32, _ what: String) throws(MosquittoError) {
            guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) else {
                mosquitto_property_free_all(&list)
                throw MosquittoError(code: rc, detail: what)
            }
        }
        if let messageExpiry {
            try check(mosquitto_property_add_int32(&list, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), messageExpiry), "message expiry")
        }
        if let contentType {
            try check(mosquitto_property_add_string(&list, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType), "content type")
        }
        for (name, value) in userProperties {
            try check(mosquitto_property_add_string_pair(&list, Int32(MQTT_PROP_USER_PROPERTY.rawValue), name, value), "user property \(name)")
        }
        self.list = list
    }

    public var isEmpty: Bool { list == nil }

    deinit { mosquitto_property_free_all(&list) }
}
