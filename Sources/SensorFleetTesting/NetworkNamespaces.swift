import Foundation

/// Hosts on this machine: network namespaces (`ip netns`), each joined to the root namespace by
/// a veth pair of its own /30 — the root side `hostAddress`, the namespace side `address` — and
/// a default route through it, so a process inside reaches anything listening on a root-side
/// address (a broker) and the root namespace reaches it (a scraper). Needs root.
///
/// Names carry this process's pid and a random tag (`sfnet-<pid>-<tag>-<i>`), so runs never
/// collide; `remove()` (also at deinit) deletes the namespaces and with them their veths, and a
/// new instance first removes what a crashed earlier run (its pid gone) left behind.
public final class NetworkNamespaces: @unchecked Sendable {
    public struct Host: Sendable {
        /// The namespace's name (`ip netns exec NAME …`).
        public let namespace: String
        /// The root namespace's end of the veth.
        public let hostInterface: String
        public let hostAddress: String
        /// The address of the namespace's end: the host's own address.
        public let address: String
    }

    public let hosts: [Host]
    public let tag: String
    private var removed = false

    /// Why the namespaces cannot be made here (not root, no `ip`), or nil.
    public static var unavailableReason: String? {
        if geteuid() != 0 { return "not root: network namespaces need root (CI and these machines run the tests as root)" }
        if findExecutable("ip") == nil { return "`ip` (iproute2) is not installed" }
        return nil
    }

    /// Makes `count` namespaces with their veths, addresses and routes.
    public init(count: Int) throws {
        if let reason = Self.unavailableReason { throw TestFailure(reason) }
        Self.removeStale()
        tag = String(UInt32.random(in: 0..<0xFFFFFF), radix: 16)
        let existing = (try? Self.ip(["-4", "-o", "addr"])) ?? ""
        var octets = (0, 0)
        repeat { octets = (Int.random(in: 200..<250), Int.random(in: 0..<256)) } while existing.contains("10.\(octets.0).\(octets.1).")
        var hosts: [Host] = []
        for i in 0..<count {
            let base = "10.\(octets.0).\(octets.1)."
            hosts.append(Host(namespace: "sfnet-\(getpid())-\(tag)-\(i)", hostInterface: "sf\(tag)h\(i)",
                              hostAddress: base + "\(4 * i + 1)", address: base + "\(4 * i + 2)"))
        }
        self.hosts = hosts
        do {
            for host in hosts {
                let peer = host.hostInterface.replacingOccurrences(of: "h", with: "n")
                try Self.ip(["netns", "add", host.namespace])
                try Self.ip(["link", "add", host.hostInterface, "type", "veth", "peer", "name", peer])
                try Self.ip(["link", "set", peer, "netns", host.namespace])
                try Self.ip(["addr", "add", "\(host.hostAddress)/30", "dev", host.hostInterface])
                try Self.ip(["link", "set", host.hostInterface, "up"])
                try Self.ip(["-n", host.namespace, "addr", "add", "\(host.address)/30", "dev", peer])
                try Self.ip(["-n", host.namespace, "link", "set", peer, "up"])
                try Self.ip(["-n", host.namespace, "link", "set", "lo", "up"])
                try Self.ip(["-n", host.namespace, "route", "add", "default", "via", host.hostAddress])
            }
        } catch {
            remove()
            throw error
        }
    }

    /// Starts `path arguments` inside host `index`'s namespace with `environment` added
    /// (`ip netns exec NS env K=V … path args`: both exec, so the pid is the program's).
    public func launch(_ index: Int, _ path: String, _ arguments: [String], environment: [String: String] = [:],
                       output: String) throws -> ChildProcess {
        guard let ip = findExecutable("ip") else { throw TestFailure("`ip` is not installed") }
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try ChildProcess(ip, ["netns", "exec", hosts[index].namespace, "/usr/bin/env"] + assignments + [path] + arguments,
                                output: output)
    }

    /// Deletes the namespaces (their veths go with them). Safe to call twice.
    public func remove() {
        guard !removed else { return }
        removed = true
        for host in hosts {
            _ = try? Self.ip(["netns", "delete", host.namespace])
            _ = try? Self.ip(["link", "delete", host.hostInterface])
        }
    }

    deinit { remove() }

    /// Namespaces `sfnet-<pid>-…` whose process is gone: left by a run that crashed.
    public static func removeStale() {
        let list = (try? ip(["netns", "list"])) ?? ""
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count == 4, parts[0] == "sfnet", let pid = Int32(parts[1]), kill(pid, 0) != 0 else { continue }
            _ = try? ip(["netns", "delete", name])
        }
    }

    /// Runs `ip arguments`; its output, or an error with what it said.
    @discardableResult
    public static func ip(_ arguments: [String]) throws -> String {
        guard let ip = findExecutable("ip") else { throw TestFailure("`ip` is not installed") }
        let output = NSTemporaryDirectory() + "sfnet-ip-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(ip, arguments, output: output)
        let code = process.wait(timeout: 20)
        let said = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard code == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")) exited \(code): \(said)") }
        return said
    }
}
