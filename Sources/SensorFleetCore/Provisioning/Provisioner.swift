import Crypto
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
import X509

/// Creates and maintains a fleet's certificate authority, broker and device identities, and the
/// files a local mosquitto needs, all in Swift (swift-certificates, swift-crypto, SwiftASN1).
///
/// Layout of a fleet folder:
/// ```
/// DIR/ca.pem  ca.key                     the fleet CA (key 0600)
/// DIR/fleet.yaml                         written only when missing
/// DIR/broker/server.pem  server.key      broker identity for localhost, 127.0.0.1, ::1
/// DIR/broker/observer/cert.pem  key.pem  read-only observer (reads devices/#, sends commands)
/// DIR/broker/mosquitto.conf  acl         rewritten on every run
/// DIR/broker/crl.pem                     after the first `revoke`
/// DIR/<device>/device.yaml  cert.pem  key.pem
/// ```
public enum Provisioner {
    static let keyMode: mode_t = 0o600
    static let publicMode: mode_t = 0o644
    static let crlValidity: TimeInterval = 30 * 86_400
    /// CN of the observer identity in `DIR/broker/observer/`; no device may take this id.
    public static let observerID = DeviceID.observer

    /// Creates what is missing and repairs what is inconsistent; existing private keys are kept
    /// unless `options.force` is set.
    /// - Parameters:
    ///   - options: folder, new device count, prefix, force, broker port, validity.
    ///   - now: the time certificates and the CRL start from.
    /// - Returns: lines describing what was written and what was kept.
    /// - Throws: ``ProvisionError`` for bad options, a fleet that `validate` would refuse for
    ///   anything but its credentials (code `invalidFleet`, with every issue), unreadable keys or
    ///   I/O failures. Files written before the error stay (each one is complete).
    public static func provision(_ options: ProvisionOptions, now: Date = Date()) throws -> ProvisionResult {
        try validate(options)
        let dir = absolutePath(options.directory)
        // The fleet as `validate` reads it, through the same loader, without the credential files
        // (made here): what validate would refuse is refused before anything is written.
        let fleet: FleetLoader.ParsedFleet
        do {
            fleet = try FleetLoader.parseForProvisioning(directory: options.directory)
        } catch {
            throw ProvisionError(issues: error.issues)
        }
        var result = ProvisionResult()
        try AtomicFile.makeDirectory(dir)
        try AtomicFile.makeDirectory("\(dir)/broker")

        // 1. The CA.
        let authority = try ensureCA(dir: dir, force: options.force, now: now, result: &result)

        // 2. The broker's identity.
        _ = try ensurePair(
            certPath: "\(dir)/broker/server.pem", keyPath: "\(dir)/broker/server.key", label: "broker",
            force: options.force, result: &result,
            problem: { cert, key in
                FleetPKI.problem(with: cert, key: key, authority: authority, commonName: "localhost", now: now)
            },
            issue: { key in
                try FleetPKI.makeServer(key: key, authority: authority, now: now, validityDays: options.validityDays)
            })

        // 2b. The observer: a read-only identity for subscribers that watch the whole fleet (the
        //     demo's subscriber, the load-test verifier, tests); it may also send commands.
        try AtomicFile.makeDirectory("\(dir)/broker/observer")
        _ = try ensurePair(
            certPath: "\(dir)/broker/observer/cert.pem", keyPath: "\(dir)/broker/observer/key.pem",
            label: "observer \(observerID)", force: options.force, result: &result,
            problem: { cert, key in
                FleetPKI.problem(with: cert, key: key, authority: authority, commonName: observerID, now: now)
            },
            issue: { key in
                try FleetPKI.makeDevice(id: observerID, key: key, authority: authority, now: now, validityDays: options.validityDays)
            })

        // 3. fleet.yaml, only when missing.
        let fleetPath = "\(dir)/fleet.yaml"
        if AtomicFile.exists(fleetPath) {
            result.skipped.append("\(fleetPath) (exists)")
        } else {
            try AtomicFile.write(FleetFiles.fleetYAML(port: options.brokerPort), to: fleetPath, mode: publicMode)
            result.created.append(fleetPath)
        }

        // 4. Devices: the existing folders (certificate and key where their device.yaml says),
        //    then the new ones.
        //    With a shard, only the devices it owns (positions in id order, templates expanded).
        let owned: Set<String>? = options.shard == .whole ? nil : Set(options.shard.select(fleet.devices.map(\.spec.id)))
        var devices = fleet.devices.filter { !$0.isFromTemplate && owned?.contains($0.spec.id) != false }.map {
            DeviceFolder(id: $0.spec.id, path: $0.spec.directory, certFile: $0.spec.certFile, keyFile: $0.spec.keyFile)
        }
        var taken = Set(fleet.devices.map(\.spec.id))
        var number = highestNumber(prefix: options.prefix, in: devices) + 1
        for _ in 0..<options.newDevices {
            var id = deviceID(prefix: options.prefix, number: number)
            while taken.contains(id) || AtomicFile.exists("\(dir)/\(id)") {
                number += 1
                id = deviceID(prefix: options.prefix, number: number)
            }
            if let problem = DeviceID.problem(with: id) {
                throw ProvisionError(.invalidOption, "prefix \"\(options.prefix)\": \(problem)")
            }
            number += 1
            taken.insert(id)
            let folder = "\(dir)/\(id)"
            try AtomicFile.makeDirectory(folder)
            try AtomicFile.write(FleetFiles.deviceYAML(id: id), to: "\(folder)/device.yaml", mode: publicMode)
            result.created.append("\(folder)/device.yaml (new device \(id))")
            devices.append(DeviceFolder(id: id, path: folder, certFile: "\(folder)/cert.pem", keyFile: "\(folder)/key.pem"))
        }
        for device in devices {
            _ = try ensurePair(
                certPath: device.certFile, keyPath: device.keyFile, label: "device \(device.id)",
                force: options.force, result: &result,
                problem: { cert, key in
                    FleetPKI.problem(with: cert, key: key, authority: authority, commonName: device.id, now: now)
                },
                issue: { key in
                    try FleetPKI.makeDevice(
                        id: device.id, key: key, authority: authority, now: now, validityDays: options.validityDays)
                })
        }

        // 4b. Devices that fleet.yaml's `templates:` stand for, on every core.
        try provisionTemplates(fleet.templates, dir: dir, authority: authority, options: options, now: now, owned: owned, result: &result)

        // 5. The CRL, when there is one: re-signed so it does not expire, or dropped when the CA
        //    that signed it is gone.
        let crlPath = "\(dir)/broker/crl.pem"
        if AtomicFile.exists(crlPath) {
            let old = try? RevocationList(pemEncoded: AtomicFile.read(crlPath))
            if var crl = old, crl.isSignatureValid(for: authority.key.publicKey) {
                crl.thisUpdate = now
                crl.nextUpdate = now + crlValidity
                crl.number = (crl.number ?? 0) + 1
                try AtomicFile.write(try crl.signAsPEM(with: authority.key), to: crlPath, mode: publicMode)
                result.created.append("\(crlPath) (re-signed, \(crl.entries.count) revoked, valid 30 days)")
            } else {
                try AtomicFile.remove(crlPath)
                result.created.append("\(crlPath) removed (not signed by the current CA; revoke again if needed)")
            }
        }

        // 6. Broker configuration, always rewritten.
        try writeBrokerFiles(dir: dir, port: options.brokerPort, result: &result)
        return result
    }

