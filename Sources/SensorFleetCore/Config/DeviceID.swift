/// The one rule for device ids, used by `validate` (device folders and templates) and
/// `provision` (its `--prefix` and the ids it makes): `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, and not
/// the observer's id. An id names a folder, a certificate's CN (the broker's username) and MQTT
/// topics, so nothing else may appear in it.
public enum DeviceID {
    /// The longest id, in bytes.
    public static let maximumLength = 64
    /// The CN of the observer identity (`broker/observer/`): no device may take it.
    public static let observer = "sensorfleet-observer"

    /// Why `id` cannot be a device id, in words fit for an error message; nil when it can.
    public static func problem(with id: String) -> String? {
        if id.isEmpty { return "the id is empty" }
        if id.utf8.count > maximumLength { return "the id \"\(SettingText.clipped(id))\" is longer than \(maximumLength) characters" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if let bad = id.first(where: { !allowed.contains($0) }) {
            return "the id \"\(SettingText.clipped(id))\" contains `\(bad)`; only letters, digits, `.`, `_` and `-` are allowed"
        }
        if let first = id.first, first == "." || first == "_" || first == "-" {
            return "the id \"\(SettingText.clipped(id))\" starts with `\(first)`; it must start with a letter or digit"
        }
        if id == observer {
            return "the id \"\(SettingText.clipped(id))\" is reserved for the fleet's observer identity (broker/observer/)"
        }
        return nil
    }

    /// True when `id` follows the rule.
    public static func isValid(_ id: String) -> Bool { problem(with: id) == nil }
}
