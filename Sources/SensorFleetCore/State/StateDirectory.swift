#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization
import Glibc

/// Why a state folder cannot be used.
public struct StateDirectoryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Another process holds the folder.
        case inUse
        /// The outbox database is damaged, emptied, missing or older than what this folder
        /// recorded: starting would restart seq at 1 (or repeat seqs).
        case damaged
        /// The folder cannot be created or written (permission, a file in the way, read-only…).
        case unusable
    }

    public let kind: Kind
    public let problem: String
    public let fix: String

    public var description: String { "\(problem); \(fix)" }
}

/// The folder of `--state-dir` (`run`) and of the agent: one owner at a time, and never a silent
/// restart of the sequence numbers.
///
/// - **One owner**: an exclusive `flock` on `DIR/lock`, taken by `claim` and held until the
///   process exits; the file says who holds it (PID, start time, command) so a second process
///   can name it. Two processes on one folder would publish the same seq twice with different
///   data and take each other's MQTT sessions.
/// - **Never emptied silently**: `DIR/state.json` beside `outbox.sqlite` records the database's
///   id (also kept in its `meta` table) and each device's last seq, written when the folder is
///   claimed and every 30 s while messages are stored. A database that is damaged, empty
///   (0 bytes), missing while state.json exists, another database, or behind state.json's seqs
///   is refused with the `mv` that moves it aside, or `--reset-state`. A fresh folder (no
///   database, no state.json) starts at seq 1.
public final class StateDirectory: Sendable {
    public let path: String
    /// `DIR/outbox.sqlite`.
    public let databasePath: String
    /// `DIR/state.json`.
    public let markerPath: String
    /// The id of the database this folder holds (its `meta` table and state.json).
    public let storeID: String
    /// What `--reset-state` moved aside, if anything.
    public let movedAside: [String]
    private let lockFD: Int32

    public static let lockName = "lock"
    public static let databaseName = "outbox.sqlite"
    public static let markerName = "state.json"

    private static let claimed = Mutex<[String: StateDirectory]>([:])

    private init(path: String, lockFD: Int32, storeID: String, movedAside: [String]) {
        self.path = path
        self.lockFD = lockFD
        self.storeID = storeID
        self.movedAside = movedAside
        databasePath = PathText.appending(Self.databaseName, to: path)
        markerPath = PathText.appending(Self.markerName, to: path)
    }

    /// Claims `path` for this process: creates it, takes the lock (kept until exit), and checks
    /// the outbox it holds. Claiming a folder this process already holds returns the same claim.
    /// - Parameters:
    ///   - path: the state folder.
    ///   - reset: move an existing outbox (and state.json) aside and start afresh at seq 1.
    ///   - resetFlag: how the user asks for `reset`, for the messages (e.g. "--reset-state").
    public static func claim(_ path: String, reset: Bool = false, resetFlag: String = "--reset-state")
        throws(StateDirectoryError) -> StateDirectory
    {
        try createFolder(path)
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        if let existing = claimed.withLock({ $0[canonical] }) { return existing }
        let fd = try lock(canonical)
        do {
            let (storeID, moved) = try check(canonical, reset: reset, resetFlag: resetFlag)
            let claim = StateDirectory(path: canonical, lockFD: fd, storeID: storeID, movedAside: moved)
            claimed.withLock { $0[canonical] = claim }
            return claim
        } catch {
            close(fd)
            throw error
        }
    }

    /// Gives up this process's claim on `path` (closes the lock). For tests that unmount the
    /// folder; a command holds its claim until it exits.
    static func release(_ path: String) {
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        if let claim = claimed.withLock({ $0.removeValue(forKey: canonical) }) { close(claim.lockFD) }
    }

    /// The claim this process holds on `path`, if any.
    static func existingClaim(_ path: String) -> StateDirectory? {
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        return claimed.withLock { $0[canonical] }
    }

    // MARK: Folder

