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

/// The fleet folder as the user named it (for messages) and as an absolute path (for the spec).
struct FleetLocation {
    let argument: String
    let absolute: String

    init(argument: String) {
        self.argument = argument
        let expanded = Self.expandingTilde(argument.isEmpty ? "." : argument)
        let base = expanded.hasPrefix("/")
            ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
        absolute = URL(fileURLWithPath: base).standardizedFileURL.path
    }

    /// The folder as the user typed it.
    var displayRoot: String { argument.isEmpty ? "." : argument }

    /// The last component of the folder (a device folder's name).
    var name: String { Self.lastComponent(absolute) }

    /// The folder that holds this one, named as the user would (`fleet` for `fleet/pi-0001`).
    var parent: FleetLocation {
        let typed = Self.deletingLastComponent(argument)
        let typedName = Self.lastComponent(argument)
        if !typed.isEmpty, typedName == name { return FleetLocation(argument: typed) }
        if typed.isEmpty, typedName == name { return FleetLocation(argument: ".") }
        return FleetLocation(argument: Self.deletingLastComponent(absolute))
    }

    /// `argument/components…`, as the user sees it.
    func display(_ components: String...) -> String {
        Self.join([argument] + components)
    }

    func absolute(_ components: String...) -> String {
        Self.join([absolute] + components)
    }

    /// A path written in a YAML file, relative to `folder` (inside the fleet folder) unless absolute.
    func resolve(_ value: String, in folder: String?) -> (absolute: String, display: String) {
        if value.hasPrefix("/") || value.hasPrefix("~") {
            let path = URL(fileURLWithPath: Self.expandingTilde(value)).standardizedFileURL.path
            return (path, path)
        }
        let parts = [folder, value].compactMap { $0 }
        let absolutePath = URL(fileURLWithPath: Self.join([absolute] + parts)).standardizedFileURL.path
        return (absolutePath, Self.join([argument] + parts))
    }

    // MARK: Paths as NSString read them

    /// `~` and `~/…` in the user's home folder, `~name/…` in name's; anything else unchanged.
    static func expandingTilde(_ path: String) -> String {
        guard path.hasPrefix("~") else { return path }
        let slash = path.firstIndex(of: "/") ?? path.endIndex
        let user = path[path.index(after: path.startIndex)..<slash]
        let home: String?
        if user.isEmpty {
            home = ProcessInfo.processInfo.environment["HOME"] ?? getpwuid(getuid()).flatMap { String(cString: $0.pointee.pw_dir) }
        } else {
            home = getpwnam(String(user)).flatMap { String(cString: $0.pointee.pw_dir) }
        }
        guard let home else { return path }
        return home + path[slash...]
    }

    /// The last component (`b` for `a/b/`), "/" for the root, "" for "".
    static func lastComponent(_ path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        guard trimmed != "/" else { return trimmed }
        return String(trimmed[(trimmed.lastIndex(of: "/").map(trimmed.index(after:)) ?? trimmed.startIndex)...])
    }

    /// The path without its last component (`a` for `a/b/`, `/` for `/a`, "" for `a`).
    static func deletingLastComponent(_ path: String) -> String {
        let trimmed = withoutTrailingSlashes(path)
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return trimmed == "/" ? "/" : "" }
        if slash == trimmed.startIndex { return "/" }
        return withoutTrailingSlashes(String(trimmed[..<slash]))
    }

    private static func withoutTrailingSlashes(_ path: String) -> String {
        var path = Substring(path)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }

    static func join(_ parts: [String]) -> String {
        var result = ""
        for part in parts where !part.isEmpty {
            if result.isEmpty || result.hasSuffix("/") {
                result += part
            } else {
                result += "/" + part
            }
        }
        return result
    }
}

// MARK: - fleet.yaml
