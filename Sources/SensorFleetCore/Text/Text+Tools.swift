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

// What the load test, provisioning and the command line took from Foundation beyond
// FoundationEssentials (issue 15): ISO8601DateFormatter's text, NSString's path names, and
// FileHandle / Data's file errors, here with the POSIX calls and messages they stand for.

extension Date {
    /// "2026-11-26T07:18:43Z": what `ISO8601DateFormatter().string(from:)` printed. That
    /// rounded the Unix time half up to the millisecond before it dropped the fraction (ICU
    /// works in milliseconds), so 43.9995 s printed as 44; `.iso8601` alone truncates, hence the
    /// rounding here (ToolsTextTests holds the two side by side). A whole second is exact in a
    /// Double, so the truncation that follows cannot fall short of it.
    public var iso8601Seconds: String {
        let milliseconds = (timeIntervalSince1970 * 1000 + 0.5).rounded(.down)
        return Date(timeIntervalSince1970: milliseconds / 1000).formatted(.iso8601)
    }
}

/// Path names taken apart as NSString did (`lastPathComponent`, `deletingLastPathComponent`,
/// `standardizingPath`), for the few places that need it.
enum PathText {
    /// `folder/name`, as `NSString.appendingPathComponent`: no second `/` after a folder that
    /// ends with one, `name` alone after an empty folder.
    static func appending(_ name: String, to folder: String) -> String {
        if folder.isEmpty { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// "/a/b/c.pem" → "c.pem"; "/a/b/" → "b"; "/" → "/"; "" → "".
    static func lastComponent(_ path: String) -> String {
        let trimmed = dropTrailingSlashes(path)
        if trimmed == "/" || trimmed.isEmpty { return trimmed }
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// "/a/b/c.pem" → "/a/b"; "/a" → "/"; "c.pem" → ""; "/" → "/"; runs of slashes count as one.
    static func deletingLastComponent(_ path: String) -> String {
        let trimmed = dropTrailingSlashes(collapseSlashes(path))
        if trimmed == "/" || trimmed.isEmpty { return trimmed }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// An absolute path without ".", "..", empty components and symbolic links: the longest
    /// part that exists through `realpath` (as NSString's `standardizingPath` resolved each
    /// link on the way), the rest by name. `path` must start with "/".
    static func standardized(_ path: String) -> String {
        var existing = path
        var rest: [Substring] = []
        var resolved: String?
        while true {
            if let real = realPath(existing) {
                resolved = real
                break
            }
            let parent = deletingLastComponent(existing)
            guard parent != existing, !parent.isEmpty else { break }
            rest.insert(Substring(lastComponent(existing)), at: 0)
            existing = parent
        }
        var parts = (resolved ?? "/").split(separator: "/")
        if resolved == nil { rest = path.split(separator: "/") }
        for part in rest {
            switch part {
            case "", ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    private static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    private static func dropTrailingSlashes(_ path: String) -> String {
        var text = Substring(path)
        while text.count > 1, text.hasSuffix("/") { text.removeLast() }
        return String(text)
    }

    private static func collapseSlashes(_ path: String) -> String {
        var out = ""
        var lastWasSlash = false
        for c in path {
            if c == "/" && lastWasSlash { continue }
            lastWasSlash = c == "/"
            out.append(c)
        }
        return out
    }
}

/// Reading and writing whole files and the standard streams with the POSIX calls, so that a
/// failure says the path and the system's reason ("Permission denied").
public enum PlainFile {
    /// Why a file could not be read or written: "PATH: REASON".
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let path: String
        /// The system's text for the error (strerror), e.g. "No such file or directory".
        public let reason: String
        public var description: String { "\(path): \(reason)" }

        init(_ path: String, errno code: Int32) {
            self.path = path
            reason = String(cString: strerror(code))
        }
    }

    /// The whole file.
    public static func read(_ path: String) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path, errno: errno)
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return Data(bytes)
    }

    /// Creates or truncates `path` (mode 0666 less the umask, as `Data.write(to:)` did) and
    /// writes `data` to it.
    public static func write(_ data: some DataProtocol, to path: String) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw Failure(path, errno: errno) }
        guard writeAll(Array(data), to: fd) else {
            let failure = Failure(path, errno: errno)
            close(fd)
            throw failure
        }
        guard close(fd) == 0 else { throw Failure(path, errno: errno) }
    }

    /// Writes `text` to standard error at once, unbuffered (as `FileHandle.standardError` did).
    public static func writeToStandardError(_ text: String) {
        _ = writeAll(Array(text.utf8), to: STDERR_FILENO)
    }

    /// Writes `text` to standard output at once, past stdio's buffer (as
    /// `FileHandle.standardOutput` did).
    public static func writeToStandardOutput(_ text: String) {
        _ = writeAll(Array(text.utf8), to: STDOUT_FILENO)
    }

    /// Every byte, retrying short writes and EINTR; false on an error (errno tells).
    static func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            written += n
        }
        return true
    }

    private static func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.read(fd, p, n)
        #else
        return Darwin.read(fd, p, n)
        #endif
    }

    private static func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(fd, p, n)
        #else
        return Darwin.write(fd, p, n)
        #endif
    }
}
