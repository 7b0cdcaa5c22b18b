/// The numeric options of each command and their ranges, in one table per command. The
/// commands' `validate()` check every numeric option through these tables, and the tests feed
/// every entry non-finite and extreme values.
public struct OptionRanges: Sendable {
    /// The command, as typed after `sensorfleet`.
    public let command: String
    /// Each numeric option (as typed, e.g. `--duration`) with its range.
    public let options: [(flag: String, range: SettingRange)]

    public static let run = OptionRanges(command: "run", options: [
        ("--duration", .duration),
        ("--connect-rate", .connectRate),
        ("--status-interval", .pollInterval),
        ("--drain-timeout", .drainTimeout),
        ("--connect-timeout", .connectTimeout),
    ])

    public static let bench = OptionRanges(command: "bench", options: [
        ("--devices", .devices),
        ("--connect-rate", .connectRate),
        ("--rate", .messageRate),
        ("--total-rate", .totalMessageRate),
        ("--qos", .qos),
        ("--payload-size", .payloadSize),
        ("--messages", .messagesPerDevice),
        ("--duration", .duration),
        ("--warmup", .warmup),
        ("--verifier-connections", .verifierConnections),
        ("--threads", .reactorThreads),
        ("--metrics-linger", .metricsLinger),
        ("--message-expiry", .messageExpiry),
    ])

    public static let agent = OptionRanges(command: "agent", options: [
        ("--watch-interval", .pollInterval),
        ("--drain-timeout", .drainTimeout),
    ])

    public static let provision = OptionRanges(command: "provision", options: [
        ("--devices", .newDevices),
        ("--port", .port),
    ])

    /// Every command with numeric options.
    public static let all: [OptionRanges] = [run, bench, agent, provision]

    /// The range of `flag`; a flag missing from the table is a programming error.
    public func range(_ flag: String) -> SettingRange {
        guard let entry = options.first(where: { $0.flag == flag }) else {
            preconditionFailure("\(command) \(flag) has no range in OptionRanges")
        }
        return entry.range
    }

    /// Checks a number given to `flag`; nil (not given) passes.
    /// - Returns: the value, with `-0` made `0`.
    @discardableResult
    public func check(_ flag: String, _ value: Double?) throws(SettingError) -> Double? {
        guard let value else { return nil }
        return try range(flag).check(flag: flag, value)
    }

    /// Checks a whole number given to `flag`; nil (not given) passes.
    public func check(_ flag: String, _ value: Int?) throws(SettingError) {
        guard let value else { return }
        try range(flag).check(flag: flag, value)
    }

    /// Checks a number given as text (`bench --rate 12.5`); `allowed` words (such as `max`) pass.
    public func check(_ flag: String, text: String?, allowed: [String] = []) throws(SettingError) {
        guard let text, !allowed.contains(text) else { return }
        let range = range(flag)
        guard let value = Double(text) else {
            let words = allowed.map { " or `\($0)`" }.joined()
            throw SettingError(setting: flag, problem: "expected \(range.expected)\(words), got \"\(SettingText.clipped(text))\"",
                               fix: "give \(flag) a number such as \(range.example)\(words)")
        }
        try range.check(flag: flag, value)
    }
}
