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
import SwiftASN1
import X509

/// A certificate revocation list (RFC 5280 §5), v2, signed with ECDSA P-256 / SHA-256.
///
/// swift-certificates has no CRL type, so this encodes one with SwiftASN1's DER serializer and
/// parses one back (ours, or any v2 CRL with the same shape).
struct RevocationList: Sendable {
    struct Entry: Sendable, Equatable {
        /// The certificate's serial number, big-endian as an ASN.1 INTEGER's content.
        var serial: [UInt8]
        var revocationDate: Date
    }

    var issuer: DistinguishedName
    var thisUpdate: Date
    var nextUpdate: Date?
    var entries: [Entry]
    /// The cRLNumber extension, nil when absent.
    var number: UInt64?
    /// The authorityKeyIdentifier extension's key id, nil when absent.
    var authorityKeyID: [UInt8]?

    /// The DER of `tbsCertList` and the DER ECDSA signature over it (set by parsing or signing).
    private(set) var tbsBytes: [UInt8] = []
    private(set) var signature: [UInt8] = []
    private(set) var signatureAlgorithm: ASN1ObjectIdentifier = Self.ecdsaWithSHA256

    static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    static let pemDiscriminator = "X509 CRL"

    init(
        issuer: DistinguishedName, thisUpdate: Date, nextUpdate: Date?, entries: [Entry], number: UInt64?,
        authorityKeyID: [UInt8]?
    ) {
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.entries = entries
        self.number = number
        self.authorityKeyID = authorityKeyID
    }

    // MARK: Signing and encoding