    /// Adds a device's certificate to the fleet's CRL (`DIR/broker/crl.pem`, signed by the CA),
    /// keeping the serials revoked before, and points `broker/mosquitto.conf` at it.
    /// - Parameters:
    ///   - directory: the fleet folder.
    ///   - deviceID: the id of a provisioned device.
    ///   - now: revocation date and the CRL's thisUpdate (nextUpdate is 30 days later).
    /// - Returns: a message for the user.
    /// - Throws: ``ProvisionError`` when the CA, the device or its certificate is missing, or
    ///   the existing CRL is not this CA's.
    public static func revoke(directory: String, deviceID: String, now: Date = Date()) throws -> String {
        let dir = absolutePath(directory)
        let caPath = "\(dir)/ca.pem"
        let caKeyPath = "\(dir)/ca.key"
        guard AtomicFile.exists(caPath), AtomicFile.exists(caKeyPath) else {
            throw ProvisionError(.ioFailure, "no CA in \(dir) (ca.pem and ca.key): run provision first")
        }
        let authority = FleetAuthority(
            certificate: try FleetPKI.loadCertificate(caPath), key: try FleetPKI.loadKey(caKeyPath))
        guard FleetPKI.matches(authority.certificate, authority.key) else {
            throw ProvisionError(.mismatch, "\(caKeyPath) is not the key of \(caPath)")
        }
        // The loader that validate uses; a problem elsewhere in the fleet does not hold up a revocation.
        let devices = FleetLoader.parse(directory: dir, log: IssueLog(), forProvisioning: true)?.devices ?? []
        guard let device = devices.first(where: { $0.spec.id == deviceID }) else {
            let known = devices.map(\.spec.id).prefix(10).joined(separator: ", ")
            throw ProvisionError(
                .unknownDevice,
                "no device \"\(deviceID)\" in \(dir) (no folder with a device.yaml for that id)"
                    + (known.isEmpty ? "" : "; devices: \(known)\(devices.count > 10 ? ", …" : "")"))
        }
        let certPath = device.spec.certFile
        guard AtomicFile.exists(certPath) else {
            throw ProvisionError(.ioFailure, "\(certPath) is missing: device \(deviceID) has no certificate to revoke")
        }
        let certificate = try FleetPKI.loadCertificate(certPath)
        guard FleetPKI.isIssued(certificate, by: authority) else {
            throw ProvisionError(.mismatch, "\(certPath) was not issued by the fleet CA \(caPath)")
        }
        let serial = Array(certificate.serialNumber.bytes)

        let crlPath = "\(dir)/broker/crl.pem"
        var crl: RevocationList
        if AtomicFile.exists(crlPath) {
            crl = try RevocationList(pemEncoded: AtomicFile.read(crlPath))
            guard crl.isSignatureValid(for: authority.key.publicKey) else {
                throw ProvisionError(
                    .mismatch, "\(crlPath) is not signed by the fleet CA; remove it (or run provision) and revoke again")
            }
        } else {
            crl = RevocationList(
                issuer: authority.certificate.subject, thisUpdate: now, nextUpdate: nil, entries: [], number: 0,
                authorityKeyID: nil)
        }
        let already = crl.contains(serial: serial)
        if !already {
            crl.entries.append(.init(serial: serial, revocationDate: now))
        }
        crl.issuer = authority.certificate.subject
        crl.authorityKeyID = authority.keyIdentifier
        crl.thisUpdate = now
        crl.nextUpdate = now + crlValidity
        crl.number = (crl.number ?? 0) + 1
        try AtomicFile.makeDirectory("\(dir)/broker")
        try AtomicFile.write(try crl.signAsPEM(with: authority.key), to: crlPath, mode: publicMode)

        // mosquitto 2.0 re-reads a CRL it already uses on SIGHUP, but picks up a new `crlfile`
        // line only at start (checked by hand with 2.0.11).
        let confHadCRL = (try? AtomicFile.read("\(dir)/broker/mosquitto.conf"))?.contains("\ncrlfile ") ?? false
        var ignored = ProvisionResult()
        try writeBrokerFiles(dir: dir, port: brokerPort(dir: dir), result: &ignored)
        let serialText = FleetPKI.hex(serial)
        return (already
            ? "Device \(deviceID) (serial \(serialText)) was already revoked; "
            : "Revoked device \(deviceID) (serial \(serialText)); ")
            + "\(crlPath) lists \(crl.entries.count) certificate(s). "
            + (confHadCRL
                ? "Send the broker SIGHUP (mosquitto re-reads the CRL) or restart it."
                : "Restart the broker: \(dir)/broker/mosquitto.conf now has a crlfile line, which mosquitto reads only at start.")
    }

