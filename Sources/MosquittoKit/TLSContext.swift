internal import CMosquitto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State the OpenSSL callbacks reach through the context's ex-data slot 0.
final class TLSContextState: @unchecked Sendable {
    /// SNI to send when we connect to an address rather than the name (nil: leave libmosquitto's).
    let sni: UnsafeMutablePointer<CChar>?
    /// The last certificate-verification failure seen by this context (reactor thread only).
    var lastVerifyError: String?

    init(sni: String?) {
        self.sni = sni.map { strdup($0) }
    }

    deinit { free(sni) }
}

/// One device's TLS identity: an OpenSSL `SSL_CTX` built once with its certificate and key and
/// the shared trust store, handed to libmosquitto with `MOSQ_OPT_SSL_CTX` so reconnects do not
/// rebuild it or re-read files. We check the broker's name ourselves: libmosquitto's own check
/// does not run on a context it did not build (../shared/LIBMOSQUITTO.md).
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    let state: TLSContextState

    /// - Parameters:
    ///   - trust: the CA store shared by the fleet.
    ///   - certFile: the device certificate (PEM, chain allowed).
    ///   - keyFile: its private key (PEM). Never logged.
    ///   - settings: how to check the broker.
    public init(trust: TrustStore, certFile: String, keyFile: String, settings: TLSSettings) throws(MosquittoError) {
        MosquittoLibrary.initialize()
        let tlsCode = Int32(MOSQ_ERR_TLS.rawValue)
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw MosquittoError(code: Int32(MOSQ_ERR_NOMEM.rawValue), detail: OpenSSLErrors.drain())
        }
        let isIP = IPAddress.isLiteral(settings.serverName)
        let state = TLSContextState(sni: isIP ? nil : settings.serverName)
        self.ctx = ctx
        self.state = state
        SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(state).toOpaque())

        let versionOK = settings.requireTLS13 ? CMosquitto_SSL_CTX_set_min_tls13(ctx) : CMosquitto_SSL_CTX_set_min_tls12(ctx)
        guard versionOK == 1 else { throw MosquittoError(code: tlsCode, detail: "cannot set the lowest TLS version: \(OpenSSLErrors.drain())") }
        CMosquitto_SSL_CTX_release_buffers(ctx)
        // Read whole socket buffers, not one record header and body at a time: fewer read()
        // calls per PUBACK (MQTTClient drains what OpenSSL holds). SENSORFLEET_TLS_READ_AHEAD=0
        // turns it off, to compare in a benchmark.
        if TLSContext.readAhead { CMosquitto_SSL_CTX_set_read_ahead(ctx, 1) }
        SSL_CTX_set1_cert_store(ctx, trust.store)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tlsVerifyCallback)
        SSL_CTX_set_info_callback(ctx, tlsInfoCallback)
        if settings.verifyHostname {
            let param = SSL_CTX_get0_param(ctx)
            let ok = isIP ? X509_VERIFY_PARAM_set1_ip_asc(param, settings.serverName)
                : X509_VERIFY_PARAM_set1_host(param, settings.serverName, 0)
            guard ok == 1 else {
                throw MosquittoError(code: tlsCode, detail: "cannot check the broker name \(settings.serverName): \(OpenSSLErrors.drain())")
            }
        }
        if let alpn = settings.alpn, !alpn.isEmpty {
            var wire: [UInt8] = [UInt8(truncatingIfNeeded: alpn.utf8.count)]
            wire.append(contentsOf: alpn.utf8)
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
                throw MosquittoError(code: tlsCode, detail: "cannot set ALPN \(alpn)")
            }
        }
        // An encrypted key must fail, not prompt on the terminal (or hang a service).
        CMosquitto_SSL_CTX_refuse_passphrase(ctx)
        // 1 is SSL_FILETYPE_PEM.
        guard SSL_CTX_use_certificate_chain_file(ctx, certFile) == 1 else {
            throw MosquittoError(code: tlsCode, detail: "cannot load certificate \(certFile): \(OpenSSLErrors.drain())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, 1) == 1 else {
            throw MosquittoError(code: tlsCode, detail: "cannot load private key \(keyFile): \(OpenSSLErrors.drain())")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw MosquittoError(code: tlsCode, detail: "certificate \(certFile) and key \(keyFile) do not match: \(OpenSSLErrors.drain())")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    static let readAhead = ProcessInfo.processInfo.environment["SENSORFLEET_TLS_READ_AHEAD"] != "0"

    /// Takes the last certificate-verification failure recorded by OpenSSL's callback, if any.
    func takeVerifyError() -> String? {
        defer { state.lastVerifyError = nil }
        return state.lastVerifyError
    }
}

/// Records why OpenSSL rejected the broker's certificate, so the error can say it.
private let tlsVerifyCallback: @convention(c) (Int32, OpaquePointer?) -> Int32 = { preverify, storeCtx in
    guard preverify == 0, let storeCtx else { return preverify }
    let err = X509_STORE_CTX_get_error(storeCtx)
    let depth = X509_STORE_CTX_get_error_depth(storeCtx)
    guard let sslRaw = X509_STORE_CTX_get_ex_data(storeCtx, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let sslCtx = SSL_get_SSL_CTX(OpaquePointer(sslRaw)),
          let raw = SSL_CTX_get_ex_data(sslCtx, 0)
    else { return preverify }
    let state = Unmanaged<TLSContextState>.fromOpaque(raw).takeUnretainedValue()
    let reason = String(cString: X509_verify_cert_error_string(Int(err)))
    state.lastVerifyError = "broker certificate rejected: \(reason) (at depth \(depth) of its chain)"
    return preverify
}

/// Sends the broker's host name as SNI when we connect to its resolved address.
private let tlsInfoCallback: @convention(c) (OpaquePointer?, Int32, Int32) -> Void = { ssl, location, _ in
    guard location & SSL_CB_HANDSHAKE_START != 0, let ssl,
          let sslCtx = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(sslCtx, 0)
    else { return }
    let state = Unmanaged<TLSContextState>.fromOpaque(raw).takeUnretainedValue()
    if let sni = state.sni { _ = CMosquitto_SSL_set_sni(ssl, sni) }
}

enum OpenSSLErrors {
    /// Empties this thread's OpenSSL error queue into one line.
    static func drain() -> String {
        var parts: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while CMosquitto_ERR_pop_error_string(&buffer, buffer.count) != 0 {
            parts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "no OpenSSL detail" : parts.joined(separator: "; ")
    }
}
