import Foundation
import SwiftASN1
import X509

/// Checks the CA, each device's certificate and key: present, parseable, private, matching,
/// signed by the fleet's CA, named after the device and valid at `now`.
struct CredentialChecker {
    /// A certificate expiring sooner than this is reported as a warning.
    static let expiryWarning: TimeInterval = 30 * 24 * 3600

    let log: IssueLog
    let now: Date

    func check(_ fleet: FleetLoader.ParsedFleet) {
        let settings = fleet.settings
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
            check(device, ca: caCertificates, caDisplay: settings.caDisplay, provision: provision)
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

    private func check(_ device: ParsedDevice, ca: [Certificate]?, caDisplay: String, provision: String) {
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
              let certificate = readCertificates(
                path: device.spec.certFile, display: device.certDisplay, what: "certificate",
                fix: "put the device's certificate (PEM, `-----BEGIN CERTIFICATE-----`) in \(device.certDisplay), "
                    + "or \(provision)")?.first
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
            checkIssuer(certificate, device: device, ca: ca, caDisplay: caDisplay, provision: provision)
        }
    }

    private func checkIssuer(_ certificate: Certificate, device: ParsedDevice, ca: [Certificate], caDisplay: String,
                             provision: String) {
        let issuers = ca.filter { $0.subject == certificate.issuer }
        guard !issuers.isEmpty else {
            let caNames = ca.map { "\"\($0.subject)\"" }.joined(separator: ", ")
            log.error(device.certDisplay,
                      "the certificate was issued by \"\(certificate.issuer)\", not by the fleet's CA \(caNames) "
                          + "in \(caDisplay); the broker would refuse it",
                      fix: "issue the device's certificate with the fleet's CA (\(provision)), or set broker.ca to "
                          + "the CA that issued it")
            return
        }
        guard issuers.contains(where: { $0.publicKey.isValidSignature(certificate.signature, for: certificate) }) else {
            log.error(device.certDisplay,
                      "the certificate names the fleet's CA \"\(certificate.issuer)\" as issuer, but its signature "
                          + "does not verify with the public key in \(caDisplay): it was signed by another CA "
                          + "of the same name",
                      fix: "issue the device's certificate with the CA in \(caDisplay) (\(provision))")
            return
        }
    }

    private func checkPermissions(_ device: ParsedDevice) {
        // attributesOfItem does not follow symbolic links; the mode that matters is the target's.
        let target = URL(fileURLWithPath: device.spec.keyFile).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: target),
              let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { return }
        if mode & 0o077 != 0 {
            log.error(device.keyDisplay,
                      "the private key can be read or written by group or others (mode \(String(mode & 0o777, radix: 8)))"
                          + "; it must be private to its owner",
                      fix: "chmod 600 \(device.keyDisplay)")
        }
    }

    private func readPrivateKey(_ device: ParsedDevice, provision: String) -> Certificate.PrivateKey? {
        let fix = "put the device's private key (PEM, `-----BEGIN PRIVATE KEY-----` or `EC PRIVATE KEY`) in "
            + "\(device.keyDisplay), or \(provision)"
        guard let text = readText(path: device.spec.keyFile, display: device.keyDisplay, fix: fix) else { return nil }
        do {
            return try Certificate.PrivateKey(pemEncoded: text)
        } catch {
            log.error(device.keyDisplay, "the file is not a PEM private key that can be used: \(error)", fix: fix)
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

    /// Every `CERTIFICATE` block in a PEM file; nil (with an issue) when there is none or one is malformed.
    private func readCertificates(path: String, display: String, what: String, fix: String) -> [Certificate]? {
        guard let text = readText(path: path, display: display, fix: fix) else { return nil }
        do {
            let documents = try PEMDocument.parseMultiple(pemString: text)
                .filter { $0.discriminator == "CERTIFICATE" }
            guard !documents.isEmpty else {
                log.error(display, "the file holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` block)", fix: fix)
                return nil
            }
            return try documents.map { try Certificate(pemDocument: $0) }
        } catch {
            log.error(display, "the file is not a valid PEM \(what): \(error)", fix: fix)
            return nil
        }
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

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
