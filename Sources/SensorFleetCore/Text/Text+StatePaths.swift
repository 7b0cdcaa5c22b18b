/// The two path operations the state folder and the agent's loader need, as `NSString` did them
/// (which FoundationEssentials does not have).
enum PathText {
    /// `folder/name`, as `NSString.appendingPathComponent`: no second `/` after a folder that
    /// ends with one, `name` alone after an empty folder.
    static func appending(_ name: String, to folder: String) -> String {
        if folder.isEmpty { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// The folder holding `path`, as `NSString.deletingLastPathComponent` for an absolute path:
    /// `/a` for `/a/b` (and `/a/b/`), `/` for `/a` and for `/`.
    static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        var parent = trimmed[..<slash]
        while parent.hasSuffix("/") { parent = parent.dropLast() }
        return parent.isEmpty ? (path.hasPrefix("/") ? "/" : "") : String(parent)
    }
}
