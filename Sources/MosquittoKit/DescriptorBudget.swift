internal import CSocketpairGuard
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File descriptors are the scarcest resource of a big fleet: libmosquitto holds three per
/// client (its socket and a socketpair that only its own select() loop uses).
public enum DescriptorBudget {
    /// Refuse libmosquitto's per-client socketpair so that each client holds one descriptor.
    /// Only for clients driven by a `Reactor` (never with `mosquitto_loop_start`). Works only
    /// when this process's `socketpair` is ours (see ``isInterposed``); otherwise it changes nothing.
    public static var singleDescriptorClients: Bool {
        get { SocketpairGuard_isEnabled() != 0 }
        set { SocketpairGuard_setEnabled(newValue ? 1 : 0) }
    }

    /// True when the executable exports our `socketpair`, so refusing it can take effect.
    public static var isInterposed: Bool { SocketpairGuard_isInterposed() != 0 }

    /// Socketpairs refused so far.
    public static var refusals: Int { SocketpairGuard_refusals() }

    /// Descriptors each client holds: 1 with ``singleDescriptorClients`` in force, else 3.
    public static var perClient: Int { singleDescriptorClients && isInterposed ? 1 : 3 }

    /// Raises the soft limit on open files to the hard limit.
    /// - Returns: the soft limit in force afterwards.
    @discardableResult
    public static func raiseLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Descriptors open now in this process.
    public static func openNow() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}
