/// How a client checks the broker.
public struct TLSSettings: Sendable, Equatable {
    /// The broker's name as the user wrote it: checked against the certificate (DNS or IP SAN)
    /// and sent as SNI.
    public var serverName: String
    /// TLS 1.3 only (default: 1.2 or newer; 1.0 and 1.1 are never offered).
    public var requireTLS13: Bool
    /// ALPN protocol to offer, e.g. "x-amzn-mqtt-ca"; nil for none.
    public var alpn: String?
    /// Off only when the user asked for it by name; the chain is still verified.
    public var verifyHostname: Bool

    public init(serverName: String, requireTLS13: Bool = false, alpn: String? = nil, verifyHostname: Bool = true) {
        self.serverName = serverName
        self.requireTLS13 = requireTLS13
        self.alpn = alpn
        self.verifyHostname = verifyHostname
    }
}
