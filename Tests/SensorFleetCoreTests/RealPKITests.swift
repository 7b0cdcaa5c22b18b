import Foundation
import MosquittoKit
import SensorFleetTesting
import Testing

@testable import SensorFleetCore

/// Runs a command-line tool, waiting at most `timeout` seconds; throws with its output when it
/// fails.
@discardableResult
func runTool(_ path: String, _ arguments: [String], timeout: Double = 30) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    let text = String(decoding: data, as: UTF8.self)
    guard !process.isRunning, process.terminationStatus == 0 else {
        throw PKIToolFailure(description: "\(path) \(arguments.joined(separator: " ")) failed: \(text)")
    }
    return text
}

struct PKIToolFailure: Error, CustomStringConvertible { let description: String }

/// A root → intermediate → device PKI made by the openssl CLI (Tests/Fixtures/intermediate-pki.sh).
struct OutsidePKI {
    let dir: String
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/intermediate-pki.sh").path

    init(cn: String, in dir: String) throws {
        self.dir = dir
        try runTool("/bin/bash", [Self.script, dir, cn])
    }

    func text(_ name: String) throws -> String { try String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8) }

    /// The device key encrypted with `openssl pkey`: PKCS#8, or OpenSSL's traditional form.
    func encryptedKey(traditional: Bool) throws -> String {
        try runTool("/usr/bin/openssl", ["pkey", "-in", "\(dir)/leaf.key", "-aes256", "-passout", "pass:secret"]
                    + (traditional ? ["-traditional"] : []))
    }
}

/// PEM as other tools write it: CRLF, 76 columns, text before the block.
enum PEMVariant: String, CaseIterable, CustomTestStringConvertible {
    case crlf, columns76, oneLongLine, textBefore
    var testDescription: String { rawValue }

    func apply(_ pem: String) -> String {
        switch self {
        case .crlf: return pem.replacingOccurrences(of: "\n", with: "\r\n")
        case .columns76, .oneLongLine: return Self.rewrap(pem, width: self == .columns76 ? 76 : 100_000)
        case .textBefore:
            // What `openssl x509 -text` or a PKCS#12 export puts around the block.
            return "Bag Attributes\n    friendlyName: device\nsubject=CN = something\n\n" + pem + "\nsome trailing words\n"
        }
    }

    private static func rewrap(_ pem: String, width: Int) -> String {
        var out: [String] = []
        var body = ""
        for line in pem.split(separator: "\n") {
            if line.hasPrefix("-----BEGIN") { out.append(String(line)); body = "" }
            else if line.hasPrefix("-----END") {
                var rest = Substring(body)
                while !rest.isEmpty { out.append(String(rest.prefix(width))); rest = rest.dropFirst(width) }
                out.append(String(line))
            } else { body += line }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

@Suite("Credentials from real PKIs: intermediates, PEM as OpenSSL reads it, encrypted keys")
struct RealPKITests {
    /// A fleet whose ca.pem is the outside root and whose device dev-1 holds `cert` and `key`.
    func writeFleet(_ fleet: TempFleet, pki: OutsidePKI, ca: String? = nil, cert: String? = nil, key: String? = nil) throws {
        try fleet.write("fleet.yaml", "broker:\n  host: localhost\n")
        try fleet.write("ca.pem", try ca ?? pki.text("root.pem"))
        try fleet.write("dev-1/device.yaml", TempFleet.deviceYAML())
        try fleet.write("dev-1/cert.pem", try cert ?? pki.text("chain.pem"))
        try fleet.write("dev-1/key.pem", try key ?? pki.text("leaf.key"), mode: 0o600)
    }

    @Test("a device certificate issued by an intermediate CA, the intermediate after it in cert.pem, validates")
    func intermediateChainValidates() throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try writeFleet(fleet, pki: pki)
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.spec.devices.map(\.id) == ["dev-1"])
            #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
            #expect(ChainVerifier.verify(certFile: fleet.path("dev-1/cert.pem"), caFile: fleet.path("ca.pem"), at: Date()) == .trusted)
        }
    }

