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

/// Small file helpers for provisioning: atomic writes with the mode set at creation.
enum AtomicFile {
    /// Writes `bytes` to `path` atomically: a temporary file beside it, created with `mode` (so a
    /// key is never readable by others, not even empty), written, flushed, then renamed over.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let directory = PathText.deletingLastComponent(path)
        let name = PathText.lastComponent(path)
        var fd: Int32 = -1
        var temp = ""
        for _ in 0..<16 {
            temp = "\(directory)/.\(name).tmp-\(UInt32.random(in: 0...UInt32.max))"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw ioError("cannot create \(temp)") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        // The umask may have taken bits away; set exactly what was asked.
        guard fchmod(fd, mode) == 0 else {
            let e = ioError("cannot set mode of \(temp)")
            close(fd)
            throw e
        }
        guard PlainFile.writeAll(bytes, to: fd) else {
            let e = ioError("cannot write \(temp)")
            close(fd)
            throw e
        }
        guard fsync(fd) == 0 else {
            let e = ioError("cannot flush \(temp)")
            close(fd)
            throw e
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw ioError("cannot rename \(temp) to \(path)") }
        ok = true
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        try write(Array(text.utf8), to: path, mode: mode)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ioError("cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func makeDirectory(_ path: String) throws {
        if isDirectory(path) { return }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw ProvisionError(.ioFailure, "cannot create folder \(path): \(error)")
        }
    }

    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw ioError("cannot remove \(path)") }
    }

    private static func ioError(_ what: String) -> ProvisionError {
        ProvisionError(.ioFailure, "\(what): \(String(cString: strerror(errno)))")
    }
}
