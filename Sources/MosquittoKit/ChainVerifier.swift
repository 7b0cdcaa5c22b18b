internal import CMosquitto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Verifies a client certificate file with OpenSSL's own `X509_verify_cert`, the way mosquitto
/// (OpenSSL 3) verifies a client during the handshake: the first certificate of the file is the
/// device's, the ones after it are intermediates (our client sends them all, with
/// `SSL_CTX_use_certificate_chain_file`), the CA file is the trust store (the broker's `cafile`,
/// one or more CAs), purpose "TLS client". One implementation for the check and the connection,
/// so `validate` can never refuse what the broker accepts, or the reverse.
public enum ChainVerifier {
    /// Why OpenSSL refused a chain.
    public struct Failure: Sendable, Equatable, CustomStringConvertible {
        /// OpenSSL's `X509_V_ERR_*` code.
        public let code: Int
        /// OpenSSL's short reason, e.g. "unable to get local issuer certificate".
        public let reason: String
        /// Position in the chain of the certificate that failed: 0 is the device's.
        public let depth: Int
        /// Its subject and issuer in OpenSSL's one-line form ("/O=…/CN=…").
        public let subject: String
        public let issuer: String

        public var description: String { "\(reason) (certificate \(subject) at depth \(depth) of the chain)" }

        public var isUnknownIssuer: Bool {
            [2, 20, 18, 19].contains(code) // unable to get issuer (locally), self-signed (in chain)
        }
        public var isSignatureFailure: Bool { code == 7 }
        public var isExpired: Bool { code == 10 }
        public var isNotYetValid: Bool { code == 9 }
    }

    public enum Outcome: Sendable, Equatable {
        case trusted
        case refused(Failure)
        /// The certificate file holds no certificate OpenSSL can read.
        case unreadableCertificate
        /// The CA file cannot be loaded as a trust store.
        case unreadableCA
    }

    /// - Parameters:
    ///   - certFile: PEM, the device's certificate first, then any intermediates.
    ///   - caFile: PEM with the trusted CA certificates.
    ///   - date: the time to check validity at.
    public static func verify(certFile: String, caFile: String, at date: Date) -> Outcome {
        MosquittoLibrary.initialize()
        var depth: Int32 = -1
        var subject = [CChar](repeating: 0, count: 512)
        var issuer = [CChar](repeating: 0, count: 512)
        let rc = CMosquitto_verify_client_chain(certFile, caFile, Int64(date.timeIntervalSince1970), &depth,
                                                &subject, subject.count, &issuer, issuer.count)
        switch rc {
        case 0: return .trusted
        case -1: return .unreadableCertificate
        case -2: return .unreadableCA
        case -3: return .refused(Failure(code: -3, reason: "out of memory", depth: -1, subject: "", issuer: ""))
        default:
            func text(_ chars: [CChar]) -> String {
                String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            return .refused(Failure(code: Int(rc), reason: String(cString: CMosquitto_verify_error_string(rc)),
                                    depth: Int(depth), subject: text(subject), issuer: text(issuer)))
        }
    }
}
