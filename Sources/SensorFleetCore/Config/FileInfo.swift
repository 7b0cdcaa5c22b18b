#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the config code asks of a path, from stat(2): whether it is a folder and its permission
/// bits. (FileManager's `fileExists(atPath:isDirectory:)` takes an `ObjCBool` with Foundation and
/// a `Bool` with FoundationEssentials; these read the same everywhere.)
enum FileInfo {
    /// Whether `path` (links followed) is a folder; nil when nothing is there.
    static func isFolder(_ path: String) -> Bool? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The permission bits (`0o7777`) of `path`, or nil when it cannot be examined.
    /// - Parameter followingLinks: false reads a symbolic link's own mode, as FileManager's
    ///   `attributesOfItem(atPath:)` did.
    static func permissions(_ path: String, followingLinks: Bool = true) -> Int? {
        var info = stat()
        guard (followingLinks ? stat(path, &info) : lstat(path, &info)) == 0 else { return nil }
        return Int(info.st_mode & 0o7777)
    }
}
