#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import X509
import SwiftASN1
import Glibc

/// Certificates over time on a device: expiry warnings, noticing rotated files, and a clock
/// that may not be set yet (a Raspberry Pi has no real-time clock: until NTP syncs it believes
/// it is 1970, or the time of the last shutdown saved by fake-hwclock).
public enum CertificateClock {
    /// Before this year the clock is taken as not yet synchronised.
    public static let saneYear = 2024

    public static func isSane(_ now: Date = Date()) -> Bool {
        now.timeIntervalSince1970 >= Double(secondsSinceEpoch(startOfYear: saneYear))
    }

    /// Seconds from 1970-01-01T00:00:00Z to 1 January of `year`, 00:00 UTC (proleptic Gregorian).
    /// Plain arithmetic rather than Calendar and TimeZone, which would wake ICU's calendar and
    /// time-zone data in the agent (issue 15).
    static func secondsSinceEpoch(startOfYear year: Int) -> Int {
        let y = year - 1
        let days = 365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400)
        return days * 86_400
    }

    /// True when every problem is a certificate "not valid yet": the clock is behind (a Pi
    /// whose fake-hwclock restored the last shutdown time), so wait instead of failing.
    public static func onlyClockBehind(_ error: FleetValidationError) -> Bool {
        !error.issues.isEmpty && error.issues.allSatisfy { $0.problem.contains("is not valid yet") }
    }

    /// The certificate's end of validity, from a PEM file (the first certificate: a chain file
    /// holds the device's first, then its intermediates; read as OpenSSL reads PEM).
    public static func notAfter(certFile: String) throws -> Date {
        let text = try String(contentsOfFile: certFile, encoding: .utf8)
        guard let block = try PEMReader.blocks(in: text).first(where: { $0.label == "CERTIFICATE" }) else {
            throw PEMReader.Failure(description: "\(certFile) holds no PEM certificate")
        }
        return try Certificate(derEncoded: block.der).notValidAfter
    }

    /// A warning when `certFile` expires within `window` (default 30 days) of `now`, or has.
    public static func expiryWarning(certFile: String, now: Date = Date(), window: TimeInterval = 30 * 24 * 3600) -> String? {
        guard let end = try? notAfter(certFile: certFile) else { return nil }
        let left = end.timeIntervalSince(now)
        if left <= 0 { return "the certificate \(certFile) expired on \(end) : issue a new one (sensorfleet provision) and install it; the agent reloads it on SIGHUP or when the file changes" }
        if left < window {
            return "the certificate \(certFile) expires in \(Int(left / 86400)) day(s), on \(end): issue a new one (sensorfleet provision) and install it; the agent reloads it on SIGHUP or when the file changes"
        }
        return nil
    }
}

/// Notices when certificate or key files change (rename-over, rewrite, touch): compares
/// (device, inode, size, mtime) at each `changed()` call.
/// Used from one task at a time.
public final class FileChangeWatch: @unchecked Sendable {
    private var stamps: [String: [Int]]
    public let paths: [String]

    public init(paths: [String]) {
        self.paths = paths
        stamps = [:]
        for path in paths { stamps[path] = Self.stamp(path) }
    }

    /// True when any file differs from the last call (or from creation).
    public func changed() -> Bool {
        var any = false
        for path in paths {
            let now = Self.stamp(path)
            if now != stamps[path] {
                stamps[path] = now
                any = true
            }
        }
        return any
    }

    static func stamp(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }
}
