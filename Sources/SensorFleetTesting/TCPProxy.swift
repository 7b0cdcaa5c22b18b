import Foundation

/// A small TCP proxy on 127.0.0.1 in front of the broker, to cut connections for real: `reset()`
/// closes every current connection with a TCP RST; `stall()` stops forwarding on every current
/// connection but keeps its sockets open (a dead path that TCP does not notice). New
/// connections pass normally. One thread per connection: a test holds a handful.
public final class TCPProxy: @unchecked Sendable {
    final class Pair: @unchecked Sendable {
        let client: Int32
        let server: Int32
        let lock = NSLock()
        var stalled = false
        var repliesStalled = false
        var reset = false
        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }
    }

    public let port: Int
    private let target: Int
    private let listenFD: Int32
    private let lock = NSLock()
    private var pairs: [Pair] = []
    private var stopped = false
    public private(set) var accepted = 0

    public init(target: Int) throws {
        self.target = target
        let (listenFD, port) = try loopbackListener(reuseAddress: true)
        self.listenFD = listenFD
        self.port = port
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Every current connection ends with a reset.
    public func reset() { lock.withLock { for pair in pairs { pair.lock.withLock { pair.reset = true } } } }

    /// Every current connection stops moving bytes; its sockets stay open.
    public func stall() { lock.withLock { for pair in pairs { pair.lock.withLock { pair.stalled = true } } } }

    /// Every current connection stops carrying the broker's bytes to the client (its PUBACKs,
    /// PUBRECs, PUBCOMPs), while the client's still reach the broker: acknowledgements lost.
    public func stallReplies() { lock.withLock { for pair in pairs { pair.lock.withLock { pair.repliesStalled = true } } } }

    public func close() {
        lock.withLock { stopped = true }
        reset()
        shutdown(listenFD, Int32(SHUT_RDWR))
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, 100) > 0 else { continue }
            let client = accept(listenFD, nil, nil)
            guard client >= 0 else { continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard connectLoopback(server, port: target) else {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            let pair = Pair(client: client, server: server)
            lock.withLock {
                pairs.append(pair)
                accepted += 1
            }
            let thread = Thread { [self] in forward(pair) }
            thread.start()
        }
        Glibc.close(listenFD)
    }

    private func forward(_ pair: Pair) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        defer {
            // A reset, not a FIN: linger 0.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(pair.client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            setsockopt(pair.server, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            Glibc.close(pair.client)
            Glibc.close(pair.server)
            lock.withLock { pairs.removeAll { $0 === pair } }
        }
        while true {
            let (stalled, reset, repliesStalled) = pair.lock.withLock { (pair.stalled, pair.reset, pair.repliesStalled) }
            if reset { return }
            if stalled {
                usleep(20_000)
                continue
            }
            var fds = [pollfd(fd: pair.client, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: pair.server, events: repliesStalled ? 0 : Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 50) > 0 else { continue }
            for (index, from) in [(0, pair.client), (1, pair.server)] where fds[index].revents != 0 {
                let to = from == pair.client ? pair.server : pair.client
                let n = read(from, &buffer, buffer.count)
                if n <= 0 { return }
                var sent = 0
                while sent < n {
                    let m = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                    if m <= 0 { return }
                    sent += m
                }
            }
        }
    }
}
