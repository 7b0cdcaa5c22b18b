import Foundation
import Testing

@testable import SensorFleetCore
import SensorFleetTesting

/// A child we spawn inherits none of our descriptors, and the devices' sockets are
/// close-on-exec. Found in a reconnect storm: the broker, restarted by the test while devices
/// were connecting, inherited a device's socket; our epoll set kept that socket's registration
/// (it lives as long as the open file, in any process) and reported its hang-up under the
/// device's token, so the device's next handshakes failed one after another.
@Suite("Descriptors a child could inherit")
struct DescriptorInheritanceTests {
    /// A pipe opened without close-on-exec, as libmosquitto opens its sockets.
    private func inheritablePipe() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
        #expect(fcntl(fds[0], F_GETFD) & FD_CLOEXEC == 0, "the test needs a descriptor a child would inherit")
        return (fds[0], fds[1])
    }

    /// The descriptors `/bin/sh` holds, from its own `ls /proc/$$/fd` output.
    private func descriptors(in output: String) -> Set<Int32> {
        Set(output.split(whereSeparator: { $0 == "\n" || $0 == " " }).compactMap { Int32($0) })
    }

    private static let listOwnDescriptors = ["/bin/sh", "-c", "ls /proc/$$/fd"]

    @Test("a command sensor's child holds stdin, stdout and stderr only")
    func commandSensorChild() throws {
        let (readEnd, writeEnd) = try inheritablePipe()
        defer { close(readEnd); close(writeEnd) }
        let output = try ProcessRunner.run(Self.listOwnDescriptors, timeout: 10).get()
        let held = descriptors(in: output)
        #expect(held.isSuperset(of: [0, 1, 2]), "sh listed \(held.sorted())")
        #expect(!held.contains(readEnd) && !held.contains(writeEnd), "the command inherited \(held.sorted()) (our pipe: \(readEnd), \(writeEnd))")
    }

    @Test("a test's child process (the broker) holds stdin, stdout and stderr only; without the close action it would not")
    func childProcess() throws {
        let dir = try TempDir("inherit")
        defer { dir.remove() }
        let (readEnd, writeEnd) = try inheritablePipe()
        defer { close(readEnd); close(writeEnd) }
        let path = "\(dir.path)/fds.txt"
        let child = try ChildProcess(Self.listOwnDescriptors[0], Array(Self.listOwnDescriptors.dropFirst()), output: path)
        #expect(child.wait(timeout: 10) == 0)
        let held = descriptors(in: try String(contentsOfFile: path, encoding: .utf8))
        #expect(held.isSuperset(of: [0, 1, 2]), "sh listed \(held.sorted())")
        #expect(!held.contains(readEnd) && !held.contains(writeEnd), "the child inherited \(held.sorted()) (our pipe: \(readEnd), \(writeEnd))")

        // The control: the same spawn without `SpawnActions.closeInherited` hands the pipe over,
        // so the check above is not empty.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let plainPath = "\(dir.path)/plain.txt"
        posix_spawn_file_actions_addopen(&actions, 1, plainPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = Self.listOwnDescriptors.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        #expect(posix_spawn(&pid, argv[0]!, &actions, nil, argv, environ) == 0)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        let plain = descriptors(in: try String(contentsOfFile: plainPath, encoding: .utf8))
        #expect(plain.contains(readEnd) && plain.contains(writeEnd), "a plain posix_spawn listed \(plain.sorted())")
    }

    @Test("every device socket is close-on-exec")
    func deviceSocketsAreCloseOnExec() async throws {
        let fleet = try TestFleet(devices: ["cloexec-1", "cloexec-2", "cloexec-3"], interval: 1)
        defer { fleet.tearDown() }
        let runner = try fleet.makeFleet(RunOptions(), logLevel: .critical)
        await runner.start()
        #expect(await runner.waitUntilAllDevices(timeout: 20) { $0.connected })
        let sockets = try socketsConnected(toPort: fleet.broker.port)
        // Read while the connections are up (after the stop the descriptors are closed).
        let flags = sockets.map { fcntl($0, F_GETFD) }
        _ = await runner.stop(drainTimeout: 2)
        #expect(sockets.count >= 3, "found \(sockets.count) descriptors connected to the broker")
        #expect(!flags.contains(-1), "fcntl failed on one of \(sockets)")
        let inheritable = zip(sockets, flags).filter { $0.1 & FD_CLOEXEC == 0 }.map(\.0)
        #expect(inheritable.isEmpty, "sockets without close-on-exec: \(inheritable)")
    }

    /// Our descriptors whose socket is connected to `port` on loopback (the kernel's TCP tables
    /// give each socket's inode and remote port; /proc/self/fd links name the inode).
    private func socketsConnected(toPort port: Int) throws -> [Int32] {
        var inodes: Set<String> = []
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard fields.count > 9, let remotePort = fields[2].split(separator: ":").last,
                      Int(remotePort, radix: 16) == port else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        var found: [Int32] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let fd = Int32(entry),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                  target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast())) else { continue }
            found.append(fd)
        }
        return found
    }
}
