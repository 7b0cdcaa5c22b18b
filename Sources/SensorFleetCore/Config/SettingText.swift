
/// Values echoed in messages: a huge value (a 1 MB string or key) is shown by its start, an
/// ellipsis and its length, never whole.
public enum SettingText {
    /// Characters of a value shown in a message.
    public static let valueLimit = 80
    /// Characters of a whole problem or fix text.
    static let messageLimit = 2_000

    /// `text` when it is at most `limit` characters, else its first `limit` characters, "…" and
    /// the length ("… (1048576 characters)").
    public static func clipped(_ text: String, limit: Int = valueLimit) -> String {
        // utf8.count is O(1) for native strings; only long ones are walked.
        guard text.utf8.count > limit else { return text }
        let count = text.count
        guard count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(count) characters)"
    }
}
