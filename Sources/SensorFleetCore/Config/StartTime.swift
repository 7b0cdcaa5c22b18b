import Foundation
import ServiceLifecycle

/// A shared start time (`--start-at`): shards started at different moments wait for it, then
/// ramp together. Unix seconds (`1764120000`, `1764120000.5`) or RFC 3339
/// (`2026-11-26T02:40:00Z`, `2026-11-26T03:40:00.250+01:00`).
public struct StartTime: Sendable, Equatable {
    public let date: Date

    public init(_ date: Date) { self.date = date }

    /// - Throws: ``StartTimeError`` saying what was expected.
    public static func parse(_ text: String) throws(StartTimeError) -> StartTime {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return StartTime(Date(timeIntervalSince1970: seconds))
        }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = plain.date(from: trimmed) ?? fractional.date(from: trimmed) {
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
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "run-" + formatter.string(from: date)
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
