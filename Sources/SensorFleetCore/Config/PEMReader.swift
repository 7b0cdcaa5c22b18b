#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One `-----BEGIN X-----` … `-----END X-----` block of a PEM file.
struct PEMBlock: Equatable {
    /// The word(s) after BEGIN, e.g. "CERTIFICATE", "EC PRIVATE KEY".
    var label: String
    /// RFC 1421 headers between BEGIN and the data (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`).
    var headers: [String: String]
    var der: [UInt8]
    /// 1-based line of the BEGIN line in the file.
    var line: Int

    /// An encrypted private key: PKCS#8 `ENCRYPTED PRIVATE KEY`, or the traditional OpenSSL form
    /// with a `Proc-Type: 4,ENCRYPTED` header.
    var isEncryptedKey: Bool {
        label == "ENCRYPTED PRIVATE KEY" || (headers["Proc-Type"]?.uppercased().contains("ENCRYPTED") ?? false)
    }
}

/// Reads PEM as OpenSSL's `PEM_read_bio` does, not as strictly as RFC 7468: text before, between
/// and after the blocks is ignored, line ends may be CRLF, base64 lines may have any length
/// (64, 76, one long line), headers may follow BEGIN. swift-asn1's own parser insists on 64
/// columns and LF and refused files mosquitto reads.
enum PEMReader {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Every block in `text`, in order. Throws, in plain words, for a block without its END line
    /// or with data that is not base64; a text without any BEGIN line gives [].
    static func blocks(in text: String) throws(Failure) -> [PEMBlock] {
        var result: [PEMBlock] = []
        // "\r\n" is one Character in Swift: split on every kind of line end, not on "\n".
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map {
            $0.trimmingSpaces()
        }
        var i = 0
        while i < lines.count {
            guard let label = Self.label(of: lines[i], marker: "BEGIN") else {
                i += 1
                continue
            }
            let beginLine = i + 1
            var headers: [String: String] = [:]
            var body = ""
            var ended = false
            var inHeaders = true
            i += 1
            while i < lines.count {
                let line = lines[i]
                if let endLabel = Self.label(of: line, marker: "END") {
                    guard endLabel == label else {
                        throw Failure(description: "the block `BEGIN \(label)` at line \(beginLine) ends with `END \(endLabel)` at line \(i + 1)")
                    }
                    ended = true
                    break
                }
                if inHeaders, let colon = line.firstIndex(of: ":") {
                    headers[String(line[..<colon]).trimmingSpaces()] =
                        String(line[line.index(after: colon)...]).trimmingSpaces()
                } else if !line.isEmpty {
                    inHeaders = false
                    body += line.filter { !$0.isWhitespace }
                }
                i += 1
            }
            guard ended else {
                throw Failure(description: "the block `BEGIN \(label)` at line \(beginLine) has no `-----END \(label)-----` line")
            }
            guard !body.isEmpty, let data = Data(base64Encoded: body) else {
                throw Failure(description: "the block `BEGIN \(label)` at line \(beginLine) does not hold base64 data")
            }
            result.append(PEMBlock(label: label, headers: headers, der: [UInt8](data), line: beginLine))
            i += 1
        }
        return result
    }

    /// "CERTIFICATE" for "-----BEGIN CERTIFICATE-----" (marker "BEGIN").
    private static func label(of line: String, marker: String) -> String? {
        let prefix = "-----\(marker) "
        guard line.hasPrefix(prefix), line.hasSuffix("-----"), line.count >= prefix.count + 5 else { return nil }
        return String(line.dropFirst(prefix.count).dropLast(5))
    }
}
