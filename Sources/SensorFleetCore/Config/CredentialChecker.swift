#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MosquittoKit
import SwiftASN1
import X509

/// Checks the CA, each device's certificate and key: present, parseable, private, matching,
/// signed by the fleet's CA, named after the device and valid at `now`.
///
/// Files are read as OpenSSL reads them (`PEMReader`), and the chain is verified by OpenSSL
/// itself (`ChainVerifier`, the library mosquitto and our client use): a leaf issued by an
/// intermediate CA, with the intermediates after it in cert.pem, passes exactly when the broker
/// would accept it. swift-certificates reads the names, dates and keys. No error text carries a
/// Swift error's description (those print source file and line): `plain(_:)` puts them in words.
struct CredentialChecker {
    /// A certificate expiring sooner than this is reported as a warning.
    static let expiryWarning: TimeInterval = 30 * 24 * 3600

    let log: IssueLog
    let now: Date

    func check(_ fleet: FleetLoader.ParsedFleet) {
        let settings = fleet.settings
        // Plain TCP (broker.tls: false) uses no CA, certificate or key.
        guard settings.broker.tls else { return }
        let provision = "run `sensorfleet provision \(settings.location.displayRoot)` to create the CA and "
            + "the devices' certificates and keys"
        let fileManager = FileManager.default
        if !fileManager.fileExists(atPath: settings.broker.caFile), !fleet.devices.isEmpty,
           !fleet.devices.contains(where: {
               fileManager.fileExists(atPath: $0.spec.certFile) || fileManager.fileExists(atPath: $0.spec.keyFile)
           }) {
            // Nothing provisioned yet: one issue instead of one per file.
            log.error(settings.file, line: settings.caLine, field: "broker.ca",
                      "the fleet has no credentials yet: the CA file \(settings.caDisplay) and the certificate and "
                          + "key of all \(fleet.devices.count) devices do not exist",
                      fix: provision)
            return
        }
        let caCertificates = loadCA(settings, provision: provision)
        for device in fleet.devices {
            check(device, ca: caCertificates, caFile: settings.broker.caFile, caDisplay: settings.caDisplay, provision: provision)
        }
    }

    // MARK: CA

    private func loadCA(_ settings: FleetSettings, provision: String) -> [Certificate]? {
        let path = settings.broker.caFile
        let display = settings.caDisplay
        guard FileManager.default.fileExists(atPath: path) else {
            log.error(settings.file, line: settings.caLine, field: "broker.ca",
                      "the CA file \(display) does not exist",
                      fix: "\(provision), or set broker.ca to the CA certificate that signed the broker's and "
                          + "devices' certificates")
            return nil
        }
        guard let certificates = readCertificates(path: path, display: display, what: "CA certificate",
                                                  fix: "put the fleet's CA certificate (PEM, `-----BEGIN CERTIFICATE-----`) "
                                                      + "in \(display), or \(provision)")
        else { return nil }
        var usable: [Certificate] = []
        for certificate in certificates where checkValidity(certificate, display: display, what: "CA certificate",
                                                            fix: "renew the CA and re-issue the device certificates: \(provision)") {
            usable.append(certificate)
        }
        return usable
    }

    // MARK: Device

