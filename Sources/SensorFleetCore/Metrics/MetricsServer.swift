#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MosquittoKit
import Synchronization

/// Where `--metrics-listen` listens: a numeric IPv4 or IPv6 address (or `localhost`) and a port.
public struct MetricsListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// Parses "ADDR:PORT" or "[IPv6]:PORT"; port 0 takes a free one.
    public init(parsing text: String) throws(MetricsServerError) {
        let fail = MetricsServerError("--metrics-listen \(text): expected ADDR:PORT with a numeric address, e.g. 127.0.0.1:9464 or [::1]:9464")
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { throw fail }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        guard SocketAddress(host: host, port: port) != nil else { throw fail }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A failure to open the metrics endpoint, said so a person can act on it.
public struct MetricsServerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// How much a scraper may take: bounded in size, time and number.
public struct MetricsServerLimits: Sendable {
    /// Bytes of request head (request line and headers) before the answer is 431.
    public var maxRequestBytes = 8 * 1024
    /// Seconds a connection may live, from accept to the last byte of the answer.
    public var connectionTimeout = 5.0
    /// Connections open at once; one more is answered 503 and closed.
    public var maxConnections = 16

    public init() {}
}

/// The HTTP/1.1 endpoint of `--metrics-listen`: `GET /metrics` (Prometheus text format) and
/// `GET /healthz`, nothing else. A small responder of our own on its own thread: one `poll`
/// loop over non-blocking sockets, one request per connection (`Connection: close`), every
/// connection bounded in bytes and in time, and a cap on connections. A scraper that sends
/// nothing, sends byte by byte or never reads holds one slot for at most
/// `connectionTimeout` seconds and never blocks the loop, let alone a reactor.
public final class MetricsServer: Sendable {
    public let metrics: FleetMetrics
    public let limits: MetricsServerLimits
    /// The address actually bound (the port filled in when 0 was asked for).
    public let address: MetricsListenAddress
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// The server's thread once started (joined by `stop()`), and whether it was stopped.
    private let state = Mutex<(thread: pthread_t?, stopped: Bool)>((nil, false))

    /// Binds and listens at once (so a taken port fails before the run starts); serves once
    /// `start()` is called.
    public init(address: MetricsListenAddress, metrics: FleetMetrics, limits: MetricsServerLimits = MetricsServerLimits()) throws(MetricsServerError) {
        self.metrics = metrics
        self.limits = limits
        guard let socketAddress = SocketAddress(host: address.host, port: address.port) else {
            throw MetricsServerError("--metrics-listen \(address): not a numeric address")
        }
        let fd = socket(socketAddress.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("--metrics-listen \(address): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = socketAddress.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 32) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("--metrics-listen \(address): cannot listen: \(reason) (is the port taken? another --metrics-listen address or port 0 for a free one)")
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0, pipeFDs.allSatisfy(Self.makeNonBlocking) else {
            close(fd)
            throw MetricsServerError("metrics endpoint: pipe: \(String(cString: strerror(errno)))")
        }
        listener = fd
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        var actual = address
        actual.port = SocketAddress.localPort(fd) ?? address.port
        self.address = actual
    }

    deinit {
        close(listener)
        close(wakeRead)
        close(wakeWrite)
    }

    /// Starts the server's thread (256 KiB of stack, named "metrics").
    public func start() {
        state.withLock { state in
            guard state.thread == nil, !state.stopped else { return }
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            defer { pthread_attr_destroy(&attributes) }
            pthread_attr_setstacksize(&attributes, 256 * 1024)
            // The thread holds the server until its loop ends (released in the thread).
            let server = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, &attributes, { argument in
                let server = Unmanaged<MetricsServer>.fromOpaque(argument!).takeRetainedValue()
                setCurrentThreadName("metrics")
                server.serve()
                return nil
            }, server)
            guard created == 0 else {
                Unmanaged<MetricsServer>.fromOpaque(server).release()
                return
            }
            state.thread = thread
        }
    }

    /// Stops the thread and closes every connection; returns once it has ended.
    public func stop() {
        let thread = state.withLock { state -> pthread_t? in
            guard let thread = state.thread, !state.stopped else { return nil }
            state.stopped = true
            return thread
        }
        guard let thread else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        pthread_join(thread, nil)
    }

    // MARK: The loop (only on the server's thread)

    private struct Connection {
        let fd: Int32
        let deadline: ContinuousClock.Instant
        var request: [UInt8] = []
        var response: [UInt8]?
        var written = 0
    }

    private func serve() {
        var connections: [Connection] = []
        let clock = ContinuousClock()
        defer { for c in connections { close(c.fd) } }
        while true {
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            for c in connections {
                fds.append(pollfd(fd: c.fd, events: Int16(c.response == nil ? POLLIN : POLLOUT), revents: 0))
            }
            let now = clock.now
            let timeout = connections.map { $0.deadline }.min().map { next -> Int32 in
                let ms = (next - now).components
                return Int32(clamping: max(0, min(1000, ms.seconds * 1000 + ms.attoseconds / 1_000_000_000_000_000 + 1)))
            } ?? 1000
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            var kept: [Connection] = []
            for (index, var c) in connections.enumerated() {
                let events = fds[index + 2].revents
                if events != 0, handle(&c, events: events) == false {
                    close(c.fd)
                    continue
                }
                if clock.now >= c.deadline {
                    close(c.fd)
                    continue
                }
                kept.append(c)
            }
            connections = kept
            if fds[1].revents != 0 { accept(into: &connections, clock: clock) }
        }
    }

    private func accept(into connections: inout [Connection], clock: ContinuousClock) {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return } // EAGAIN: all taken; anything else: try again next turn
            guard Self.makeNonBlocking(fd) else {
                close(fd)
                continue
            }
            if connections.count >= limits.maxConnections {
                let busy = Self.response(status: "503 Service Unavailable", body: "too many connections\n")
                _ = busy.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(fd)
                continue
            }
            connections.append(Connection(fd: fd, deadline: clock.now + .milliseconds(Int64(limits.connectionTimeout * 1000))))
        }
    }

    /// O_NONBLOCK and FD_CLOEXEC on `fd`.
    static func makeNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
    }

    /// Reads or writes what the socket allows; false when the connection is over.
    private func handle(_ c: inout Connection, events: Int16) -> Bool {
        if c.response == nil {
            if events & Int16(POLLIN | POLLHUP | POLLERR) == 0 { return true }
            var buffer = [UInt8](repeating: 0, count: 2048)
            let room = min(buffer.count, limits.maxRequestBytes + 1 - c.request.count)
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, room, 0) }
            if n == 0 { return false }
            if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR }
            c.request.append(contentsOf: buffer[0..<n])
            if let head = Self.head(of: c.request) {
                c.response = answer(to: head)
            } else if c.request.count > limits.maxRequestBytes {
                c.response = Self.response(status: "431 Request Header Fields Too Large", body: "request too large\n")
            } else {
                return true
            }
        }
        guard let response = c.response else { return true }
        let n = response.withUnsafeBytes { bytes in
            send(c.fd, bytes.baseAddress! + c.written, bytes.count - c.written, Int32(MSG_NOSIGNAL))
        }
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR }
        c.written += n
        if c.written < response.count { return true }
        shutdown(c.fd, Int32(SHUT_WR))
        return false
    }

    /// The request head (up to the blank line), once it has all arrived.
    static func head(of bytes: [UInt8]) -> Substring? {
        let end: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && Array(bytes[i..<(i + 4)]) == end {
            return Substring(decoding: bytes[0..<i], as: UTF8.self)
        }
        return nil
    }

    func answer(to head: Substring) -> [UInt8] {
        let requestLine = head.prefix { !$0.isNewline }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return Self.response(status: "400 Bad Request", body: "bad request\n")
        }
        let method = parts[0]
        let path = parts[1].prefix { $0 != "?" }
        guard path == "/metrics" || path == "/healthz" else {
            return Self.response(status: "404 Not Found", body: "not found: GET /metrics or GET /healthz\n")
        }
        guard method == "GET" else {
            return Self.response(status: "405 Method Not Allowed", body: "only GET\n", headers: "Allow: GET\r\n")
        }
        if path == "/healthz" {
            return metrics.isReady
                ? Self.response(status: "200 OK", body: "ready\n")
                : Self.response(status: "503 Service Unavailable", body: "not connected\n")
        }
        return Self.response(status: "200 OK", body: metrics.exposition(),
                             contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    static func response(status: String, body: String, headers: String = "") -> [UInt8] {
        response(status: status, body: Array(body.utf8), headers: headers)
    }

    static func response(status: String, body: [UInt8], contentType: String = "text/plain; charset=utf-8", headers: String = "") -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\(headers)\r\n".utf8) + body
    }
}
