import Foundation
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

@Suite("One owner per state folder; never a silent restart at seq 1 (the real binary)", .serialized)
struct StateDirectoryIntegrationTests {
    @Test("two processes on one --state-dir (two `run`s; the agent service and a manual agent): the second exits non-zero naming the first's PID; the first goes on",
          arguments: ["run", "agent"])
    func secondProcessIsRefused(command: String) async throws {
        let fleet = try TestFleet(devices: ["own-1"], interval: 0.1)
        defer { fleet.tearDown() }
        let state = "\(fleet.path)/state"
        let target = command == "run" ? fleet.path : "\(fleet.path)/own-1"
        let subscriber = try fleet.subscriber(["devices/own-1/telemetry"])
        let (first, firstOutput) = try launchSensorfleet([command, target, "--state-dir", state, "--log-level", "warning"], in: fleet.path)
        defer { first.terminate() }
        #expect(await waitFor(20) { (subscriber.sequences()["own-1"]?.count ?? 0) >= 3 }, "first: \(text(firstOutput))")

        let (second, secondOutput) = try launchSensorfleet([command, target, "--state-dir", state], in: fleet.path)
        let code = second.wait(timeout: 20)
        let refusal = text(secondOutput)
        #expect(code == 1, "\(refusal)")
        #expect(refusal.contains("is in use by PID \(first.pid)"), "\(refusal)")
        #expect(refusal.contains("stop it first"), "\(refusal)")
        #expect(first.isRunning)

        // The first keeps publishing, alone: its seqs go on without a repeat.
        let before = subscriber.sequences()["own-1"]?.count ?? 0
        #expect(await waitFor(10) { (subscriber.sequences()["own-1"]?.count ?? 0) >= before + 10 })
        let seqs = subscriber.sequences()["own-1"] ?? []
        #expect(Set(seqs).count == seqs.count, "a seq arrived twice: \(seqs)")
        #expect(!fleet.broker.log().contains("Client own-1 already connected, closing old connection"))
    }

    @Test("a zero-length outbox.sqlite: `run` refuses with the file and the mv; --reset-state starts afresh")
    func emptiedOutboxIsRefused() async throws {
        let fleet = try TestFleet(devices: ["empty-1"], interval: 0.1)
        defer { fleet.tearDown() }
        let state = "\(fleet.path)/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(state)/outbox.sqlite", contents: Data())
        let (refused, refusedOutput) = try launchSensorfleet(["run", fleet.path, "--state-dir", state, "--duration", "2"], in: fleet.path)
        #expect(refused.wait(timeout: 30) == 1, "\(text(refusedOutput))")
        let message = text(refusedOutput)
        #expect(message.contains("\(state)/outbox.sqlite is empty"), "\(message)")
        #expect(message.contains("mv \(state)/outbox.sqlite"), "\(message)")
        #expect(!fleet.broker.log().contains("empty-1"), "it must not have connected")

        let (fresh, freshOutput) = try launchSensorfleet(["run", fleet.path, "--state-dir", state, "--duration", "2", "--reset-state"], in: fleet.path)
        #expect(fresh.wait(timeout: 30) == 0, "\(text(freshOutput))")
        let moved = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("outbox.sqlite.reset-") }
        #expect(moved.count == 1, "\((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? [])")
    }

    @Test("a --state-dir that cannot be created: plain words, exit 1, never NSCocoaErrorDomain", arguments: ["file-in-the-way", "permission"])
    func uncreatableStateDir(kind: String) async throws {
        let fleet = try TestFleet(devices: ["dir-1"], startBroker: false)
        defer { fleet.tearDown() }
        var arguments = ["run", fleet.path, "--duration", "1"]
        var launcher: [String] = []
        let expected: String
        if kind == "file-in-the-way" {
            try "x".write(toFile: "\(fleet.path)/blocker", atomically: true, encoding: .utf8)
            arguments += ["--state-dir", "\(fleet.path)/blocker/state"]
            expected = "a file is in the way"
        } else {
            // Another user may not create folders in root's private folder.
            guard getuid() == 0, let setpriv = findExecutable("setpriv") else { return }
            // The fleet becomes that user's (its key stays 0600), except one folder of root's.
            for sub in try FileManager.default.subpathsOfDirectory(atPath: fleet.path) { chown("\(fleet.path)/\(sub)", 65534, 65534) }
            chown(fleet.path, 65534, 65534)
            let closed = "\(fleet.path)/closed"
            try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: true)
            chmod(closed, 0o755)
            arguments += ["--state-dir", "\(closed)/state"]
            launcher = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
            expected = "permission denied"
        }
        let output = "\(fleet.path)/uncreatable.out"
        let process = launcher.isEmpty
            ? try ChildProcess(try sensorfleetBinary(), arguments, output: output)
            : try ChildProcess(launcher[0], Array(launcher.dropFirst()) + [try sensorfleetBinary()] + arguments, output: output)
        let code = process.wait(timeout: 30)
        let message = text(output)
        #expect(code == 1, "\(message)")
        #expect(message.contains(expected), "\(message)")
        #expect(!message.contains("NSCocoaErrorDomain"), "\(message)")
    }
}
