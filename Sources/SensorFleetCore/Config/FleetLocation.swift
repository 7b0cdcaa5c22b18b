import Foundation

/// The fleet folder as the user named it (for messages) and as an absolute path (for the spec).
struct FleetLocation {
    let argument: String
    let absolute: String

    init(argument: String) {
        self.argument = argument
        let expanded = NSString(string: argument.isEmpty ? "." : argument).expandingTildeInPath
        let base = expanded.hasPrefix("/")
            ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
        absolute = URL(fileURLWithPath: base).standardizedFileURL.path
    }

    /// The folder as the user typed it.
    var displayRoot: String { argument.isEmpty ? "." : argument }

    /// The last component of the folder (a device folder's name).
    var name: String { (absolute as NSString).lastPathComponent }

    /// The folder that holds this one, named as the user would (`fleet` for `fleet/pi-0001`).
    var parent: FleetLocation {
        let typed = (argument as NSString).deletingLastPathComponent
        let typedName = (argument as NSString).lastPathComponent
        if !typed.isEmpty, typedName == name { return FleetLocation(argument: typed) }
        if typed.isEmpty, typedName == name { return FleetLocation(argument: ".") }
        return FleetLocation(argument: (absolute as NSString).deletingLastPathComponent)
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
            let path = URL(fileURLWithPath: NSString(string: value).expandingTildeInPath).standardizedFileURL.path
            return (path, path)
        }
        let parts = [folder, value].compactMap { $0 }
        let absolutePath = URL(fileURLWithPath: Self.join([absolute] + parts)).standardizedFileURL.path
        return (absolutePath, Self.join([argument] + parts))
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