    private func check(_ device: ParsedDevice, ca: [Certificate]?, caFile: String, caDisplay: String, provision: String) {
        let id = device.spec.id
        let certExists = FileManager.default.fileExists(atPath: device.spec.certFile)
        let keyExists = FileManager.default.fileExists(atPath: device.spec.keyFile)
        if !certExists {
            log.error(device.file, line: device.certLine, field: "cert",
                      "the certificate file \(device.certDisplay) of device `\(id)` does not exist",
                      fix: "\(provision), or set `cert:` to the device's certificate file")
        }
        if !keyExists {
            log.error(device.file, line: device.keyLine, field: "key",
                      "the private key file \(device.keyDisplay) of device `\(id)` does not exist",
                      fix: "\(provision), or set `key:` to the device's private key file")
        }

        var privateKey: Certificate.PrivateKey?
        if keyExists {
            checkPermissions(device)
            privateKey = readPrivateKey(device, provision: provision)
        }
        guard certExists,
              let chain = readCertificates(
                path: device.spec.certFile, display: device.certDisplay, what: "certificate",
                fix: "put the device's certificate (PEM, `-----BEGIN CERTIFICATE-----`) in \(device.certDisplay), "
                    + "followed by the intermediate CA certificates that issued it, if any, or \(provision)"),
              let certificate = chain.first
        else { return }

        _ = checkValidity(certificate, display: device.certDisplay, what: "certificate",
                          fix: "issue a new certificate for `\(id)`: \(provision)")

        if let privateKey, privateKey.publicKey != certificate.publicKey {
            log.error(device.keyDisplay,
                      "the private key does not belong to the certificate \(device.certDisplay) (their public keys differ)",
                      fix: "put the key the certificate was issued for in \(device.keyDisplay), or issue a new "
                          + "certificate and key pair: \(provision)")
        }

        let commonNames = Self.commonNames(of: certificate.subject)
        if commonNames != [device.sharedIdentityCN ?? id] {
            let found = commonNames.isEmpty ? "has no CN" : "has CN \(commonNames.map { "`\($0)`" }.joined(separator: ", "))"
            log.error(device.certDisplay,
                      "the certificate's subject \(found), but the device id is `\(id)`; "
                          + "the broker uses the CN as the MQTT username",
                      fix: "issue a certificate with CN=\(id) (\(provision)), or set `id:` in \(device.file) "
                          + "to match the certificate")
        }

        if let ca, !ca.isEmpty {
            checkChain(chain, device: device, ca: ca, caFile: caFile, caDisplay: caDisplay, provision: provision)
        }
    }

    /// Verifies the chain with OpenSSL as the broker will, then explains a refusal with what
    /// the certificates say.
    private func checkChain(_ chain: [Certificate], device: ParsedDevice, ca: [Certificate], caFile: String, caDisplay: String,
                            provision: String) {
        let outcome = ChainVerifier.verify(certFile: device.spec.certFile, caFile: caFile, at: now)
        guard case .refused(let failure) = outcome else {
            // .unreadable*: already reported by the PEM checks (swift-certificates and OpenSSL
            // read the same blocks).
            return
        }
        let certificate = chain[0]
        let display = device.certDisplay
        // The dates of the device's certificate and of the CAs in ca.pem are reported by
        // checkValidity; OpenSSL's depth counts the chain it built: the file's certificates
        // (in their order), then the CA from ca.pem.
        let fromCA = failure.depth >= chain.count
        if failure.depth == 0 || fromCA, failure.isExpired || failure.isNotYetValid { return }
        let failing = failure.depth >= 0 && failure.depth < chain.count ? chain[failure.depth] : nil
        let what = failure.depth <= 0 ? "the certificate"
            : fromCA ? "the CA certificate \(failure.subject) of \(caDisplay)"
            : "the intermediate CA certificate \"\(failing?.subject.description ?? failure.subject)\" (number \(failure.depth + 1) in the file)"
        let intermediates = chain.count - 1
        if failure.isUnknownIssuer || failure.isSignatureFailure {
            let name = failing?.issuer ?? certificate.issuer
            let sameName = (ca + chain.dropFirst()).filter { $0.subject == name }
            if !sameName.isEmpty, let failing,
               !sameName.contains(where: { $0.publicKey.isValidSignature(failing.signature, for: failing) }) {
                log.error(display,
                          "\(what) names \"\(name)\" as issuer, but its signature does not verify with the public key "
                              + "of that name in \(caDisplay)\(intermediates > 0 ? " or \(display)" : ""): it was signed by "
                              + "another CA of the same name; the broker would refuse it",
                          fix: "issue the device's certificate with the CA in \(caDisplay) (\(provision))")
                return
            }
            let caNames = ca.map { "\"\($0.subject)\"" }.joined(separator: ", ")
            let chainHint = intermediates == 0
                ? "; if an intermediate CA issued it, append that intermediate's certificate to \(display) after the "
                    + "device's (`cat device.pem intermediate.pem > \(display)`), or put it in \(caDisplay)"
                : ""
            log.error(display,
                      "\(what) was issued by \"\(name)\", not by the fleet's CA \(caNames) in \(caDisplay)"
                          + (intermediates > 0 ? " nor by a certificate that follows it in \(display)" : "")
                          + "; the broker would refuse it",
                      fix: "issue the device's certificate with the fleet's CA (\(provision)), or set broker.ca to "
                          + "the CA that issued it\(chainHint)")
            return
        }
        if failure.isExpired || failure.isNotYetValid {
            let dates = failing.map { " (valid \(Self.format($0.notValidBefore)) to \(Self.format($0.notValidAfter)))" } ?? ""
            log.error(display,
                      "\(what) \(failure.isExpired ? "has expired" : "is not valid yet")\(dates); the broker would refuse "
                          + "the chain",
                      fix: "put a current intermediate certificate in \(display) (ask the CA that issues them), or "
                          + "correct this machine's clock")
            return
        }
        if failure.code == 25 { // X509_V_ERR_PATH_LENGTH_EXCEEDED
            log.error(display,
                      "\(what) may not have this many CAs below it (its basicConstraints path length is too "
                          + "small), so the broker refuses a chain through the intermediate CA in \(display)",
                      fix: "issue the device's certificate directly with the CA in \(caDisplay) (\(provision)), or use "
                          + "a root CA that allows intermediates (pathlen ≥ 1, or none)")
            return
        }
        log.error(display,
                  "OpenSSL, which the broker uses, refuses the chain: \(failure.reason), at \(what)",
                  fix: "issue the device's certificate with the fleet's CA (\(provision)), or correct the chain in "
                      + "\(display): the device's certificate first, then each intermediate CA up to (not including) "
                      + "the CA in \(caDisplay)")
    }

