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
import Dispatch
import Synchronization

/// Runs a sensor command off the reactor thread, one run at a time; a reading takes the latest
/// finished result. The process is killed after the time-out.
final class CommandRunner: Sendable {
    let arguments: [String]
    let jsonField: String?
    let timeout: Double
    let scale: Double
    private struct State {
        var running = false
        var latest: Result<Double, SensorReadError>? = nil
    }
    private let state = Mutex(State())

    init(arguments: [String], jsonField: String?, timeout: Double, scale: Double) {
        self.arguments = arguments
        self.jsonField = jsonField
        self.timeout = timeout
        self.scale = scale
    }

    /// The latest result, once: a second read before the next run finishes is an error
    /// ("no new result") rather than a repeated old value.
    func takeLatest() -> Result<Double, SensorReadError> {
        state.withLock { state in
            defer { state.latest = nil }
            return state.latest ?? .failure(SensorReadError("`\(arguments.joined(separator: " "))` has not finished yet"))
        }
    }

    func startIfIdle() {
        let start = state.withLock { state -> Bool in
            if state.running { return false }
            state.running = true
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            let result = self.runOnce()
            self.state.withLock {
                $0.latest = result
                $0.running = false
            }
        }
    }

    func runOnce() -> Result<Double, SensorReadError> {
        let display = arguments.joined(separator: " ")
        switch ProcessRunner.run(arguments, timeout: timeout) {
        case .failure(let error):
            return .failure(SensorReadError("`\(display)`: \(error.description)"))
        case .success(let output):
            let text = output.trimmingWhitespace()
            if let jsonField {
                guard let object = Self.jsonDocument(text) else {
                    return .failure(SensorReadError("`\(display)`: output is not JSON: \"\(text.prefix(60))\""))
                }
                var current: JSONValue? = object
                for key in jsonField.split(separator: ".") {
                    if case .object(let members)? = current { current = members[String(key)] } else { current = nil }
                }
                guard let number = current.flatMap(Self.numberValue) else {
                    return .failure(SensorReadError("`\(display)`: no number at \(jsonField) in its JSON output"))
                }
                return .success(number * scale)
            }
            guard let value = Double(text) else {
                return .failure(SensorReadError("`\(display)`: expected a number, got \"\(text.prefix(60))\""))
            }
            return .success(value * scale)
        }
    }

    /// The command's output as a JSON document: an object or an array at the top, as
    /// `JSONSerialization` required (a bare `42` is "not JSON"). Same parser, same verdicts
    /// (a trailing comma passes; a leading zero, NaN or 1e400 do not).
    static func jsonDocument(_ text: String) -> JSONValue? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return nil }
        switch value {
        case .object, .array: return value
        default: return nil
        }
    }

    /// A number, or a boolean as 1 or 0 (`JSONSerialization` made both `NSNumber`s).
    static func numberValue(_ value: JSONValue) -> Double? {
        if case .bool(let flag) = value { return flag ? 1 : 0 }
        return value.number
    }
}

/// posix_spawn with a pipe on stdout, read with poll() until the deadline, then SIGKILL.
enum ProcessRunner {
    static func run(_ arguments: [String], timeout: Double) -> Result<String, SensorReadError> {
        guard let executable = arguments.first else { return .failure(SensorReadError("empty command")) }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { return .failure(SensorReadError("pipe: \(String(cString: strerror(errno)))")) }
        // Not inherited by other children spawned meanwhile (dup2 onto stdout clears it on the copy).
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // No device socket (or any other descriptor of ours) in the command.
        let closing = SpawnActions.closeInherited(&actions)
        guard closing == 0 else {
            close(pipeFDs[0])
            close(pipeFDs[1])
            return .failure(SensorReadError("cannot start: \(String(cString: strerror(closing)))"))
        }
        var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let rc = executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, nil, &cArgs, environ)
            : posix_spawnp(&pid, executable, &actions, nil, &cArgs, environ)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            return .failure(SensorReadError("cannot start: \(String(cString: strerror(rc)))"))
        }
        let deadline = Date().addingTimeInterval(timeout)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; break }
            var pfd = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left * 1000 + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            if output.count < 65536 { output.append(contentsOf: buffer[0..<n]) }
        }
        close(pipeFDs[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if timedOut { return .failure(SensorReadError("timed out after \(timeout) s (killed)")) }
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            return .failure(SensorReadError(exited ? "exited with status \(code)" : "killed by signal \(status & 0x7f)"))
        }
        return .success(String(decoding: output, as: UTF8.self))
    }
}