    // MARK: - Steps

    private static func validate(_ options: ProvisionOptions) throws {
        if options.shard != .whole && options.newDevices > 0 {
            throw ProvisionError(.invalidOption, "--devices with --shard: a shard provisions the devices the fleet already has; add devices without --shard (or with a template in fleet.yaml), then provision each shard")
        }
        guard options.newDevices >= 0 else {
            throw ProvisionError(.invalidOption, "new device count must be 0 or more, not \(options.newDevices)")
        }
        guard (1...65_535).contains(options.brokerPort) else {
            throw ProvisionError(.invalidOption, "broker port must be 1…65535, not \(options.brokerPort)")
        }
        guard options.validityDays >= 1 else {
            throw ProvisionError(.invalidOption, "validity must be at least 1 day, not \(options.validityDays)")
        }
        // New ids are `<prefix>-0001`…: the prefix is good when they are.
        if let problem = DeviceID.problem(with: deviceID(prefix: options.prefix, number: 1)) {
            throw ProvisionError(.invalidOption, "prefix \"\(options.prefix)\": \(problem)")
        }
        guard !options.directory.isEmpty else {
            throw ProvisionError(.invalidOption, "the fleet folder must not be empty")
        }
    }

    private static func ensureCA(dir: String, force: Bool, now: Date, result: inout ProvisionResult) throws
        -> FleetAuthority
    {
        let (cert, key) = try ensurePair(
            certPath: "\(dir)/ca.pem", keyPath: "\(dir)/ca.key", label: "CA", force: force, result: &result,
            problem: { cert, key in
                if !FleetPKI.matches(cert, key) { return "it does not match the key" }
                guard cert.publicKey.isValidSignature(cert.signature, for: cert) else { return "it is not self-signed" }
                if cert.notValidAfter <= now { return "it expired" }
                guard case .isCertificateAuthority = try? cert.extensions.basicConstraints else {
                    return "it is not a CA certificate"
                }
                return nil
            },
            issue: { key in try FleetPKI.makeCA(key: key, now: now) })
        return FleetAuthority(certificate: cert, key: key)
    }