    /// mkdir -p with errno in words.
    static func createFolder(_ path: String) throws(StateDirectoryError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var prefix = ""
        for component in absolute.split(separator: "/") {
            prefix += "/" + component
            var st = stat()
            if stat(prefix, &st) == 0 {
                if st.st_mode & S_IFMT != S_IFDIR {
                    throw unusable(path, "a file is in the way: \(prefix) is a file, not a folder",
                                   fix: "choose another --state-dir, or move \(prefix) away")
                }
                continue
            }
            if mkdir(prefix, 0o750) != 0, errno != EEXIST {
                throw unusable(path, "cannot create the folder \(prefix): \(words(errno, path: prefix))",
                               fix: fixFor(errno, path: prefix))
            }
        }
        if access(absolute, W_OK | X_OK) != 0 {
            let code = errno
            throw unusable(path, "cannot write in the folder \(absolute): \(words(code, path: absolute))",
                           fix: fixFor(code, path: absolute))
        }
    }

    static func words(_ code: Int32, path: String) -> String {
        switch code {
        case EACCES, EPERM: return "permission denied (user \(getuid()) may not write in \(PathText.deletingLastComponent(path).isEmpty ? "/" : PathText.deletingLastComponent(path)))"
        case EROFS: return "the file system is read-only"
        case ENOTDIR: return "a file is in the way (part of the path is a file, not a folder)"
        case ENOSPC: return "the disk is full"
        case EDQUOT: return "the disk quota is used up"
        case ENAMETOOLONG: return "the path is too long"
        case ELOOP: return "too many symbolic links (a link loop?)"
        case ENOENT: return "a folder on the way does not exist"
        default: return String(cString: strerror(code))
        }
    }

    static func fixFor(_ code: Int32, path: String) -> String {
        switch code {
        case EACCES, EPERM:
            return "make its parent writable for this user (or create it: `sudo install -d -o $(id -un) \(path)`), or choose another --state-dir"
        case EROFS: return "choose a --state-dir on a writable file system (is the disk mounted read-only after an error?)"
        case ENOSPC, EDQUOT: return "free some space, or choose a --state-dir on another disk"
        default: return "choose another --state-dir"
        }
    }

    static func unusable(_ path: String, _ problem: String, fix: String) -> StateDirectoryError {
        StateDirectoryError(kind: .unusable, problem: "the state folder \(path) cannot be used: \(problem)", fix: fix)
    }

    // MARK: Lock

    private static func lock(_ path: String) throws(StateDirectoryError) -> Int32 {
        let lockPath = PathText.appending(lockName, to: path)
        // Read-only: the lock needs no write access, and a descriptor open for writing would
        // keep the file system from being remounted read-only.
        let fd = open(lockPath, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw unusable(path, "cannot open \(lockPath): \(words(code, path: lockPath))", fix: fixFor(code, path: path))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code != EWOULDBLOCK {
                close(fd)
                throw unusable(path, "cannot lock \(lockPath): \(words(code, path: lockPath))", fix: fixFor(code, path: path))
            }
            // The holder writes its line right after locking: give it a moment if it is empty.
            var holder = readHolder(fd)
            for _ in 0..<10 where holder == nil {
                usleep(20_000)
                holder = readHolder(fd)
            }
            close(fd)
            let who = holder.map { "PID \($0.pid) (started \($0.started), `\($0.command)`)" } ?? "another process"
            throw StateDirectoryError(
                kind: .inUse,
                problem: "the state folder \(path) is in use by \(who): two processes on one state folder would send "
                    + "the same seq twice with different data and take each other's MQTT sessions",
                fix: "stop it first\(holder.map { " (`kill \($0.pid)`, or `systemctl stop` its service)" } ?? ""), "
                    + "or give this run its own --state-dir")
        }
        let command = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        // ISO8601FormatStyle (FoundationEssentials), not ISO8601DateFormatter: the latter wakes
        // ICU's calendar and time-zone data, megabytes of the agent's RSS (issue 15).
        let line = "pid=\(getpid())\nstarted=\(Date().formatted(.iso8601))\ncommand=\(command)\n"
        let writer = open(lockPath, O_WRONLY | O_TRUNC | O_CLOEXEC)
        if writer >= 0 {
            _ = line.withCString { write(writer, $0, strlen($0)) }
            close(writer)
        }
        return fd
    }

    private static func readHolder(_ fd: Int32) -> (pid: String, started: String, command: String)? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        var fields: [String: String] = [:]
        for line in String(decoding: buffer.prefix(n), as: UTF8.self).split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { fields[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        guard let pid = fields["pid"] else { return nil }
        return (pid, fields["started"] ?? "at an unknown time", fields["command"] ?? "?")
    }
}
