internal import CMosquitto

/// The CA certificates that sign the broker's certificate, parsed once and shared by every
/// device's TLS context (a full copy of the CA per device would not scale to 10,000 devices).
public final class TrustStore: @unchecked Sendable {
    let store: OpaquePointer

    /// - Parameter caFile: PEM file with one or more CA certificates.
    public init(caFile: String) throws(MosquittoError) {
        MosquittoLibrary.initialize()
        guard let store = X509_STORE_new() else { throw MosquittoError(code: Int32(MOSQ_ERR_NOMEM.rawValue)) }
        guard X509_STORE_load_file(store, caFile) == 1 else {
            X509_STORE_free(store)
            throw MosquittoError(code: Int32(MOSQ_ERR_TLS.rawValue), detail: "cannot load CA file \(caFile): \(OpenSSLErrors.drain())")
        }
        self.store = store
    }

    deinit { X509_STORE_free(store) }
}