    /// Keeps a certificate and its key when they are fine; otherwise issues what is needed.
    /// An existing key is never replaced without `force` (a missing or bad certificate is
    /// reissued for it); a missing key gets a new pair.
    static func ensurePair(
        certPath: String, keyPath: String, label: String, force: Bool, result: inout ProvisionResult,
        problem: (Certificate, P256.Signing.PrivateKey) -> String?,
        issue: (P256.Signing.PrivateKey) throws -> Certificate
    ) throws -> (Certificate, P256.Signing.PrivateKey) {
        let certExists = AtomicFile.exists(certPath)
        let keyExists = AtomicFile.exists(keyPath)

        if keyExists && !force {
            let key = try FleetPKI.loadKey(keyPath)
            let reason: String
            if certExists {
                let existing: Certificate
                do {
                    existing = try FleetPKI.loadCertificate(certPath)
                } catch {
                    return try reissue(key, because: "it could not be read")
                }
                guard let why = problem(existing, key) else {
                    result.skipped.append("\(certPath) and \(keyPath) (\(label): kept)")
                    return (existing, key)
                }
                reason = why
            } else {
                reason = "it was missing"
            }
            return try reissue(key, because: reason)

            func reissue(_ key: P256.Signing.PrivateKey, because why: String) throws
                -> (Certificate, P256.Signing.PrivateKey)
            {
                let cert = try issue(key)
                try AtomicFile.write(try FleetPKI.pem(cert), to: certPath, mode: publicMode)
                result.created.append("\(certPath) (\(label): certificate reissued because \(why); key kept)")
                return (cert, key)
            }
        }

        let key = P256.Signing.PrivateKey()
        let cert = try issue(key)
        // The key first: a certificate never points at a key that is not there.
        try AtomicFile.write(FleetPKI.pem(key), to: keyPath, mode: keyMode)
        try AtomicFile.write(try FleetPKI.pem(cert), to: certPath, mode: publicMode)
        let why: String
        switch (force && (certExists || keyExists), certExists, keyExists) {
        case (true, _, _): why = "regenerated (force)"
        case (false, true, false): why = "new pair: the key was missing"
        default: why = "new"
        }
        result.created.append("\(certPath) and \(keyPath) (\(label): \(why))")
        return (cert, key)
    }

    private static func writeBrokerFiles(dir: String, port: Int, result: inout ProvisionResult) throws {
        let withCRL = AtomicFile.exists("\(dir)/broker/crl.pem")
        let confPath = "\(dir)/broker/mosquitto.conf"
        let aclPath = "\(dir)/broker/acl"
        try AtomicFile.write(
            FleetFiles.mosquittoConf(directory: dir, port: port, withCRL: withCRL), to: confPath, mode: publicMode)
        try AtomicFile.write(FleetFiles.acl, to: aclPath, mode: publicMode)
        result.created.append(confPath)
        result.created.append(aclPath)
    }

    // MARK: - Devices

    struct DeviceFolder: Equatable {
        var id: String
        var path: String
        var certFile: String
        var keyFile: String
    }

    static func deviceID(prefix: String, number: Int) -> String {
        let digits = String(number)
        return "\(prefix)-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The highest N among ids and folder names of the form `<prefix>-N`, 0 when none.
    static func highestNumber(prefix: String, in devices: [DeviceFolder]) -> Int {
        let head = "\(prefix)-"
        var highest = 0
        for device in devices {
            for name in [device.id, PathText.lastComponent(device.path)] where name.hasPrefix(head) {
                let tail = name.dropFirst(head.count)
                if !tail.isEmpty, tail.utf8.count <= 9, tail.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let n = Int(tail)
                {
                    highest = max(highest, n)
                }
            }
        }
        return highest
    }

    // MARK: - Paths

    static func absolutePath(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return PathText.standardized(full)
    }

    /// The port in `broker/mosquitto.conf`, else `fleet.yaml`'s `broker.port`, else 8883.
    static func brokerPort(dir: String) -> Int {
        if let conf = try? AtomicFile.read("\(dir)/broker/mosquitto.conf") {
            for line in conf.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count >= 2, words[0] == "listener", let port = Int(words[1]) { return port }
            }
        }
        if let text = try? AtomicFile.read("\(dir)/fleet.yaml"),
            let node = try? YAML.compose(yaml: text),
            let port = node["broker"]?["port"]?.int
        {
            return port
        }
        return 8883
    }
}
