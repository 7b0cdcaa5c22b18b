#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ServiceLifecycle

/// A shared start time (`--start-at`): shards started at different moments wait for it, then
/// ramp together. Unix seconds (`1764120000`, `1764120000.5`) or RFC 3339
/// (`2026-11-26T02:40:00Z`, `2026-11-26T03:40:00.250+01:00`).
public struct StartTime: Sendable, Equatable {
    public let date: Date

    public init(_ date: Date) { self.date = date }

    /// - Throws: ``StartTimeError`` saying what was expected.
    public static func parse(_ text: String) throws(StartTimeError) -> StartTime {
        let trimmed = text.trimmingSpaces()
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return StartTime(Date(timeIntervalSince1970: seconds))
        }
        let plain = Date.ISO8601FormatStyle()
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = (try? plain.parse(trimmed)) ?? (try? fractional.parse(trimmed)) {
            return StartTime(date)
        }
        throw StartTimeError(description: "--start-at \(text): expected Unix seconds (e.g. \(Int(Date().timeIntervalSince1970) + 60)) or an RFC 3339 time with a zone (e.g. 2026-11-26T02:40:00Z)")
    }

    /// The run id a start time stands for when `--run-id` is not given: `run-` and the start time
    /// in UTC to the second (`run-20261126T024000Z`), the same in every shard given the same
    /// `--start-at`.
    public var runID: String { Self.runID(for: date) }

    /// `run-YYYYMMDDTHHMMSSZ` (UTC, to the second).
    public static func runID(for date: Date) -> String {
        // Calendar in UTC (FoundationEssentials has no DateFormatter; TimeZone(identifier:) may
        // have no zone database): whole seconds, as the formatter's `ss` gave them.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(cFormat: "run-%04d%02d%02dT%02d%02d%02dZ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0,
                      parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
    }

    /// Sleeps until the start time; returns at once when it has passed.
    /// - Returns: how many seconds late the caller is (0 when it waited).
    /// - Throws: `CancellationError` when graceful shutdown (SIGTERM) or cancellation comes first.
    public func wait() async throws -> Double {
        let remaining = date.timeIntervalSinceNow
        guard remaining > 0 else { return -remaining }
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(remaining)) }
        return 0
    }
}

/// A `--start-at` value that is neither Unix seconds nor RFC 3339.
public struct StartTimeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
}
