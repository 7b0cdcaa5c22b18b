public import CSpawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What every child we spawn gets in its file actions.
public enum SpawnActions {
    /// Closes, in the child, every descriptor above stderr that its other actions left open.
    /// Add it after the actions that set up 0, 1 and 2 (they may read a descriptor it closes).
    ///
    /// Why: libmosquitto makes its sockets without close-on-exec, so a child spawned while
    /// devices connect would inherit them. The broker would see such a socket open until the
    /// child exits, and our epoll set would keep the closed socket's registration (it lives as
    /// long as the open file does, in any process): its hang-up, reported under the device's
    /// token, failed that device's next handshakes one after another.
    /// - Returns: 0, or the errno value that stopped it (the caller refuses to spawn then).
    public static func closeInherited(_ actions: inout posix_spawn_file_actions_t) -> Int32 {
        CSpawn_close_from(&actions, 3)
    }
}
