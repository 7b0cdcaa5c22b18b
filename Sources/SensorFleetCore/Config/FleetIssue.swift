
/// One problem (or warning) found while loading a fleet folder: where it is, what is wrong, how to fix it.
///
/// `description` reads like a compiler diagnostic:
/// `Devices/fleet.yaml:4: broker.port: expected a whole number from 1 to 65535, got "abc" — fix: …`
public struct FleetIssue: Error, Sendable, Equatable, CustomStringConvertible {
    /// Path as the user sees it: the fleet directory argument joined with the relative file,
    /// e.g. `Devices/thermostat-001/device.yaml`.
    public var file: String
    /// 1-based line in the YAML file, when known.
    public var line: Int?
    /// Dotted path of the offending key, e.g. `broker.port` or `sensors[1].min`.
    public var field: String?
    /// What is wrong and what was expected.
    public var problem: String
    /// How to fix it.
    public var fix: String

    public init(file: String, line: Int? = nil, field: String? = nil, problem: String, fix: String) {
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let field { text += "\(field): " }
        return text + problem + " — fix: " + fix
    }
}

/// Everything that is wrong with a fleet folder; thrown by ``FleetLoader``.
public struct FleetValidationError: Error, Sendable, CustomStringConvertible {
    /// All problems found, in the order of the files and lines they were found in.
    public var issues: [FleetIssue]

    public init(issues: [FleetIssue]) {
        self.issues = issues
    }

    /// One issue per line.
    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}

/// A fleet that loaded without errors, and the warnings worth showing the user.
public struct LoadedFleet: Sendable {
    public var spec: FleetSpec
    /// Things that work but deserve attention: certificates close to expiry, insecure options.
    public var warnings: [FleetIssue]

    public init(spec: FleetSpec, warnings: [FleetIssue]) {
        self.spec = spec
        self.warnings = warnings
    }
}