    @Test("without its intermediate the chain is refused, naming the intermediate and how to append it")
    func missingIntermediateIsExplained() throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try writeFleet(fleet, pki: pki, cert: try pki.text("leaf.pem"))
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("Outside Intermediate CA"))
            #expect(found.problem.contains("would refuse"))
            #expect(found.fix.contains("append that intermediate"))
        }
    }

    @Test("an intermediate that does not lead to ca.pem is refused (another root)")
    func chainToAnotherRootIsRefused() throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            let other = try OutsidePKI(cn: "dev-1", in: fleet.path("other"))
            try writeFleet(fleet, pki: pki, ca: try other.text("root.pem"))
            let found = try issue(in: loadIssues(fleet), file: fleet.path("dev-1/cert.pem"), field: nil)
            #expect(found.problem.contains("would refuse"))
            #expect(found.problem.contains("Outside Intermediate CA") || found.problem.contains("Outside Root CA"))
        }
    }

    @Test("PEM written other ways (CRLF, 76 columns, one line, text before BEGIN) is read in all three files",
          arguments: PEMVariant.allCases)
    func pemVariantsAreRead(variant: PEMVariant) throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try writeFleet(fleet, pki: pki, ca: variant.apply(try pki.text("root.pem")),
                           cert: variant.apply(try pki.text("chain.pem")), key: variant.apply(try pki.text("leaf.key")))
            // OpenSSL itself reads the variant (so the broker and our client would).
            try runTool("/usr/bin/openssl", ["verify", "-CAfile", fleet.path("ca.pem"), "-untrusted", fleet.path("dev-1/cert.pem"),
                                             fleet.path("dev-1/cert.pem")])
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.spec.devices.count == 1)
        }
    }

    @Test("ca.pem with several CAs (another CA first) and a device of each validates")
    func caBundleWithSeveralCAs() throws {
        let own = try TestCA.make()
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try writeFleet(fleet, pki: pki, ca: own.certificate.pem + "\n" + (try pki.text("root.pem")))
            try fleet.write("dev-2/device.yaml", TempFleet.deviceYAML())
            try fleet.writeCredentials(for: "dev-2", identity: own.issue(cn: "dev-2"))
            let loaded = try FleetLoader.load(directory: fleet.root)
            #expect(loaded.spec.devices.count == 2)
        }
    }

    @Test("an encrypted key is reported as encrypted, with the openssl command that decrypts it",
          arguments: [false, true])
    func encryptedKeyIsNamed(traditional: Bool) throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            let encrypted = try pki.encryptedKey(traditional: traditional)
            // The two forms really are what they claim.
            #expect(encrypted.contains(traditional ? "Proc-Type: 4,ENCRYPTED" : "BEGIN ENCRYPTED PRIVATE KEY"))
            try writeFleet(fleet, pki: pki, key: encrypted)
            let issues = loadIssues(fleet)
            let found = try issue(in: issues, file: fleet.path("dev-1/key.pem"), field: nil)
            #expect(found.problem.contains("encrypted"))
            #expect(found.problem.contains(traditional ? "Proc-Type" : "PKCS#8"))
            #expect(found.fix.contains("openssl pkey -in \(fleet.path("dev-1/key.pem"))"))
            #expect(found.fix.contains("CREDENTIALS_DIRECTORY"))
            #expect(issues.count == 1, "\(issues)")
        }
    }

    @Test("damaged certificates and keys are described in words: no error text shows a Swift source path",
          arguments: ["cert.pem", "key.pem", "ca.pem", "cert.pem-truncated", "key.pem-ed448"])
    func errorTextHasNoSourcePaths(damage: String) throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try writeFleet(fleet, pki: pki)
            let garbage = "-----BEGIN CERTIFICATE-----\n" + Data((0..<90).map { UInt8($0 * 7 % 256) }).base64EncodedString()
                + "\n-----END CERTIFICATE-----\n"
            switch damage {
            case "cert.pem": try fleet.write("dev-1/cert.pem", garbage)
            case "ca.pem": try fleet.write("ca.pem", garbage)
            case "key.pem": try fleet.write("dev-1/key.pem", garbage.replacingOccurrences(of: "CERTIFICATE", with: "PRIVATE KEY"), mode: 0o600)
            case "cert.pem-truncated":
                let lines = try pki.text("leaf.pem").split(separator: "\n")
                try fleet.write("dev-1/cert.pem", (lines.prefix(4) + lines.suffix(1)).joined(separator: "\n") + "\n")
            default:
                // A key type OpenSSL has and swift-certificates does not.
                let key = try runTool("/usr/bin/openssl", ["genpkey", "-algorithm", "ed448"])
                try fleet.write("dev-1/key.pem", key, mode: 0o600)
            }
            let issues = loadIssues(fleet)
            #expect(!issues.isEmpty)
            for issue in issues {
                #expect(!issue.description.contains(".swift:"), "\(issue.description)")
                #expect(!issue.description.contains("ASN1Error"), "\(issue.description)")
                #expect(!issue.description.contains("CertificateError"), "\(issue.description)")
            }
        }
    }

    @Test("the agent's expiry check reads a chain file in CRLF: the device's certificate, not the intermediate")
    func expiryOfAChainFile() throws {
        try withTempFleet { fleet in
            let pki = try OutsidePKI(cn: "dev-1", in: fleet.path("pki"))
            try fleet.write("cert.pem", PEMVariant.crlf.apply(try pki.text("chain.pem")))
            let leafEnd = try runTool("/usr/bin/openssl", ["x509", "-in", fleet.path("pki/leaf.pem"), "-noout", "-enddate"])
            let notAfter = try CertificateClock.notAfter(certFile: fleet.path("cert.pem"))
            // 200 days for the device, 400 for the intermediate (Tests/Fixtures/intermediate-pki.sh).
            #expect(abs(notAfter.timeIntervalSinceNow - 200 * 86_400) < 2 * 86_400, "\(notAfter); openssl: \(leafEnd)")
            #expect(CertificateClock.expiryWarning(certFile: fleet.path("cert.pem"), window: 300 * 86_400)?.contains("expires in") == true)
        }
    }

    @Test("PEMReader: a block without END, and base64 that is not base64, are named by line")
    func pemReaderFailures() throws {
        #expect(throws: PEMReader.Failure.self) { try PEMReader.blocks(in: "x\n-----BEGIN CERTIFICATE-----\nAAAA\n") }
        do {
            _ = try PEMReader.blocks(in: "\n\n-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            Issue.record("expected a failure")
        } catch {
            #expect(error.description.contains("line 3"))
        }
        let blocks = try PEMReader.blocks(in: "-----BEGIN EC PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-256-CBC,00\r\n\r\nAAAA\r\n-----END EC PRIVATE KEY-----\r\n")
        #expect(blocks.count == 1)
        #expect(blocks.first?.isEncryptedKey == true)
        #expect(blocks.first?.der == [0, 0, 0])
    }
}
