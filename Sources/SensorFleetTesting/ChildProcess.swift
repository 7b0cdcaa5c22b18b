import Foundation
import SensorFleetCore

/// A child process started with posix_spawn, its output sent to a file. Foundation's Process
/// hung in waitUntilExit here (Linux, from a test's deinit), so tests use this instead.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var exitStatus: Int32?

    /// - Parameters:
    ///   - path: the executable.
    ///   - arguments: its arguments (without argv[0]).
    ///   - output: file that receives stdout and stderr (created or truncated).
    public init(_ path: String, _ arguments: [String], output: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process: a broker restarted while devices reconnect would
        // otherwise hold their sockets (see SpawnActions).
        let closing = SpawnActions.closeInherited(&actions)
        guard closing == 0 else { throw TestFailure("cannot start \(path): \(String(cString: strerror(closing)))") }
        // The test runner's threads block signals (dispatch does), and a child inherits that
        // mask: without this, SIGTERM would never reach it. Empty mask, default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// True until the process has exited (reaps it when it has).
    public var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid {
            exitStatus = status
            return false
        }
        if rc == -1 && errno == ECHILD {
            // Reaped by someone else (a SIGCHLD handler in the runtime): gone, status unknown.
            exitStatus = -1
            return false
        }
        return true
    }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// Waits for the exit, at most `timeout` seconds (then SIGKILL, so a hung child can never
    /// hang the suite); returns the exit code (128 + signal when killed).
    @discardableResult
    public func wait(timeout: Double = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning { kill(pid, SIGKILL) }
        if exitStatus == nil {
            var status: Int32 = 0
            var rc: pid_t
            repeat { rc = waitpid(pid, &status, 0) } while rc == -1 && errno == EINTR
            exitStatus = rc == pid ? status : -1
        }
        let status = exitStatus!
        if status == -1 { return -1 }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    public func terminate(grace: Double = 5) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning { kill(pid, SIGKILL) }
        wait()
    }

    deinit { terminate(grace: 2) }
}
