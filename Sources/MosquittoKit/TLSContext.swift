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

/// One device's TLS identity: its certificate (with any intermediates) and private key, read
/// and checked once, and a reference to the `SSL_CTX` shared by every device with the same trust
/// store and settings (`TLSSharedContext`), which libmosquitto gets with `MOSQ_OPT_SSL_CTX`.
/// Each connection takes this identity in the context's certificate callback (see
/// TLSSharedContext.swift for how a connection finds its device). We check the broker's name
/// ourselves: libmosquitto's own check does not run on a context it did not build
/// (../shared/LIBMOSQUITTO.md). It also keeps the device's last TLS session, offered on the next
/// connect (resumption: no certificate exchange, a fraction of the CPU); never shared with
/// another identity. Used on its client's reactor thread only.
public final class TLSContext: @unchecked Sendable {
    let shared: TLSSharedContext
    /// The `SSL_CTX` to hand to libmosquitto (shared).
    var ctx: OpaquePointer { shared.ctx }
    /// X509 *, EVP_PKEY *, STACK_OF(X509) * (nil: the leaf only).
    let leaf: OpaquePointer
    let key: OpaquePointer
    let chain: OpaquePointer?
    /// The last certificate-verification failure seen on this identity's connections.
    var lastVerifyError: String?
    /// The last session of a verified connection (owned: one reference).
    private var session: OpaquePointer?
    /// Handshakes finished on this identity's connections, full and resumed.
    public private(set) var fullHandshakes = 0
    public private(set) var resumedHandshakes = 0

    /// - Parameters:
    ///   - trust: the CA store shared by the fleet.
    ///   - certFile: the device certificate (PEM, chain allowed).
    ///   - keyFile: its private key (PEM). Never logged.
    ///   - settings: how to check the broker.
    public convenience init(trust: TrustStore, certFile: String, keyFile: String, settings: TLSSettings) throws(MosquittoError) {
        try self.init(trust: trust, certFile: certFile, keyFile: keyFile, settings: settings, resume: TLSContext.resumeSessions)
    }

    /// - Parameter resume: keep and offer sessions (default: SENSORFLEET_TLS_RESUME=1).
    init(trust: TrustStore, certFile: String, keyFile: String, settings: TLSSettings, resume: Bool) throws(MosquittoError) {
        let shared = try TLSSharedContext.shared(trust: trust, settings: settings, resume: resume)
        let tlsCode = Int32(MOSQ_ERR_TLS.rawValue)
        var leaf: OpaquePointer?, chain: OpaquePointer?, key: OpaquePointer?
        switch CMosquitto_read_identity(certFile, keyFile, &leaf, &chain, &key) {
        case 0: break
        case 1: throw MosquittoError(code: tlsCode, detail: "cannot load certificate \(certFile): \(OpenSSLErrors.drain())")
        default: throw MosquittoError(code: tlsCode, detail: "cannot load private key \(keyFile): \(OpenSSLErrors.drain())")
        }
        guard let leaf, let key else { throw MosquittoError(code: tlsCode, detail: "cannot load certificate \(certFile)") }
        self.shared = shared
        self.leaf = leaf
        self.key = key
        self.chain = chain
        guard X509_check_private_key(leaf, key) == 1 else {
            throw MosquittoError(code: tlsCode, detail: "certificate \(certFile) and key \(keyFile) do not match: \(OpenSSLErrors.drain())")
        }
        guard CMosquitto_check_identity(shared.ctx, leaf, key, chain) == 1 else {
            throw MosquittoError(code: tlsCode, detail: "cannot load certificate \(certFile): \(OpenSSLErrors.drain())")
        }
    }

    deinit {
        X509_free(leaf)
        EVP_PKEY_free(key)
        CMosquitto_free_chain(chain)
        if let session { SSL_SESSION_free(session) }
    }

    static let readAhead = ProcessInfo.processInfo.environment["SENSORFLEET_TLS_READ_AHEAD"] != "0"
    /// Offer the last session on reconnect; SENSORFLEET_TLS_RESUME=0 turns it off, to compare.
    /// (StormTests' 2,000-device broker restart, where every offered session is stale and falls
    /// back to a full handshake, came back as fast with it on as off on a quiet machine: 99 % in
    /// 8.0 / 7.9 s on, 8.0 / 8.0 s off; the slower runs seen earlier were a loaded machine's.)
    static let resumeSessions = ProcessInfo.processInfo.environment["SENSORFLEET_TLS_RESUME"] != "0"

    /// Names the identity of the connection libmosquitto makes in the connect call that follows
    /// on this thread (nil after the call). See TLSSharedContext.swift.
    static func connecting(_ identity: TLSContext?) { TLSConnectScope.set(identity) }

    /// Takes the last certificate-verification failure recorded by OpenSSL's callback, if any.
    func takeVerifyError() -> String? {
        defer { lastVerifyError = nil }
        return lastVerifyError
    }

    /// True when the last handshake on this identity resumed a session.
    public private(set) var lastHandshakeResumed = false

    func noteHandshake(resumed: Bool) {
        lastHandshakeResumed = resumed
        if resumed { resumedHandshakes += 1 } else { fullHandshakes += 1 }
    }

    /// Takes over `session` (a reference the caller gives up), dropping the one kept before.
    func keep(session new: OpaquePointer) {
        if let session { SSL_SESSION_free(session) }
        session = new
    }

    /// The session to offer on the next connect, if resumption is on and it is still usable.
    func sessionToOffer() -> OpaquePointer? {
        guard shared.resume, let session, SSL_SESSION_is_resumable(session) == 1 else { return nil }
        return session
    }

    /// Forgets the kept session: the next connect makes a full handshake.
    public func forgetSession() {
        if let session { SSL_SESSION_free(session) }
        session = nil
    }
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