    private func checkPermissions(_ device: ParsedDevice) {
        // The mode that matters is the target's: stat follows symbolic links.
        guard let mode = FileInfo.permissions(device.spec.keyFile) else { return }
        if mode & 0o077 != 0 {
            log.error(device.keyDisplay,
                      "the private key can be read or written by group or others (mode \(String(mode & 0o777, radix: 8)))"
                          + "; it must be private to its owner",
                      fix: PermissionAdvice.chmod("600", path: device.spec.keyFile, display: device.keyDisplay))
        }
    }

    private func readPrivateKey(_ device: ParsedDevice, provision: String) -> Certificate.PrivateKey? {
        let display = device.keyDisplay
        let fix = "put the device's private key (PEM, `-----BEGIN PRIVATE KEY-----` or `EC PRIVATE KEY`) in "
            + "\(display), or \(provision)"
        guard let text = readText(path: device.spec.keyFile, display: display, fix: fix) else { return nil }
        let blocks: [PEMBlock]
        do {
            blocks = try PEMReader.blocks(in: text)
        } catch {
            log.error(display, "the file is not valid PEM: \(error.description)", fix: fix)
            return nil
        }
        guard let block = blocks.first(where: { $0.label.hasSuffix("PRIVATE KEY") }) else {
            log.error(display, "the file holds no PEM private key (no `-----BEGIN … PRIVATE KEY-----` block)", fix: fix)
            return nil
        }
        if block.isEncryptedKey {
            let form = block.label == "ENCRYPTED PRIVATE KEY"
                ? "PKCS#8, `BEGIN ENCRYPTED PRIVATE KEY`"
                : "OpenSSL's traditional form, `Proc-Type: 4,ENCRYPTED`"
                    + (block.headers["DEK-Info"].map { ", cipher \($0.split(separator: ",").first ?? "")" } ?? "")
            log.error(display,
                      "the private key is encrypted (\(form)); sensorfleet runs unattended and asks for no passphrase",
                      fix: "decrypt it once (openssl asks for the passphrase): `openssl pkey -in \(display) -out "
                          + "\(display).plain && mv \(display).plain \(display) && chmod 600 \(display)`; to keep it "
                          + "encrypted at rest, let systemd decrypt it for the agent (`LoadCredentialEncrypted=key.pem:…`, "
                          + "read from $CREDENTIALS_DIRECTORY/key.pem) or give the decrypted file with `agent --key`")
            return nil
        }
        do {
            return try Certificate.PrivateKey(pemDocument: PEMDocument(type: block.label, derBytes: block.der))
        } catch {
            log.error(display,
                      "the `\(block.label)` block at line \(block.line) is not a private key that can be used: "
                          + Self.plain(error),
                      fix: fix)
            return nil
        }
    }

