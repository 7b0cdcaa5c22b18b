import Foundation
import Testing

@testable import SensorFleetCore

/// The stand-ins for what the bench, provisioning and the command line took from Foundation
/// (issue 15), held against Foundation itself (the tests may link it): the texts must stay
/// byte-identical, since reports and messages carry them.
@Suite("Issue 15: ISO 8601 text, path names and plain file I/O as Foundation gave them")
struct ToolsTextTests {
    @Test("iso8601Seconds prints what ISO8601DateFormatter printed, millisecond rounding included")
    func iso8601SecondsMatchesTheFormatter() {
        let formatter = ISO8601DateFormatter()
        for base in [0.0, 1e9, 1_764_140_323, 1_700_000_017, 86_399, 2_000_000_000.25] {
            for fraction in [0.0, 0.0004, 0.0005, 0.4, 0.4995, 0.5, 0.999, 0.9994, 0.99949, 0.9995, 0.9996, 0.99999] {
                let date = Date(timeIntervalSince1970: base + fraction)
                #expect(date.iso8601Seconds == formatter.string(from: date), "at \(base + fraction)")
            }
        }
    }

    @Test("PathText takes names apart as NSString did")
    func pathNamesMatchNSString() {
        for path in ["/a/b/c.pem", "/a/b/", "/", "", "c.pem", "a/b", "/a", "//a//b//", "/a/b/../c", "rel/x.pem"] {
            #expect(PathText.lastComponent(path) == (path as NSString).lastPathComponent, "\(path)")
            #expect(PathText.deletingLastComponent(path) == (path as NSString).deletingLastPathComponent, "\(path)")
        }
    }

    @Test("PathText.standardized resolves ., .., // and symbolic links as standardizingPath did")
    func standardizedMatchesNSString() throws {
        let root = FileManager.default.temporaryDirectory.path + "/tools-text-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: "\(root)/real/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link", withDestinationPath: "\(root)/real")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for path in ["\(root)/link/sub/../x", "\(root)/./real//sub/", "\(root)/link", "\(root)/nope/../real",
                     "\(root)/real/sub/new/../new2/./z", "\(root)/link/..", "/", "/a/b/../c"] {
            #expect(PathText.standardized(path) == (path as NSString).standardizingPath, "\(path)")
        }
    }

    @Test("PlainFile writes and reads whole files; a failure names the path and the system's reason")
    func plainFileRoundTripAndErrors() throws {
        let path = FileManager.default.temporaryDirectory.path + "/tools-text-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0) })
        try PlainFile.write(bytes, to: path)
        #expect(Array(try PlainFile.read(path)) == bytes)
        try PlainFile.write(Array("short".utf8), to: path)
        #expect(String(decoding: try PlainFile.read(path), as: UTF8.self) == "short")

        #expect(throws: PlainFile.Failure.self) { try PlainFile.read("/nonexistent-folder/r.json") }
        do {
            try PlainFile.write(bytes, to: "/nonexistent-folder/r.json")
            Issue.record("wrote into a folder that does not exist")
        } catch {
            #expect(error.description == "/nonexistent-folder/r.json: No such file or directory")
        }
    }
}
