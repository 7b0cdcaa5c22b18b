import MosquittoKit

extension FleetSpec {
    /// The fleet with `--broker HOST:PORT` applied: the one place a command-line broker
    /// overrides fleet.yaml's, before anything else reads the spec.
    public func overridingBroker(host: String?, port: Int?) -> FleetSpec {
        var spec = self
        if let host { spec.broker.host = host }
        if let port { spec.broker.port = port }
        return spec
    }
}

extension BrokerSpec {
    /// How every client of this broker (devices and the verifier) checks it: the name for the
    /// certificate check and SNI, the TLS floor, ALPN. The one place these are derived.
    var tlsSettings: TLSSettings {
        TLSSettings(
            serverName: host, requireTLS13: tlsMinVersion == "1.3", alpn: alpn,
            verifyHostname: !insecureSkipHostnameVerification)
    }
}
