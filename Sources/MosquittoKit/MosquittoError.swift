internal import CMosquitto

/// An error from libmosquitto, OpenSSL or the connection itself, with our own message for every
/// libmosquitto code (its `mosquitto_strerror` is wrong or vague for several of them) and, where
/// there is one, OpenSSL's reason or the MQTT reason code the broker sent.
public struct MosquittoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libmosquitto's `MOSQ_ERR_*` value, or one of the codes below that have no libmosquitto twin.
    public let code: Int32
    /// Our sentence for `code`.
    public let message: String
    /// What OpenSSL, the certificate check, errno or the broker added; nil when nothing did.
    public let detail: String?
    /// MQTT CONNACK / PUBACK reason code when the broker refused something (MQTT 5 numbering;
    /// 3.1.1 return codes are mapped onto it).
    public let reasonCode: Int?
    /// What was going on when the connection ended, for the diagnosis of brokers that close
    /// instead of answering (see `hint`).
    public let context: Context

    /// The circumstances of a close that say more than its code.
    public struct Context: Sendable, Equatable {
        /// The client spoke MQTT 5.
        public var mqtt5: Bool
        /// The TLS handshake had finished and CONNECT was sent, but no CONNACK came before the
        /// close (or the time-out).
        public var closedBeforeCONNACK: Bool
        /// The broker closed the connection within 2 s of its first PUBLISH, whose topic this is.
        public var closedAfterPublishTo: String?

        public init(mqtt5: Bool = false, closedBeforeCONNACK: Bool = false, closedAfterPublishTo: String? = nil) {
            self.mqtt5 = mqtt5
            self.closedBeforeCONNACK = closedBeforeCONNACK
            self.closedAfterPublishTo = closedAfterPublishTo
        }
    }

    /// The connection was lost (libmosquitto's MOSQ_ERR_CONN_LOST).
    public static let connectionLostCode: Int32 = 7
    /// A system call failed (libmosquitto's MOSQ_ERR_ERRNO), e.g. a connection reset.
    public static let systemCallFailedCode: Int32 = 14
    /// The broker's host name did not resolve (libmosquitto's MOSQ_ERR_EAI).
    public static let nameResolutionCode: Int32 = 15
    /// No CONNACK arrived within the connect time-out (TCP + TLS + CONNECT).
    public static let connectTimeoutCode: Int32 = 1000
    /// The broker answered CONNACK with a refusal.
    public static let connectRefusedCode: Int32 = 1001
    /// The broker ended the connection with an MQTT 5 DISCONNECT; `reasonCode` says why.
    public static let disconnectedByServerCode: Int32 = 1002

    public init(code: Int32, detail: String? = nil, reasonCode: Int? = nil, context: Context = Context()) {
        self.code = code
        self.message = MosquittoError.describe(code: code)
        self.detail = detail
        self.reasonCode = reasonCode
        self.context = context
    }

    public var description: String {
        var text = message
        if let reasonCode { text += " (reason \(reasonCode): \(MQTTReasonCode.describe(reasonCode)))" }
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        if let hint { text += " — \(hint)" }
        return text
    }

    /// What an OpenSSL alert from the broker, or a broker closing instead of answering, means
    /// for the user, in words.
    public var hint: String? {
        if let hint = brokerBehaviourHint { return hint }
        guard let detail = detail?.lowercased() else { return nil }
        let hints: [(String, String)] = [
            ("alert certificate revoked", "the broker rejected this device's certificate as revoked (it is in the broker's CRL)"),
            ("alert certificate expired", "the broker rejected this device's certificate as expired: renew it (sensorfleet provision)"),
            ("alert unknown ca", "the broker does not trust the CA that signed this device's certificate"),
            ("alert bad certificate", "the broker rejected this device's certificate"),
            ("alert certificate unknown", "the broker rejected this device's certificate"),
            ("hostname mismatch", "the broker's certificate is not for this host name: connect by a name in its certificate"),
            ("ip address mismatch", "the broker's certificate is not for this address: connect by a name or address in its certificate"),
            ("unable to get local issuer certificate", "the broker's certificate is not signed by the CA in fleet.yaml (broker.ca)"),
            ("self-signed certificate", "the broker's certificate is not signed by the CA in fleet.yaml (broker.ca)"),
            ("wrong version number", "the broker's port does not speak TLS (plain MQTT on this port?)"),
            ("problems getting password", "the private key is encrypted and no passphrase is asked for: decrypt it once (`openssl pkey -in key.pem -out key.plain.pem`, then move it in place)"),
            ("bad decrypt", "the private key is encrypted and no passphrase is asked for: decrypt it once (`openssl pkey -in key.pem -out key.plain.pem`, then move it in place)"),
            ("bad password read", "the private key is encrypted and no passphrase is asked for: decrypt it once (`openssl pkey -in key.pem -out key.plain.pem`, then move it in place)"),
        ]
        return hints.first { detail.contains($0.0) }?.1
    }

    /// Brokers that close the connection where mosquitto would answer: an MQTT 5 CONNECT on a
    /// broker without MQTT 5 (RabbitMQ before 3.13 closes it; amqtt does not answer), a PUBLISH
    /// the ACL forbids (RabbitMQ closes the connection; mosquitto drops the message at 3.1.1).
    var brokerBehaviourHint: String? {
        let closedOrSilent = [Self.connectionLostCode, Self.systemCallFailedCode, Self.connectTimeoutCode].contains(code)
        guard closedOrSilent, !(detail?.lowercased().contains("alert") ?? false) else { return nil }
        if context.mqtt5, context.closedBeforeCONNACK {
            let what = code == Self.connectTimeoutCode
                ? "the broker completed TLS but never answered CONNECT at MQTT 5"
                : "the broker closed the connection right after CONNECT at MQTT 5"
            return "\(what): it may not support MQTT 5 (RabbitMQ before 3.13, amqtt); set broker.protocol: \"3.1.1\" "
                + "in fleet.yaml (or, if it does speak MQTT 5, check its connection limits and log)"
        }
        if let topic = context.closedAfterPublishTo, code != Self.connectTimeoutCode {
            return "the broker closed the connection right after a PUBLISH to \(topic): brokers such as RabbitMQ do "
                + "that when their ACL forbids the publish; if it happens at every connection, check that this "
                + "identity may write \(topic) (mosquitto: `pattern write "
                + (topic.hasPrefix("spBv1.0/") ? "spBv1.0/+/NDATA/%u" : "devices/%u/#") + "`)"
        }
        return nil
    }

    /// True for failures that will not fix themselves by retrying soon: the server is not trusted,
    /// our certificate was rejected, revoked or expired, or the broker refused our identity.
    /// The supervisor backs these off to the cap and reports them once.
    public var isPermanent: Bool {
        if code == MosquittoError.connectRefusedCode || code == MosquittoError.disconnectedByServerCode, let reasonCode {
            return MQTTReasonCode.isPermanentRefusal(reasonCode)
        }
        guard let detail = detail?.lowercased() else { return false }
        let markers = [
            "certificate verify failed", "alert unknown ca", "alert bad certificate",
            "alert certificate revoked", "alert certificate expired", "alert certificate unknown",
            "alert unsupported certificate", "alert access denied", "certificate has expired",
            "certificate is not yet valid", "hostname mismatch", "ip address mismatch",
            "self-signed certificate", "unable to get local issuer certificate",
            "key values mismatch", "alert handshake failure", "alert protocol version",
            "wrong version number",
        ]
        return markers.contains { detail.contains($0) }
    }

    static func describe(code: Int32) -> String {
        switch code {
        case Int32(MOSQ_ERR_SUCCESS.rawValue): return "success"
        case Int32(MOSQ_ERR_CONN_PENDING.rawValue): return "connection still being set up"
        case Int32(MOSQ_ERR_NOMEM.rawValue): return "out of memory"
        case Int32(MOSQ_ERR_PROTOCOL.rawValue): return "MQTT protocol error: the broker sent something out of order or invalid"
        case Int32(MOSQ_ERR_INVAL.rawValue): return "invalid argument given to libmosquitto"
        case Int32(MOSQ_ERR_NO_CONN.rawValue): return "not connected to the broker"
        case Int32(MOSQ_ERR_CONN_REFUSED.rawValue): return "the broker refused the connection"
        case Int32(MOSQ_ERR_NOT_FOUND.rawValue): return "not found"
        case Int32(MOSQ_ERR_CONN_LOST.rawValue): return "connection to the broker lost"
        case Int32(MOSQ_ERR_TLS.rawValue): return "TLS error"
        case Int32(MOSQ_ERR_PAYLOAD_SIZE.rawValue): return "payload too large"
        case Int32(MOSQ_ERR_NOT_SUPPORTED.rawValue): return "not supported by this libmosquitto or protocol version"
        case Int32(MOSQ_ERR_AUTH.rawValue): return "authentication failed"
        case Int32(MOSQ_ERR_ACL_DENIED.rawValue): return "not authorised by the broker's access control list"
        case Int32(MOSQ_ERR_UNKNOWN.rawValue): return "unknown libmosquitto error"
        case Int32(MOSQ_ERR_ERRNO.rawValue): return "system call failed"
        case Int32(MOSQ_ERR_EAI.rawValue): return "could not resolve the broker's host name"
        case Int32(MOSQ_ERR_PROXY.rawValue): return "proxy error"
        case Int32(MOSQ_ERR_MALFORMED_UTF8.rawValue): return "topic or string is not valid UTF-8"
        case Int32(MOSQ_ERR_KEEPALIVE.rawValue): return "keep-alive time-out: the broker stopped answering"
        case Int32(MOSQ_ERR_LOOKUP.rawValue): return "DNS lookup failed"
        case Int32(MOSQ_ERR_MALFORMED_PACKET.rawValue): return "malformed MQTT packet"
        case Int32(MOSQ_ERR_DUPLICATE_PROPERTY.rawValue): return "duplicate MQTT 5 property"
        case Int32(MOSQ_ERR_TLS_HANDSHAKE.rawValue): return "TLS handshake failed"
        case Int32(MOSQ_ERR_QOS_NOT_SUPPORTED.rawValue): return "QoS not supported by the broker"
        case Int32(MOSQ_ERR_OVERSIZE_PACKET.rawValue): return "packet larger than the broker accepts"
        case Int32(MOSQ_ERR_OCSP.rawValue): return "OCSP check of the broker's certificate failed"
        case Int32(MOSQ_ERR_TIMEOUT.rawValue): return "timed out"
        case Int32(MOSQ_ERR_RETAIN_NOT_SUPPORTED.rawValue): return "retained messages not supported by the broker"
        case Int32(MOSQ_ERR_TOPIC_ALIAS_INVALID.rawValue): return "invalid topic alias"
        case Int32(MOSQ_ERR_ADMINISTRATIVE_ACTION.rawValue): return "disconnected by the broker's administrator"
        case Int32(MOSQ_ERR_ALREADY_EXISTS.rawValue): return "already exists"
        case connectTimeoutCode: return "connect timed out: no CONNACK from the broker in time"
        case connectRefusedCode: return "the broker refused the connection"
        case disconnectedByServerCode: return "the broker closed the connection with DISCONNECT"
        default: return "libmosquitto error \(code)"
        }
    }
}

