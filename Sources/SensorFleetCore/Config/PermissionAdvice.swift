#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How to fix the mode of a file that may be a symbolic link: the mode that matters is the
/// target's, so the advice names the resolved path and says that the given name is a link.
enum PermissionAdvice {
    /// "chmod 600 <file>", or, for a link, "chmod 600 <target> (<file> is a symbolic link to it…)".
    /// - Parameters:
    ///   - mode: the mode to set, e.g. "600".
    ///   - path: the absolute path as configured.
    ///   - display: the path as the user sees it.
    static func chmod(_ mode: String, path: String, display: String) -> String {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard target != URL(fileURLWithPath: path).standardizedFileURL.path else { return "chmod \(mode) \(display)" }
        return "chmod \(mode) \(target) (\(display) is a symbolic link to it; the mode that counts is the target's)"
    }
}
