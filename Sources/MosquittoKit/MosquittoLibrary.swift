internal import CMosquitto

/// `mosquitto_lib_init` exactly once per process, before any client.
public enum MosquittoLibrary {
    private static let once: Void = { _ = mosquitto_lib_init() }()
    public static func initialize() { _ = once }

    /// "2.0.11" for the linked libmosquitto.
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        _ = mosquitto_lib_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }
}