/// MQTT 5 reason codes (3.1.1 CONNACK return codes are mapped onto them by `fromV311`).
public enum MQTTReasonCode {
    /// Every MQTT 5 reason code (OASIS MQTT 5.0, 2.4) in plain words, with what it usually means
    /// for a device. 0x00 reads "success" (it is also "normal disconnection" and "granted QoS 0").
    public static func describe(_ code: Int) -> String {
        switch code {
        case 0x00: return "success"
        case 0x01: return "granted QoS 1"
        case 0x02: return "granted QoS 2"
        case 0x04: return "disconnect with will message: the client asked the broker to publish its will"
        case 0x10: return "no matching subscribers: accepted, but nobody is subscribed to the topic"
        case 0x11: return "no subscription existed: there was nothing to unsubscribe"
        case 0x18: return "continue authentication"
        case 0x19: return "re-authenticate"
        case 0x80: return "unspecified error"
        case 0x81: return "malformed packet: the broker could not parse what the client sent"
        case 0x82: return "protocol error: the client broke the MQTT rules"
        case 0x83: return "implementation specific error: the broker refused it for a reason of its own (see its log)"
        case 0x84: return "unsupported protocol version: the broker does not speak this MQTT version"
        case 0x85: return "client identifier not valid: the broker refuses this client id"
        case 0x86: return "bad user name or password"
        case 0x87: return "not authorised: this identity may not do that (ACL)"
        case 0x88: return "server unavailable"
        case 0x89: return "server busy: try again later"
        case 0x8A: return "banned: this client is banned by the broker"
        case 0x8B: return "server shutting down"
        case 0x8C: return "bad authentication method"
        case 0x8D: return "keep alive timeout: the broker heard nothing from the client for 1.5 keep-alive periods"
        case 0x8E: return "session taken over: another client connected with the same client id"
        case 0x8F: return "topic filter invalid"
        case 0x90: return "topic name invalid"
        case 0x91: return "packet identifier in use"
        case 0x92: return "packet identifier not found"
        case 0x93: return "receive maximum exceeded: more QoS 1/2 messages in flight than the broker allows"
        case 0x94: return "topic alias invalid"
        case 0x95: return "packet too large: larger than the broker's maximum packet size"
        case 0x96: return "message rate too high"
        case 0x97: return "quota exceeded"
        case 0x98: return "administrative action: an administrator disconnected the client"
        case 0x99: return "payload format invalid: the payload does not match its payload format indicator"
        case 0x9A: return "retain not supported by the broker"
        case 0x9B: return "QoS not supported by the broker"
        case 0x9C: return "use another server (temporarily)"
        case 0x9D: return "server moved (permanently)"
        case 0x9E: return "shared subscriptions not supported"
        case 0x9F: return "connection rate exceeded: the client connects too often"
        case 0xA0: return "maximum connect time reached"
        case 0xA1: return "subscription identifiers not supported"
        case 0xA2: return "wildcard subscriptions not supported"
        default: return "reason code 0x\(String(code, radix: 16))"
        }
    }

    /// 3.1.1 CONNACK return codes 1–5 as MQTT 5 reason codes.
    public static func fromV311(_ rc: Int) -> Int {
        switch rc {
        case 0: return 0
        case 1: return 0x84
        case 2: return 0x85
        case 3: return 0x88
        case 4: return 0x86
        case 5: return 0x87
        default: return 0x80
        }
    }

    static func isPermanentRefusal(_ code: Int) -> Bool {
        [0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C].contains(code)
    }
}
