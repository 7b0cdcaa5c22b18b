import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// The fleet's certificate authority: its certificate and P-256 signing key.
struct FleetAuthority: Sendable {
    let certificate: Certificate
    let key: P256.Signing.PrivateKey

    var certificateKey: Certificate.PrivateKey { Certificate.PrivateKey(key) }

    /// The CA's subject key identifier (from its extension, or computed as swift-certificates does).
    var keyIdentifier: [UInt8] {
        if let ski = try? certificate.extensions.subjectKeyIdentifier {
            return Array(ski.keyIdentifier)
        }
        return Array(SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
    }
}

/// Makes and checks the fleet's certificates with swift-certificates and swift-crypto.
enum FleetPKI {
    static let organization = "SensorFleet"
    /// Certificates start a little in the past so a slightly slow clock elsewhere accepts them.
    static let backdate: TimeInterval = 300
    static let day: TimeInterval = 86_400

    /// A random positive serial of exactly 16 bytes (top bit clear, top byte non-zero).
    static func randomSerial() -> Certificate.SerialNumber {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[0] = UInt8.random(in: 1...0x7F, using: &rng)
        return Certificate.SerialNumber(bytes: bytes)
    }

    static func makeCA(key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName(organization)
            CommonName("SensorFleet CA")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        return try Certificate(
            version: .v3,
            serialNumber: randomSerial(),
            publicKey: publicKey,
            notValidBefore: now - backdate,
            notValidAfter: now + Double(ProvisionOptions.caValidityDays) * day,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    /// The broker's certificate: `localhost`, `127.0.0.1` and `::1`, for TLS servers.
    static func makeServer(key: P256.Signing.PrivateKey, authority: FleetAuthority, now: Date, validityDays: Int)
        throws -> Certificate
    {
        let loopback4: [UInt8] = [127, 0, 0, 1]
        let loopback6: [UInt8] = Array(repeating: 0, count: 15) + [1]
        return try makeLeaf(
            commonName: "localhost", usage: .serverAuth, key: key, authority: authority, now: now,
            validityDays: validityDays,
            alternativeNames: SubjectAlternativeNames([
                .dnsName("localhost"),
                .ipAddress(ASN1OctetString(contentBytes: loopback4[...])),
                .ipAddress(ASN1OctetString(contentBytes: loopback6[...])),
            ])
        )
    }

    /// A device's client certificate: CN = device id, for TLS clients.
    static func makeDevice(
        id: String, key: P256.Signing.PrivateKey, authority: FleetAuthority, now: Date, validityDays: Int
    ) throws -> Certificate {
        try makeLeaf(commonName: id, usage: .clientAuth, key: key, authority: authority, now: now, validityDays: validityDays)
    }

    /// A certificate signed by the fleet CA for one TLS role (server or client), not a CA itself.
    private static func makeLeaf(
        commonName: String, usage: ExtendedKeyUsage.Usage, key: P256.Signing.PrivateKey, authority: FleetAuthority,
        now: Date, validityDays: Int, alternativeNames: SubjectAlternativeNames? = nil
    ) throws -> Certificate {
        let subject = try DistinguishedName {
            OrganizationName(organization)
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        return try Certificate(
            version: .v3,
            serialNumber: randomSerial(),
            publicKey: publicKey,
            notValidBefore: now - backdate,
            notValidAfter: now + Double(validityDays) * day,
            issuer: authority.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                if let alternativeNames { alternativeNames }
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authority.keyIdentifier[...])
            },
            issuerPrivateKey: authority.certificateKey
        )
    }

    // MARK: PEM

    static func pem(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString + "\n"
    }

    /// PKCS#8 `PRIVATE KEY`, as OpenSSL writes and reads it.
    static func pem(_ key: P256.Signing.PrivateKey) -> String {
        key.pemRepresentation + "\n"
    }

    static func loadCertificate(_ path: String) throws -> Certificate {
        let text = try AtomicFile.read(path)
        do {
            // Read as OpenSSL reads PEM (CRLF, any line length, text around the block).
            guard let block = try PEMReader.blocks(in: text).first(where: { $0.label == "CERTIFICATE" }) else {
                throw ProvisionError(.unreadableFile, "\(path) holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` block)")
            }
            return try Certificate(derEncoded: block.der)
        } catch let error as ProvisionError {
            throw error
        } catch let error as PEMReader.Failure {
            throw ProvisionError(.unreadableFile, "\(path) is not a PEM certificate: \(error.description)")
        } catch {
            throw ProvisionError(.unreadableFile, "\(path) is not a PEM certificate: \(CredentialChecker.plain(error))")
        }
    }

    static func loadKey(_ path: String) throws -> P256.Signing.PrivateKey {
        let text = try AtomicFile.read(path)
        let reason: String
        do {
            if let block = try PEMReader.blocks(in: text).first(where: { $0.label.hasSuffix("PRIVATE KEY") }) {
                if block.isEncryptedKey {
                    reason = "the key is encrypted; decrypt it once with `openssl pkey -in \(path) -out \(path).plain` "
                        + "and move that in its place"
                } else {
                    return try P256.Signing.PrivateKey(derRepresentation: block.der)
                }
            } else {
                reason = "no `-----BEGIN PRIVATE KEY-----` block"
            }
        } catch let error as PEMReader.Failure {
            reason = error.description
        } catch {
            reason = "it is not an EC P-256 key, or its data is damaged"
        }
        throw ProvisionError(
            .unreadableFile,
            "\(path) is not a PEM P-256 private key (\(reason)); fix or remove it, or provision with force to replace it"
        )
    }

    // MARK: Checks

    static func matches(_ certificate: Certificate, _ key: P256.Signing.PrivateKey) -> Bool {
        certificate.publicKey == Certificate.PublicKey(key.publicKey)
    }

    /// True when `certificate` names the authority as issuer and carries its valid signature.
    static func isIssued(_ certificate: Certificate, by authority: FleetAuthority) -> Bool {
        certificate.issuer == authority.certificate.subject
            && authority.certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    /// Why an existing certificate can't be kept, or nil when it can.
    static func problem(
        with certificate: Certificate, key: P256.Signing.PrivateKey, authority: FleetAuthority, commonName: String?,
        now: Date
    ) -> String? {
        if !matches(certificate, key) { return "it does not match the key" }
        if !isIssued(certificate, by: authority) { return "it is not signed by the current CA" }
        if certificate.notValidAfter <= now { return "it expired" }
        if let commonName, Self.commonName(of: certificate) != commonName {
            return "its CN is not \(commonName)"
        }
        return nil
    }

    static func commonName(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }

    /// Colon-separated hex of a serial number, as `openssl` prints it.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { b in
            let s = String(b, radix: 16, uppercase: true)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }
}
