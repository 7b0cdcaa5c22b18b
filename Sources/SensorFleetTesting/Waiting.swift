import Foundation

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass. Returns whether it held.
public func waitFor(_ timeout: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