    // MARK: Helpers

    private func readText(path: String, display: String, fix: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else {
            log.error(display, "the file cannot be read", fix: "make \(display) readable by this user; \(fix)")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.error(display, "the file is not PEM text", fix: fix)
            return nil
        }
        return text
    }

    /// Every `CERTIFICATE` block in a PEM file, in order; nil (with an issue) when there is none or
    /// one is malformed.
    private func readCertificates(path: String, display: String, what: String, fix: String) -> [Certificate]? {
        guard let text = readText(path: path, display: display, fix: fix) else { return nil }
        let blocks: [PEMBlock]
        do {
            blocks = try PEMReader.blocks(in: text).filter { $0.label == "CERTIFICATE" }
        } catch {
            log.error(display, "the file is not a valid PEM \(what): \(error.description)", fix: fix)
            return nil
        }
        guard !blocks.isEmpty else {
            log.error(display, "the file holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` block)", fix: fix)
            return nil
        }
        var certificates: [Certificate] = []
        for block in blocks {
            do {
                certificates.append(try Certificate(derEncoded: block.der))
            } catch {
                log.error(display,
                          "the `BEGIN \(block.label)` block at line \(block.line) is not a valid PEM \(what): "
                              + Self.plain(error),
                          fix: fix)
                return nil
            }
        }
        return certificates
    }

    /// A swift-certificates or swift-asn1 error in words. Their own descriptions end in the Swift
    /// source file and line that threw ("… X509/Certificate.swift:123"), which tell a user nothing.
    static func plain(_ error: any Error) -> String {
        if let error = error as? CertificateError {
            switch error.code {
            case .unsupportedPrivateKey, .unsupportedPublicKeyAlgorithm:
                return "its key type is not supported (EC P-256, P-384 and P-521, RSA and Ed25519 are)"
            case .unsupportedSignatureAlgorithm, .unsupportedDigestAlgorithm:
                return "its signature algorithm is not supported"
            default:
                return "its contents are not a valid certificate or key"
            }
        }
        if let error = error as? ASN1Error {
            switch error.code {
            case .truncatedASN1Field: return "its data is cut short (the base64 between BEGIN and END is incomplete)"
            default: return "its data is damaged or is not what its BEGIN line says"
            }
        }
        return "its data cannot be read"
    }

    /// Logs an error when `certificate` is not valid at `now`, a warning when it expires within 30 days.
    /// Returns whether it is valid now.
    private func checkValidity(_ certificate: Certificate, display: String, what: String, fix: String) -> Bool {
        let subject = "\"\(certificate.subject)\""
        if now > certificate.notValidAfter {
            log.error(display, "the \(what) \(subject) expired on \(Self.format(certificate.notValidAfter))",
                      fix: fix)
            return false
        }
        if now < certificate.notValidBefore {
            log.error(display,
                      "the \(what) \(subject) is not valid yet: it is valid from \(Self.format(certificate.notValidBefore)) "
                          + "(check this machine's clock)",
                      fix: "wait until then, correct the clock, or \(fix)")
            return false
        }
        if certificate.notValidAfter.timeIntervalSince(now) < Self.expiryWarning {
            let days = Int(certificate.notValidAfter.timeIntervalSince(now) / 86_400)
            log.warning(display,
                        "the \(what) \(subject) expires on \(Self.format(certificate.notValidAfter)), in \(days) day"
                            + (days == 1 ? "" : "s"),
                        fix: fix)
        }
        return true
    }

    static func commonNames(of name: DistinguishedName) -> [String] {
        name.flatMap { rdn in
            rdn.filter { $0.type == .RDNAttributeType.commonName }.map { String($0.value) ?? $0.value.description }
        }
    }

    /// RFC 3339 in UTC to the second, e.g. 2026-11-26T02:40:00Z. ISO8601FormatStyle
    /// (FoundationEssentials): ISO8601DateFormatter would wake ICU in the agent (issue 15).
    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
