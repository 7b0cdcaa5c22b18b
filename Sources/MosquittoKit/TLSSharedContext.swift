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
import Synchronization

/// The OpenSSL `SSL_CTX` shared by every device with the same trust store and TLS settings: how
/// the broker is checked (CA store, name, TLS versions, ALPN) and the callbacks below. It holds
/// no certificate or key: each connection takes its device's identity (`TLSContext`) in the
/// certificate callback. One context per device cost about 12 KB of RSS each and part of the
/// set-up CPU (docs/bench.md, ../shared/LIBMOSQUITTO.md).
final class TLSSharedContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// Keeps the store alive, and so the cache key's identity unique.
    let trust: TrustStore
    /// SNI to send when we connect to an address rather than the name (nil: leave libmosquitto's).
    let sni: UnsafeMutablePointer<CChar>?
    /// Connections keep their sessions for the next connect (client session cache on).
    let resume: Bool

    struct Key: Hashable {
        let trust: ObjectIdentifier
        let serverName: String
        let requireTLS13: Bool
        let alpn: String?
        let verifyHostname: Bool
        let resume: Bool
    }

    private struct WeakEntry { weak var context: TLSSharedContext? }
    /// Contexts in use; an entry dies with the last device that uses it.
    private static let cache = Mutex<[Key: WeakEntry]>([:])

    /// The context for `trust` and `settings`, made on first use.
    static func shared(trust: TrustStore, settings: TLSSettings, resume: Bool) throws(MosquittoError) -> TLSSharedContext {
        let key = Key(trust: ObjectIdentifier(trust), serverName: settings.serverName, requireTLS13: settings.requireTLS13,
                      alpn: settings.alpn, verifyHostname: settings.verifyHostname, resume: resume)
        return try cache.withLock { (entries: inout [Key: WeakEntry]) throws(MosquittoError) -> TLSSharedContext in
            if let existing = entries[key]?.context { return existing }
            let made = try TLSSharedContext(trust: trust, settings: settings, resume: resume)
            entries = entries.filter { $0.value.context != nil }
            entries[key] = WeakEntry(context: made)
            return made
        }
    }

    private init(trust: TrustStore, settings: TLSSettings, resume: Bool) throws(MosquittoError) {
        MosquittoLibrary.initialize()
        let tlsCode = Int32(MOSQ_ERR_TLS.rawValue)
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw MosquittoError(code: Int32(MOSQ_ERR_NOMEM.rawValue), detail: OpenSSLErrors.drain())
        }
        self.ctx = ctx
        self.trust = trust
        self.resume = resume
        let isIP = IPAddress.isLiteral(settings.serverName)
        sni = isIP ? nil : strdup(settings.serverName)

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
        SSL_CTX_set_cert_cb(ctx, tlsCertCallback, nil)
        if resume {
            CMosquitto_SSL_CTX_client_sessions(ctx)
            SSL_CTX_sess_set_new_cb(ctx, tlsNewSessionCallback)
        }
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
    }

    deinit {
        SSL_CTX_free(ctx)
        free(sni)
    }
}

// MARK: Which device an SSL belongs to
//
// libmosquitto makes each connection's `SSL` itself (SSL_new on our context in
// net__socket_connect_step3, lib/net_mosq.c of 2.0.11) and calls the first SSL_connect right
// there, inside mosquitto_connect_bind_async / connect_bind_v5: the ClientHello is built in that
// call. So MQTTClient names the identity being connected in a thread-local around the call
// (`TLSContext.connecting(_:)`), and the info callback, at SSL_CB_HANDSHAKE_START (the first
// thing SSL_connect does, before the ClientHello), attaches it to the SSL in our ex-data slot,
// retained until SSL_free. Everything per device reads it from there: the certificate callback
// (when the broker's CertificateRequest is answered, later, inside loop_read), the verify
// callback (the error text) and the new-session callback (resumption). An SSL with no identity
// attached fails its handshake: the certificate and verify callbacks refuse it, so no connection
// ever goes out without its device's certificate, or with another's.

