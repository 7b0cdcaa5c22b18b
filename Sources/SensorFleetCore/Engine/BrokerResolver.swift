import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MosquittoKit
import Synchronization

/// The broker's address, resolved off the reactors: once before they start, then again — one
/// lookup at a time for the whole fleet, never on a reactor thread — when connections fail and
/// the last answer is older than `refreshAfter` (a broker that moved, a Pi whose network came
/// up after it booted). Devices connect to the latest answer; the name is still what the
/// certificate is checked against and what goes out as SNI.
final class BrokerResolver: Sendable {
    let host: String
    let refreshAfter: Duration
    private struct State {
        var address: String?
        var resolvedAt = MonotonicInstant.zero
        var resolving = false
        var lastError: String?
    }
    private let state = Mutex(State())

    init(host: String, refreshAfter: Duration = .seconds(30)) {
        self.host = host
        self.refreshAfter = refreshAfter
        if IPAddress.isLiteral(host) { state.withLock { $0.address = host } }
    }

    /// The address to connect to now; nil while the name has never resolved.
    var address: String? { state.withLock { $0.address } }

    /// Why the name did not resolve, the last time it did not.
    var lastError: String? { state.withLock { $0.lastError } }

    /// Resolves now, on the calling thread (before the reactors start). Throws what a person
    /// can act on; the resolver keeps the error for later attempts.
    @discardableResult
    func resolveNow() throws -> String {
        if IPAddress.isLiteral(host) { return host }
        switch Self.lookUp(host) {
        case .success(let address):
            state.withLock {
                $0.address = address
                $0.resolvedAt = .now()
                $0.lastError = nil
            }
            return address
        case .failure(let error):
            state.withLock {
                $0.lastError = error.description
                $0.resolvedAt = .now()
            }
            throw error
        }
    }

    /// Asks for a fresh lookup, on a background queue, unless one is running or the last answer
    /// is younger than `refreshAfter` (younger than a second while the name never resolved).
    func refresh() {
        guard !IPAddress.isLiteral(host) else { return }
        let start = state.withLock { state -> Bool in
            let age = MonotonicInstant.now().duration(since: state.resolvedAt)
            let due = state.address == nil ? Duration.seconds(1) : refreshAfter
            guard !state.resolving, age >= due else { return false }
            state.resolving = true
            return true
        }
        guard start else { return }
        let host = self.host
        DispatchQueue.global(qos: .utility).async { [self] in
            let result = Self.lookUp(host)
            state.withLock { state in
                state.resolving = false
                state.resolvedAt = .now()
                switch result {
                case .success(let address):
                    state.address = address
                    state.lastError = nil
                case .failure(let error):
                    // Keep the last good address: a failing DNS server does not move the broker.
                    state.lastError = error.description
                }
            }
        }
    }

    /// `host`'s address: IPv4 first, as libmosquitto would try it.
    static func lookUp(_ host: String) -> Result<String, FleetStartError> {
        if IPAddress.isLiteral(host) { return .success(host) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            return .failure(FleetStartError(description: "cannot resolve broker host \"\(host)\": \(String(cString: gai_strerror(rc))); check broker.host in fleet.yaml or --broker, and the network"))
        }
        defer { freeaddrinfo(result) }
        var chosen: UnsafeMutablePointer<addrinfo>? = nil
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if entry.pointee.ai_family == AF_INET { chosen = entry; break }
            if chosen == nil { chosen = entry }
            cursor = entry.pointee.ai_next
        }
        guard let entry = chosen else { return .failure(FleetStartError(description: "no address for broker host \"\(host)\"")) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return .failure(FleetStartError(description: "cannot format the address of \"\(host)\""))
        }
        return .success(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
