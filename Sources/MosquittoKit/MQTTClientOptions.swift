
/// A message the broker publishes if the client vanishes.
public struct MQTTWill: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int = 1, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// Everything a client needs to connect.
public struct MQTTClientOptions: Sendable {
    public var clientID: String
    /// Address or name to connect to. Give a resolved address to keep DNS off the reactor
    /// thread; `tls.serverName` still carries the name for the certificate check and SNI.
    public var host: String
    public var port: Int
    public var keepAlive: Int
    public var useMQTT5: Bool
    public var cleanSession: Bool
    public var bindAddress: String?
    public var will: MQTTWill?
    /// The TLS context (our own `SSL_CTX`); nil: plain TCP, nothing encrypted (only when the
    /// fleet asks for it by name, `broker.tls: false`).
    public var tls: TLSContext?
    /// Seconds from the start of a connect to CONNACK before we give up on the attempt.
    public var connectTimeout: Double
    /// QoS 1 messages libmosquitto may have in flight (MQTT 5 Receive Maximum may lower it).
    public var maxInflight: Int
    /// Put a 16 KB write buffer in front of the socket after CONNACK and flush it once per
    /// reactor turn: one write() for all the packets of a turn. Worth it for clients that
    /// publish several messages a turn; an idle client would only pay the memory.
    public var batchWrites: Bool
    /// MQTT 5 session expiry interval in seconds, sent in CONNECT when set and above 0 (with
    /// `cleanSession` false the broker keeps the session, and queues QoS 1/2 messages for it,
    /// that long after the connection ends). Ignored at 3.1.1.
    public var sessionExpiry: UInt32?
    /// User name and password in CONNECT (brokers with a password file); nil for none.
    public var username: String?
    public var password: String?

    public init(
        clientID: String, host: String, port: Int, keepAlive: Int = 30, useMQTT5: Bool = false,
        cleanSession: Bool = true, bindAddress: String? = nil, will: MQTTWill? = nil, tls: TLSContext?,
        connectTimeout: Double = 10, maxInflight: Int = 20, batchWrites: Bool = false,
        sessionExpiry: UInt32? = nil, username: String? = nil, password: String? = nil
    ) {
        self.sessionExpiry = sessionExpiry
        self.username = username
        self.password = password
        self.batchWrites = batchWrites
        self.clientID = clientID
        self.host = host
        self.port = port
        self.keepAlive = keepAlive
        self.useMQTT5 = useMQTT5
        self.cleanSession = cleanSession
        self.bindAddress = bindAddress
        self.will = will
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.maxInflight = maxInflight
    }
}