enum TLSConnectScope {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    static func set(_ identity: TLSContext?) {
        _ = pthread_setspecific(key, identity.map { UnsafeRawPointer(Unmanaged.passUnretained($0).toOpaque()) })
    }

    static var current: TLSContext? {
        pthread_getspecific(key).map { Unmanaged<TLSContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// Our ex-data slot on each SSL: the retained `TLSContext`, released when OpenSSL frees the SSL.
let tlsIdentitySlot: Int32 = {
    let index = CMosquitto_SSL_ex_index { _, pointer, _, _, _, _ in
        if let pointer { Unmanaged<TLSContext>.fromOpaque(pointer).release() }
    }
    precondition(index >= 0, "no OpenSSL ex-data index")
    return index
}()

private func identity(of ssl: OpaquePointer) -> TLSContext? {
    guard let raw = SSL_get_ex_data(ssl, tlsIdentitySlot) else { return nil }
    return Unmanaged<TLSContext>.fromOpaque(raw).takeUnretainedValue()
}

/// At the start of a handshake: attach the identity being connected, send the broker's name as
/// SNI (we connect to its resolved address), and offer the device's last session. At the end:
/// count full and resumed handshakes.
private let tlsInfoCallback: @convention(c) (OpaquePointer?, Int32, Int32) -> Void = { ssl, location, _ in
    guard let ssl else { return }
    if location & SSL_CB_HANDSHAKE_START != 0 {
        var attached = identity(of: ssl)
        if attached == nil, let connecting = TLSConnectScope.current {
            if SSL_set_ex_data(ssl, tlsIdentitySlot, Unmanaged.passRetained(connecting).toOpaque()) == 1 {
                attached = connecting
            } else {
                Unmanaged.passUnretained(connecting).release()
            }
        }
        guard let attached else { return }
        if let sni = attached.shared.sni { _ = CMosquitto_SSL_set_sni(ssl, sni) }
        if let session = attached.sessionToOffer() { _ = SSL_set_session(ssl, session) }
    } else if location & SSL_CB_HANDSHAKE_DONE != 0 {
        identity(of: ssl)?.noteHandshake(resumed: SSL_session_reused(ssl) == 1)
    }
}

/// Answers the broker's CertificateRequest with this connection's device identity; none
/// attached: the handshake fails here instead of going on without a certificate.
private let tlsCertCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { ssl, _ in
    guard let ssl, let attached = identity(of: ssl) else {
        CMosquitto_raise_no_identity()
        return 0
    }
    return SSL_use_cert_and_key(ssl, attached.leaf, attached.key, attached.chain, 1) == 1 ? 1 : 0
}

/// Records why OpenSSL rejected the broker's certificate, on the device, so the error can say it.
/// A connection without an identity is refused here too.
private let tlsVerifyCallback: @convention(c) (Int32, OpaquePointer?) -> Int32 = { preverify, storeCtx in
    guard let storeCtx,
          let sslRaw = X509_STORE_CTX_get_ex_data(storeCtx, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let attached = identity(of: OpaquePointer(sslRaw))
    else {
        CMosquitto_raise_no_identity()
        return 0
    }
    guard preverify == 0 else { return preverify }
    let err = X509_STORE_CTX_get_error(storeCtx)
    let depth = X509_STORE_CTX_get_error_depth(storeCtx)
    let reason = String(cString: X509_verify_cert_error_string(Int(err)))
    attached.lastVerifyError = "broker certificate rejected: \(reason) (at depth \(depth) of its chain)"
    return preverify
}

/// A session (TLS 1.3: a ticket after the handshake) of a connection whose broker certificate
/// passed verification: the device keeps it (the last one only) for its next connect.
private let tlsNewSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let attached = identity(of: ssl),
          SSL_get_verify_result(ssl) == Int(X509_V_OK)
    else { return 0 }
    attached.keep(session: session)
    return 1
}