    /// Signs the list with the issuer's key and returns the DER `CertificateList`.
    mutating func sign(with key: P256.Signing.PrivateKey) throws -> [UInt8] {
        var tbs = DER.Serializer()
        try serializeTBS(into: &tbs)
        tbsBytes = tbs.serializedBytes
        signature = Array(try key.signature(for: tbsBytes).derRepresentation)
        signatureAlgorithm = Self.ecdsaWithSHA256

        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbsBytes)
            try Self.serializeAlgorithm(Self.ecdsaWithSHA256, into: &coder)
            try coder.serialize(ASN1BitString(bytes: signature[...]))
        }
        return coder.serializedBytes
    }

    /// Signs and wraps as PEM `X509 CRL` (with a final newline).
    mutating func signAsPEM(with key: P256.Signing.PrivateKey) throws -> String {
        let der = try sign(with: key)
        return PEMDocument(type: Self.pemDiscriminator, derBytes: der).pemString + "\n"
    }

    private func serializeTBS(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)  // v2
            try Self.serializeAlgorithm(Self.ecdsaWithSHA256, into: &coder)
            try coder.serialize(issuer)
            try Self.serializeTime(thisUpdate, into: &coder)
            if let nextUpdate { try Self.serializeTime(nextUpdate, into: &coder) }
            if !entries.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for entry in entries {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(ArraySlice(entry.serial))
                            try Self.serializeTime(entry.revocationDate, into: &coder)
                        }
                    }
                }
            }
            var extensions: [Certificate.Extension] = []
            if let authorityKeyID {
                extensions.append(
                    try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: authorityKeyID[...]), critical: false))
            }
            if let number {
                var value = DER.Serializer()
                try value.serialize(number)
                extensions.append(
                    Certificate.Extension(oid: Self.crlNumberOID, critical: false, value: value.serializedBytes[...]))
            }
            if !extensions.isEmpty {
                try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                    try coder.serializeSequenceOf(extensions)
                }
            }
        }
    }

    private static func serializeAlgorithm(_ oid: ASN1ObjectIdentifier, into coder: inout DER.Serializer) throws {
        // ECDSA algorithm identifiers carry no parameters (RFC 5758 §3.2).
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
        }
    }

    /// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4).
    private static func serializeTime(_ date: Date, into coder: inout DER.Serializer) throws {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = Int(parts.tm_year) + 1900
        let month = Int(parts.tm_mon) + 1
        let day = Int(parts.tm_mday)
        let (h, m, s) = (Int(parts.tm_hour), Int(parts.tm_min), min(Int(parts.tm_sec), 59))
        if (1950..<2050).contains(year) {
            try coder.serialize(UTCTime(year: year, month: month, day: day, hours: h, minutes: m, seconds: s))
        } else {
            try coder.serialize(
                GeneralizedTime(
                    year: year, month: month, day: day, hours: h, minutes: m, seconds: s, fractionalSeconds: 0))
        }
    }

    // MARK: Parsing

    /// Parses a PEM `X509 CRL`.
    init(pemEncoded pem: String) throws {
        let document = try PEMDocument(pemString: pem)
        guard document.discriminator == Self.pemDiscriminator else {
            throw ProvisionError(.unreadableFile, "expected a PEM \"\(Self.pemDiscriminator)\", found \"\(document.discriminator)\"")
        }
        try self.init(derEncoded: document.derBytes)
    }

    /// Parses a DER `CertificateList`.
    init(derEncoded der: [UInt8]) throws {
        let root = try DER.parse(der)
        var outer = try Self.children(root, .sequence)
        guard let tbsNode = outer.next(), let algorithmNode = outer.next(), let signatureNode = outer.next(),
            outer.next() == nil
        else { throw Self.malformed("CertificateList must have three parts") }

        var tbs = try Self.children(tbsNode, .sequence)
        guard var node = tbs.next() else { throw Self.malformed("empty tbsCertList") }
        if node.identifier == .integer {
            let version = try Int(derEncoded: node)
            guard version == 1 else { throw Self.malformed("unsupported CRL version \(version + 1)") }
            guard let next = tbs.next() else { throw Self.malformed("truncated tbsCertList") }
            node = next
        }
        let innerAlgorithm = try Self.algorithm(node)
        guard let issuerNode = tbs.next() else { throw Self.malformed("no issuer") }
        let issuer = try DistinguishedName(derEncoded: issuerNode)
        guard let thisUpdateNode = tbs.next() else { throw Self.malformed("no thisUpdate") }
        let thisUpdate = try Self.time(thisUpdateNode)

        var nextUpdate: Date?
        var entries: [Entry] = []
        var number: UInt64?
        var authorityKeyID: [UInt8]?
        var pending = tbs.next()
        if let n = pending, n.identifier == .utcTime || n.identifier == .generalizedTime {
            nextUpdate = try Self.time(n)
            pending = tbs.next()
        }
        if let n = pending, n.identifier == .sequence {
            var revoked = try Self.children(n, .sequence)
            while let entryNode = revoked.next() {
                var fields = try Self.children(entryNode, .sequence)
                guard let serialNode = fields.next(), let dateNode = fields.next() else {
                    throw Self.malformed("revoked entry without serial or date")
                }
                let serial = try ArraySlice<UInt8>(derEncoded: serialNode)
                entries.append(Entry(serial: Array(serial), revocationDate: try Self.time(dateNode)))
            }
            pending = tbs.next()
        }
        if let n = pending, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            var wrapper = try Self.children(n, n.identifier)
            guard let list = wrapper.next() else { throw Self.malformed("empty crlExtensions") }
            var extensionNodes = try Self.children(list, .sequence)
            while let extNode = extensionNodes.next() {
                let ext = try Certificate.Extension(derEncoded: extNode)
                switch ext.oid {
                case Self.crlNumberOID:
                    number = try UInt64(derEncoded: ext.value)
                case .X509ExtensionID.authorityKeyIdentifier:
                    authorityKeyID = try AuthorityKeyIdentifier(ext).keyIdentifier.map(Array.init)
                default:
                    break
                }
            }
            pending = tbs.next()
        }
        guard pending == nil else { throw Self.malformed("unexpected field in tbsCertList") }

        self.init(
            issuer: issuer, thisUpdate: thisUpdate, nextUpdate: nextUpdate, entries: entries, number: number,
            authorityKeyID: authorityKeyID)
        let outerAlgorithm = try Self.algorithm(algorithmNode)
        guard outerAlgorithm == innerAlgorithm else { throw Self.malformed("signature algorithms differ") }
        signatureAlgorithm = outerAlgorithm
        tbsBytes = Array(tbsNode.encodedBytes)
        signature = Array(try ASN1BitString(derEncoded: signatureNode).bytes)
    }

    /// Whether the signature is a valid ECDSA-SHA256 signature of the issuer's key.
    func isSignatureValid(for publicKey: P256.Signing.PublicKey) -> Bool {
        guard signatureAlgorithm == Self.ecdsaWithSHA256,
            let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature)
        else { return false }
        return publicKey.isValidSignature(sig, for: tbsBytes)
    }

    func contains(serial: [UInt8]) -> Bool {
        entries.contains { $0.serial == serial }
    }

    private static func children(_ node: ASN1Node, _ identifier: ASN1Identifier) throws
        -> ASN1NodeCollection.Iterator
    {
        guard node.identifier == identifier, case .constructed(let nodes) = node.content else {
            throw malformed("expected \(identifier), found \(node.identifier)")
        }
        return nodes.makeIterator()
    }

    private static func algorithm(_ node: ASN1Node) throws -> ASN1ObjectIdentifier {
        var parts = try children(node, .sequence)
        guard let oidNode = parts.next() else { throw malformed("empty AlgorithmIdentifier") }
        return try ASN1ObjectIdentifier(derEncoded: oidNode)
    }

    private static func time(_ node: ASN1Node) throws -> Date {
        let (y, mo, d, h, mi, s): (Int, Int, Int, Int, Int, Int)
        if node.identifier == .utcTime {
            let t = try UTCTime(derEncoded: node)
            (y, mo, d, h, mi, s) = (t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
        } else if node.identifier == .generalizedTime {
            let t = try GeneralizedTime(derEncoded: node)
            (y, mo, d, h, mi, s) = (t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
        } else {
            throw malformed("expected a time, found \(node.identifier)")
        }
        var parts = tm()
        parts.tm_year = Int32(y - 1900)
        parts.tm_mon = Int32(mo - 1)
        parts.tm_mday = Int32(d)
        parts.tm_hour = Int32(h)
        parts.tm_min = Int32(mi)
        parts.tm_sec = Int32(s)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    private static func malformed(_ what: String) -> ProvisionError {
        ProvisionError(.unreadableFile, "malformed CRL: \(what)")
    }
}
