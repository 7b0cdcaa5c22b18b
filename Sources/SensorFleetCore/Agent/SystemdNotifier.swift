#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// systemd's notification protocol without libsystemd: one datagram per message on the unix
/// socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
/// `READY=1` after start-up, `WATCHDOG=1` at half of `$WATCHDOG_USEC`, `STOPPING=1`, `STATUS=…`.
public final class SystemdNotifier: Sendable {
    /// The socket's address; nil when not run by systemd (every call is then a no-op).
    public let socketPath: String?
    /// Seconds between two `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when systemd asks for them
    /// and `$WATCHDOG_PID` (if set) is this process.
    public let watchdogInterval: Double?
    private let fd: Int32

    /// - Parameter environment: normally `ProcessInfo.processInfo.environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        // systemd writes whole microseconds; anything else (nan, inf, a negative or a huge value)
        // is not from systemd and is ignored rather than scheduled.
        if let usec = environment["WATCHDOG_USEC"].flatMap({ UInt64($0) }).map({ Double($0) }),
           SettingRange.watchdogMicroseconds.contains(usec),
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = usec / 1e6 / 2
        } else {
            watchdogInterval = nil
        }
        fd = path == nil ? -1 : socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends `state` (e.g. "READY=1\nSTATUS=connected"); returns false when it could not be sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketPath, fd >= 0 else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bytes.withUnsafeBytes { raw in
                    // Never block the event loop on the notify socket: a receiver that does not
                    // read (its datagram queue holds ~10) would stall every device, shutdown
                    // included. A dropped WATCHDOG=1 is sent again at the next tick.
                    sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), sockaddrPointer, length)
                }
            }
        }
        return sent == bytes.count
    }
}
